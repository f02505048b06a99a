//! The module SDK end to end, through `troupe::testing`: typed arguments and
//! their errors, commands that yield to async handlers and resume with the
//! result or the error, userdata types with methods and metamethods, and
//! module tables and metatables that scripts cannot modify.

use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use troupe::testing::TestRuntime;
use troupe::{
    CallError, Class, Command, CommandId, Error, ErrorKind, ModuleCommand, ModuleDef, Obj, Pid,
    Policy, Rest, Ret, UserData, UserType, Value,
};

fn greet() -> ModuleDef {
    ModuleDef::new("greet")
        .class(Class::Deterministic)
        .typed_function(
            "hello",
            |_cx, (name, greeting): (String, Option<String>)| {
                Ok(format!(
                    "{}, {name}",
                    greeting.as_deref().unwrap_or("hello")
                ))
            },
        )
        .typed_function("sum", |_cx, (first, rest): (i64, Rest)| {
            let more: i64 = rest.0.iter().filter_map(Value::as_i64).sum();
            Ok(first + more)
        })
        .typed_function("pair", |_cx, (a, b): (f64, bool)| {
            Ok(Ret::Values(vec![Value::Float(a * 2.0), Value::Bool(!b)]))
        })
}

#[test]
fn typed_arguments_convert_and_wrong_ones_name_function_position_and_types() {
    let t = TestRuntime::builder().module(greet()).build().unwrap();
    let v = t
        .run(
            r#"
        local greet = require("greet")
        local a, b = greet.pair(1.5, false)
        return { greet.hello("Ada"), greet.hello("Bob", "hi"), greet.sum(1, 2, 3), a, b }
    "#,
        )
        .unwrap();
    assert_eq!(v, troupe::value!(["hello, Ada", "hi, Bob", 6, 3.0, true]));

    for (call, message) in [
        (
            "greet.hello()",
            "greet.hello: argument #1 expected string, got nil",
        ),
        (
            "greet.hello('x', 5)",
            "greet.hello: argument #2 expected string, got integer",
        ),
        (
            "greet.sum('one')",
            "greet.sum: argument #1 expected integer, got string",
        ),
        (
            "greet.pair(1, {})",
            "greet.pair: argument #2 expected boolean, got table",
        ),
    ] {
        let err = t
            .run(&format!(
                "return require('greet').{}",
                &call["greet.".len()..]
            ))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{call}");
        assert_eq!(err.message(), message, "{call}");
    }

    // Raised as an error object: pcall catches it with its kind.
    let v = t
        .run(
            r#"
        local ok, err = pcall(require("greet").hello)
        return { ok, err:kind(), err:message() }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        troupe::value!([
            false,
            "INVALID",
            "greet.hello: argument #1 expected string, got nil"
        ])
    );
}

/// A command answered by an async handler on the IO pool.
#[derive(Clone, Serialize, Deserialize)]
struct Lookup {
    key: String,
}

impl Command for Lookup {
    const ID: CommandId = CommandId(5001);
    const NAME: &'static str = "store.lookup";
    type Output = i64;
}

impl ModuleCommand for Lookup {}

/// A command whose result handling returns two values and turns NOT_FOUND
/// into a plain `false`.
#[derive(Clone, Serialize, Deserialize)]
struct Exists {
    key: String,
}

impl Command for Exists {
    const ID: CommandId = CommandId(5002);
    const NAME: &'static str = "store.exists";
    type Output = i64;
}

impl ModuleCommand for Exists {
    fn handle_result(result: Result<i64, Error>) -> Result<Ret, CallError> {
        match result {
            Ok(n) => Ok(Ret::Values(vec![Value::Bool(true), Value::Int(n)])),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Ret::Value(Value::Bool(false))),
            Err(e) => Err(CallError::Fail(e)),
        }
    }
}

