//! The expressions engine beside the raw `evalexpr` crate, in the same run:
//!
//! * `spawn` — spawn + run + exit of a trivial `.evalexpr` process (`1 + x`,
//!   `x` from the spawn arguments) through a one-worker runtime, against
//!   evaluating the same precompiled tree with a fresh `HashMapContext`.
//! * `call` — a host→script function call: `EvalexprInterpreter::call_function`
//!   of a registered host function, against evaluating `double(x)` with
//!   the raw crate.
//!
//! Run with `cargo bench --features evalexpr --bench engine_evalexpr`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use evalexpr::{ContextWithMutableFunctions, ContextWithMutableVariables, HashMapContext};
use troupe::{MemorySource, Runtime, Spawn, Value};
use troupe_engines::capability::ScriptEngine;
use troupe_engines::evalexpr::{EvalexprEngine, EvalexprInterpreter};

fn spawn(c: &mut Criterion) {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("job.evalexpr", "1 + x"))
        .engine(EvalexprEngine::new())
        .build()
        .expect("runtime builds");
    let args: Value = [("x".to_owned(), Value::Int(41))].into_iter().collect();
    let mut group = c.benchmark_group("engine_evalexpr/spawn");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let h = rt
                .spawn(Spawn::script("job.evalexpr").args([args.clone()]))
                .expect("spawns");
            assert_eq!(h.join_blocking(), Ok(Value::Int(42)));
        })
    });
    let tree = evalexpr::build_operator_tree("1 + x").expect("compiles");
    group.bench_function("raw_evalexpr", |b| {
        b.iter(|| {
            let mut ctx = HashMapContext::new();
            ctx.set_value("x".into(), evalexpr::Value::Int(41))
                .expect("sets");
            black_box(tree.eval_with_context(&ctx).expect("runs"))
        })
    });
    group.finish();
    rt.shutdown();
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_evalexpr/call");
    let mut interp = EvalexprInterpreter::new();
    interp.init().expect("opens");
    let double = Arc::new(|args: Vec<Value>| match args.as_slice() {
        [Value::Int(i)] => Ok(Value::Int(i * 2)),
        _ => Ok(Value::Nil),
    });
    let functions = interp.as_functions().expect("has functions");
    functions
        .register_function("double", double)
        .expect("registers");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let out = functions
                .call_function("double", vec![Value::Int(21)])
                .expect("calls");
            assert_eq!(out, Value::Int(42));
        })
    });
    let mut ctx = HashMapContext::new();
    ctx.set_function(
        "double".into(),
        evalexpr::Function::new(|v| Ok(evalexpr::Value::Int(v.as_int()? * 2))),
    )
    .expect("registers");
    ctx.set_value("x".into(), evalexpr::Value::Int(21))
        .expect("sets");
    let tree = evalexpr::build_operator_tree("double(x)").expect("compiles");
    group.bench_function("raw_evalexpr", |b| {
        b.iter(|| black_box(tree.eval_with_context(&ctx).expect("runs")))
    });
    group.finish();
}

criterion_group!(benches, spawn, call);
criterion_main!(benches);
