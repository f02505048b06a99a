//! The JavaScript engine: processes through a `Runtime` (promises resolved
//! from dispatcher completions, errors with kind, limits, 10,000 sleepers,
//! sandbox), the conformance cases, and the embeddable `JsInterpreter`.
#![cfg(feature = "js")]

use std::num::NonZeroU64;
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::js::JsEngine;
use troupe_engines::{EngineFactory, ScriptEngine};
use troupe_modules::{Class, ModuleDef, ModuleRegistry, Policy, Ret};
use troupe_runtime::{Limits, Runtime, Spawn};
use troupe_sources::MemorySource;

fn runtime(src: MemorySource, workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(src)
        .engine(JsEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Runs `code` as `main.js` with `spawn`'s options.
fn run_with(code: &str, spawn: Spawn) -> Result<Value, Error> {
    let rt = runtime(MemorySource::new().with("main.js", code), 2);
    let r = rt.spawn(spawn)?.join_blocking();
    rt.shutdown();
    r
}

fn run(code: &str) -> Result<Value, Error> {
    run_with(code, Spawn::script("main.js"))
}

fn limited() -> Limits {
    Limits {
        max_instructions: NonZeroU64::new(100_000),
        ..Limits::default()
    }
}

#[test]
fn sleepers_hold_no_worker() {
    // The conformance suite runs 10,000 JS sleepers; here a fresh process
    // runs to its end while 1,000 sleep.
    const N: usize = 1_000;
    let rt = runtime(
        MemorySource::new().with(
            "main.js",
            r#"require("time").sleep(50).then(() => "slept")"#,
        ),
        2,
    );
    let handles: Vec<_> = (0..N)
        .map(|_| rt.spawn(Spawn::script("main.js")).expect("spawn"))
        .collect();
    // Every process is asleep at once while a fresh one still runs: the
    // sleepers hold no worker.
    let quick = rt
        .spawn_code(Spawn::script("quick.js"), "6 * 7")
        .expect("spawn")
        .join_blocking();
    assert_eq!(quick.unwrap(), Value::Int(42));
    for h in handles {
        assert_eq!(h.join_blocking().unwrap(), Value::from("slept"));
    }
    rt.shutdown();
}

#[test]
fn commands_return_promises_and_failures_reject_with_kind() {
    let v = run(r#"
        const process = require("process");
        const time = require("time");
        (async () => {
            const p = time.sleep(1);
            if (!(p instanceof Promise)) throw new Error("not a promise");
            await p;
            try {
                await process.receive(null, 1);
                return "no timeout";
            } catch (e) {
                if (!(e instanceof Error)) return "not an Error";
                return [e.kind, e.message, e.retryable];
            }
        })()
    "#)
    .unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::from("TIMEOUT"),
            Value::from("receive timed out"),
            Value::Bool(true),
        ])
    );
}

