//! Erlang process semantics through Lua scripts and the host API: links and
//! crash propagation, trapped exits, monitors, `noproc`, kills, and the name
//! registry.

use std::time::Duration;

use troupe::{Class, ErrorKind, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

fn runtime(src: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Runs `main.lua` (with `...` = `args`) to completion.
fn run(code: &str, args: Vec<Value>) -> Result<Value, troupe::Error> {
    let rt = runtime(MemorySource::new().with("main.lua", code));
    let r = rt
        .spawn(Spawn::script("main.lua").args(args))?
        .join_blocking();
    rt.shutdown();
    r
}

fn ok(code: &str) -> Value {
    run(code, vec![Value::from("main")]).expect("script succeeds")
}

/// Children used by several tests, as entry functions of `main.lua`.
const CHILDREN: &str = r#"
local process = require("process")
local time = require("time")
local errors = require("errors")
local M = {}
-- A link chain: level i spawns level i+1 linked, registers "level<i>", and
-- waits forever; the last level fails.
function M.level(i, depth)
  process.register("level" .. i)
  if i == depth then
    error(errors.new{kind = errors.CONFLICT, message = "boom at the bottom"})
  end
  process.spawn("main.lua", {entry = "level", link = true}, i + 1, depth)
  process.receive("never")
end
function M.fail() error("deliberate failure") end
function M.normal() return "fine" end
-- Waits for "go" (so a monitor can be set up first), then ends as asked.
function M.after_go(how)
  process.receive("go")
  if how == "fail" then error("deliberate failure") end
  return "fine"
end
function M.wait() process.receive("never") end
function M.trapper()
  process.trap_exits(true)
  process.receive("never")
end
"#;

/// `main.lua`: the shared children, the test's own child functions (before
/// a `-- main` line), then the test body. Children are spawned with an
/// entry, so their chunk runs without arguments and stops at the `return M`;
/// the test runs it with one argument.
fn with_children(body: &str) -> String {
    let (defs, main) = body.split_once("-- main").unwrap_or(("", body));
    format!("{CHILDREN}\n{defs}\nif ... == nil then return M end\n{main}")
}

#[test]
fn a_crash_propagates_over_a_chain_of_links() {
    let v = ok(&with_children(
        r#"
        process.trap_exits(true)
        local top = process.spawn("main.lua", {entry = "level", link = true}, 1, 5)
        local m = assert(process.receive("EXIT", 10000))
        -- Every level died with the bottom's reason, and their names are free.
        local names = {}
        for i = 1, 5 do names[i] = process.whereis("level" .. i) or false end
        return {m.payload.pid == top, m.from == top, m.payload.reason.kind,
                m.payload.reason.message, names}
        "#,
    ));
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Bool(true),
            Value::Bool(true),
            Value::from("CONFLICT"),
            Value::from("boom at the bottom"),
            Value::Array(vec![Value::Bool(false); 5]),
        ])
    );
}

