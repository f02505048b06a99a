//! The CEL engine beside the raw `cel` crate, in the same run:
//!
//! * `spawn` — spawn + run + exit of a trivial `.cel` process (`1 + x`, `x`
//!   from the spawn arguments) through a one-worker runtime, against
//!   executing the same precompiled `cel::Program` in a fresh child scope.
//! * `call` — a host→script function call: `CelInterpreter::call_function`
//!   of a registered host function, against executing `twice(x)` with the
//!   raw crate.
//!
//! Run with `cargo bench --features cel --bench engine_cel`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use troupe::{MemorySource, Runtime, Spawn, Value};
use troupe_engines::capability::ScriptEngine;
use troupe_engines::cel::{CelEngine, CelInterpreter};

fn spawn(c: &mut Criterion) {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("job.cel", "1 + x"))
        .engine(CelEngine::new())
        .build()
        .expect("runtime builds");
    let args: Value = [("x".to_owned(), Value::Int(41))].into_iter().collect();
    let mut group = c.benchmark_group("engine_cel/spawn");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let h = rt
                .spawn(Spawn::script("job.cel").args([args.clone()]))
                .expect("spawns");
            assert_eq!(h.join_blocking(), Ok(Value::Int(42)));
        })
    });
    let root = cel::Context::default();
    let program = cel::Program::compile("1 + x").expect("compiles");
    group.bench_function("raw_cel", |b| {
        b.iter(|| {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("x", 41i64);
            black_box(program.execute(&ctx).expect("runs"))
        })
    });
    group.finish();
    rt.shutdown();
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_cel/call");
    let mut interp = CelInterpreter::new();
    interp.init().expect("opens");
    let twice = Arc::new(|args: Vec<Value>| match args.as_slice() {
        [Value::Int(i)] => Ok(Value::Int(i * 2)),
        _ => Ok(Value::Nil),
    });
    let functions = interp.as_functions().expect("has functions");
    functions
        .register_function("twice", twice)
        .expect("registers");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let out = functions
                .call_function("twice", vec![Value::Int(21)])
                .expect("calls");
            assert_eq!(out, Value::Int(42));
        })
    });
    let mut root = cel::Context::default();
    root.add_function("twice", |x: i64| x * 2)
        .expect("registers");
    let program = cel::Program::compile("twice(x)").expect("compiles");
    group.bench_function("raw_cel", |b| {
        b.iter(|| {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("x", 21i64);
            black_box(program.execute(&ctx).expect("runs"))
        })
    });
    group.finish();
}

criterion_group!(benches, spawn, call);
criterion_main!(benches);