#[test]
fn uncaught_errors_keep_their_kind_and_location() {
    let e = run(r#"
        const json = require("json");
        function parse() { return json.decode("{nope"); }
        parse();
    "#)
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(e.message().starts_with("main.js:3:"), "{e}");

    let e =
        run(r#"(async () => { const e = new Error("mine"); e.kind = "CONFLICT"; throw e; })()"#)
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.message().ends_with("mine"), "{e}");
}

#[test]
fn entry_functions_get_the_spawn_arguments() {
    let v = run_with(
        "async function main(a, b) { return a * b; }",
        Spawn::script("main.js")
            .entry("main")
            .args([Value::Int(6), Value::Int(7)]),
    );
    assert_eq!(v.unwrap(), Value::Int(42));
}

#[test]
fn modules_run_with_top_level_await_and_default_export() {
    let rt = runtime(
        MemorySource::new().with(
            "main.mjs",
            r#"const time = require("time"); await time.sleep(1); export default args.length + 1;"#,
        ),
        2,
    );
    let v = rt
        .spawn(Spawn::script("main.mjs").args([Value::Nil]))
        .unwrap()
        .join_blocking();
    assert_eq!(v.unwrap(), Value::Int(2));
    rt.shutdown();
}

#[test]
fn limits_cannot_be_caught_by_the_script() {
    let e = run_with(
        "try { while (true) {} } catch (e) { 'swallowed' }",
        Spawn::script("main.js").limits(limited()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    let e = run("function f() { return f(); } try { f() } catch (e) { 'swallowed' }").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
}

#[test]
fn sandbox_has_no_host_access() {
    // Nothing of the host is reachable; eval runs JS in the same sandbox;
    // without the nondeterministic class no clock or random source.
    let probe = r#"
        [typeof process, typeof std, typeof os, typeof fetch, typeof Deno,
         typeof Math.random, typeof Date, eval("typeof require")]
    "#;
    let strs = |xs: &[&str]| Value::Array(xs.iter().map(|x| Value::from(*x)).collect());
    let u = "undefined";
    let v = run_with(
        probe,
        Spawn::script("main.js").policy(Policy::deterministic()),
    );
    assert_eq!(v.unwrap(), strs(&[u, u, u, u, u, u, u, "function"]));
    let v = run_with(
        probe,
        Spawn::script("main.js")
            .policy(Policy::deterministic().allow_class(Class::Nondeterministic)),
    );
    assert_eq!(
        v.unwrap(),
        strs(&[u, u, u, u, u, "function", "function", "function"])
    );
    // `import` has no loader: other files and host modules stay out.
    let rt = runtime(
        MemorySource::new()
            .with("main.mjs", r#"import fs from "fs"; export default 1;"#)
            .with("other.js", "1"),
        2,
    );
    let e = rt.spawn(Spawn::script("main.mjs")).unwrap().join_blocking();
    assert!(e.is_err());
    rt.shutdown();
    // Module objects are frozen: a script cannot swap a function for others.
    let v = run(r#"
        "use strict";
        const json = require("json");
        try { json.encode = () => "x"; "changed" } catch (e) { e.name }
    "#);
    assert_eq!(v.unwrap(), Value::from("TypeError"));
    // Denied and unknown modules stay out, also through eval.
    let e = run_with(
        r#"eval('require("process")')"#,
        Spawn::script("main.js").policy(Policy::deterministic()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
}

#[test]
fn syntax_errors_are_invalid_at_spawn() {
    let rt = runtime(MemorySource::new().with("bad.js", "let = ;"), 1);
    let e = rt
        .spawn(Spawn::script("bad.js"))
        .and_then(|h| h.join_blocking());
    assert_eq!(e.unwrap_err().kind(), ErrorKind::Invalid);
    rt.shutdown();
}

fn interpreter() -> Box<dyn ScriptEngine> {
    let mut js = EngineFactory::builtin()
        .create("js")
        .expect("js compiled in");
    js.init().unwrap();
    js
}

#[test]
fn interpreter_policy_limits_and_commands() {
    let mut js = interpreter();
    js.set_limits(limited()).unwrap();
    let e = js
        .as_executor()
        .unwrap()
        .execute_string("for (;;) {}")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert_eq!(
        js.last_error().map(Error::kind),
        Some(ErrorKind::LimitExceeded)
    );
    // Deny-all by default; the policy opens modules; commands need a process.
    let e = js
        .as_executor()
        .unwrap()
        .execute_string(r#"require("json")"#)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    js.set_policy(
        Arc::new(Policy::plugin()),
        Arc::new(ModuleRegistry::with_builtins()),
    )
    .unwrap();
    let v = js
        .as_executor()
        .unwrap()
        .execute_string(r#"require("json").encode({a: 1})"#)
        .unwrap();
    assert_eq!(v, Value::from(r#"{"a":1}"#));
    let e = js
        .as_executor()
        .unwrap()
        .execute_string(r#"require("time").sleep(1)"#)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[test]
fn interpreter_loads_calls_registers_and_resets() {
    let mut js = interpreter();
    let loader = js.as_loader().unwrap();
    loader.bind_source(Arc::new(
        MemorySource::new().with("lib.js", "function twice(x) { return double(x) * 2; }"),
    ));
    loader.load("lib.js").unwrap();
    assert_eq!(
        loader.load("missing.js").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    loader.load_string("inline", "var n = 1;").unwrap();
    assert_eq!(
        loader.load_string("bad", "let = ;").unwrap_err().kind(),
        ErrorKind::Invalid
    );
    js.as_executor()
        .unwrap()
        .execute_many(&["lib.js", "inline"])
        .unwrap();
    js.as_functions()
        .unwrap()
        .register_function(
            "double",
            Arc::new(|args: Vec<Value>| match args.first() {
                Some(Value::Int(i)) => Ok(Value::Int(i * 2)),
                _ => Err(Error::invalid("double: expected an integer")),
            }),
        )
        .unwrap();
    let f = js.as_functions().unwrap();
    assert_eq!(
        f.call_function("twice", vec![Value::Int(5)]).unwrap(),
        Value::Int(20)
    );
    let e = f
        .call_function("twice", vec![Value::from("x")])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(
        f.call_function("nope", vec![]).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        js.as_globals().unwrap().get_global("n").unwrap(),
        Value::Int(1)
    );

    let greet = ModuleDef::new("greet")
        .class(Class::Deterministic)
        .function("hi", |_cx, args| {
            Ok(Ret::Value(Value::from(format!("hi {}", args.string(0)?))))
        });
    js.as_modules().unwrap().register_module(greet).unwrap();
    js.set_policy(
        Arc::new(Policy::deterministic()),
        Arc::new(ModuleRegistry::new()),
    )
    .unwrap();
    assert_eq!(
        js.as_executor()
            .unwrap()
            .execute_string(r#"require("greet").hi("js")"#)
            .unwrap(),
        Value::from("hi js")
    );

    js.reset().unwrap();
    assert_eq!(
        js.as_globals().unwrap().get_global("n").unwrap(),
        Value::Nil
    );
    assert_eq!(
        js.as_executor()
            .unwrap()
            .execute("lib.js")
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        js.as_functions()
            .unwrap()
            .call_function("double", vec![Value::Int(1)])
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    js.close().unwrap();
    assert_eq!(
        js.as_executor()
            .unwrap()
            .execute_string("1")
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
}

#[test]
fn sources_too_deep_for_the_parser_fail_cleanly_and_deep_enough_ones_run() {
    // 1,000 nested brackets overflowed a JS thread's stack and aborted the
    // host; in a script, in eval and in new Function alike.
    let deep = format!("{}1{}", "(".repeat(1_000), ")".repeat(1_000));
    let e = run(&deep).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(e.message().contains("main.js:1"), "{e}");
    for code in [
        "eval('('.repeat(1000) + '1' + ')'.repeat(1000))",
        "new Function('return ' + '['.repeat(1000) + ']'.repeat(1000))()",
    ] {
        let e = run(code).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{code}: {e}");
    }
    let fits = format!("{}1{}", "(".repeat(90), ")".repeat(90));
    assert_eq!(run(&fits).unwrap(), Value::Int(1));
    assert_eq!(
        run("eval('1+'.repeat(30000) + '1')").unwrap(),
        Value::Int(30_001)
    );
}
