//! Engine benchmarks: for every compiled-in engine, each beside its raw
//! library API measured in the same run.
//!
//! * `spawn_run_exit/<lang>` — spawn a trivial script (`return 1`) as a
//!   Troupe process and wait for its result (one worker); raw rows run the
//!   same chunk with the bare library (a fresh state, and a reused state).
//! * `host_call/<lang>` — call a script function `f(n) = n + 1` from the host
//!   through the engine's `ScriptEngine` (`call_function`); the raw row calls
//!   the same function through the library.
//!
//! Run with `cargo bench --bench engines --all-features`. Each engine adds
//! its rows under its cfg in [`spawn_run_exit`] and [`host_call`].

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use troupe::{EngineFactory, MemorySource, Policy, Runtime, Spawn, Value};

/// A runtime with every compiled-in engine, one worker, and `scripts`.
fn runtime(scripts: &[(&str, &str)]) -> Runtime {
    let source = scripts
        .iter()
        .fold(MemorySource::new(), |s, (key, code)| s.with(key, code));
    let mut builder = Runtime::builder().workers(1).source(source);
    for engine in EngineFactory::builtin().process_engines() {
        builder = builder.engine(engine);
    }
    builder.build().expect("runtime")
}

/// Spawns `key` and waits for its result.
fn spawn_once(rt: &Runtime, key: &str) -> Value {
    rt.spawn(Spawn::script(key).policy(Policy::deterministic()))
        .and_then(|h| h.join_blocking())
        .expect("script runs")
}

fn spawn_run_exit(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_run_exit");
    #[cfg(feature = "lua")]
    {
        let rt = runtime(&[("t.lua", "return 1")]);
        g.bench_function("lua/troupe", |b| {
            b.iter(|| black_box(spawn_once(&rt, "t.lua")))
        });
        g.bench_function("lua/raw mlua, fresh state", |b| {
            b.iter(|| {
                let lua = mlua::Lua::new();
                black_box(lua.load("return 1").call::<i64>(()).expect("runs"))
            })
        });
        let lua = mlua::Lua::new();
        g.bench_function("lua/raw mlua, reused state", |b| {
            b.iter(|| black_box(lua.load("return 1").call::<i64>(()).expect("runs")))
        });
        rt.shutdown();
    }
    g.finish();
}

/// `name`'s interpreter with `code` run once (defining `f`).
fn interpreter(name: &str, code: &str) -> Box<dyn troupe::ScriptEngine> {
    let mut e = EngineFactory::builtin().create(name).expect("engine");
    e.init().expect("init");
    e.as_executor()
        .and_then(|x| x.execute_string(code))
        .expect("defines f");
    e
}

/// Calls `f(41)` through the interpreter.
fn call_f(e: &mut dyn troupe::ScriptEngine) -> Value {
    e.as_functions()
        .and_then(|f| f.call_function("f", vec![Value::Int(41)]))
        .expect("f runs")
}

fn host_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("host_call");
    #[cfg(feature = "lua")]
    {
        let define = "function f(n) return n + 1 end";
        let mut e = interpreter("lua", define);
        g.bench_function("lua/troupe", |b| b.iter(|| black_box(call_f(&mut *e))));
        let lua = mlua::Lua::new();
        lua.load(define).exec().expect("defines f");
        let f: mlua::Function = lua.globals().get("f").expect("f");
        g.bench_function("lua/raw mlua", |b| {
            b.iter(|| black_box(f.call::<i64>(41).expect("f runs")))
        });
    }
    g.finish();
}

criterion_group!(benches, spawn_run_exit, host_call);
criterion_main!(benches);
