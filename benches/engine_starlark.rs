//! The Starlark engine beside the raw `starlark` crate, in the same run:
//!
//! * `spawn` — spawn + run + exit of a trivial `.star` process (`1 + x`,
//!   `x` from the spawn arguments) through a one-worker runtime, against
//!   evaluating the same parsed module on a fresh heap with the raw crate.
//! * `call` — a host→script function call: `StarlarkInterpreter::call_function`
//!   of `add`, defined by an earlier script (each call evaluates in a fresh
//!   module that imports the earlier definitions), against calling `add`
//!   again and again in one live module and evaluator with the raw crate.
//!
//! Run with `cargo bench --features starlark --bench engine_starlark`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use starlark::environment::{Globals, Module};
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect};
use troupe::{MemorySource, Runtime, Spawn, Value};
use troupe_engines::capability::ScriptEngine;
use troupe_engines::starlark::{StarlarkEngine, StarlarkInterpreter};

const ADD: &str = "def add(a, b):\n    return a + b\n";

fn spawn(c: &mut Criterion) {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("job.star", "1 + x"))
        .engine(StarlarkEngine::new())
        .build()
        .expect("runtime builds");
    let args: Value = [("x".to_owned(), Value::Int(41))].into_iter().collect();
    let mut group = c.benchmark_group("engine_starlark/spawn");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let h = rt
                .spawn(Spawn::script("job.star").args([args.clone()]))
                .expect("spawns");
            assert_eq!(h.join_blocking(), Ok(Value::Int(42)));
        })
    });
    let globals = Globals::standard();
    let ast = AstModule::parse("job.star", "1 + x".to_owned(), &Dialect::Extended).expect("parses");
    group.bench_function("raw_starlark", |b| {
        b.iter(|| {
            Module::with_temp_heap(|module| {
                module.set("x", module.heap().alloc(41));
                let mut eval = Evaluator::new(&module);
                let v = eval.eval_module(ast.clone(), &globals).expect("runs");
                black_box(v.unpack_i32())
            })
        })
    });
    group.finish();
    rt.shutdown();
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_starlark/call");
    let mut interp = StarlarkInterpreter::new();
    interp.init().expect("opens");
    interp
        .as_executor()
        .expect("executes")
        .execute_string(ADD)
        .expect("defines add");
    let functions = interp.as_functions().expect("has functions");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let out = functions
                .call_function("add", vec![Value::Int(40), Value::Int(2)])
                .expect("calls");
            assert_eq!(out, Value::Int(42));
        })
    });
    let globals = Globals::standard();
    Module::with_temp_heap(|module| {
        let ast = AstModule::parse("add.star", ADD.to_owned(), &Dialect::Extended).expect("parses");
        let mut eval = Evaluator::new(&module);
        eval.eval_module(ast, &globals).expect("runs");
        let add = module.get("add").expect("defined");
        let heap = module.heap();
        group.bench_function("raw_starlark", |b| {
            b.iter(|| {
                let v = eval
                    .eval_function(add, &[heap.alloc(40), heap.alloc(2)], &[])
                    .expect("calls");
                black_box(v.unpack_i32())
            })
        });
    });
    group.finish();
}

criterion_group!(benches, spawn, call);
criterion_main!(benches);
