//! Mailboxes: bounded per spawn with backpressure (a `send` to a full
//! mailbox waits for room, `try_send` is `RATE_LIMITED`; nothing is ever
//! dropped), selective receive, deep-copied payloads, a million messages
//! between two processes and 200,000 children reporting to one parent
//! with none lost or reordered.

use troupe::{Class, ErrorKind, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

fn runtime(code: &str) -> Runtime {
    runtime_on(2, code)
}

fn runtime_on(workers: usize, code: &str) -> Runtime {
    Runtime::builder()
        .workers(workers)
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
        -- Sends as people write them: no result checked; a full mailbox
        -- makes the producer wait for the consumer.
        function M.producer(to, n)
          for i = 1, n do process.send(to, "n", i) end
          process.send(to, "end", true)
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
fn try_send_to_a_full_mailbox_is_rate_limited_and_the_sender_can_retry() {
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
        assert(process.try_send(child, "job", 1))
        assert(process.try_send(child, "job", 2))
        local ok, err = process.try_send(child, "job", 3)
        local first = {ok == nil, err:kind(), err:retryable()}
        -- retry the "go" until the child waits for it, then the job
        while not process.try_send(child, "go", true) do coroutine.yield() end
        local retries = 0
        while not process.try_send(child, "job", 3) do
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
        h.try_send("x", i).unwrap();
    }
    let e = h.try_send("x", 3).unwrap_err();
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

/// The fan-out a new user writes first: N children, each sending its one
/// result to the parent without looking at what `send` returns. The
/// parent's mailbox (1,024) fills up long before the parent receives, so
/// the children wait for room; every result arrives.
fn fan_out(workers: usize, lightweight: bool, n: i64) {
    let rt = runtime_on(
        workers,
        r#"
        local process = require("process")
        local M = {}
        function M.child(i) process.send(process.parent(), "done", i) end
        local n, lightweight = ...
        if n == nil then return M end
        for i = 1, n do
          process.spawn("main.lua", {entry = "child", lightweight = lightweight}, i)
        end
        local sum, count = 0, 0
        for _ = 1, n do
          local m = process.receive("done", 60000)
          sum, count = sum + m.payload, count + 1
        end
        return {count, sum}
    "#,
    );
    let v = rt
        .spawn(Spawn::script("main.lua").args([Value::Int(n), Value::Bool(lightweight)]))
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    let sum = n * (n + 1) / 2;
    assert_eq!(
        v.expect("fan-out finishes"),
        Value::Array(vec![Value::Int(n), Value::Int(sum)])
    );
}

// 200,000 children blocked in `send` are 200,000 live processes: about
// 0.8 GB as lightweight processes, 16 GB as isolated ones (each keeps its
// Lua state while it waits), so the isolated runs fan out 20,000.

#[test]
fn fan_out_of_200k_lightweight_children_ignoring_send_results_loses_nothing_on_one_worker() {
    fan_out(1, true, 200_000);
}

#[test]
fn fan_out_of_200k_lightweight_children_ignoring_send_results_loses_nothing_on_two_workers() {
    fan_out(2, true, 200_000);
}

#[test]
fn fan_out_of_20k_isolated_children_ignoring_send_results_loses_nothing_on_one_worker() {
    fan_out(1, false, 20_000);
}

#[test]
fn fan_out_of_20k_isolated_children_ignoring_send_results_loses_nothing_on_two_workers() {
    fan_out(2, false, 20_000);
}

#[test]
fn a_blocked_sender_waits_for_room_keeps_its_order_and_can_time_out() {
    let v = run(
        r#"
        local process = require("process")
        local time = require("time")
        local M = {}
        function M.slow(parent)
          process.receive("go")
          local got = {}
          for i = 1, 5 do got[i] = process.receive("job").payload end
          process.send(parent, "got", got)
        end
        function M.pusher(to, parent)
          for i = 2, 5 do process.send(to, "job", i) end
          process.send(parent, "pushed", true)
        end
        if ... == nil then return M end
        local me = process.pid()
        local child = process.spawn("main.lua", {entry = "slow", mailbox = 1}, me)
        assert(process.send(child, "job", 1))
        -- The one place is taken and the child is not taking jobs yet.
        local ok, err = process.send(child, "job", -1, {timeout = 20})
        local timed_out = {ok == nil, err:kind()}
        process.spawn("main.lua", {entry = "pusher"}, child, me)
        time.sleep(30)
        local early = process.receive("pushed", 0) ~= nil
        -- The child waits for "go": it goes straight to that receive.
        assert(process.send(child, "go", true))
        process.receive("pushed", 10000)
        return {timed_out, early, process.receive("got", 10000).payload}
        "#,
        "main",
    );
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Array(vec![Value::Bool(true), Value::from("TIMEOUT")]),
            Value::Bool(false),
            Value::Array((1..=5).map(Value::Int).collect()),
        ])
    );
}

