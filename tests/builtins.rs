//! The built-in modules, tested the way module authors test theirs: through
//! `troupe::testing`, one real process per script.

use troupe::testing::TestRuntime;
use troupe::{ErrorKind, Policy, Value, value};

fn runtime() -> TestRuntime {
    TestRuntime::builder()
        .script(
            "child.lua",
            r#"
            local process = require("process")
            local n = ...
            process.send(assert(process.parent()), "double", n * 2)
            "#,
        )
        .build()
        .expect("test runtime")
}

/// Asserts that `code` fails with `INVALID` and exactly `message`.
fn assert_invalid(t: &TestRuntime, code: &str, message: &str) {
    let err = t.run(code).unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::Invalid, message),
        "{code}"
    );
}

#[test]
fn json_round_trips_and_reports_bad_text() {
    let t = runtime();
    let v = t
        .run(
            r#"
        local json = require("json")
        local text = json.encode({ n = 1, list = { 1, 2, 3 }, name = "x" })
        local back = json.decode(text)
        local bad, err = json.decode("{nope")
        return { text, back.list[3], bad == nil, err:kind(), json.encode(nil) }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        value!([
            r#"{"list":[1,2,3],"n":1,"name":"x"}"#,
            3,
            true,
            "INVALID",
            "null"
        ])
    );
    assert_invalid(
        &t,
        "return require('json').decode(5)",
        "json.decode: argument #1 expected string, got integer",
    );
}

#[test]
fn base64_and_hash() {
    let t = runtime();
    let v = t
        .run(
            r#"
        local base64, hash = require("base64"), require("hash")
        local binary = "\0\255\1"
        local bad, err = base64.decode("***")
        return {
          base64.encode("hello"), base64.decode("aGVsbG8="),
          base64.decode(base64.encode(binary)) == binary,
          bad == nil, err:kind(), hash.sha256("abc"),
        }
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        value!([
            "aGVsbG8=",
            "hello",
            true,
            true,
            "INVALID",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ])
    );
    assert_invalid(
        &t,
        "return require('hash').sha256({})",
        "hash.sha256: argument #1 expected string, got table",
    );
    assert_invalid(
        &t,
        "return require('base64').encode()",
        "base64.encode: argument #1 expected string, got nil",
    );
}

#[test]
fn errors_and_log() {
    let t = runtime();
    let v = t
        .run(
            r##"
        local errors, log = require("errors"), require("log")
        local e = errors.new{ kind = errors.CONFLICT, message = "taken", retryable = true }
        local nothing = select("#", log.info("hello", { user = "ada" }))
        log.debug({ any = "value" })
        return { tostring(e), e:retryable(), errors.NOT_FOUND, nothing }
    "##,
        )
        .unwrap();
    assert_eq!(v, value!(["CONFLICT: taken", true, "NOT_FOUND", 0]));
    assert_invalid(
        &t,
        "return require('errors').new('oops')",
        "errors.new: argument #1 expected table, got string",
    );
}

#[test]
fn time_yields_and_checks_durations() {
    let t = runtime();
    let v = t
        .run(
            r#"
        local time = require("time")
        local a = time.monotonic()
        time.sleep("5ms")
        time.sleep(1)
        return { time.monotonic() - a >= 6, time.now() > 1.7e12 }
    "#,
        )
        .unwrap();
    assert_eq!(v, value!([true, true]));
    assert_invalid(
        &t,
        "return require('time').sleep('soon')",
        "time.sleep: argument #1 expected duration (ms or \"1.5s\"), got string",
    );
}

#[test]
fn process_spawns_and_messages() {
    let t = runtime();
    let v = t
        .run(
            r#"
        local process = require("process")
        local child = assert(process.spawn("child.lua", nil, 21))
        local msg = assert(process.receive("double", 30000))
        return { msg.payload, msg.from == child, process.parent() == nil }
    "#,
        )
        .unwrap();
    assert_eq!(v, value!([42, true, true]));
    assert_invalid(
        &t,
        "return require('process').send()",
        "process.send: argument #1 expected string, got nil",
    );
    // A policy without the process class cannot load it.
    let err = t
        .run_as(Policy::deterministic(), "return require('process')")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        t.run_as(Policy::deterministic(), "return require('json').encode(1)")
            .unwrap(),
        Value::from("1")
    );
}

#[test]
fn text_helpers_and_regular_expressions() {
    let t = runtime();
    let v = t
        .run(
            r#"
        local text = require("text")
        local out = {}
        out.split = text.split("a,b,,c", ",")
        out.fields = text.split("  GET   /index.html HTTP/1.1 ")
        out.trim = { text.trim("  hi \n"), text.trim("xxhixx", "x"), text.trim_end("hi  ") }
        out.replace = { text.replace("a-b-c", "-", "+"), text.replace("a-b-c", "-", "+", 1) }
        out.case = { text.upper("straße"), text.lower("ÀB") }
        out.affixes = { text.starts_with("troupe", "tro"), text.ends_with("troupe", "pe"), text.contains("troupe", "x") }
        out.pad = { text.pad("7", 3, { char = "0", side = "left" }), text.pad("ab", 4) }
        out.match = { text.match("order-42", "^order-\\d+$"), text.match("order-x", "^order-\\d+$") }
        local m = text.find("id=ada@example.com", "(?P<user>\\w+)@(?P<host>[\\w.]+)")
        out.find = { m.match, m.start, m.stop, m.groups.user, m.groups["2"] }
        out.none = text.find("nothing here", "\\d") == nil
        out.all = text.find_all("a1 b22 c333", "\\d+")
        out.swap = text.replace_regex("ada lovelace", "(\\w+) (\\w+)", "$2, $1")
        local _, err = text.match("x", "(")
        out.bad = err:kind()
        local _, big = text.pad("x", 1e12)
        out.big = big:kind()
        return out
    "#,
        )
        .unwrap();
    assert_eq!(
        v,
        value!({
            "split": ["a", "b", "", "c"],
            "fields": ["GET", "/index.html", "HTTP/1.1"],
            "trim": ["hi", "hi", "hi"],
            "replace": ["a+b+c", "a+b-c"],
            "case": ["STRASSE", "àb"],
            "affixes": [true, true, false],
            "pad": ["007", "ab  "],
            "match": [true, false],
            "find": ["ada@example.com", 4, 18, "ada", "example.com"],
            "none": true,
            "all": ["1", "22", "333"],
            "swap": "lovelace, ada",
            "bad": "INVALID",
            "big": "LIMIT_EXCEEDED"
        })
    );
}

#[test]
fn the_references_user_script_asks_for_json_and_text() {
    let t = runtime();
    let v = t
        .run(
            r#"
        local runner = require("eval_runner")
        return runner.run{
          source = "local text = require('text') return require('json').encode(text.split(input, ','))",
          args = {"a,b"},
          modules = {"json", "text"},
        }
    "#,
        )
        .unwrap();
    assert_eq!(v, value!(r#"["a","b"]"#));
}