async fn lookup(_pid: Pid, cmd: Lookup) -> Result<i64, Error> {
    tokio::task::yield_now().await;
    match cmd.key.as_str() {
        "answer" => Ok(42),
        "flaky" => Err(Error::new(ErrorKind::Unavailable, "store is down").retryable(true)),
        other => Err(Error::not_found(format!("no key {other:?}"))),
    }
}

async fn exists(pid: Pid, cmd: Exists) -> Result<i64, Error> {
    lookup(pid, Lookup { key: cmd.key }).await
}

fn store() -> ModuleDef {
    ModuleDef::new("store")
        .class(Class::Storage)
        .async_command(
            "lookup",
            |_cx, (key,): (String,)| Ok(Lookup { key }),
            lookup,
        )
        .async_command(
            "exists",
            |_cx, (key,): (String,)| Ok(Exists { key }),
            exists,
        )
}

#[test]
fn yielding_functions_resume_with_the_result_or_the_error() {
    let t = TestRuntime::builder().module(store()).build().unwrap();
    let v = t
        .run(
            r#"
        local store = require("store")
        local n = store.lookup("answer")
        local none, err = store.lookup("nope")
        local down, err2 = store.lookup("flaky")
        -- inside a coroutine of the script's own, too
        local co = coroutine.wrap(function() return store.lookup("answer") + 1 end)
        return { n, none == nil, err:kind(), err:message(), err2:kind(), err2:retryable(), co() }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        troupe::value!([
            42,
            true,
            "NOT_FOUND",
            "no key \"nope\"",
            "UNAVAILABLE",
            true,
            43
        ])
    );

    let v = t
        .run(
            r#"
        local store = require("store")
        local found, n = store.exists("answer")
        local missing, extra = store.exists("nope")
        local down, err = store.exists("flaky")
        return { found, n, missing, extra == nil, down == nil, err:kind() }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        troupe::value!([true, 42, false, true, true, "UNAVAILABLE"])
    );

    // Wrong arguments are raised before anything is yielded.
    let err = t.run("return require('store').lookup(7)").unwrap_err();
    assert_eq!(
        err.to_string(),
        "INVALID: store.lookup: argument #1 expected string, got integer"
    );
}

struct Counter {
    n: AtomicI64,
}

impl UserData for Counter {
    const NAME: &'static str = "Counter";
}

struct Other;

impl UserData for Other {
    const NAME: &'static str = "Other";
}

fn counters() -> ModuleDef {
    let counter = UserType::<Counter>::new()
        .method("add", |_cx, this, (by,): (Option<i64>,)| {
            Ok(this.n.fetch_add(by.unwrap_or(1), Ordering::Relaxed) + by.unwrap_or(1))
        })
        .method("merge", |_cx, this, (other,): (Obj<Counter>,)| {
            let add = other.n.load(Ordering::Relaxed);
            Ok(this.n.fetch_add(add, Ordering::Relaxed) + add)
        })
        .field("value", |this| this.n.load(Ordering::Relaxed).into())
        .tostring(|this| format!("Counter({})", this.n.load(Ordering::Relaxed)))
        .eq(|a, b| a.n.load(Ordering::Relaxed) == b.n.load(Ordering::Relaxed))
        .len(|this| this.n.load(Ordering::Relaxed));
    let other = UserType::<Other>::new().method("ping", |_cx, _this, ()| Ok("pong"));
    let make = counter.clone();
    ModuleDef::new("counters")
        .class(Class::Deterministic)
        .typed_function("new", move |_cx, (start,): (Option<i64>,)| {
            Ok(make.wrap(Counter {
                n: AtomicI64::new(start.unwrap_or(0)),
            }))
        })
        .typed_function("other", move |_cx, ()| Ok(other.wrap(Other)))
        .typed_function("value_of", |_cx, (c,): (Obj<Counter>,)| {
            Ok(c.n.load(Ordering::Relaxed))
        })
}

