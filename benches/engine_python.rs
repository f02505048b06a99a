//! The Python engine (RustPython) beside raw RustPython, measured in the
//! same run.
//!
//! * `spawn_run_exit` — a trivial script (`result = 1 + 1`) spawned as a
//!   Troupe process (a new interpreter thread, the sandbox setup, the
//!   scheduler hops) and joined; against a fresh raw
//!   `Interpreter::without_stdlib` running the same source on the bench
//!   thread.
//! * `call` — a host→script call of `add(a, b)` through
//!   `PythonInterpreter::call_function` (a hop to the interpreter thread,
//!   `Value` conversion both ways, the trace hook); against calling the
//!   function object on a raw interpreter on the bench thread.
//!
//! Run with `cargo bench --features python --bench engine_python`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use troupe::{MemorySource, Policy, Runtime, Spawn, Value};
use troupe_engines::ScriptEngine;
use troupe_engines::python::rustpython::compiler::Mode;
use troupe_engines::python::rustpython::{AsObject, Interpreter};
use troupe_engines::python::{PythonEngine, PythonInterpreter};

const TRIVIAL: &str = "result = 1 + 1";
const ADD: &str = "def add(a, b):\n    return a + b";

fn spawn_run_exit(c: &mut Criterion) {
    let rt = Runtime::builder()
        .workers(2)
        .source(MemorySource::new().with("trivial.py", TRIVIAL))
        .engine(PythonEngine::new())
        .default_policy(Policy::deny_all())
        .build()
        .expect("runtime builds");
    let mut g = c.benchmark_group("engine_python/spawn_run_exit");
    g.bench_function("troupe", |b| {
        b.iter(|| {
            let h = rt.spawn(Spawn::script("trivial.py")).expect("spawns");
            assert_eq!(h.join_blocking().expect("runs"), Value::Int(2));
        })
    });
    g.bench_function("raw_rustpython", |b| {
        b.iter(|| {
            let interp = Interpreter::without_stdlib(Default::default());
            interp.enter(|vm| {
                let scope = vm.new_scope_with_builtins();
                let code = vm
                    .compile(TRIVIAL, Mode::Exec, "trivial.py".to_owned())
                    .expect("compiles");
                vm.run_code_obj(code, scope.clone()).expect("runs");
                black_box(scope.globals.get_item("result", vm).expect("result"));
            })
        })
    });
    g.finish();
    rt.shutdown();
}

fn call(c: &mut Criterion) {
    let mut py = PythonInterpreter::new();
    py.init().expect("init");
    py.as_executor()
        .and_then(|e| e.execute_string(ADD))
        .expect("defines add");
    let raw = Interpreter::without_stdlib(Default::default());
    let (scope, add) = raw.enter(|vm| {
        let scope = vm.new_scope_with_builtins();
        let code = vm
            .compile(ADD, Mode::Exec, "add.py".to_owned())
            .expect("compiles");
        vm.run_code_obj(code, scope.clone()).expect("defines add");
        let add = scope.globals.get_item("add", vm).expect("add");
        (scope, add)
    });

    let mut g = c.benchmark_group("engine_python/call");
    g.bench_function("troupe", |b| {
        let f = py.as_functions().expect("functions");
        b.iter(|| {
            let v = f
                .call_function("add", vec![Value::Int(20), Value::Int(22)])
                .expect("calls");
            assert_eq!(v, Value::Int(42));
        })
    });
    g.bench_function("raw_rustpython", |b| {
        b.iter(|| {
            raw.enter(|vm| {
                let v = add
                    .as_object()
                    .call((vm.ctx.new_int(20), vm.ctx.new_int(22)), vm)
                    .expect("calls");
                black_box(v);
            })
        })
    });
    g.finish();
    drop(scope);
}

criterion_group!(benches, spawn_run_exit, call);
criterion_main!(benches);