#[test]
fn an_untrapped_linked_crash_kills_the_parent_with_the_same_reason() {
    let e = run(
        &with_children(
            r#"
            process.spawn("main.lua", {entry = "fail", link = true})
            process.receive("never")
            "#,
        ),
        vec![Value::from("main")],
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(e.message().contains("deliberate failure"), "{e}");
}

#[test]
fn trap_exits_turns_exit_signals_into_messages() {
    let v = ok(&with_children(
        r#"
        assert(process.trap_exits(true) == false)
        local bad = process.spawn("main.lua", {entry = "fail", link = true})
        local good = process.spawn("main.lua", {entry = "normal", link = true})
        local seen = {}
        for _ = 1, 2 do
          local m = assert(process.receive("EXIT", 10000))
          if m.payload.pid == bad then seen.bad = m.payload.reason.kind end
          if m.payload.pid == good then seen.good = m.payload.reason end
        end
        return seen
        "#,
    ));
    assert_eq!(v.get("bad"), Some(&Value::from("INTERNAL")));
    assert_eq!(v.get("good"), Some(&Value::from("normal")));
}

#[test]
fn a_normal_exit_of_a_linked_process_is_ignored_without_trapping() {
    let v = ok(&with_children(
        r#"
        local child = process.spawn("main.lua", {entry = "after_go", link = true}, "normal")
        process.monitor(child)
        process.send(child, "go", true)
        local down = assert(process.receive("DOWN", 10000))
        local none, err = process.receive("EXIT", 20)
        return {down.payload.reason, none == nil and err:kind()}
        "#,
    ));
    assert_eq!(
        v,
        Value::Array(vec![Value::from("normal"), Value::from("TIMEOUT")])
    );
}

#[test]
fn monitors_report_normal_exit_error_and_kill() {
    let v = ok(&with_children(
        r#"
        local normal = process.spawn("main.lua", {entry = "after_go"}, "normal")
        local failing = process.spawn("main.lua", {entry = "after_go"}, "fail")
        local waiting = process.spawn("main.lua", {entry = "trapper"})
        local refs = {
          [process.monitor(normal)] = "normal",
          [process.monitor(failing)] = "failing",
          [process.monitor(waiting)] = "killed",
        }
        process.send(normal, "go", true)
        process.send(failing, "go", true)
        -- kill is untrappable, even for a process that traps exits.
        assert(process.kill(waiting) == true)
        local out = {}
        for _ = 1, 3 do
          local m = assert(process.receive("DOWN", 10000))
          local who = refs[m.payload.ref]
          local r = m.payload.reason
          out[who] = type(r) == "table" and r.kind or r
        end
        return out
        "#,
    ));
    assert_eq!(v.get("normal"), Some(&Value::from("normal")));
    assert_eq!(v.get("failing"), Some(&Value::from("INTERNAL")));
    assert_eq!(v.get("killed"), Some(&Value::from("killed")));
}

#[test]
fn a_killed_process_kills_its_untrapped_links_with_reason_killed() {
    let v = ok(&with_children(
        r#"
        function M.middle(me)
          process.spawn("main.lua", {entry = "wait", link = true})
          process.register("middle")
          process.send(me, "ready", true)
          process.receive("never")
        end
        -- main
        process.trap_exits(true)
        local mid = process.spawn("main.lua", {entry = "middle", link = true}, process.pid())
        assert(process.receive("ready", 10000))
        local ref = process.monitor("middle")
        process.kill("middle")
        local exit = assert(process.receive("EXIT", 10000))
        local down = assert(process.receive("DOWN", 10000))
        return {exit.payload.reason, down.payload.reason, down.payload.ref == ref, exit.payload.pid == mid}
        "#,
    ));
    assert_eq!(
        v,
        Value::Array(vec![
            Value::from("killed"),
            Value::from("killed"),
            Value::Bool(true),
            Value::Bool(true),
        ])
    );
}

#[test]
fn linking_or_monitoring_a_dead_pid_is_noproc() {
    let v = ok(&with_children(
        r#"
        local dead = process.spawn("main.lua", {entry = "normal"})
        local r = process.monitor(dead)
        assert(process.receive("DOWN", 10000))
        -- dead now: a new monitor fires at once with noproc
        local r2 = process.monitor(dead)
        local down = assert(process.receive("DOWN", 10000))
        -- an untrapped link fails, a trapped one delivers EXIT noproc
        local ok, err = process.link(dead)
        process.trap_exits(true)
        assert(process.link(dead) == true)
        local exit = assert(process.receive("EXIT", 10000))
        return {down.payload.reason, down.payload.ref == r2, r2 ~= r, ok == nil and err:kind(),
                exit.payload.reason, exit.payload.pid == dead}
        "#,
    ));
    assert_eq!(
        v,
        Value::Array(vec![
            Value::from("noproc"),
            Value::Bool(true),
            Value::Bool(true),
            Value::from("NOT_FOUND"),
            Value::from("noproc"),
            Value::Bool(true),
        ])
    );
}

#[test]
fn unlink_and_demonitor_stop_notifications() {
    let v = ok(&with_children(
        r#"
        function M.fail_later() process.receive("go") error("late failure") end
        -- main
        local child = process.spawn("main.lua", {entry = "fail_later", link = true})
        local ref = process.monitor(child)
        local ref2 = process.monitor(child)
        process.unlink(child)
        assert(process.demonitor(ref) == true)
        assert(process.demonitor(ref) == false)
        process.send(child, "go", true)
        -- Only the second monitor fires; the unlinked crash does not kill us.
        local down = assert(process.receive("DOWN", 10000))
        local none = process.receive("DOWN", 20)
        return {down.payload.ref == ref2, none == nil}
        "#,
    ));
    assert_eq!(v, Value::Array(vec![Value::Bool(true); 2]));
}

#[test]
fn the_registry_names_processes_until_they_exit() {
    let v = ok(&with_children(
        r#"
        function M.named(me)
          assert(process.register("svc"))
          process.send(me, "registered", true)
          local m = process.receive("call")
          process.send(m.from, "reply", m.payload * 2)
        end
        -- main
        local child = process.spawn("main.lua", {entry = "named"}, process.pid())
        assert(process.receive("registered", 10000))
        local r = process.monitor("svc")
        local found = process.whereis("svc") == child
        -- duplicates, a second name, bad names, someone else's name
        local _, dup = process.register("svc")
        local _, bad = process.register("<0.1>")
        local _, other = process.unregister("svc")
        assert(process.register("me"))
        local _, second = process.register("me2")
        -- send by name
        assert(process.send("svc", "call", 21))
        local reply = assert(process.receive("reply", 10000))
        assert(process.receive("DOWN", 10000))
        -- freed on exit: the name can be taken again
        local gone = process.whereis("svc") == nil
        local _, unknown = process.send("svc", "call", 1)
        assert(process.unregister("me"))
        local retaken = process.register("svc")
        return {found, dup:kind(), bad:kind(), other:kind(), second:kind(), reply.payload,
                gone, unknown:kind(), retaken, process.whereis("svc") == process.pid()}
        "#,
    ));
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Bool(true),
            Value::from("ALREADY_EXISTS"),
            Value::from("INVALID"),
            Value::from("PERMISSION_DENIED"),
            Value::from("ALREADY_EXISTS"),
            Value::Int(42),
            Value::Bool(true),
            Value::from("NOT_FOUND"),
            Value::Bool(true),
            Value::Bool(true),
        ])
    );
}