#[test]
fn userdata_methods_fields_and_metamethods() {
    let t = TestRuntime::builder().module(counters()).build().unwrap();
    let v = t
        .run(
            r#"
        local counters = require("counters")
        local a = counters.new(1)
        local b = counters.new()
        a:add(4)
        b:add()
        b:merge(counters.new(4))
        return {
          a.value, tostring(a), #a, a == b, a == counters.new(6), rawequal(a, b),
          counters.value_of(b), a.missing == nil, counters.other():ping(), type(a),
        }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        troupe::value!([
            5,
            "Counter(5)",
            5,
            true,
            false,
            false,
            5,
            true,
            "pong",
            "userdata"
        ])
    );
}

#[test]
fn wrong_types_are_invalid_never_a_crash() {
    let t = TestRuntime::builder().module(counters()).build().unwrap();
    let cases = [
        (
            "local c = counters.new() return c.add(5)",
            "Counter:add: expected a Counter as self (call it as obj:method(...)), got integer",
        ),
        (
            "local c = counters.new() local o = counters.other() return c.add(o)",
            "Counter:add: expected a Counter as self, got Other",
        ),
        (
            "local c = counters.new() return c:merge(counters.other())",
            "Counter:merge: argument #1 expected Counter, got Other",
        ),
        (
            "return counters.value_of({})",
            "counters.value_of: argument #1 expected Counter, got table",
        ),
        (
            "local c = counters.new() return c:add('x')",
            "Counter:add: argument #1 expected integer, got string",
        ),
        (
            "return require('json').encode(counters.new())",
            "json.encode: argument #1: cannot convert userdata to a value",
        ),
        (
            "local c = counters.new() c.value = 3",
            "Counter objects are read-only and cannot be assigned to",
        ),
    ];
    for (code, message) in cases {
        let err = t
            .run(&format!("local counters = require('counters') {code}"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{code}: {err}");
        assert_eq!(err.message(), message, "{code}");
    }
    // A process ending with an object as its result fails cleanly.
    let err = t.run("return require('counters').new()").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn module_tables_and_userdata_metatables_cannot_be_modified() {
    let t = TestRuntime::builder().module(counters()).build().unwrap();
    let v = t
        .run(
            r#"
        local json = require("json")
        local counters = require("counters")
        local c = counters.new(2)
        local results = {}
        results[1] = pcall(function() json.encode = nil end)
        results[2] = pcall(rawset, json, "encode", function() return "hacked" end)
        results[3] = pcall(setmetatable, json, {})
        results[4] = getmetatable(json)
        results[5] = getmetatable(c)
        results[6] = pcall(setmetatable, c, {})
        results[7] = json.encode({ 1 })
        results[8] = pcall(rawset, c, "value", 1)
        return results
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        troupe::value!([false, false, false, "locked", false, false, "[1]", false])
    );
    // One process cannot change what the next one sees.
    assert_eq!(
        t.run("return require('json').encode(1)").unwrap(),
        Value::from("1")
    );
}

#[test]
fn action_rules_reach_module_functions() {
    let guarded = ModuleDef::new("files").class(Class::Io).typed_function(
        "read",
        |cx, (path,): (String,)| {
            if !cx.is_allowed("files.read", &path) {
                return Err(Error::permission_denied(format!("files.read {path}")).into());
            }
            Ok(format!("contents of {path}"))
        },
    );
    let t = TestRuntime::builder().module(guarded).build().unwrap();
    let policy = Policy::deny_all().allow_class(Class::Io).rule(
        "files.read",
        "data/**",
        troupe::RuleEffect::Allow,
    );
    let v = t
        .run_as(
            policy,
            r#"
        local files = require("files")
        local ok = files.read("data/a.txt")
        local denied, err = files.read("secret.txt")
        return { ok, denied == nil, err:kind() }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        troupe::value!(["contents of data/a.txt", true, "PERMISSION_DENIED"])
    );
}
