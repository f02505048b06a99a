//! Child workflows: `workflow.start_child` journals the start of a child
//! with its own id and history, `workflow.await` journals its outcome;
//! children survive restarts (resumed with their parent), their
//! parent-close policy applies when the parent ends, a child's failure
//! reaches the parent with its kind, and a child never gets more than its
//! parent's policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use troupe_dispatcher::{Command, CommandId, ErrorKind, Value};
use troupe_engines::lua::LuaEngine;
use troupe_modules::{Class, ModuleCommand, ModuleDef};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, Header, ParentClose, Status, WorkflowStore};

#[path = "support/history.rs"]
mod history;
use history::names;

/// Starts three children and returns the sum of their results.
const SUM: &str = r#"
local workflow = require("workflow")
local hs = {}
for i = 1, 3 do hs[i] = workflow.start_child("sum-" .. i, "kid.lua", { i }) end
local sum = 0
for i = 1, 3 do sum = sum + assert(workflow.await(hs[i])) end
return sum
"#;

/// Counts itself in, sleeps, counts itself out and returns ten times its
/// argument.
const KID: &str = r#"
local counter, time = require("counter"), require("time")
local i = ...
counter.add(1)
time.sleep(300)
counter.add(100)
return i * 10
"#;

/// Starts a child sleeping `ms` with the parent-close policy given, and
/// returns at once.
const CLOSER: &str = r#"
local workflow = require("workflow")
local policy, ms = ...
workflow.start_child("kid-" .. policy, "napper.lua", { ms }, { parent_close = policy })
return "done"
"#;

/// Sleeps; on a cancellation it cleans up (a journaled command) first.
const NAPPER: &str = r#"
local time, errors = require("time"), require("errors")
local _, err = time.sleep(...)
if err and err:kind() == errors.CANCELED then
  time.sleep(1)
  return "cleaned up"
end
return "slept"
"#;

/// `counter.add(n)`: an effect outside the workflow, counted by the test.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Add(i64);

impl Command for Add {
    const ID: CommandId = CommandId(2100);
    const NAME: &'static str = "counter.add";
    type Output = i64;
}

impl ModuleCommand for Add {}

fn counter(total: &Arc<AtomicI64>) -> ModuleDef {
    let total = Arc::clone(total);
    ModuleDef::new("counter")
        .class(Class::Storage)
        .typed_command("add", |_cx, (n,): (i64,)| Ok(Add(n)))
        .handle(move |_, Add(n)| Ok(total.fetch_add(n, Ordering::SeqCst) + n))
}

fn scripts() -> MemorySource {
    MemorySource::new()
        .with("sum.lua", SUM)
        .with("kid.lua", KID)
        .with("closer.lua", CLOSER)
        .with("napper.lua", NAPPER)
        .with("fails.lua", FAILS)
        .with("awaits_failure.lua", AWAITS_FAILURE)
        .with("family.lua", FAMILY)
        .with("bad_args.lua", BAD_ARGS)
        .with("escape.lua", ESCAPE)
        .with("draws.lua", DRAWS)
}

fn store(dir: &tempfile::TempDir) -> WorkflowStore {
    WorkflowStore::open(dir.path().join("wf.redb"))
        .unwrap()
        .with_policy(WorkflowStore::default_policy().allow_module("counter"))
}

fn runtime(store: &WorkflowStore, total: &Arc<AtomicI64>) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(scripts())
        .engine(LuaEngine::new())
        .module(counter(total))
        .journal_store(store.clone())
        .build()
        .unwrap()
}

/// Waits until workflow `id` has ended, and returns its header.
fn ended(store: &WorkflowStore, id: &str) -> Header {
    let started = Instant::now();
    loop {
        if let Ok(h) = store.header(id)
            && h.status != Status::Running
        {
            return h;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} never ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_parent_awaits_three_children_and_its_replay_starts_none_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    let h = rt.spawn(Spawn::workflow("sum", "sum.lua")).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::Int(60));
    assert_eq!(
        names(&store, "sum"),
        [
            "workflow.start_child",
            "workflow.start_child",
            "workflow.start_child",
            "workflow.await",
            "workflow.await",
            "workflow.await"
        ]
    );
    let children = store.children("sum").unwrap();
    let ids: Vec<&str> = children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["sum-1", "sum-2", "sum-3"]);
    for (i, c) in children.iter().enumerate() {
        let h = c.header.as_ref().unwrap();
        assert_eq!(h.status, Status::Completed);
        assert_eq!(h.parent.as_deref(), Some("sum"));
        assert_eq!(c.parent_close, ParentClose::Terminate);
        assert_eq!(h.result, Some(Ok(Value::Int(10 * (i as i64 + 1)))));
    }
    assert_eq!(total.load(Ordering::SeqCst), 303);
    let before: Vec<u64> = children
        .iter()
        .map(|c| c.header.as_ref().unwrap().started_ms)
        .collect();

    // The replay serves the starts and the awaits from the history.
    let replayed = rt.replay("sum").unwrap().join_blocking().unwrap();
    assert_eq!(replayed, Value::Int(60));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(total.load(Ordering::SeqCst), 303, "no child ran again");
    assert_eq!(store.list().unwrap().len(), 4);
    let after: Vec<u64> = store
        .children("sum")
        .unwrap()
        .iter()
        .map(|c| c.header.as_ref().unwrap().started_ms)
        .collect();
    assert_eq!(before, after, "no child started again");
    rt.shutdown();
}