#[test]
fn exit_reasons_reach_monitors() {
    let v = ok(&with_children(
        r#"
        function M.quit(reason) process.receive("go") process.exit(reason) end
        -- main
        local reasons = {}
        for i, reason in ipairs({"normal", "killed", {kind = "TIMEOUT", message = "gave up"}}) do
          local p = process.spawn("main.lua", {entry = "quit"}, reason)
          process.monitor(p)
          process.send(p, "go", true)
          local m = assert(process.receive("DOWN", 10000))
          local r = m.payload.reason
          reasons[i] = type(r) == "table" and (r.kind .. ": " .. r.message) or r
        end
        return reasons
        "#,
    ));
    assert_eq!(
        v,
        Value::Array(vec![
            Value::from("normal"),
            Value::from("killed"),
            Value::from("TIMEOUT: gave up"),
        ])
    );
}

#[test]
fn the_host_monitors_processes_and_receives_their_messages() {
    let src = MemorySource::new().with(
        "main.lua",
        r#"
        local process = require("process")
        local host = ...
        process.send(host, "hello", {from_script = true})
        process.send("inbox", "by-name", 1)
        local m = process.receive("job")
        process.send(m.from, "done", m.payload + 1)
        error("after reply")
        "#,
    );
    let rt = runtime(src);
    let inbox = rt.mailbox();
    inbox.register("inbox").unwrap();
    assert_eq!(rt.whereis("inbox"), Some(inbox.pid()));
    let h = rt
        .spawn(Spawn::script("main.lua").args([inbox.pid().to_string()]))
        .unwrap();
    let r = h.monitor(&inbox).unwrap();
    let out = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let hello = inbox.recv().await;
            let by_name = inbox.recv_topic("by-name").await;
            inbox.try_send(h.pid(), "job", 41).unwrap();
            let done = inbox.recv_topic("done").await;
            let down = inbox.recv_topic("DOWN").await;
            (hello, by_name, done, down)
        })
        .await
    });
    let (hello, by_name, done, down) = out.expect("messages arrive");
    assert_eq!(hello.from, Some(h.pid()));
    assert_eq!(hello.payload.get("from_script"), Some(&Value::Bool(true)));
    assert_eq!(by_name.payload, Value::Int(1));
    assert_eq!(done.payload, Value::Int(42));
    assert_eq!(down.payload.get("ref"), Some(&Value::Int(r)));
    assert_eq!(
        down.payload
            .get("reason")
            .and_then(|r| r.get("kind"))
            .and_then(Value::as_str),
        Some("INTERNAL")
    );
    assert!(inbox.try_recv().is_none());
    // A dropped host mailbox frees its name.
    drop(inbox);
    assert_eq!(rt.whereis("inbox"), None);
    rt.shutdown();
}
