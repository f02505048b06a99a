//! `Runtime::processes`, `Runtime::process` and `Runtime::supervisors`:
//! what a snapshot says of processes in each state a user would look for
//! (receiving, sleeping, in a command, with a filling mailbox, linked,
//! monitored, registered, lightweight, under a supervisor), and that dead
//! processes leave it.

use std::time::{Duration, Instant, SystemTime};

use troupe::{
    ChildSpec, Class, Limits, LuaEngine, MemorySource, Pid, Policy, ProcessInfo, ProcessKind,
    ProcessStatus, Runtime, Spawn, Strategy, Supervisor, WaitingOn,
};

const RECEIVER: &str = r#"
local process = require("process")
local name = ...
if name then process.register(name) end
process.receive("job")
"#;

const SLEEPER: &str = r#"require("time").sleep(60000)"#;

/// Spawns a receiver (linked to itself) and monitors another, then waits.
const WATCHER: &str = r#"
local process = require("process")
local child = process.spawn("receiver.lua", {link = true}, "linked-child")
local other = ...
process.monitor(other)
process.trap_exits(true)
process.receive("never")
"#;

/// Counts to a million, then waits: its instructions are counted (it has
/// an instruction limit).
const COUNTER: &str = r#"
local n = 0
for i = 1, 1000000 do n = n + i end
require("process").receive("never")
"#;

/// Starts a supervisor of one receiver and waits.
const TEAM: &str = r#"
local supervisor = require("supervisor")
supervisor.start{
  strategy = "one_for_one",
  children = {{id = "inner", script = "receiver.lua", args = {"inner"}}},
}
require("process").receive("never")
"#;

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(
            MemorySource::new()
                .with("receiver.lua", RECEIVER)
                .with("sleeper.lua", SLEEPER)
                .with("watcher.lua", WATCHER)
                .with("counter.lua", COUNTER)
                .with("team.lua", TEAM),
        )
        .engine(LuaEngine::new())
        .default_policy(
            Policy::plugin()
                .allow_class(Class::Process)
                .allow_class(Class::Time),
        )
        .build()
        .expect("runtime builds")
}

/// Polls `rt.process(pid)` until `ready` holds (30 s at most).
fn settled(rt: &Runtime, pid: Pid, ready: impl Fn(&ProcessInfo) -> bool) -> ProcessInfo {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = rt.process(pid).expect("alive");
        if ready(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "never settled: {info:#?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn waiting(info: &ProcessInfo) -> bool {
    info.status == ProcessStatus::Waiting && info.waiting.is_some()
}

#[test]
fn a_receiver_shows_its_topic_its_mailbox_and_its_name() {
    let rt = runtime();
    let before = SystemTime::now();
    let h = rt
        .spawn(Spawn::script("receiver.lua").args(["worker-1"]).mailbox(8))
        .unwrap();
    let info = settled(&rt, h.pid(), waiting);
    assert_eq!(
        info.waiting,
        Some(WaitingOn::Receive {
            topic: Some("job".into())
        })
    );
    assert_eq!(info.name.as_deref(), Some("worker-1"));
    assert_eq!(info.script, "receiver.lua");
    assert_eq!(&*info.engine, "lua");
    assert_eq!(info.kind, ProcessKind::Isolated);
    assert_eq!(info.parent, None);
    assert_eq!(info.mailbox_capacity, 8);
    assert!(info.memory.is_some_and(|m| m > 0), "{info:?}");
    assert!(info.started_at >= before - Duration::from_secs(1));

    // Messages of other topics queue up; the snapshot names them in order.
    for topic in ["a", "b", "c"] {
        rt.try_send(h.pid(), topic, 1).unwrap();
    }
    let info = settled(&rt, h.pid(), |i| i.mailbox_len == 3 && waiting(i));
    assert_eq!(info.topics, ["a", "b", "c"]);
    assert!(info.mailbox_bytes > 0);
    // The full listing has the same process, without the topics.
    let all = rt.processes();
    let listed = all.iter().find(|p| p.pid == h.pid()).expect("listed");
    assert_eq!(listed.mailbox_len, 3);
    assert!(listed.topics.is_empty());

    rt.try_send(h.pid(), "job", 1).unwrap();
    h.join_blocking().unwrap();
    assert_eq!(rt.process(h.pid()), None);
    assert!(rt.processes().iter().all(|p| p.pid != h.pid()));
    rt.shutdown();
}

#[test]
fn a_sleeper_shows_when_it_wakes() {
    let rt = runtime();
    let asked = SystemTime::now();
    let h = rt.spawn(Spawn::script("sleeper.lua")).unwrap();
    let info = settled(&rt, h.pid(), waiting);
    let Some(WaitingOn::Sleep { until }) = info.waiting else {
        panic!("not sleeping: {info:?}");
    };
    let due = until.duration_since(asked).expect("in the future");
    assert!(
        due > Duration::from_secs(55) && due < Duration::from_secs(65),
        "{due:?}"
    );
    assert!(h.kill());
    rt.shutdown();
}

#[test]
fn links_monitors_and_parents_are_seen_from_both_ends() {
    let rt = runtime();
    let other = rt
        .spawn(Spawn::script("receiver.lua").args(["other"]))
        .unwrap();
    let watcher = rt
        .spawn(Spawn::script("watcher.lua").args([other.pid().to_string()]))
        .unwrap();
    let w = settled(&rt, watcher.pid(), |i| {
        waiting(i) && i.links.len() == 1 && i.monitors.len() == 1
    });
    assert_eq!(w.monitors, [other.pid()]);
    assert!(w.trap_exits);
    let child = rt.whereis("linked-child").expect("child registered");
    assert_eq!(w.links, [child]);

    let c = rt.process(child).unwrap();
    assert_eq!(c.parent, Some(watcher.pid()));
    assert_eq!(c.links, [watcher.pid()]);
    let o = rt.process(other.pid()).unwrap();
    assert_eq!(o.monitored_by, [watcher.pid()]);
    assert!(o.links.is_empty() && o.monitors.is_empty());
    rt.shutdown();
}

#[test]
fn instructions_are_counted_under_an_instruction_limit() {
    let rt = runtime();
    let limits = Limits {
        max_instructions: std::num::NonZeroU64::new(100_000_000),
        ..Limits::default()
    };
    let counted = rt
        .spawn(Spawn::script("counter.lua").limits(limits))
        .unwrap();
    let free = rt.spawn(Spawn::script("counter.lua")).unwrap();
    let info = settled(&rt, counted.pid(), waiting);
    // A million loop iterations are a few million VM instructions.
    assert!(info.instructions.is_some_and(|n| n > 1_000_000), "{info:?}");
    let info = settled(&rt, free.pid(), waiting);
    assert_eq!(info.instructions, None, "not counted without a limit");
    rt.shutdown();
}

#[test]
fn lightweight_processes_are_listed_by_kind() {
    let rt = runtime();
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            rt.spawn(Spawn::script("receiver.lua").lightweight())
                .unwrap()
        })
        .collect();
    for h in &handles {
        settled(&rt, h.pid(), waiting);
    }
    let all = rt.processes();
    assert_eq!(all.len(), 1000);
    assert!(all.windows(2).all(|w| w[0].pid < w[1].pid), "sorted by pid");
    assert!(all.iter().all(|p| p.kind == ProcessKind::Lightweight
        && p.memory.is_none()
        && p.waiting
            == Some(WaitingOn::Receive {
                topic: Some("job".into())
            })));
    // The census counts the same without a snapshot.
    let census = rt.census();
    assert_eq!(census.len(), 12, "every status and kind: {census:?}");
    for (status, kind, n) in census {
        let expected = if (status, kind) == (ProcessStatus::Waiting, ProcessKind::Lightweight) {
            1000
        } else {
            0
        };
        assert_eq!(n, expected, "{status:?} {kind:?}");
    }
    rt.shutdown();
}