#[test]
fn children_sleeping_at_a_shutdown_are_resumed_with_their_parent_and_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    let h = rt.spawn(Spawn::workflow("sum", "sum.lua")).unwrap();
    // Every child counted itself in (durably: an effect) and sleeps.
    let started = Instant::now();
    while total.load(Ordering::SeqCst) < 3 {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.shutdown();
    drop(h);
    assert_eq!(total.load(Ordering::SeqCst), 3);
    assert_eq!(store.header("sum-2").unwrap().status, Status::Running);

    let rt = runtime(&store, &total);
    let result = rt.resume("sum").unwrap().join_blocking().unwrap();
    assert_eq!(result, Value::Int(60));
    assert_eq!(
        total.load(Ordering::SeqCst),
        303,
        "each child counted in once and out once"
    );
    for c in store.children("sum").unwrap() {
        assert_eq!(c.header.unwrap().status, Status::Completed);
    }
    rt.shutdown();
}

#[test]
fn each_parent_close_policy_applies_when_the_parent_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    for (policy, ms) in [
        ("terminate", 60_000),
        ("abandon", 200),
        ("request_cancel", 60_000),
    ] {
        let spawn = Spawn::workflow(format!("close-{policy}"), "closer.lua")
            .args([Value::from(policy), Value::Int(ms)]);
        let done = rt.spawn(spawn).unwrap().join_blocking().unwrap();
        assert_eq!(done, Value::from("done"));
    }
    let terminated = ended(&store, "kid-terminate");
    assert_eq!(terminated.status, Status::Failed);
    let err = terminated.result.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert!(err.message().contains("terminated"), "{err}");
    assert!(
        names(&store, "kid-terminate").len() <= 1,
        "no cleanup ran: {:?}",
        names(&store, "kid-terminate")
    );

    let abandoned = ended(&store, "kid-abandon");
    assert_eq!(
        (abandoned.status, abandoned.result),
        (Status::Completed, Some(Ok(Value::from("slept"))))
    );

    let cancelled = ended(&store, "kid-request_cancel");
    assert_eq!(
        cancelled.result,
        Some(Ok(Value::from("cleaned up"))),
        "the child saw CANCELED and ran its cleanup"
    );
    assert_eq!(
        names(&store, "kid-request_cancel"),
        ["time.sleep", "time.sleep"]
    );
    let kids = store.children("close-abandon").unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].parent_close, ParentClose::Abandon);
    rt.shutdown();
}

/// Fails with a kind of its own.
const FAILS: &str = r#"
local errors = require("errors")
error(errors.new({ kind = errors.CONFLICT, message = "boom" }))
"#;

/// Awaits a failing child and reports its error.
const AWAITS_FAILURE: &str = r#"
local workflow = require("workflow")
local h = workflow.start_child("failing", "fails.lua")
local v, err = workflow.await(h)
assert(v == nil)
return { err:kind(), err:message(), err:details().child }
"#;

#[test]
fn a_childs_failure_reaches_await_with_its_kind_and_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    let got = rt
        .spawn(Spawn::workflow("awaits", "awaits_failure.lua"))
        .unwrap()
        .join_blocking()
        .unwrap();
    let Value::Array(got) = got else {
        panic!("{got:?}")
    };
    assert_eq!(got[0], Value::from("CONFLICT"));
    let message = got[1].as_str().unwrap();
    assert!(
        message.contains("\"failing\"") && message.contains("boom"),
        "{message}"
    );
    assert_eq!(got[2], Value::from("failing"));
    // Replayed from the history, the same.
    let replayed = rt.replay("awaits").unwrap().join_blocking().unwrap();
    assert_eq!(replayed, Value::Array(got));
    rt.shutdown();
}

/// Starts a child of each policy and awaits the cancellable one.
const FAMILY: &str = r#"
local workflow = require("workflow")
workflow.start_child("fam-t", "napper.lua", { 60000 })
workflow.start_child("fam-ab", "napper.lua", { 300 }, { parent_close = "abandon" })
local rc = workflow.start_child("fam-rc", "napper.lua", { 60000 }, { parent_close = "request_cancel" })
print("awaiting")
local _, err = workflow.await(rc)
return "parent: " .. err:kind()
"#;

