//! The Python engine: processes, imports through the policy, commands that
//! do not block a worker, errors, limits, the sandbox (escape attempts) and
//! the embeddable interpreter.
#![cfg(feature = "python")]

use std::num::NonZeroU64;
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::python::{PythonEngine, PythonInterpreter};
use troupe_engines::{Executor, ScriptEngine};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy, Ret};
use troupe_runtime::{Limits, Runtime, Spawn};
use troupe_sources::MemorySource;

/// A runtime with the Python engine, `workers` workers and `scripts`.
fn runtime(workers: usize, scripts: &[(&str, &str)]) -> Runtime {
    let source = scripts
        .iter()
        .fold(MemorySource::new(), |s, (k, c)| s.with(k, c));
    Runtime::builder()
        .workers(workers)
        .source(source)
        .engine(PythonEngine::new())
        .build()
        .expect("runtime")
}

/// Runs `code` as a process with `args`, `policy` and `limits`.
fn run_with(code: &str, args: Vec<Value>, policy: Policy, limits: Limits) -> Result<Value, Error> {
    let rt = runtime(2, &[("t.py", code)]);
    rt.spawn(
        Spawn::script("t.py")
            .args(args)
            .policy(policy)
            .limits(limits),
    )
    .expect("spawn")
    .join_blocking()
}

fn run(code: &str) -> Result<Value, Error> {
    run_with(code, vec![], Policy::trusted(), Limits::default())
}

