//! The expressions engine (evalexpr) as a process and as an embedded
//! interpreter.
#![cfg(feature = "evalexpr")]

use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::capability::ScriptEngine;
use troupe_engines::evalexpr::{EvalexprEngine, EvalexprInterpreter};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;

fn spawn(code: &str, args: Vec<Value>) -> Result<Value, Error> {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new())
        .engine(EvalexprEngine::new())
        .build()?;
    let result = rt
        .spawn_code(Spawn::script("job.evalexpr").args(args), code)
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    result
}

#[test]
fn a_script_is_a_process_whose_result_is_its_value() {
    let order: Value = [
        ("qty".to_owned(), Value::Int(3)),
        (
            "item".to_owned(),
            [("price".to_owned(), Value::Float(2.5))]
                .into_iter()
                .collect(),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        spawn(
            "t = item.price * qty; if(t > 5, \"big\", \"small\")",
            vec![order]
        ),
        Ok(Value::String("big".into()))
    );
    assert_eq!(
        spawn("args", vec![Value::Int(1), Value::Nil]),
        Ok(Value::Array(vec![Value::Int(1), Value::Nil]))
    );
}

#[test]
fn errors_name_the_script() {
    for src in ["1 +", "nope + 1", "1 / 0"] {
        let e = spawn(src, vec![]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{src}");
        assert!(e.message().starts_with("job.evalexpr: "), "{}", e.message());
    }
}

#[test]
fn the_interpreter_keeps_globals_and_calls_host_functions() -> Result<(), Error> {
    let mut ex = EvalexprInterpreter::new();
    ex.init()?;
    ex.as_globals()?.set_global("x", Value::Int(40))?;
    ex.as_executor()?.execute_string("y = x + 1")?;
    assert_eq!(ex.as_globals()?.get_global("y")?, Value::Int(41));
    assert_eq!(ex.as_globals()?.get_global("unset")?, Value::Nil);
    let add = Arc::new(|args: Vec<Value>| match args.as_slice() {
        [Value::Int(a), Value::Int(b)] => Ok(Value::Int(a + b)),
        _ => Err(Error::new(ErrorKind::PermissionDenied, "two ints")),
    });
    ex.as_functions()?.register_function("add", add)?;
    assert_eq!(
        ex.as_executor()?.execute_string("add(x, 2)")?,
        Value::Int(42)
    );
    let e = ex.as_executor()?.execute_string("add(1)").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        ex.last_error().map(Error::kind),
        Some(ErrorKind::PermissionDenied)
    );
    assert_eq!(
        ex.as_functions()?
            .call_function("add", vec![Value::Int(1), Value::Int(2)])?,
        Value::Int(3)
    );
    assert_eq!(
        ex.as_functions()?
            .call_function("nope", vec![])
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    Ok(())
}

#[test]
fn the_interpreter_loads_resets_and_closes() -> Result<(), Error> {
    let mut ex = EvalexprInterpreter::new();
    ex.init()?;
    let source = MemorySource::new();
    source
        .insert("a.evalexpr", "1 + 1")
        .map_err(|e| Error::internal(e.to_string()))?;
    ex.as_loader()?.bind_source(Arc::new(source));
    ex.as_loader()?.load_many(&["a.evalexpr"])?;
    ex.as_loader()?.load_string("b", "\"b\" + \"c\"")?;
    assert_eq!(
        ex.as_executor()?.execute_many(&["a.evalexpr", "b"])?,
        vec![Value::Int(2), Value::String("bc".into())]
    );
    ex.as_globals()?.set_global("x", Value::Int(1))?;
    ex.reset()?;
    assert_eq!(ex.as_globals()?.get_global("x")?, Value::Nil);
    assert_eq!(
        ex.as_executor()?.execute("a.evalexpr").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    ex.close()?;
    assert_eq!(
        ex.as_executor()?.execute_string("1").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    Ok(())
}
