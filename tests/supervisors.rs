//! Supervisors from Rust (`Runtime::supervise`) and from Lua (`supervisor`
//! module): strategies, restart types, restart intensity and giving up.

use std::time::Duration;

use troupe::{
    ChildSpec, Class, ErrorKind, HostMailbox, LuaEngine, MemorySource, Pid, Policy, Restart,
    Runtime, Spawn, Strategy, Supervisor, Value,
};

/// A worker: registers `name`, reports `up` to the process named
/// `report_to`, then obeys one message: `crash` fails, `stop` returns.
const WORKER: &str = r#"
local process = require("process")
local name, report_to = ...
process.register(name)
process.send(report_to, "up", {name = name, pid = process.pid()})
local m = process.receive()
if m.topic == "crash" then error("crash requested") end
return "stopped"
"#;

fn runtime(main: &str) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(
            MemorySource::new()
                .with("worker.lua", WORKER)
                .with("main.lua", main),
        )
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

fn worker(id: &str) -> ChildSpec {
    ChildSpec::new(id, Spawn::script("worker.lua").args([id, "host"]))
}

/// Waits for `n` `up` reports; returns `(name, pid)` in arrival order.
fn ups(rt: &Runtime, inbox: &HostMailbox, n: usize) -> Vec<(String, Pid)> {
    rt.io().block_on(async {
        let mut out = Vec::new();
        for _ in 0..n {
            let m = tokio::time::timeout(Duration::from_secs(30), inbox.recv_topic("up"))
                .await
                .expect("a child reported up");
            let name = m.payload.get("name").and_then(Value::as_str).unwrap();
            let pid = m.payload.get("pid").and_then(Value::as_str).unwrap();
            out.push((name.to_owned(), pid.parse().unwrap()));
        }
        out.sort();
        out
    })
}

fn pid_of(rt: &Runtime, name: &str) -> Pid {
    rt.whereis(name).expect("registered")
}

/// Starts `sup` over workers `ids`, waits until all are up; returns the
/// runtime, the host inbox and the handle.
fn start(
    strategy: Strategy,
    ids: &[&str],
    tune: impl FnOnce(Supervisor) -> Supervisor,
) -> (Runtime, HostMailbox, troupe::SupervisorHandle) {
    let rt = runtime("");
    let inbox = rt.mailbox();
    inbox.register("host").unwrap();
    let sup = ids
        .iter()
        .fold(Supervisor::new(strategy), |s, id| s.child(worker(id)));
    let h = rt.supervise(tune(sup)).unwrap();
    assert_eq!(ups(&rt, &inbox, ids.len()).len(), ids.len());
    (rt, inbox, h)
}

#[test]
fn one_for_one_restarts_only_the_crashed_child() {
    let (rt, inbox, sup) = start(Strategy::OneForOne, &["a", "b"], |s| s);
    let (a, b) = (pid_of(&rt, "a"), pid_of(&rt, "b"));
    rt.try_send(a, "crash", ()).unwrap();
    let up = ups(&rt, &inbox, 1);
    assert_eq!(up[0].0, "a");
    assert_ne!(up[0].1, a);
    assert_eq!(pid_of(&rt, "b"), b);
    let children = sup.which_children();
    assert_eq!(
        children
            .iter()
            .map(|c| (c.id.as_str(), c.pid))
            .collect::<Vec<_>>(),
        vec![("a", Some(up[0].1)), ("b", Some(b))]
    );
    rt.shutdown();
}

#[test]
fn one_for_all_restarts_every_child() {
    let (rt, inbox, _sup) = start(Strategy::OneForAll, &["a", "b", "c"], |s| s);
    let before: Vec<Pid> = ["a", "b", "c"].iter().map(|n| pid_of(&rt, n)).collect();
    rt.try_send(before[1], "crash", ()).unwrap();
    let up = ups(&rt, &inbox, 3);
    assert_eq!(
        up.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    for (u, old) in up.iter().zip(&before) {
        assert_ne!(u.1, *old, "{} was restarted", u.0);
    }
    rt.shutdown();
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_later_ones() {
    let (rt, inbox, _sup) = start(Strategy::RestForOne, &["a", "b", "c"], |s| s);
    let before: Vec<Pid> = ["a", "b", "c"].iter().map(|n| pid_of(&rt, n)).collect();
    rt.try_send(before[1], "crash", ()).unwrap();
    let up = ups(&rt, &inbox, 2);
    assert_eq!(
        up.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_ne!(up[0].1, before[1]);
    assert_ne!(up[1].1, before[2]);
    assert_eq!(pid_of(&rt, "a"), before[0]);
    rt.shutdown();
}

#[test]
fn a_supervisor_gives_up_after_too_many_restarts_and_says_why() {
    let (rt, inbox, sup) = start(Strategy::OneForOne, &["a", "b"], |s| {
        s.intensity(2, Duration::from_secs(3600))
    });
    let monitor = rt.mailbox();
    let r = monitor.monitor(pid_of(&rt, "b")).unwrap();
    for _ in 0..2 {
        rt.try_send(pid_of(&rt, "a"), "crash", ()).unwrap();
        assert_eq!(ups(&rt, &inbox, 1)[0].0, "a");
    }
    rt.try_send(pid_of(&rt, "a"), "crash", ()).unwrap();
    let e = sup.join_blocking().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(e.message().contains("\"a\""), "{e}");
    assert!(e.message().contains("crash requested"), "{e}");
    let details = e.details().expect("details");
    assert_eq!(details.get("child"), Some(&Value::from("a")));
    assert_eq!(
        details
            .get("reason")
            .and_then(|r| r.get("kind"))
            .and_then(Value::as_str),
        Some("INTERNAL")
    );
    // Every child was terminated before the supervisor exited.
    assert_eq!(rt.whereis("a"), None);
    assert_eq!(rt.whereis("b"), None);
    let down = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), monitor.recv_topic("DOWN"))
            .await
            .expect("b's DOWN")
    });
    assert_eq!(down.payload.get("ref"), Some(&Value::Int(r)));
    assert_eq!(down.payload.get("reason"), Some(&Value::from("killed")));
    rt.shutdown();
}

