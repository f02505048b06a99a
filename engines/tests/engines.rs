//! The engine contract: capabilities, the factory, and the Lua interpreter
//! (the reference implementation).

use std::num::NonZeroU64;
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::lua::LuaInterpreter;
use troupe_engines::{EngineFactory, ScriptEngine, unsupported};
use troupe_modules::{Class, ModuleDef, ModuleRegistry, Policy, Ret};
use troupe_runtime::Limits;
use troupe_sources::MemorySource;

mod support;
use support::Stub;

fn kind_of<T>(r: Result<T, Error>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

#[test]
fn missing_capabilities_are_unavailable_not_panics() {
    let mut bare = Stub { reset_fails: false };
    let e = bare.as_loader().err().expect("no loader");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.message(), "capability not supported by stub: loader");
    assert_eq!(
        kind_of(bare.as_executor().map(|_| ())),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind_of(bare.as_globals().map(|_| ())),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind_of(bare.as_functions().map(|_| ())),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind_of(bare.as_modules().map(|_| ())),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind_of(bare.as_watcher().map(|_| ())),
        ErrorKind::Unavailable
    );
    assert_eq!(
        unsupported("x", "y").message(),
        "capability not supported by x: y"
    );
}

#[test]
fn factory_finds_engines_by_name_and_extension() {
    let f = EngineFactory::builtin();
    assert!(f.names().contains(&"lua"));
    assert_eq!(f.create("lua").map(|e| e.kind()).ok(), Some("lua"));
    assert_eq!(
        f.for_path("dir/job.lua").map(|e| e.kind()).ok(),
        Some("lua")
    );
    assert_eq!(f.name_for_path("job.lua").ok(), Some("lua"));
    assert_eq!(kind_of(f.create("cobol").map(|_| ())), ErrorKind::NotFound);
    assert_eq!(
        kind_of(f.for_path("job.cob").map(|_| ())),
        ErrorKind::NotFound
    );
    let names: Vec<String> = f
        .process_engines()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    assert!(names.contains(&"lua".to_owned()));
    assert!(EngineFactory::new().names().is_empty());
}

fn lua() -> Box<dyn ScriptEngine> {
    let mut e = EngineFactory::builtin()
        .create("lua")
        .expect("lua compiled in");
    e.init().expect("init");
    e
}

#[test]
fn lua_globals_round_trip_every_value() {
    let mut e = lua();
    let v = Value::from_iter([
        ("b".to_owned(), Value::Bool(true)),
        ("i".to_owned(), Value::Int(-3)),
        ("f".to_owned(), Value::Float(1.5)),
        ("s".to_owned(), Value::from("hé")),
        (
            "a".to_owned(),
            Value::Array(vec![Value::Int(1), Value::from("x")]),
        ),
    ]);
    e.as_globals().unwrap().set_global("v", v.clone()).unwrap();
    assert_eq!(e.as_globals().unwrap().get_global("v").unwrap(), v);
    assert_eq!(
        e.as_globals().unwrap().get_global("unset").unwrap(),
        Value::Nil
    );
    let r = e
        .as_executor()
        .unwrap()
        .execute_string("w = v.i * 2 return v.s")
        .unwrap();
    assert_eq!(r, Value::from("hé"));
    assert_eq!(
        e.as_globals().unwrap().get_global("w").unwrap(),
        Value::Int(-6)
    );
}

#[test]
fn lua_functions_both_ways() {
    let mut e = lua();
    e.as_functions()
        .unwrap()
        .register_function(
            "add",
            Arc::new(|args: Vec<Value>| match args.as_slice() {
                [Value::Int(a), Value::Int(b)] => Ok(Value::Int(a + b)),
                _ => Err(Error::invalid("add wants two integers")),
            }),
        )
        .unwrap();
    let ex = e.as_executor().unwrap();
    assert_eq!(
        ex.execute_string("return add(40, 2)").unwrap(),
        Value::Int(42)
    );
    let caught = ex
        .execute_string("local ok, err = pcall(add, 'x') return err:kind()")
        .unwrap();
    assert_eq!(caught, Value::from("INVALID"));
    ex.execute_string("function greet(name) return 'hi ' .. name end")
        .unwrap();
    let f = e.as_functions().unwrap();
    assert_eq!(
        f.call_function("greet", vec![Value::from("ann")]).unwrap(),
        Value::from("hi ann")
    );
    assert_eq!(kind_of(f.call_function("nope", vec![])), ErrorKind::Invalid);
}

#[test]
fn lua_loads_from_source_and_reset_forgets_everything() {
    let src = MemorySource::new().with("lib/a.lua", "counter = (counter or 0) + 1 return counter");
    let mut e = lua();
    e.as_loader().unwrap().bind_source(Arc::new(src));
    e.as_loader().unwrap().load_many(&["lib/a.lua"]).unwrap();
    let ex = e.as_executor().unwrap();
    assert_eq!(
        ex.execute_many(&["lib/a.lua", "lib/a.lua"]).unwrap(),
        vec![Value::Int(1), Value::Int(2)]
    );
    assert_eq!(kind_of(ex.execute("lib/b.lua")), ErrorKind::NotFound);
    assert_eq!(
        kind_of(e.as_loader().unwrap().load("lib/b.lua")),
        ErrorKind::NotFound
    );
    assert_eq!(e.last_error().map(|e| e.kind()), Some(ErrorKind::NotFound));
    e.as_functions()
        .unwrap()
        .register_function("host", Arc::new(|_| Ok(Value::Nil)))
        .unwrap();
    e.reset().unwrap();
    assert!(e.last_error().is_none());
    assert_eq!(
        e.as_globals().unwrap().get_global("counter").unwrap(),
        Value::Nil
    );
    assert_eq!(
        e.as_globals().unwrap().get_global("host").unwrap(),
        Value::Nil
    );
    assert_eq!(
        kind_of(e.as_executor().unwrap().execute("lib/a.lua")),
        ErrorKind::NotFound
    );
}

