//! The JavaScript engine (boa) beside raw boa, measured in the same run.
//!
//! * `spawn_run_exit` — a trivial script (`1 + 1`) spawned as a Troupe
//!   process, run on a JS thread and joined; against a fresh
//!   `boa_engine::Context` evaluating the same source (what each Troupe
//!   process does inside, plus the scheduler and thread hops).
//! * `call` — a host→script call of `add(a, b)` through
//!   `JsInterpreter::call_function` (a hop to the interpreter's JS thread,
//!   `Value` conversion both ways); against `JsFunction::call` on a raw
//!   context on the bench thread.
//!
//! Run with `cargo bench --features js --bench engine_js`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use troupe::{MemorySource, Policy, Runtime, Spawn, Value};
use troupe_engines::ScriptEngine;
use troupe_engines::js::boa::{Context, JsString, JsValue, Source};
use troupe_engines::js::{JsEngine, JsInterpreter};

const TRIVIAL: &str = "1 + 1";
const ADD: &str = "function add(a, b) { return a + b; }";

fn spawn_run_exit(c: &mut Criterion) {
    let rt = Runtime::builder()
        .workers(2)
        .source(MemorySource::new().with("trivial.js", TRIVIAL))
        .engine(JsEngine::new())
        .default_policy(Policy::deny_all())
        .build()
        .expect("runtime builds");
    let mut g = c.benchmark_group("engine_js/spawn_run_exit");
    g.bench_function("troupe", |b| {
        b.iter(|| {
            let h = rt.spawn(Spawn::script("trivial.js")).expect("spawns");
            assert_eq!(h.join_blocking().expect("runs"), Value::Int(2));
        })
    });
    g.bench_function("raw_boa", |b| {
        b.iter(|| {
            let mut ctx = Context::default();
            let v = ctx.eval(Source::from_bytes(TRIVIAL)).expect("runs");
            black_box(v);
        })
    });
    g.finish();
    rt.shutdown();
}

fn call(c: &mut Criterion) {
    let mut js = JsInterpreter::new();
    js.init().expect("init");
    js.as_executor()
        .and_then(|e| e.execute_string(ADD))
        .expect("defines add");
    let mut raw = Context::default();
    raw.eval(Source::from_bytes(ADD)).expect("defines add");
    let add = raw
        .global_object()
        .get(JsString::from("add"), &mut raw)
        .expect("add")
        .as_callable()
        .expect("callable");

    let mut g = c.benchmark_group("engine_js/call");
    g.bench_function("troupe", |b| {
        let f = js.as_functions().expect("functions");
        b.iter(|| {
            let v = f
                .call_function("add", vec![Value::Int(20), Value::Int(22)])
                .expect("calls");
            assert_eq!(v, Value::Int(42));
        })
    });
    g.bench_function("raw_boa", |b| {
        b.iter(|| {
            let v = add
                .call(
                    &JsValue::undefined(),
                    &[JsValue::from(20), JsValue::from(22)],
                    &mut raw,
                )
                .expect("calls");
            black_box(v);
        })
    });
    g.finish();
}

criterion_group!(benches, spawn_run_exit, call);
criterion_main!(benches);
