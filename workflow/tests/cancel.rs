//! Stopping a workflow. Cancelling: its script gets `CANCELED` from its
//! next command (at once while it waits in a sleep or a receive), once,
//! journaled so a replay gets it at the same point; cleanup code still
//! runs; a workflow not running gets it on its next resume. A time limit:
//! the deadline is durable, so a resume gets only what is left.

use std::time::{Duration, Instant};

use troupe_dispatcher::{ErrorKind, Value};
use troupe_runtime::{Limits, Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, Status, WorkflowStore};

mod support;

/// Waits for approval, or cleans up (a journaled sleep) when cancelled.
const APPROVAL: &str = r#"
local process, time, errors = require("process"), require("time"), require("errors")
print("waiting")
local m, err = process.receive("approve")
if err and err:kind() == errors.CANCELED then
  time.sleep(1)
  return "cleaned up"
end
return "approved by " .. m.payload
"#;

/// Sleeps a minute, or reports the cancellation.
const NAP: &str = r#"
local time = require("time")
local _, err = time.sleep(60000)
if err then return "woken: " .. err:kind() end
return "slept"
"#;

fn runtime(store: &WorkflowStore) -> Runtime {
    support::runtime(
        store,
        MemorySource::new()
            .with("approval.lua", APPROVAL)
            .with("nap.lua", NAP),
    )
}

fn store(dir: &tempfile::TempDir) -> WorkflowStore {
    WorkflowStore::open(dir.path().join("wf.redb")).unwrap()
}

/// Waits until workflow `id` is in the store.
fn wait_header(store: &WorkflowStore, id: &str) {
    let started = Instant::now();
    while store.header(id).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} never stored"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The command names and whether each step's result was `CANCELED`.
fn steps(store: &WorkflowStore, id: &str) -> Vec<(String, bool)> {
    store
        .history(id)
        .unwrap()
        .into_iter()
        .map(|Entry::Command { name, result, .. }| {
            let canceled = matches!(&result, Err(e) if e.kind() == ErrorKind::Canceled);
            (name, canceled)
        })
        .collect()
}

#[test]
fn a_waiting_workflow_is_cancelled_at_once_runs_its_cleanup_and_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let rt = runtime(&store);
    let h = rt.spawn(Spawn::workflow("a", "approval.lua")).unwrap();
    // Give it time to be parked in its receive (nothing else to wait on).
    std::thread::sleep(Duration::from_millis(100));
    rt.cancel_workflow("a").unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::from("cleaned up"));
    assert_eq!(
        steps(&store, "a"),
        [
            ("process.receive".to_owned(), true),
            ("time.sleep".to_owned(), false)
        ]
    );
    assert_eq!(store.header("a").unwrap().status, Status::Completed);
    let replayed = rt.replay("a").unwrap().join_blocking().unwrap();
    assert_eq!(replayed, Value::from("cleaned up"));
    let again = rt.cancel_workflow("a").unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    let unknown = rt.cancel_workflow("nope").unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound, "{unknown}");
    rt.shutdown();
}

#[test]
fn a_long_sleep_ends_with_the_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let rt = runtime(&store);
    let h = rt.spawn(Spawn::workflow("n", "nap.lua")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    store.cancel("n").unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::from("woken: CANCELED"));
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "not the whole minute"
    );
    assert_eq!(steps(&store, "n"), [("time.sleep".to_owned(), true)]);
    rt.shutdown();
}

#[test]
fn a_workflow_cancelled_while_down_gets_it_on_resume_after_its_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let rt = runtime(&store);
    // Shut down while it waits: it stays unfinished, and the cancellation
    // waits in the store for its resume.
    let h = rt.spawn(Spawn::workflow("d", "approval.lua")).unwrap();
    wait_header(&store, "d");
    std::thread::sleep(Duration::from_millis(100));
    rt.shutdown();
    drop(h);
    store.cancel("d").unwrap();
    let rt = runtime(&store);
    let result = rt.resume("d").unwrap().join_blocking().unwrap();
    assert_eq!(result, Value::from("cleaned up"));
    assert_eq!(
        steps(&store, "d"),
        [
            ("process.receive".to_owned(), true),
            ("time.sleep".to_owned(), false)
        ]
    );
    rt.shutdown();
}

#[test]
fn a_workflows_time_limit_holds_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let rt = runtime(&store);
    let limits = |ms| Limits {
        timeout: Some(Duration::from_millis(ms)),
        ..Limits::default()
    };
    let short = Spawn::workflow("short", "nap.lua").limits(limits(200));
    let err = rt.spawn(short).unwrap().join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(store.header("short").unwrap().status, Status::Failed);

    // A restart does not give a workflow its whole time again.
    let long = Spawn::workflow("t", "approval.lua").limits(limits(1_000));
    let h = rt.spawn(long).unwrap();
    wait_header(&store, "t");
    rt.shutdown();
    drop(h);
    let deadline = store.header("t").unwrap().deadline_ms.expect("a deadline");
    std::thread::sleep(Duration::from_millis(1_200));
    let rt = runtime(&store);
    let resumed = Instant::now();
    let err = rt.resume("t").unwrap().join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(resumed.elapsed() < Duration::from_secs(30));
    let header = store.header("t").unwrap();
    assert_eq!(
        (header.status, header.deadline_ms),
        (Status::Failed, Some(deadline))
    );
    rt.shutdown();
}