#[test]
fn lua_require_follows_the_policy() {
    let mut e = lua();
    let ex = e.as_executor().unwrap();
    let denied = ex.execute_string("return require('json')");
    assert_eq!(kind_of(denied), ErrorKind::PermissionDenied);
    let unknown = ex.execute_string("return require('nope')");
    assert_eq!(kind_of(unknown), ErrorKind::NotFound);
    e.set_policy(
        Arc::new(Policy::trusted()),
        Arc::new(ModuleRegistry::with_builtins()),
    )
    .unwrap();
    let ex = e.as_executor().unwrap();
    assert_eq!(
        ex.execute_string("return require('json').encode({1, 2})")
            .unwrap(),
        Value::from("[1,2]")
    );
    let slept = ex.execute_string("require('time').sleep(1) return 1");
    let err = slept.expect_err("a command fails");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.message(), "commands need a process (spawn the script)");
    let answer = ModuleDef::new("answer")
        .with_classes(&[Class::Deterministic])
        .function("get", |_cx, _args| Ok(Ret::Value(Value::Int(42))));
    e.as_modules().unwrap().register_module(answer).unwrap();
    let got = e
        .as_executor()
        .unwrap()
        .execute_string("return require('answer').get()");
    assert_eq!(got.unwrap(), Value::Int(42));
}

#[test]
fn lua_limits_stop_runaway_scripts() {
    let mut e = lua();
    e.set_limits(Limits {
        max_instructions: NonZeroU64::new(100_000),
        ..Limits::default()
    })
    .unwrap();
    let r = e.as_executor().unwrap().execute_string("while true do end");
    assert_eq!(kind_of(r), ErrorKind::LimitExceeded);
    // The instance still works afterwards, globals intact.
    let ex = e.as_executor().unwrap();
    ex.execute_string("x = 1").unwrap();
    assert_eq!(ex.execute_string("return x").unwrap(), Value::Int(1));
}

#[test]
fn lua_closed_instance_is_unavailable() {
    let mut e = LuaInterpreter::new();
    e.close().unwrap();
    assert_eq!(kind_of(e.init()), ErrorKind::Unavailable);
    assert_eq!(
        kind_of(e.as_executor().unwrap().execute_string("return 1")),
        ErrorKind::Unavailable
    );
}

/// `execute_named` puts the caller's name in the errors of every engine
/// that reports where a script failed.
#[test]
fn a_named_string_is_named_in_its_errors() {
    let factory = EngineFactory::builtin();
    // A syntax error in each language (WebAssembly text included).
    let broken = [
        ("lua", "return +"),
        ("js", "return +;"),
        ("python", "def ("),
        ("starlark", "def ("),
        ("cel", "1 +"),
        ("expr", "1 +"),
        ("evalexpr", "1 +"),
        ("wasm", "(module"),
    ];
    let mut checked = 0;
    for (lang, code) in broken {
        let Ok(mut engine) = factory.create(lang) else {
            continue;
        };
        engine.init().unwrap();
        let err = engine
            .as_executor()
            .unwrap()
            .execute_named("rules/discount", code)
            .unwrap_err();
        assert!(
            err.message().contains("rules/discount"),
            "{lang}: {}",
            err.message()
        );
        engine.close().unwrap();
        checked += 1;
    }
    assert!(checked >= 1);
}

/// `execute_all` runs every loaded script in load order; `execute_key`
/// loads a script from the bound source on first use.
#[test]
fn execute_all_in_load_order_and_execute_key_loads_on_demand() {
    let factory = EngineFactory::builtin();
    let scripts = [
        ("lua", "return 1", "return 2"),
        ("js", "1", "2"),
        ("python", "result = 1", "result = 2"),
        ("starlark", "1", "2"),
        ("cel", "1", "2"),
        ("expr", "1", "2"),
        ("evalexpr", "1", "2"),
    ];
    let mut checked = 0;
    for (lang, one, two) in scripts {
        let Ok(mut engine) = factory.create(lang) else {
            continue;
        };
        engine.init().unwrap();
        let source = MemorySource::new().with("two", two).with("one", one);
        let loader = engine.as_loader().unwrap();
        loader.bind_source(Arc::new(source));
        loader.load("two").unwrap();
        loader.load_string("one", one).unwrap();
        loader.load("two").unwrap();
        let exec = engine.as_executor().unwrap();
        assert_eq!(exec.loaded(), ["two", "one"], "{lang}");
        assert_eq!(
            exec.execute_all().unwrap(),
            [Value::Int(2), Value::Int(1)],
            "{lang}"
        );
        engine.reset().unwrap();
        assert!(engine.as_executor().unwrap().loaded().is_empty(), "{lang}");
        assert_eq!(engine.execute_key("one").unwrap(), Value::Int(1), "{lang}");
        assert_eq!(engine.as_executor().unwrap().loaded(), ["one"], "{lang}");
        assert_eq!(
            engine.execute_key("missing").unwrap_err().kind(),
            ErrorKind::NotFound,
            "{lang}"
        );
        engine.close().unwrap();
        checked += 1;
    }
    assert!(checked >= 1);
}
