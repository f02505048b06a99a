//! The CEL engine as a process and as an embedded interpreter.
#![cfg(feature = "cel")]

use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::capability::ScriptEngine;
use troupe_engines::cel::{CelEngine, CelInterpreter};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;

fn spawn(code: &str, args: Vec<Value>) -> Result<Value, Error> {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new())
        .engine(CelEngine::new())
        .build()?;
    let result = rt
        .spawn_code(Spawn::script("job.cel").args(args), code)
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    result
}

fn map(entries: &[(&str, Value)]) -> Value {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
fn a_script_is_a_process_whose_result_is_its_value() {
    let args = vec![map(&[("price", Value::Int(2)), ("qty", Value::Int(3))])];
    assert_eq!(spawn("price * qty + size(args)", args), Ok(Value::Int(7)));
}

#[test]
fn errors_name_the_script() {
    let e = spawn("1 +", vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().starts_with("job.cel:1:4:"), "{}", e.message());
    let e = spawn("nope + 1", vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().starts_with("job.cel: "), "{}", e.message());
}

#[test]
fn the_interpreter_keeps_globals_and_calls_host_functions() -> Result<(), Error> {
    let mut cel = CelInterpreter::new();
    cel.init()?;
    cel.as_globals()?.set_global("x", Value::Int(40))?;
    assert_eq!(cel.as_globals()?.get_global("x")?, Value::Int(40));
    assert_eq!(cel.as_globals()?.get_global("unset")?, Value::Nil);
    let twice = Arc::new(|args: Vec<Value>| match args.as_slice() {
        [Value::Int(i)] => Ok(Value::Int(i * 2)),
        _ => Err(Error::new(ErrorKind::PermissionDenied, "ints only")),
    });
    cel.as_functions()?.register_function("twice", twice)?;
    assert_eq!(
        cel.as_executor()?.execute_string("twice(x) + 2")?,
        Value::Int(82)
    );
    let e = cel.as_executor()?.execute_string("twice('a')").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        cel.last_error().map(Error::kind),
        Some(ErrorKind::PermissionDenied)
    );
    assert_eq!(
        cel.as_functions()?
            .call_function("twice", vec![Value::Int(5)])?,
        Value::Int(10)
    );
    assert_eq!(
        cel.as_functions()?
            .call_function("max", vec![Value::Int(1), Value::Int(9)])?,
        Value::Int(9)
    );
    assert_eq!(
        cel.as_functions()?
            .register_function("size", Arc::new(|_| Ok(Value::Nil)))
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    Ok(())
}

#[test]
fn the_interpreter_loads_resets_and_closes() -> Result<(), Error> {
    let mut cel = CelInterpreter::new();
    cel.init()?;
    let source = MemorySource::new();
    source
        .insert("a.cel", "1 + 1")
        .map_err(|e| Error::internal(e.to_string()))?;
    cel.as_loader()?.bind_source(Arc::new(source));
    cel.as_loader()?.load_many(&["a.cel"])?;
    cel.as_loader()?.load_string("b", "'b' + 'c'")?;
    assert_eq!(
        cel.as_executor()?.execute_many(&["a.cel", "b"])?,
        vec![Value::Int(2), Value::String("bc".into())]
    );
    assert_eq!(
        cel.as_loader()?.load("missing.cel").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    cel.as_globals()?.set_global("x", Value::Int(1))?;
    cel.reset()?;
    assert_eq!(cel.as_globals()?.get_global("x")?, Value::Nil);
    assert_eq!(
        cel.as_executor()?.execute("a.cel").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        cel.as_modules().err().map(|e| e.kind()),
        Some(ErrorKind::Unavailable)
    );
    cel.close()?;
    assert_eq!(
        cel.as_executor()?.execute_string("1").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    Ok(())
}