#[test]
fn a_sender_waiting_on_a_process_that_dies_gets_not_found() {
    let v = run(
        r#"
        local process = require("process")
        local time = require("time")
        local M = {}
        function M.stuck() process.receive("never") end
        function M.sender(to, parent)
          local ok, err = process.send(to, "x", 2)
          process.send(parent, "result", {ok == nil, err and err:kind()})
        end
        if ... == nil then return M end
        local child = process.spawn("main.lua", {entry = "stuck", mailbox = 1})
        assert(process.send(child, "x", 1))
        process.spawn("main.lua", {entry = "sender"}, child, process.pid())
        time.sleep(20)
        process.kill(child)
        return process.receive("result", 10000).payload
        "#,
        "main",
    );
    assert_eq!(
        v,
        Value::Array(vec![Value::Bool(true), Value::from("NOT_FOUND")])
    );
}

#[test]
fn where_lua_cannot_yield_a_full_mailbox_is_rate_limited_and_self_sends_never_wait() {
    let v = run(
        r#"
        local process = require("process")
        local M = {}
        function M.stuck() process.receive("never") end
        if ... == nil then return M end
        local child = process.spawn("main.lua", {entry = "stuck", mailbox = 1})
        assert(process.send(child, "x", 1))
        local kinds = {}
        local t = {3, 1, 2}
        table.sort(t, function(a, b)
          local ok, err = process.send(child, "x", 2)
          kinds[#kinds + 1] = ok and "sent" or err:kind()
          return a < b
        end)
        -- A process cannot wait for room in its own mailbox.
        local me = process.pid()
        local own = 0
        while process.send(me, "self", own) do own = own + 1 end
        local _, err = process.send(me, "self", own)
        process.kill(child)
        return {kinds[1], #kinds > 0, own, err:kind()}
        "#,
        "main",
    );
    assert_eq!(
        v,
        Value::Array(vec![
            Value::from("RATE_LIMITED"),
            Value::Bool(true),
            Value::Int(1024),
            Value::from("RATE_LIMITED"),
        ])
    );
}

/// Waits for `go` (selectively, whatever is queued before it), then takes
/// N (its argument) `job`s and returns their payloads.
const GO_THEN_JOBS: &str = r#"
local process = require("process")
local n = ...
process.receive("go")
local got = {}
for i = 1, n do got[i] = process.receive("job").payload end
return got
"#;

#[test]
fn the_host_send_waits_for_room_and_try_send_does_not() {
    let rt = runtime(GO_THEN_JOBS);
    let h = rt.spawn(Spawn::script("main.lua").mailbox(1).args([Value::Int(3)]));
    let h = std::sync::Arc::new(h.unwrap());
    h.try_send("job", 1).unwrap();
    let e = h.try_send("job", 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    let sender = {
        let h = std::sync::Arc::clone(&h);
        std::thread::spawn(move || {
            h.send_blocking("job", 2)?;
            h.send_blocking("job", 3)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert!(
        !sender.is_finished(),
        "the host's send waits while the mailbox is full"
    );
    h.send_blocking("go", true).unwrap();
    sender.join().unwrap().unwrap();
    let got = h.join_blocking().unwrap();
    assert_eq!(got, Value::Array((1..=3).map(Value::Int).collect()));
    rt.shutdown();
}

#[test]
fn messages_from_another_node_wait_together_for_room_in_order_and_settle_once() {
    use std::sync::Arc;
    use troupe::{ParkedSends, Pid};
    let rt = runtime(GO_THEN_JOBS);
    let h = rt.spawn(Spawn::script("main.lua").mailbox(2).args([Value::Int(10)]));
    let h = h.unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let parked = Arc::new(ParkedSends::default());
    let from = Some(Pid::new(3, 7));
    for i in 1..=10 {
        rt.deliver_remote(&parked, from, h.pid(), "job".into(), Value::Int(i))
            .expect("never waits, never refused");
    }
    // Two fit; the rest wait behind them, none dropped, the sender free.
    assert_eq!(parked.len(), 8);
    let early = tokio.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(30), parked.settled()).await
    });
    assert!(early.is_err(), "settled while messages still wait");
    // "go" waits behind the jobs, and a selective receive still finds it.
    rt.deliver_remote(&parked, from, h.pid(), "go".into(), Value::Bool(true))
        .unwrap();
    tokio.block_on(parked.settled());
    assert!(parked.is_empty());
    let got = h.join_blocking().unwrap();
    assert_eq!(got, Value::Array((1..=10).map(Value::Int).collect()));
    let gone = rt.deliver_remote(&parked, from, h.pid(), "job".into(), Value::Nil);
    assert_eq!(gone.unwrap_err().kind(), ErrorKind::NotFound);
    rt.shutdown();
}

#[test]
fn messages_waiting_on_a_process_that_ends_are_dropped_and_settle() {
    use std::sync::Arc;
    use troupe::ParkedSends;
    let rt = runtime(r#"require("process").receive("never")"#);
    let h = rt.spawn(Spawn::script("main.lua").mailbox(1)).unwrap();
    let parked = Arc::new(ParkedSends::default());
    for i in 1..=5 {
        rt.deliver_remote(&parked, None, h.pid(), "job".into(), Value::Int(i))
            .unwrap();
    }
    assert_eq!(parked.len(), 4);
    assert!(h.kill());
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio.block_on(parked.settled());
    assert!(parked.is_empty());
    rt.shutdown();
}
