//! The `expr`, `rand` and `uuid` modules as scripts use them.

use troupe::{Error, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

fn run_as(code: &str, policy: Policy) -> Result<Value, Error> {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("main.lua", code))
        .engine(LuaEngine::new())
        .build()
        .expect("runtime builds");
    let r = rt
        .spawn(Spawn::script("main.lua").policy(policy))
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    r
}

fn run(code: &str) -> Result<Value, Error> {
    run_as(code, Policy::plugin())
}

#[test]
fn every_reference_example_evaluates_exactly() {
    let v = run(r#"
        local expr = require("expr")
        local function ev(src, env)
            local v, err = expr.eval(src, env)
            assert(err == nil, tostring(err))
            return v
        end
        return {
            ev("1 + 2 * 3"),
            ev("10 / 2 - 1"),
            ev("10 % 3"),
            ev("x > 5", {x = 10}),
            ev("x == y", {x = 1, y = 1}),
            ev("a && b", {a = true, b = false}),
            ev("a || b", {a = true, b = false}),
            ev("!a", {a = true}),
            ev("x > 0 ? 'positive' : 'negative'", {x = 5}),
            ev("max(1, 5, 3)"),
            ev("min(1, 5, 3)"),
            ev("len([1, 2, 3])"),
            ev("[1, 2, 3][0]"),
            ev("'hello' + ' ' + 'world'"),
        }
    "#);
    let (t, f) = (Value::Bool(true), Value::Bool(false));
    assert_eq!(
        v,
        Ok(Value::Array(vec![
            Value::Int(7),
            // The expr language divides as Go's expr does: `/` is float.
            Value::Float(4.0),
            Value::Int(1),
            t.clone(),
            t.clone(),
            f.clone(),
            t,
            f,
            Value::from("positive"),
            Value::Int(5),
            Value::Int(1),
            Value::Int(3),
            Value::Int(1),
            Value::from("hello world"),
        ]))
    );
}

#[test]
fn compiled_programs_run_with_different_variables() {
    let v = run(r#"
        local expr = require("expr")
        local prog = assert(expr.compile("price * qty > limit ? 'review' : 'ok'"))
        local a = prog:run({price = 10, qty = 3, limit = 20})
        local b = prog:run({price = 1, qty = 3, limit = 20})
        local items = assert(expr.compile("map(filter(items, #.n > 1), #.name)")):run({
            items = {{name = "a", n = 1}, {name = "b", n = 2}, {name = "c", n = 3}},
        })
        local ok, misuse = pcall(prog.run, {price = 1})
        return {a, b, items, ok, misuse:kind(), type(prog), tostring(prog)}
    "#);
    assert_eq!(
        v,
        Ok(Value::Array(vec![
            Value::from("review"),
            Value::from("ok"),
            Value::Array(vec![Value::from("b"), Value::from("c")]),
            Value::Bool(false),
            Value::from("INVALID"),
            Value::from("userdata"),
            Value::from("expr.Program(price * qty > limit ? 'review' : 'ok')"),
        ]))
    );
}

#[test]
fn expression_errors_are_invalid_values_with_the_position() {
    let v = run(r#"
        local expr = require("expr")
        local _, syntax = expr.compile("1 +")
        local _, eval_syntax = expr.eval("(1 + 2")
        local _, unknown = expr.eval("nope * 2")
        local _, mixed = expr.eval("'a' + 1")
        local prog = assert(expr.compile("x % y"))
        local _, zero = prog:run({x = 1, y = 0})
        local ok, bad_env = pcall(expr.eval, "1", "not a table")
        return {
            syntax:kind(), syntax:message(), syntax:details().line, syntax:details().column,
            eval_syntax:kind(), unknown:kind(), unknown:message(), mixed:kind(), zero:kind(),
            ok, bad_env:kind(),
        }
    "#)
    .unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items[0], Value::from("INVALID"));
    assert!(
        items[1].as_str().unwrap().starts_with("expr: 1:4: "),
        "{items:?}"
    );
    assert_eq!((&items[2], &items[3]), (&Value::Int(1), &Value::Int(4)));
    for i in [4, 5, 7, 8, 10] {
        assert_eq!(items[i], Value::from("INVALID"), "item {i}: {items:?}");
    }
    assert!(items[6].as_str().unwrap().contains("nope"), "{items:?}");
    assert_eq!(items[9], Value::Bool(false));
}

#[test]
fn a_program_object_cannot_leave_its_process() {
    let v = run_as(
        r#"
        local process = require("process")
        local prog = assert(require("expr").compile("1"))
        local ok, err = pcall(process.send, process.pid(), "p", prog)
        return {ok, err:kind()}
    "#,
        Policy::plugin().allow_class(troupe::Class::Process),
    );
    assert_eq!(
        v,
        Ok(Value::Array(vec![
            Value::Bool(false),
            Value::from("INVALID")
        ]))
    );
}

#[test]
fn rand_and_uuid() {
    let v = run(r#"
        local rand, uuid = require("rand"), require("uuid")
        local seen = {}
        for i = 1, 200 do
            local n = rand.int(1, 3)
            assert(math.type(n) == "integer" and n >= 1 and n <= 3, n)
            seen[n] = true
            local f = rand.float()
            assert(f >= 0 and f < 1, f)
        end
        assert(seen[1] and seen[2] and seen[3], "all values come up")
        assert(rand.int(5, 5) == 5)
        local c = rand.choice({"a", "b", "c"})
        assert(c == "a" or c == "b" or c == "c")
        local ok1, e1 = pcall(rand.int, 3, 1)
        local ok2, e2 = pcall(rand.choice, {})
        local a, b, t = uuid.v4(), uuid.v4(), uuid.v7()
        local pattern = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-(%x)%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
        return {a ~= b, a:match(pattern), t:match(pattern), ok1, e1:kind(), ok2, e2:kind()}
    "#);
    assert_eq!(
        v,
        Ok(Value::Array(vec![
            Value::Bool(true),
            Value::from("4"),
            Value::from("7"),
            Value::Bool(false),
            Value::from("INVALID"),
            Value::Bool(false),
            Value::from("INVALID"),
        ]))
    );
}

#[test]
fn rand_and_uuid_are_nondeterministic_and_expr_deterministic() {
    let v = run_as(
        r#"
        local ok1, e1 = pcall(require, "rand")
        local ok2, e2 = pcall(require, "uuid")
        return {ok1, e1:kind(), ok2, e2:kind(), require("expr").eval("1 + 1")}
    "#,
        Policy::deterministic(),
    );
    assert_eq!(
        v,
        Ok(Value::Array(vec![
            Value::Bool(false),
            Value::from("PERMISSION_DENIED"),
            Value::Bool(false),
            Value::from("PERMISSION_DENIED"),
            Value::Int(2),
        ]))
    );
}