#[test]
fn the_supervision_tree_nests_supervisors_started_by_children() {
    let rt = runtime();
    let sup = rt
        .supervise(
            Supervisor::new(Strategy::OneForOne)
                .child(ChildSpec::new("team", Spawn::script("team.lua")))
                .child(ChildSpec::new(
                    "solo",
                    Spawn::script("receiver.lua").args(["solo"]),
                )),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.whereis("inner").is_none() || rt.whereis("solo").is_none() {
        assert!(Instant::now() < deadline, "children never came up");
        std::thread::sleep(Duration::from_millis(5));
    }
    let forest = rt.supervisors();
    assert_eq!(forest.len(), 1, "one root: {forest:#?}");
    let root = &forest[0];
    assert_eq!(root.pid, sup.pid());
    let ids: Vec<&str> = root.children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["team", "solo"]);
    let team = &root.children[0];
    assert_eq!(team.supervisors.len(), 1, "{team:#?}");
    let inner = &team.supervisors[0];
    assert_eq!(inner.children.len(), 1);
    assert_eq!(inner.children[0].id, "inner");
    assert_eq!(inner.children[0].pid, rt.whereis("inner"));
    assert!(root.children[1].supervisors.is_empty());
    let native = rt.process(sup.pid()).unwrap();
    assert_eq!(native.kind, ProcessKind::Native);
    assert_eq!(&*native.engine, "native");
    rt.shutdown();
}

#[test]
fn commands_are_counted_by_name_with_how_long_their_waits_took() {
    let rt = runtime();
    let script = r#"
local time = require("time")
for _ = 1, 5 do time.now() end
for _ = 1, 3 do time.sleep(20) end
return "done"
"#;
    let done = rt
        .spawn_code(Spawn::script("timed.lua"), script)
        .expect("spawns")
        .join_blocking()
        .expect("runs");
    assert_eq!(done, troupe::Value::from("done"));
    let stats = rt.stats();
    let command = |name: &str| {
        stats
            .commands
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} not in {:#?}", stats.commands))
    };
    let now = command("time.now");
    assert_eq!(now.calls, 5);
    assert_eq!(now.waits.count(), 0, "time.now answers at once");
    let sleep = command("time.sleep");
    assert_eq!(sleep.calls, 3);
    assert_eq!(sleep.waits.count(), 3);
    // The timer wheel counts whole milliseconds: a sleep may end up to
    // 1 ms before its full length.
    assert!(
        sleep.waits.sum >= Duration::from_millis(57),
        "three 20 ms sleeps waited {:?}",
        sleep.waits.sum
    );
    let (_, at_or_below_10ms) = sleep
        .waits
        .cumulative()
        .find(|(bound, _)| *bound == Some(Duration::from_millis(10)))
        .expect("a 10 ms bucket");
    assert_eq!(at_or_below_10ms, 0, "no 20 ms sleep waited 10 ms or less");
}
