//! Mailboxes: bounded per spawn, `RATE_LIMITED` when full (never blocking,
//! never dropping), selective receive, deep-copied payloads, and a million
//! messages between two processes with none lost or reordered.

use troupe::{Class, ErrorKind, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

fn runtime(code: &str) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(MemorySource::new().with("main.lua", code))
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Runs `main.lua` with one argument (children spawned with an entry get
/// none, so `if ... == nil then return M end` separates the two).
fn run(code: &str, arg: impl Into<Value>) -> Value {
    let rt = runtime(code);
    let v = rt
        .spawn(Spawn::script("main.lua").args([arg.into()]))
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    v.expect("script succeeds")
}

#[test]
fn a_million_messages_arrive_all_and_in_order() {
    const N: i64 = 1_000_000;
    let v = run(
        r#"
        local process = require("process")
        local M = {}
        function M.producer(to, n)
          local full = 0
          -- Every send, the last one included, retries while the mailbox is full.
          local function send(topic, payload)
            while true do
              local ok, err = process.send(to, topic, payload)
              if ok then return end
              assert(err:kind() == "RATE_LIMITED" and err:retryable(), tostring(err))
              full = full + 1
              coroutine.yield() -- let the consumer catch up
            end
          end
          for i = 1, n do send("n", i) end
          send("end", full)
        end
        local n = ...
        if n == nil then return M end
        process.spawn("main.lua", {entry = "producer"}, process.pid(), n)
        for i = 1, n do
          local m = process.receive("n")
          if m.payload ~= i then error("expected " .. i .. ", got " .. tostring(m.payload)) end
        end
        local last = process.receive("end")
        local extra = process.receive(nil, 0)
        return {n, extra == nil}
        "#,
        N,
    );
    assert_eq!(v, Value::Array(vec![Value::Int(N), Value::Bool(true)]));
}

#[test]
fn a_full_mailbox_is_rate_limited_and_the_sender_can_retry() {
    let v = run(
        r#"
        local process = require("process")
        local M = {}
        -- Drains nothing until "go" arrives (a receive waiting for "go" takes
        -- it even when the queue is full), then reports what it got.
        function M.slow(parent)
          process.receive("go")
          local got = {}
          for i = 1, 3 do got[i] = process.receive("job").payload end
          process.send(parent, "got", got)
        end
        if ... == nil then return M end
        local child = process.spawn("main.lua", {entry = "slow", mailbox = 2}, process.pid())
        assert(process.send(child, "job", 1))
        assert(process.send(child, "job", 2))
        local ok, err = process.send(child, "job", 3)
        local first = {ok == nil, err:kind(), err:retryable()}
        -- retry the "go" until the child waits for it, then the job
        while not process.send(child, "go", true) do coroutine.yield() end
        local retries = 0
        while not process.send(child, "job", 3) do
          retries = retries + 1
          coroutine.yield()
        end
        local got = process.receive("got", 10000).payload
        return {first, got}
        "#,
        "main",
    );
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Array(vec![
                Value::Bool(true),
                Value::from("RATE_LIMITED"),
                Value::Bool(true)
            ]),
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        ])
    );
}

#[test]
fn the_host_sees_rate_limited_too() {
    let rt = runtime("require('process').receive('never')");
    let h = rt.spawn(Spawn::script("main.lua").mailbox(3)).unwrap();
    for i in 0..3 {
        h.send("x", i).unwrap();
    }
    let e = h.send("x", 3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert!(h.kill());
    rt.shutdown();
}

#[test]
fn selective_receive_leaves_other_topics_queued_in_order() {
    let v = run(
        r#"
        local process = require("process")
        local me = process.pid()
        for i = 1, 3 do process.send(me, "a", i) end
        process.send(me, "b", "first b")
        process.send(me, "a", 4)
        local b = process.receive("b", 0).payload
        local none, err = process.receive("c", 5)
        local rest = {}
        for i = 1, 4 do rest[i] = process.receive(nil, 0).payload end
        return {b, err:kind(), rest}
        "#,
        "main",
    );
    assert_eq!(
        v,
        Value::Array(vec![
            Value::from("first b"),
            Value::from("TIMEOUT"),
            Value::Array((1..=4).map(Value::Int).collect()),
        ])
    );
}

#[test]
fn payloads_are_deep_copies_and_cycles_and_functions_are_invalid() {
    let v = run(
        r#"
        local process = require("process")
        local me = process.pid()
        local shared = {n = 1}
        local t = {inner = shared, again = shared, list = {1, 2}}
        process.send(me, "t", t)
        shared.n = 99
        t.list[1] = "changed"
        local got = process.receive("t", 0).payload
        got.inner.n = 7 -- the two copies of `shared` are independent
        local cyclic = {}
        cyclic.self = {parent = cyclic}
        local ok1, e1 = pcall(process.send, me, "c", cyclic)
        local ok2, e2 = pcall(process.send, me, "f", {fn = print})
        local ok3, e3 = pcall(process.send, me, "co", coroutine.create(print))
        return {got.again.n, got.list[1], ok1, e1:kind(), ok2, e2:kind(), ok3, e3:kind(),
                tostring(e1):find("cycle") ~= nil}
        "#,
        "main",
    );
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Int(1),
            Value::Int(1),
            Value::Bool(false),
            Value::from("INVALID"),
            Value::Bool(false),
            Value::from("INVALID"),
            Value::Bool(false),
            Value::from("INVALID"),
            Value::Bool(true),
        ])
    );
}
