//! The Starlark engine as a process and as an embedded interpreter.
#![cfg(feature = "starlark")]

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::capability::ScriptEngine;
use troupe_engines::starlark::{StarlarkEngine, StarlarkInterpreter};
use troupe_runtime::{Limits, Runtime, Spawn};
use troupe_sources::MemorySource;

fn spawn_with(code: &str, spawn: Spawn) -> Result<Value, Error> {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new())
        .engine(StarlarkEngine::new())
        .build()?;
    let result = rt.spawn_code(spawn, code).and_then(|h| h.join_blocking());
    rt.shutdown();
    result
}

fn spawn(code: &str, args: Vec<Value>) -> Result<Value, Error> {
    spawn_with(code, Spawn::script("job.star").args(args))
}

fn limited(limits: Limits) -> Spawn {
    Spawn::script("job.star").limits(limits)
}

#[test]
fn a_script_is_a_process_whose_result_is_its_last_expression() {
    let order: Value = [("qty".to_owned(), Value::Int(3))].into_iter().collect();
    let code = "def total(n):\n    return n * 2\n\ntotal(qty) + len(args)\n";
    assert_eq!(spawn(code, vec![order]), Ok(Value::Int(7)));
}

#[test]
fn every_value_crosses_both_ways() {
    let value: Value = [
        ("nil".to_owned(), Value::Nil),
        ("b".to_owned(), Value::Bool(true)),
        ("i".to_owned(), Value::Int(-3)),
        ("f".to_owned(), Value::Float(1.5)),
        ("s".to_owned(), Value::String("é".into())),
        ("bytes".to_owned(), Value::Bytes(vec![0, 255])),
        ("a".to_owned(), Value::Array(vec![Value::Int(1)])),
    ]
    .into_iter()
    .collect();
    assert_eq!(spawn("args[0]", vec![value.clone()]), Ok(value));
}

#[test]
fn an_entry_function_gets_the_args() {
    let code = "def main(a, b):\n    return a + b\n";
    let spawn = Spawn::script("job.star")
        .args([Value::Int(40), Value::Int(2)])
        .entry("main");
    assert_eq!(spawn_with(code, spawn), Ok(Value::Int(42)));
}

#[test]
fn errors_have_a_kind_and_a_location() {
    let e = spawn("x = 1\nfail('boom')\n", vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(e.message().starts_with("job.star:2:1: "), "{}", e.message());
    assert_eq!(
        e.details().and_then(|d| d.get("line")),
        Some(&Value::Int(2))
    );
    let e = spawn("1 +", vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().starts_with("job.star:1:"), "{}", e.message());
    let e = spawn("load('json', 'x')\n", vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
}

#[test]
fn loops_and_recursion_hit_their_limits() {
    let looping = "n = 0\nfor i in range(1000000000):\n    n += i\nn\n";
    let e = spawn_with(
        looping,
        limited(Limits {
            max_instructions: NonZeroU64::new(100_000),
            ..Limits::default()
        }),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    let e = spawn_with(
        looping,
        limited(Limits {
            timeout: Some(std::time::Duration::from_millis(50)),
            ..Limits::default()
        }),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let e = spawn("def f(n):\n    return f(n + 1)\n\nf(0)\n", vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let bomb = "l = []\nfor i in range(1000000000):\n    l.append('x' * 1000)\n";
    let e = spawn_with(
        bomb,
        limited(Limits {
            max_memory: NonZeroUsize::new(16 << 20),
            ..Limits::default()
        }),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(e.message().contains("memory"), "{e}");
}

#[test]
fn the_interpreter_keeps_definitions_and_calls_both_ways() -> Result<(), Error> {
    let mut star = StarlarkInterpreter::new();
    star.init()?;
    star.as_globals()?.set_global("base", Value::Int(40))?;
    star.as_executor()?
        .execute_string("def add(a, b):\n    return a + b + base\n\nseen = base\n")?;
    assert_eq!(star.as_globals()?.get_global("seen")?, Value::Int(40));
    assert_eq!(
        star.as_functions()?
            .call_function("add", vec![Value::Int(1), Value::Int(1)])?,
        Value::Int(42)
    );
    let shout = Arc::new(|args: Vec<Value>| match args.as_slice() {
        [Value::String(s)] => Ok(Value::String(s.to_uppercase())),
        _ => Err(Error::new(ErrorKind::PermissionDenied, "one string")),
    });
    star.as_functions()?.register_function("shout", shout)?;
    assert_eq!(
        star.as_executor()?
            .execute_string("shout('hi') + str(add(0, 0))")?,
        Value::String("HI40".into())
    );
    let e = star.as_executor()?.execute_string("shout(1)").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        star.last_error().map(Error::kind),
        Some(ErrorKind::PermissionDenied)
    );
    assert_eq!(
        star.as_functions()?
            .call_function("nope", vec![])
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    star.reset()?;
    assert_eq!(star.as_globals()?.get_global("seen")?, Value::Nil);
    assert_eq!(
        star.as_executor()?
            .execute_string("base")
            .unwrap_err()
            .kind(),
        ErrorKind::Internal
    );
    Ok(())
}

#[test]
fn the_interpreter_applies_limits_and_closes() -> Result<(), Error> {
    let mut star = StarlarkInterpreter::new();
    star.init()?;
    star.set_limits(Limits {
        max_instructions: NonZeroU64::new(10_000),
        ..Limits::default()
    })?;
    let e = star
        .as_executor()?
        .execute_string("for i in range(1000000000):\n    pass\n")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert_eq!(
        star.as_modules().err().map(|e| e.kind()),
        Some(ErrorKind::Unavailable)
    );
    star.close()?;
    assert_eq!(
        star.as_executor()?.execute_string("1").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    Ok(())
}

#[test]
fn sources_too_deep_for_the_parser_fail_cleanly_and_deep_enough_ones_run() {
    // A chain of 10,000 terms overflowed the stack and aborted the host.
    let e = spawn(&format!("{}1", "1+".repeat(10_000)), vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert_eq!(
        spawn(&format!("{}1", "1+".repeat(1_500)), vec![]).unwrap(),
        Value::Int(1_501)
    );
}