#[test]
fn a_cancelled_parent_ends_its_await_and_its_children_follow_their_policies() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    let h = rt.spawn(Spawn::workflow("fam", "family.lua")).unwrap();
    let started = Instant::now();
    while !names(&store, "fam").contains(&"workflow.start_child".to_owned())
        || store.history("fam").unwrap().len() < 3
    {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    rt.cancel_workflow("fam").unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::from("parent: CANCELED"));
    let await_step = store.history("fam").unwrap().pop().unwrap();
    let Entry::Command { name, result, .. } = await_step;
    assert_eq!(name, "workflow.await");
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Canceled);

    let t = ended(&store, "fam-t");
    assert_eq!(t.result.unwrap().unwrap_err().kind(), ErrorKind::Canceled);
    let rc = ended(&store, "fam-rc");
    assert_eq!(rc.result, Some(Ok(Value::from("cleaned up"))));
    let ab = ended(&store, "fam-ab");
    assert_eq!(ab.result, Some(Ok(Value::from("slept"))));
    rt.shutdown();
}

/// Every misuse, as the error kinds the script sees (raised or returned).
const BAD_ARGS: &str = r#"
local workflow = require("workflow")
local function kind(...)
  local ok, v, e = pcall(...)
  if not ok then return v:kind() end
  if e ~= nil then return e:kind() end
  return "ok " .. tostring(v)
end
local s = workflow.start_child
return {
  kind(s, nil, "napper.lua"),
  kind(s, "b1", 5),
  kind(s, "b2", "napper.lua", "not a table"),
  kind(s, "b3", "napper.lua", {}, { parent_close = "explode" }),
  kind(s, "b4", "napper.lua", {}, { bogus = 1 }),
  kind(s, "b5", "napper.lua", {}, { timeout = "soon" }),
  kind(s, "b6", "napper.lua", {}, { allow = { "no-such-class" } }),
  kind(s, "b7", "napper.lua", {}, 42),
  kind(workflow.await, 42),
  kind(workflow.await, "nobody"),
  kind(workflow.await, "bad_args", "soon"),
  kind(s, "twin", "napper.lua", { 1 }),
  kind(s, "twin", "napper.lua", { 1 }),
  kind(s, "twin", "kid.lua", { 1 }),
  kind(s, "top", "napper.lua", { 1 }),
  kind(s, "slow", "napper.lua", { 60000 }),
  kind(workflow.await, "slow", 20),
}
"#;

#[test]
fn bad_arguments_are_invalid_and_taken_ids_already_exist() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    let top = rt.spawn(Spawn::workflow("top", "napper.lua").args([1]));
    top.unwrap().join_blocking().unwrap();
    let got = rt
        .spawn(Spawn::workflow("bad_args", "bad_args.lua"))
        .unwrap()
        .join_blocking()
        .unwrap();
    let kinds: Vec<&str> = match &got {
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        kinds,
        [
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID",
            "NOT_FOUND",
            "INVALID",
            "ok twin",
            "ok twin",
            "ALREADY_EXISTS",
            "ALREADY_EXISTS",
            "ok slow",
            "TIMEOUT",
        ]
    );
    // Outside a workflow, both are INVALID.
    let plain = rt
        .spawn(Spawn::script("bad_args.lua").policy(WorkflowStore::default_policy()))
        .unwrap()
        .join_blocking()
        .unwrap();
    let plain_kinds: Vec<&str> = match &plain {
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
        other => panic!("{other:?}"),
    };
    assert!(
        plain_kinds[11..].iter().all(|k| *k == "INVALID"),
        "{plain_kinds:?}"
    );
    // The timed-out child was terminated with its parent.
    let slow = ended(&store, "slow");
    assert_eq!(
        slow.result.unwrap().unwrap_err().kind(),
        ErrorKind::Canceled
    );
    rt.shutdown();
}

/// Draws a random number in a child that asks for the `nondeterministic`
/// class, and in one that asks for nothing.
const ESCAPE: &str = r#"
local workflow = require("workflow")
local wider = workflow.start_child("wider", "draws.lua", {}, { allow = { "nondeterministic", "workflow" } })
local same = workflow.start_child("same", "draws.lua")
local _, e1 = workflow.await(wider)
local _, e2 = workflow.await(same)
return { e1 and e1:kind(), e2 and e2:kind() }
"#;

const DRAWS: &str = r#"
local rand = require("rand")
return rand.int(1, 6)
"#;

#[test]
fn a_child_gets_no_module_its_parent_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let total = Arc::new(AtomicI64::new(0));
    let rt = runtime(&store, &total);
    let policy = WorkflowStore::default_policy().deny_module("rand");
    let got = rt
        .spawn(Spawn::workflow("escape", "escape.lua").policy(policy))
        .unwrap()
        .join_blocking()
        .unwrap();
    assert_eq!(
        got,
        Value::Array(vec![
            Value::from("PERMISSION_DENIED"),
            Value::from("PERMISSION_DENIED")
        ])
    );
    let rand = troupe_modules::builtin::all()
        .into_iter()
        .find(|m| m.names().any(|n| n == "rand"))
        .expect("the rand module");
    for id in ["wider", "same"] {
        let h = store.header(id).unwrap();
        let err = h.result.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{id}: {err}");
        let policy = h.policy.expect("a journaled policy");
        assert!(!policy.allows(&rand), "{id} keeps its parent's deny");
    }
    rt.shutdown();
}
