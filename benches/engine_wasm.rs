//! The WebAssembly engine beside raw wasmtime, in the same run:
//!
//! * `wasm_spawn` — spawn + run + exit of a trivial guest (`run` returns 1)
//!   on one worker, in batches, against a raw wasmtime `Store` + `Instance`
//!   + call of the same precompiled module (synchronous, default config).
//! * `wasm_call` — a host → guest call of an exported `add(i64, i64)`
//!   through `WasmInterpreter::call_function`, against a raw
//!   `TypedFunc::call` on one instance.
//! * idle memory (printed first, not a criterion group): resident memory
//!   per process blocked in `receive`, against a raw store + instance kept
//!   alive.
//!
//! Run with `cargo bench --features wasm --bench engine_wasm`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use troupe::{Class, MemorySource, Policy, Runtime, Spawn, Value};
use troupe_engines::ScriptEngine;
use troupe_engines::wasm::{WasmEngine, WasmInterpreter};
use wasmtime::{Engine, Instance, Module, Store};

#[path = "support/spawn.rs"]
mod spawn_support;

use spawn_support::spawn_batches;

const TRIVIAL: &str = r#"(module (func (export "run") (result i32) (i32.const 1)))"#;
const ADD: &str = r#"(module (func (export "add") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1))))"#;
const IDLE: &str = r#"(module
  (import "troupe" "receive" (func $receive (param i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 0)))))"#;
const IDLE_N: usize = 2_000;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(
            MemorySource::new()
                .with("noop.wat", TRIVIAL)
                .with("idle.wat", IDLE),
        )
        .engine(WasmEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Resident set size of this process in bytes (0 where unknown).
fn rss_bytes() -> u64 {
    troupe::machine::resident_memory().unwrap_or(0)
}

/// Prints resident bytes per idle process and per raw instance.
fn idle_memory() {
    let rt = runtime(2);
    // Warm up: compile the module and touch the scheduler.
    let first = rt.spawn(Spawn::script("idle.wat")).expect("spawn");
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_bytes();
    let mut handles = vec![first];
    for _ in 0..IDLE_N {
        handles.push(rt.spawn(Spawn::script("idle.wat")).expect("spawn"));
    }
    while rt.process_count() < IDLE_N + 1 {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let troupe = (rss_bytes() - before) / IDLE_N as u64;
    for h in &handles {
        h.kill();
    }
    rt.shutdown();

    let engine = Engine::default();
    let module = Module::new(&engine, TRIVIAL).expect("compile");
    let before = rss_bytes();
    let stores: Vec<(Store<()>, Instance)> = (0..IDLE_N)
        .map(|_| {
            let mut store = Store::new(&engine, ());
            let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");
            (store, instance)
        })
        .collect();
    let raw = (rss_bytes() - before) / IDLE_N as u64;
    black_box(&stores);
    println!(
        "idle memory: troupe wasm process blocked in receive {troupe} B, raw wasmtime store + instance {raw} B (N = {IDLE_N})"
    );
}

fn spawn(c: &mut Criterion) {
    const BATCH: u64 = 500;
    let mut g = c.benchmark_group("wasm_spawn");
    g.sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));

    let engine = Engine::default();
    let module = Module::new(&engine, TRIVIAL).expect("compile");
    g.bench_function("raw_wasmtime_store_instance_call", |b| {
        b.iter(|| {
            let mut store = Store::new(&engine, ());
            let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");
            let run = instance
                .get_typed_func::<(), i32>(&mut store, "run")
                .expect("run");
            black_box(run.call(&mut store, ()).expect("call"));
        });
    });

    let rt = runtime(1);
    g.bench_function("troupe_spawn_run_exit", |b| {
        b.iter_custom(|iters| {
            spawn_batches(
                &rt,
                &Spawn::script("noop.wat"),
                BATCH,
                iters,
                &Value::Int(1),
            )
        });
    });
    g.finish();
    rt.shutdown();
}

fn call(c: &mut Criterion) {
    let mut g = c.benchmark_group("wasm_call");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));

    let engine = Engine::default();
    let module = Module::new(&engine, ADD).expect("compile");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");
    let add = instance
        .get_typed_func::<(i64, i64), i64>(&mut store, "add")
        .expect("add");
    g.bench_function("raw_wasmtime_typed_call", |b| {
        b.iter(|| black_box(add.call(&mut store, (black_box(20), 22)).expect("call")));
    });

    let mut interp = WasmInterpreter::new();
    interp.init().expect("init");
    interp
        .as_loader()
        .and_then(|l| l.load_string("add.wat", ADD))
        .expect("load");
    let functions = interp.as_functions().expect("functions");
    g.bench_function("troupe_call_function", |b| {
        b.iter(|| {
            let v = functions
                .call_function("add", vec![Value::Int(black_box(20)), Value::Int(22)])
                .expect("call");
            black_box(v);
        });
    });
    g.finish();
}

criterion_group!(benches, spawn, call);

fn main() {
    idle_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