#[test]
fn transient_and_temporary_children() {
    let rt = runtime("");
    let inbox = rt.mailbox();
    inbox.register("host").unwrap();
    let sup = rt
        .supervise(
            Supervisor::new(Strategy::OneForOne)
                .child(worker("t1").restart(Restart::Transient))
                .child(worker("t2").restart(Restart::Transient))
                .child(worker("tmp").restart(Restart::Temporary)),
        )
        .unwrap();
    ups(&rt, &inbox, 3);
    // A transient child that stops normally stays stopped; one that crashes
    // comes back; a temporary one never does and is forgotten.
    let mon = rt.mailbox();
    let t1 = pid_of(&rt, "t1");
    mon.monitor(t1).unwrap();
    rt.try_send(t1, "stop", ()).unwrap();
    rt.try_send(pid_of(&rt, "t2"), "crash", ()).unwrap();
    assert_eq!(ups(&rt, &inbox, 1)[0].0, "t2");
    let tmp = pid_of(&rt, "tmp");
    mon.monitor(tmp).unwrap();
    rt.try_send(tmp, "crash", ()).unwrap();
    rt.io().block_on(async {
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(30), mon.recv_topic("DOWN"))
                .await
                .expect("DOWN");
        }
    });
    // The supervisor handles exits in order: once t2's second restart is
    // reported, it has handled t1's and tmp's exits too.
    rt.try_send(pid_of(&rt, "t2"), "crash", ()).unwrap();
    assert_eq!(ups(&rt, &inbox, 1)[0].0, "t2");
    let children = sup.which_children();
    assert_eq!(
        children
            .iter()
            .map(|c| (c.id.as_str(), c.pid.is_some()))
            .collect::<Vec<_>>(),
        vec![("t1", false), ("t2", true)]
    );
    rt.shutdown();
}

#[test]
fn lua_supervisors_restart_children_and_give_up() {
    let rt = runtime(
        r#"
        local process = require("process")
        local supervisor = require("supervisor")
        process.register("test")
        process.trap_exits(true)
        local sup = assert(supervisor.start{
          strategy = "one_for_one", intensity = 1, period = "1h",
          children = {
            {id = "w", script = "worker.lua", args = {"w", "test"}},
            {id = "idle", script = "worker.lua", args = {"idle", "test"}, restart = "temporary"},
          },
        })
        local first = {}
        for _ = 1, 2 do
          local up = process.receive("up", 10000).payload
          first[up.name] = up.pid
        end
        local listed = supervisor.which_children(sup)
        assert(listed[1].id == "w" and listed[1].pid == first.w, "which_children")
        process.send("w", "crash", true)
        local again = process.receive("up", 10000).payload
        assert(again.name == "w" and again.pid ~= first.w, "restarted")
        process.send("w", "crash", true)
        local exit = process.receive("EXIT", 10000)
        local _, bad = supervisor.start{strategy = "one_for_none"}
        local _, dup = supervisor.start{children = {
          {id = "x", script = "worker.lua"}, {id = "x", script = "worker.lua"}}}
        return {exit.payload.pid == sup, exit.payload.reason.kind,
                exit.payload.reason.details.child, process.whereis("idle") == nil,
                bad:kind(), dup:kind()}
        "#,
    );
    let v = rt
        .spawn(Spawn::script("main.lua"))
        .unwrap()
        .join_blocking()
        .unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Bool(true),
            Value::from("LIMIT_EXCEEDED"),
            Value::from("w"),
            Value::Bool(true),
            Value::from("INVALID"),
            Value::from("INVALID"),
        ])
    );
    rt.shutdown();
}

#[test]
fn a_lua_supervisor_ends_with_its_parent() {
    let rt = runtime(
        r#"
        local process = require("process")
        local supervisor = require("supervisor")
        local host = ...
        local sup = supervisor.start{children = {{id = "w", script = "worker.lua", args = {"w", host}}}}
        process.send(host, "sup", sup)
        process.receive("go")
        error("parent fails")
        "#,
    );
    let inbox = rt.mailbox();
    let h = rt
        .spawn(Spawn::script("main.lua").args([inbox.pid().to_string()]))
        .unwrap();
    let sup: Pid = rt.io().block_on(async {
        let m = tokio::time::timeout(Duration::from_secs(30), inbox.recv_topic("sup"))
            .await
            .expect("sup pid");
        m.payload.as_str().unwrap().parse().unwrap()
    });
    assert_eq!(ups(&rt, &inbox, 1)[0].0, "w");
    let r = inbox.monitor(sup).unwrap();
    h.try_send("go", ()).unwrap();
    assert!(h.join_blocking().is_err());
    let down = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), inbox.recv_topic("DOWN"))
            .await
            .expect("supervisor DOWN")
    });
    assert_eq!(down.payload.get("ref"), Some(&Value::Int(r)));
    let reason = down.payload.get("reason").cloned().unwrap_or_default();
    assert!(reason.to_json().contains("parent fails"), "{reason}");
    assert_eq!(rt.whereis("w"), None);
    rt.shutdown();
}
