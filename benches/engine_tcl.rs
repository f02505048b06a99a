//! The TCL engine beside bare molt, in the same run:
//!
//! * `run` — a loaded script (a loop summing 1..=1000) executed through
//!   `TclInterpreter` (a fresh sandboxed interpreter per run, with the
//!   meter on every command and iteration and the run's procs and globals
//!   kept), against `Interp::new()` + `eval` of the same script with bare
//!   molt.
//! * `call` — a host→script call of the proc `add` through
//!   `call_function`, against calling `add` in one live molt interpreter.
//!
//! Run with `cargo bench --features tcl --bench engine_tcl`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use molt::Interp;
use troupe::Value;
use troupe_engines::capability::ScriptEngine;
use troupe_engines::tcl::TclInterpreter;

const SUM: &str = "set total 0\nfor {set i 1} {$i <= 1000} {incr i} { incr total $i }\nset total";
const ADD: &str = "proc add {a b} { expr {$a + $b} }";

fn interpreter() -> TclInterpreter {
    let mut t = TclInterpreter::new();
    t.init().expect("opens");
    t
}

fn run(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_tcl/run");
    let mut t = interpreter();
    t.as_loader()
        .expect("loads")
        .load_string("sum.tcl", SUM)
        .expect("complete");
    let executor = t.as_executor().expect("executes");
    group.bench_function("troupe", |b| {
        b.iter(|| assert_eq!(executor.execute("sum.tcl"), Ok(Value::Int(500_500))))
    });
    group.bench_function("raw_molt", |b| {
        b.iter(|| {
            let mut interp = Interp::new();
            black_box(interp.eval(SUM).expect("runs"))
        })
    });
    group.finish();
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_tcl/call");
    let mut t = interpreter();
    t.as_executor()
        .expect("executes")
        .execute_string(ADD)
        .expect("defines add");
    let functions = t.as_functions().expect("has functions");
    group.bench_function("troupe", |b| {
        b.iter(|| {
            let out = functions
                .call_function("add", vec![Value::Int(40), Value::Int(2)])
                .expect("calls");
            assert_eq!(out, Value::Int(42));
        })
    });
    let mut interp = Interp::new();
    interp.eval(ADD).expect("defines add");
    group.bench_function("raw_molt", |b| {
        b.iter(|| black_box(interp.eval("add 40 2").expect("calls")))
    });
    group.finish();
}

criterion_group!(benches, run, call);
criterion_main!(benches);