fn kind(r: Result<Value, Error>) -> ErrorKind {
    match r {
        Err(e) => e.kind(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn loop_limit() -> Limits {
    Limits {
        max_instructions: NonZeroU64::new(200_000),
        ..Limits::default()
    }
}

#[test]
fn result_is_main_or_the_result_global_and_args_come_in() {
    assert_eq!(run("result = 6 * 7").unwrap(), Value::Int(42));
    assert_eq!(
        run_with(
            "def main(a, b):\n    return {'sum': a + b, 'args': args}",
            vec![Value::Int(1), Value::Int(2)],
            Policy::trusted(),
            Limits::default()
        )
        .unwrap(),
        Value::from_iter([
            ("sum".to_owned(), Value::Int(3)),
            (
                "args".to_owned(),
                Value::Array(vec![Value::Int(1), Value::Int(2)])
            ),
        ])
    );
    assert_eq!(run("x = 1").unwrap(), Value::Nil);
}

#[test]
fn modules_import_through_the_policy() {
    assert_eq!(
        run("import json\nresult = json.decode(json.encode([1, 'a']))").unwrap(),
        Value::Array(vec![Value::Int(1), Value::from("a")])
    );
    assert_eq!(
        run("from json import encode\nresult = encode(True)").unwrap(),
        Value::from("true")
    );
    assert_eq!(kind(run("import no_such_module")), ErrorKind::NotFound);
    let denied = run_with("import json", vec![], Policy::deny_all(), Limits::default());
    assert_eq!(kind(denied), ErrorKind::PermissionDenied);
    // Scripts catch import failures as ImportError or TroupeError, with a kind.
    let caught = "try:\n    import no_such_module\nexcept ImportError as e:\n    result = e.kind";
    assert_eq!(run(caught).unwrap(), Value::from("NOT_FOUND"));
    let caught = "try:\n    import json\nexcept TroupeError as e:\n    result = e.kind";
    assert_eq!(
        run_with(caught, vec![], Policy::deny_all(), Limits::default()).unwrap(),
        Value::from("PERMISSION_DENIED")
    );
}

#[test]
fn errors_carry_kind_and_location() {
    let e = run("x = 1\nraise ValueError('boom')").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(e.message().contains("t.py:2"), "{e}");
    assert!(e.message().contains("ValueError: boom"), "{e}");
    let e = run("def f():\n    raise TroupeError('NOT_FOUND', 'no user')\nf()").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.message().contains("t.py:2") && e.message().contains("no user"),
        "{e}"
    );
    let rt = runtime(1, &[("bad.py", "result = (")]);
    let syntax = match rt.spawn(Spawn::script("bad.py")) {
        Err(e) => e,
        Ok(h) => h.join_blocking().unwrap_err(),
    };
    assert_eq!(syntax.kind(), ErrorKind::Invalid);
    assert_eq!(kind(run("result = object()")), ErrorKind::Invalid);
    assert_eq!(
        kind(run("def f():\n    return f()\nresult = f()")),
        ErrorKind::Internal
    );
}

#[test]
fn loops_hit_the_instruction_limit_and_cannot_catch_it() {
    let r = run_with(
        "while True:\n    pass",
        vec![],
        Policy::trusted(),
        loop_limit(),
    );
    assert_eq!(kind(r), ErrorKind::LimitExceeded);
    let swallow = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass";
    let r = run_with(swallow, vec![], Policy::trusted(), loop_limit());
    assert_eq!(kind(r), ErrorKind::LimitExceeded);
    // Switching the frame's tracing off is not possible.
    let untrace = "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_trace = None\nwhile True:\n    pass";
    let r = run_with(untrace, vec![], Policy::trusted(), loop_limit());
    assert_eq!(kind(r), ErrorKind::Internal);
}

#[test]
fn a_looping_process_is_preempted_on_a_single_worker() {
    let rt = runtime(
        1,
        &[
            ("spin.py", "while True:\n    pass"),
            ("quick.py", "result = 1"),
        ],
    );
    let spin = rt.spawn(Spawn::script("spin.py")).expect("spawn");
    let quick = rt.spawn(Spawn::script("quick.py")).expect("spawn");
    assert_eq!(quick.join_blocking().unwrap(), Value::Int(1));
    assert!(spin.kill());
    assert!(spin.join_blocking().is_err());
}

#[test]
fn a_waiting_process_does_not_hold_the_only_worker() {
    let rt = runtime(
        1,
        &[
            (
                "wait.py",
                "import process\nresult = process.receive()['payload']",
            ),
            ("sleep.py", "import time\ntime.sleep(5)\nresult = 'slept'"),
        ],
    );
    let waiting = rt
        .spawn(Spawn::script("wait.py").policy(Policy::trusted()))
        .expect("spawn");
    let sleepers: Vec<_> = (0..20)
        .map(|_| {
            rt.spawn(Spawn::script("sleep.py").policy(Policy::trusted()))
                .expect("spawn")
        })
        .collect();
    for s in sleepers {
        assert_eq!(s.join_blocking().unwrap(), Value::from("slept"));
    }
    waiting.try_send("greeting", "ping").expect("send");
    assert_eq!(waiting.join_blocking().unwrap(), Value::from("ping"));
}

#[test]
fn a_killed_waiting_process_ends_its_thread() {
    let rt = runtime(1, &[("wait.py", "import process\nprocess.receive()")]);
    let h = rt
        .spawn(Spawn::script("wait.py").policy(Policy::trusted()))
        .expect("spawn");
    assert!(h.kill());
    assert_eq!(h.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
}

/// Each script tries to reach the host; none may succeed.
#[test]
fn escape_attempts_fail() {
    let attempts = [
        ("open", "open('/etc/passwd').read()"),
        ("import os", "import os"),
        ("import sys", "import sys"),
        ("import posix", "import posix"),
        ("import io", "import _io"),
        ("importlib", "import importlib"),
        ("builtins module", "import builtins"),
        ("__import__", "__import__('os')"),
        ("builtins dict", "__builtins__.__import__('os')"),
        ("exec", "exec('import os')"),
        ("eval", "eval(\"__import__('sys')\")"),
        ("relative", "from . import os"),
        ("input", "input()"),
        ("dotted", "import os.path"),
    ];
    for (name, code) in attempts {
        let r = run(code);
        assert!(r.is_err(), "{name}: {r:?}");
    }
    // Unknown modules are NOT_FOUND, whatever they would be in CPython.
    let r = run("import builtins").unwrap_err();
    assert_eq!(r.kind(), ErrorKind::NotFound);
}

#[test]
fn interpreter_keeps_globals_calls_functions_and_resets() {
    let mut py = PythonInterpreter::new();
    py.init().unwrap();
    py.as_globals()
        .unwrap()
        .set_global("n", Value::Int(20))
        .unwrap();
    let ex = py.as_executor().unwrap();
    assert_eq!(ex.execute_string("n + 22").unwrap(), Value::Int(42));
    ex.execute_string("def twice(x):\n    return [x, x]")
        .unwrap();
    assert_eq!(
        py.as_functions()
            .unwrap()
            .call_function("twice", vec![Value::from("a")])
            .unwrap(),
        Value::Array(vec![Value::from("a"), Value::from("a")])
    );
    let f: troupe_engines::HostFunction = Arc::new(|args: Vec<Value>| match args.as_slice() {
        [Value::Int(a)] => Ok(Value::Int(a * 10)),
        _ => Err(Error::invalid("want one int")),
    });
    py.as_functions()
        .unwrap()
        .register_function("tenfold", f)
        .unwrap();
    let ex = py.as_executor().unwrap();
    assert_eq!(ex.execute_string("tenfold(4)").unwrap(), Value::Int(40));
    let caught = "try:\n    tenfold('x')\nexcept TroupeError as e:\n    result = e.kind";
    assert_eq!(ex.execute_string(caught).unwrap(), Value::from("INVALID"));
    py.reset().unwrap();
    assert_eq!(
        py.as_globals().unwrap().get_global("n").unwrap(),
        Value::Nil
    );
    assert_eq!(
        py.as_executor()
            .unwrap()
            .execute_string("tenfold(1)")
            .unwrap_err()
            .kind(),
        ErrorKind::Internal
    );
    py.close().unwrap();
    assert_eq!(
        py.as_executor()
            .unwrap()
            .execute_string("1")
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
}

#[test]
fn interpreter_modules_policy_commands_and_limits() {
    let mut py = PythonInterpreter::new();
    let double = ModuleDef::new("double").function("of", |_, args| {
        let n = args.int(0)?;
        Ok(Ret::Value(Value::Int(n * 2)))
    });
    py.set_policy(
        Arc::new(Policy::trusted()),
        Arc::new(ModuleRegistry::with_builtins()),
    )
    .unwrap();
    py.as_modules().unwrap().register_module(double).unwrap();
    let ex: &mut dyn Executor = py.as_executor().unwrap();
    assert_eq!(
        ex.execute_string("import double\nresult = double.of(21)")
            .unwrap(),
        Value::Int(42)
    );
    let e = ex.execute_string("import time\ntime.sleep(1)").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.message().contains("commands need a process"), "{e}");
    py.set_policy(
        Arc::new(Policy::deny_all()),
        Arc::new(ModuleRegistry::with_builtins()),
    )
    .unwrap();
    let ex = py.as_executor().unwrap();
    assert_eq!(
        ex.execute_string("import json").unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    py.set_limits(loop_limit()).unwrap();
    let ex = py.as_executor().unwrap();
    assert_eq!(
        ex.execute_string("while True:\n    pass")
            .unwrap_err()
            .kind(),
        ErrorKind::LimitExceeded
    );
    // The instance still works after a limit (with fresh globals).
    assert_eq!(ex.execute_string("1 + 1").unwrap(), Value::Int(2));
    assert_eq!(
        py.last_error().map(Error::kind),
        Some(ErrorKind::LimitExceeded)
    );
}

#[test]
fn sources_too_deep_for_the_compiler_fail_cleanly_and_deep_enough_ones_run() {
    // A chain of 30,000 terms overflowed an interpreter thread's stack and
    // aborted the host; in a script and in eval, exec and compile alike.
    let chain = format!("result = {}1", "1+".repeat(30_000));
    let rt = runtime(1, &[("t.py", &chain)]);
    let Err(e) = rt.spawn(Spawn::script("t.py")) else {
        panic!("a 30,000-term chain compiled");
    };
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    rt.shutdown();
    for code in [
        "result = eval('+'.join(['1'] * 30000))",
        "exec('x = ' + '+'.join(['1'] * 30000))",
        "compile('(' * 1000 + '1' + ')' * 1000, 'deep', 'eval')",
    ] {
        assert_eq!(kind(run(code)), ErrorKind::LimitExceeded, "{code}");
    }
    let fits = format!("result = {}1{}", "(".repeat(90), ")".repeat(90));
    assert_eq!(run(&fits).unwrap(), Value::Int(1));
    assert_eq!(
        run("result = eval('+'.join(['1'] * 3000))").unwrap(),
        Value::Int(3_000)
    );
}
