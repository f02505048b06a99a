//! End-to-end behaviour of Lua processes through the host API: structured
//! errors, the policy at `require`, failures that stay inside one process,
//! messaging, async host handlers that never occupy a worker, shutdown, and
//! many concurrent sleepers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use troupe::{
    Class, Command, CommandId, Error, ErrorKind, LuaEngine, MemorySource, ModuleCommand, ModuleDef,
    Policy, Runtime, Spawn, Value,
};

fn runtime_with(src: MemorySource, workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(src)
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Runs one script to completion.
fn run(code: &str) -> Result<Value, Error> {
    let rt = runtime_with(MemorySource::new().with("main.lua", code), 2);
    let r = rt.spawn(Spawn::script("main.lua"))?.join_blocking();
    rt.shutdown();
    r
}

#[test]
fn fallible_functions_return_structured_errors() {
    let v = run(r#"
        local errors = require("errors")
        local process = require("process")
        local msg, err = process.receive(nil, 1)
        assert(msg == nil, "no message expected")
        assert(err:kind() == errors.TIMEOUT, "kind")
        assert(err:message() == "receive timed out", "message")
        assert(err:retryable() == true, "retryable")
        assert(tostring(err) == "TIMEOUT: receive timed out", "tostring")
        local json = require("json")
        local bad, jerr = json.decode("{nope")
        assert(bad == nil and jerr:kind() == errors.INVALID, "json error")
        return "ok"
    "#);
    assert_eq!(v.unwrap(), Value::from("ok"));
}

#[test]
fn scripts_raise_their_own_structured_errors() {
    let v = run(r#"
        local errors = require("errors")
        local e = errors.new{kind = errors.CONFLICT, message = "taken", retryable = true, details = {id = 7}}
        assert(e:kind() == "CONFLICT" and e:message() == "taken" and e:retryable())
        assert(e:details().id == 7)
        assert(tostring(e) == "CONFLICT: taken")
        local ok, caught = pcall(error, e)
        assert(not ok and caught:kind() == errors.CONFLICT)
        return "ok"
    "#);
    assert_eq!(v.unwrap(), Value::from("ok"));
    // Raised to the top, the error object becomes the process's error.
    let e = run(r#"local errors = require("errors") error(errors.new{kind = "RATE_LIMITED", message = "slow down"})"#)
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::RateLimited, "slow down")
    );
    // An unknown kind is a wrong argument, raised as INVALID.
    let e = run(r#"require("errors").new{kind = "NOPE"}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
}

#[test]
fn require_goes_through_the_policy() {
    let src = MemorySource::new().with(
        "main.lua",
        r#"
        local ok1, denied = pcall(require, "time")
        local ok2, unknown = pcall(require, "no_such_module")
        local json = require("json")
        return {ok1, denied:kind(), ok2, unknown:kind(), json.encode({1})}
        "#,
    );
    let rt = runtime_with(src, 1);
    let v = rt
        .spawn(Spawn::script("main.lua").policy(Policy::deterministic()))
        .unwrap()
        .join_blocking();
    assert_eq!(
        v.unwrap(),
        Value::Array(vec![
            Value::Bool(false),
            Value::from("PERMISSION_DENIED"),
            Value::Bool(false),
            Value::from("NOT_FOUND"),
            Value::from("[1]"),
        ])
    );
}

#[test]
fn module_tables_are_read_only() {
    let v = run(r#"
        local json = require("json")
        local ok = pcall(function() json.encode = nil end)
        local ok2 = pcall(function() string.upper = nil end)
        local ok3 = pcall(setmetatable, json, {})
        return {ok, ok2, ok3, getmetatable(json), type(json.encode)}
    "#);
    assert_eq!(
        v.unwrap(),
        Value::Array(vec![
            Value::Bool(false),
            Value::Bool(false),
            Value::Bool(false),
            Value::from("locked"),
            Value::from("function"),
        ])
    );
}

#[test]
fn dangerous_globals_are_absent() {
    let v = run(r#"
        local bin = string.dump and "dump" or load(string.char(27) .. "Lua") and "binary load" or nil
        return {io == nil, os == nil, debug == nil, package == nil, dofile == nil,
                loadfile == nil, string.dump == nil, ("x").dump == nil, bin == nil}
    "#);
    assert_eq!(v.unwrap(), Value::Array(vec![Value::Bool(true); 9]));
}

#[test]
fn a_runtime_error_fails_only_that_process() {
    let src = MemorySource::new()
        .with("boom.lua", "local t = nil\n\nreturn t.field\n")
        .with("calm.lua", "require('time').sleep(20) return 'still here'");
    let rt = runtime_with(src, 1);
    let calm = rt.spawn(Spawn::script("calm.lua")).unwrap();
    let boom = rt.spawn(Spawn::script("boom.lua")).unwrap();
    let e = boom.join_blocking().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(e.message().contains("boom.lua:3:"), "{e}");
    let tb = e
        .details()
        .and_then(|d| d.get("traceback"))
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(tb.contains("boom.lua:3"), "traceback: {tb}");
    assert_eq!(calm.join_blocking().unwrap(), Value::from("still here"));
}

#[test]
fn messages_from_one_sender_arrive_in_order() {
    let src = MemorySource::new().with(
        "main.lua",
        r#"
        local process = require("process")
        local M = {}
        function M.sender(to, id, n)
            for i = 1, n do
                while true do
                    local ok, err = process.send(to, "seq", {id = id, i = i})
                    if ok then break end
                    assert(err:kind() == "RATE_LIMITED")
                    require("time").sleep(1)
                end
            end
        end
        local senders, n = ..., 2000
        if senders == nil then return M end
        for id = 1, senders do process.spawn("main.lua", {entry = "sender"}, process.pid(), id, n) end
        local last = {}
        for _ = 1, senders * n do
            local m = process.receive("seq", 10000)
            local p = m.payload
            assert(p.i == (last[p.id] or 0) + 1, "out of order")
            last[p.id] = p.i
        end
        return senders * n
        "#,
    );
    let rt = runtime_with(src, 2);
    let v = rt
        .spawn(Spawn::script("main.lua").args([5]))
        .unwrap()
        .join_blocking();
    assert_eq!(v.unwrap(), Value::Int(10_000));
}

#[test]
fn sending_to_a_dead_process_is_not_found() {
    let rt = runtime_with(MemorySource::new().with("quick.lua", "return 1"), 1);
    let h = rt.spawn(Spawn::script("quick.lua")).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::Int(1));
    assert_eq!(h.try_send("x", 1).unwrap_err().kind(), ErrorKind::NotFound);
    let v = run(r#"
        local ok, err = require("process").send("<0.987654>", "x", 1)
        local ok2, err2 = require("process").send("<not a pid>", "x", 1)
        return {ok == nil and ok2 == nil, err:kind(), err2:kind()}
    "#);
    assert_eq!(
        v.unwrap(),
        Value::Array(vec![
            Value::Bool(true),
            Value::from("NOT_FOUND"),
            Value::from("INVALID")
        ])
    );
}

/// `slow.wait()`, answered when the test releases it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct SlowWait {}

impl Command for SlowWait {
    const ID: CommandId = CommandId(4000);
    const NAME: &'static str = "slow.wait";
    type Output = String;
}

impl ModuleCommand for SlowWait {}

/// `counter.next()`: the next number.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Next {}

impl Command for Next {
    const ID: CommandId = CommandId(4001);
    const NAME: &'static str = "counter.next";
    type Output = i64;
}

impl ModuleCommand for Next {}

#[test]
fn a_slow_async_handler_never_occupies_a_worker() {
    let release = Arc::new(tokio::sync::Notify::new());
    let handler_thread = Arc::new(Mutex::new(String::new()));
    let (r, t) = (Arc::clone(&release), Arc::clone(&handler_thread));
    let slow = ModuleDef::new("slow")
        .class(Class::Deterministic)
        .async_command(
            "wait",
            |_cx, ()| Ok(SlowWait {}),
            move |_, _: SlowWait| {
                let (r, t) = (Arc::clone(&r), Arc::clone(&t));
                async move {
                    *t.lock().unwrap() = std::thread::current().name().unwrap_or("").to_owned();
                    r.notified().await;
                    Ok("released".to_owned())
                }
            },
        );
    let src = MemorySource::new()
        .with("waiter.lua", "return require('slow').wait()")
        .with("quick.lua", "require('time').sleep(1) return 'quick'");
    let rt = Runtime::builder()
        .workers(1)
        .source(src)
        .engine(LuaEngine::new())
        .module(slow)
        .build()
        .unwrap();
    let waiter = rt.spawn(Spawn::script("waiter.lua")).unwrap();
    let quick = rt.spawn(Spawn::script("quick.lua")).unwrap();
    // With one worker, `quick` can only finish if `waiter`'s pending call
    // does not hold that worker.
    let out = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let q = quick.join().await;
            release.notify_one();
            (q, waiter.join().await)
        })
        .await
    });
    let (q, w) = out.expect("the quick process was not starved");
    assert_eq!(q.unwrap(), Value::from("quick"));
    assert_eq!(w.unwrap(), Value::from("released"));
    let name = handler_thread.lock().unwrap().clone();
    assert!(!name.starts_with("troupe-worker"), "handler ran on {name}");
}

/// A host's own immediate handler runs inside the script's call (so it
/// works in a `table.sort` comparator); the same handler registered as
/// plain inline needs a yield there and fails.
#[test]
fn a_host_immediate_handler_answers_inside_the_call() {
    let counter = |immediate: bool| {
        let n = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let next = move |_: &troupe::HandlerCx<'_>, _: Next| {
            Ok(n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
        };
        let module = ModuleDef::new("counter")
            .class(Class::Deterministic)
            .typed_command("next", |_cx, ()| Ok(Next {}));
        let module = if immediate {
            module.immediate(next)
        } else {
            module.handle(next)
        };
        let src = MemorySource::new().with(
            "sort.lua",
            r#"
            local counter = require("counter")
            local ok, err = pcall(table.sort, {3, 1, 2}, function(a, b)
              counter.next()
              return a < b
            end)
            return {ok, ok and counter.next() or tostring(err):find("yield") ~= nil}
            "#,
        );
        let rt = Runtime::builder()
            .workers(1)
            .source(src)
            .engine(LuaEngine::new())
            .module(module)
            .build()
            .unwrap();
        let v = rt
            .spawn(Spawn::script("sort.lua").policy(Policy::deterministic()))
            .unwrap()
            .join_blocking()
            .unwrap();
        rt.shutdown();
        v
    };
    let immediate = counter(true);
    assert_eq!(immediate.as_array().map(<[Value]>::len), Some(2));
    assert_eq!(immediate.as_array().unwrap()[0], Value::Bool(true));
    // Comparisons counted inside the sort, then one more call after it.
    assert!(
        matches!(immediate.as_array().unwrap()[1], Value::Int(n) if n >= 3),
        "{immediate:?}"
    );
    assert_eq!(
        counter(false),
        Value::Array(vec![Value::Bool(false), Value::Bool(true)])
    );
}

#[test]
fn shutdown_with_live_processes_terminates_cleanly() {
    let src = MemorySource::new()
        .with("wait.lua", "return require('process').receive()")
        .with("spin.lua", "while true do end");
    let rt = runtime_with(src, 2);
    let waiting: Vec<_> = (0..100)
        .map(|_| rt.spawn(Spawn::script("wait.lua")).unwrap())
        .collect();
    let spinner = rt.spawn(Spawn::script("spin.lua")).unwrap();
    rt.shutdown();
    for h in waiting.iter().chain([&spinner]) {
        assert_eq!(h.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    }
    assert_eq!(rt.process_count(), 0);
    assert_eq!(
        rt.spawn(Spawn::script("wait.lua")).err().map(|e| e.kind()),
        Some(ErrorKind::Canceled)
    );
}

#[test]
fn a_spinning_process_does_not_starve_others() {
    let src = MemorySource::new()
        .with("spin.lua", "local n = 0 while true do n = n + 1 end")
        .with("sleepy.lua", "require('time').sleep(5) return 'done'");
    let rt = runtime_with(src, 1);
    let spinner = rt.spawn(Spawn::script("spin.lua")).unwrap();
    let sleepy = rt.spawn(Spawn::script("sleepy.lua")).unwrap();
    assert_eq!(sleepy.join_blocking().unwrap(), Value::from("done"));
    assert!(spinner.kill());
    assert_eq!(
        spinner.join_blocking().unwrap_err().kind(),
        ErrorKind::Canceled
    );
}

#[test]
fn commands_yield_through_user_coroutines() {
    let v = run(r#"
        local time = require("time")
        local co = coroutine.wrap(function(a)
            time.sleep(1)
            local b = coroutine.yield(a + 1)
            time.sleep(1)
            return b * 2
        end)
        local first = co(1)
        local second = co(10)
        local ok, slept = pcall(function() time.sleep(1) return "slept in pcall" end)
        local t = setmetatable({}, {__index = function(_, k) time.sleep(1) return k end})
        local okc, err = pcall(table.sort, {3, 1, 2}, function(a, b) time.sleep(1) return a < b end)
        return {first, second, slept, t.key, okc, tostring(err):find("yield") ~= nil}
    "#);
    assert_eq!(
        v.unwrap(),
        Value::Array(vec![
            Value::Int(2),
            Value::Int(20),
            Value::from("slept in pcall"),
            Value::from("key"),
            Value::Bool(false),
            Value::Bool(true),
        ])
    );
}

/// Immediate commands (`time.now`, `process.send`, `rand.*`, a `receive`
/// of a queued message) are answered inside the call, so they work where a
/// yield cannot happen (a `table.sort` comparator); a command that waits
/// (a sleep, a receive with nothing queued) still cannot.
#[test]
fn immediate_commands_work_where_a_yield_cannot() {
    let v = run(r#"
        local time, process, rand = require("time"), require("process"), require("rand")
        local me = process.pid()
        local items, n = {3, 1, 2}, 0
        table.sort(items, function(a, b)
          assert(time.now() > 0 and time.monotonic() >= 0)
          assert(rand.int(1, 6) <= 6)
          assert(process.send(me, "compared", a))
          assert(process.receive("compared").payload == a)
          n = n + 1
          return a < b
        end)
        local left = process.receive("compared", 0)
        local sleeps = pcall(table.sort, {3, 1, 2}, function(a, b) time.sleep(1) return a < b end)
        local ok, err = pcall(table.sort, {3, 1, 2}, function(a, b) process.receive("none") return a < b end)
        return {items[1], items[3], n > 0, left == nil, sleeps, ok, tostring(err):find("yield") ~= nil}
    "#);
    assert_eq!(
        v.unwrap(),
        Value::Array(vec![
            Value::Int(1),
            Value::Int(3),
            Value::Bool(true),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(false),
            Value::Bool(true),
        ])
    );
}

/// A process that only makes immediate commands never yields on its own,
/// yet its wall-clock limit, a host kill and its siblings still get their
/// turn: preemption does not depend on yields.
#[test]
fn a_loop_of_immediate_commands_is_still_preempted_limited_and_killable() {
    let src = MemorySource::new().with("sibling.lua", "return 7").with(
        "spin.lua",
        r#"
        local process, time = require("process"), require("time")
        local me = process.pid()
        while true do
          process.send(me, "t", time.now())
          process.receive("t")
        end
        "#,
    );
    let rt = runtime_with(src, 1);
    let limits = troupe::Limits {
        timeout: Some(Duration::from_millis(200)),
        ..troupe::Limits::default()
    };
    let limited = rt
        .spawn(Spawn::script("spin.lua").limits(limits))
        .expect("spawn");
    let killed = rt.spawn(Spawn::script("spin.lua")).expect("spawn");
    // On one worker, with two spinners, a third process still runs.
    let sibling = rt.spawn(Spawn::script("sibling.lua")).expect("spawn");
    assert_eq!(sibling.join_blocking().expect("sibling"), Value::Int(7));
    let err = limited.join_blocking().expect_err("the limit ends it");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(killed.kill());
    let err = killed.join_blocking().expect_err("killed");
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    rt.shutdown();
}

#[test]
fn spawn_args_and_entry_functions() {
    let src = MemorySource::new()
        .with(
            "lib/child.lua",
            "local M = {} function M.add(a, b) return a + b end return M",
        )
        .with(
            "lib/main.lua",
            r#"
            local process = require("process")
            local child = process.spawn("child.lua", {entry = "add"}, 0, 0)
            local me = process.pid()
            assert(type(child) == "string" and child:sub(1, 1) == "<")
            local a, b = ...
            return {a + b, me == process.pid(), process.parent() == nil}
            "#,
        );
    let rt = runtime_with(src, 2);
    let v = rt
        .spawn(Spawn::script("lib/main.lua").args([40, 2]))
        .unwrap()
        .join_blocking();
    assert_eq!(
        v.unwrap(),
        Value::Array(vec![Value::Int(42), Value::Bool(true), Value::Bool(true)])
    );
}

#[test]
fn an_entry_function_gets_every_spawn_argument_nils_included() {
    let src = MemorySource::new().with(
        "main.lua",
        r##"
        local M = {}
        function M.count(...)
          local a, b, c, d = ...
          return {n = select("#", ...), a = a, b_nil = b == nil, c = c, d_nil = d == nil}
        end
        return M
        "##,
    );
    let rt = runtime_with(src, 2);
    for lightweight in [false, true] {
        let run = |args: Vec<Value>| {
            let spawn = Spawn::script("main.lua").entry("count").args(args);
            let spawn = if lightweight {
                spawn.lightweight()
            } else {
                spawn
            };
            rt.spawn(spawn).unwrap().join_blocking().unwrap()
        };
        assert_eq!(run(vec![]).get("n"), Some(&Value::Int(0)));
        // A nil in the middle and one at the end still count.
        let args = vec![Value::Int(1), Value::Nil, Value::from("x"), Value::Nil];
        let got = run(args);
        let expected = [
            ("n", Value::Int(4)),
            ("a", Value::Int(1)),
            ("b_nil", Value::Bool(true)),
            ("c", Value::from("x")),
            ("d_nil", Value::Bool(true)),
        ];
        for (k, v) in expected {
            assert_eq!(got.get(k), Some(&v), "{k} of {got:?}");
        }
    }
    rt.shutdown();
}

#[test]
fn one_hundred_thousand_concurrent_sleepers_complete() {
    const N: usize = 100_000;
    let rt = runtime_with(
        MemorySource::new().with("sleep.lua", "require('time').sleep(20) return 1"),
        2,
    );
    let handles: Vec<_> = (0..N)
        .map(|_| rt.spawn(Spawn::script("sleep.lua")).unwrap())
        .collect();
    let mut total = 0;
    for h in &handles {
        total += h.join_blocking().unwrap().as_i64().unwrap();
    }
    assert_eq!(total, N as i64);
    assert_eq!(rt.process_count(), 0);
}
