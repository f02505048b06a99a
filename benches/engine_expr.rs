//! The `expr` module's language beside the raw `expr-lang` crate, in the
//! same run:
//!
//! * `compile` — `troupe_modules::builtin::expr::compile` (source checks,
//!   the nesting bound, then the crate's parser) against `expr::compile`.
//! * `run` — a business rule, `price * quantity > 100 and customer.tier in
//!   ["gold", "platinum"]`, evaluated from Troupe values (converted to
//!   expr values, run within the budget, converted back) against the raw
//!   crate running the same program on a prebuilt `expr::Context`.
//!
//! Run with `cargo bench --features expr --bench engine_expr`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use troupe::Value;
use troupe_modules::builtin::expr as troupe_expr;

const RULE: &str = r#"price * quantity > 100 and customer.tier in ["gold", "platinum"]"#;

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_expr/compile");
    group.bench_function("troupe", |b| {
        b.iter(|| black_box(troupe_expr::compile(black_box(RULE)).expect("compiles")))
    });
    group.bench_function("raw_expr_lang", |b| {
        b.iter(|| black_box(expr::compile(black_box(RULE)).expect("compiles")))
    });
    group.finish();
}

fn run(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_expr/run");
    let customer: Value = [("tier".to_owned(), Value::from("gold"))]
        .into_iter()
        .collect();
    let vars: BTreeMap<String, Value> = [
        ("price".to_owned(), Value::Float(10.5)),
        ("quantity".to_owned(), Value::Int(12)),
        ("customer".to_owned(), customer),
    ]
    .into_iter()
    .collect();
    let rule = troupe_expr::compile(RULE).expect("compiles");
    group.bench_function("troupe", |b| {
        b.iter(|| assert_eq!(rule.run(&vars), Ok(Value::Bool(true))))
    });
    let program = expr::compile(RULE).expect("compiles");
    let env = expr::Environment::new();
    group.bench_function("raw_expr_lang", |b| {
        b.iter(|| {
            let mut ctx = expr::Context::default();
            ctx.insert("price", 10.5);
            ctx.insert("quantity", 12i64);
            let mut customer = expr::__private::IndexMap::new();
            customer.insert("tier".to_owned(), expr::Value::from("gold"));
            ctx.insert("customer", expr::Value::Map(customer));
            black_box(env.run(&program, &ctx).expect("runs"))
        })
    });
    group.finish();
}

criterion_group!(benches, compile, run);
criterion_main!(benches);
