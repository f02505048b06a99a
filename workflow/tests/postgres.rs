//! The PostgreSQL journal store (feature `postgres`), against a cluster of
//! its own per test (Debian's `postgresql`, see
//! `sources/tests/support/postgres.rs`): the journal's semantics as on a
//! store file (run, replay, resume after a restart, signals, queries,
//! cancellation, continue-as-new, children), and leases between stores
//! that share the database, as separate troupe processes do.

#[path = "support/bank.rs"]
mod bank;
#[path = "support/journal.rs"]
mod journal;
#[path = "../../sources/tests/support/postgres.rs"]
mod postgres;

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use journal::{ORDER, next, runtime, wait_steps};
use postgres::Postgres;
use troupe_dispatcher::{ErrorKind, Value};
use troupe_runtime::Spawn;
use troupe_sources::MemorySource;
use troupe_workflow::{Status, WorkflowStore};

const DB: &str = "journal";

/// A cluster with the journal database.
fn cluster() -> Postgres {
    let pg = Postgres::start();
    pg.create_database(DB);
    pg
}

/// A store on the cluster's journal database: each one is its own
/// session, as each troupe process has.
fn store(pg: &Postgres) -> WorkflowStore {
    WorkflowStore::postgres(&pg.url(DB))
        .unwrap()
        .with_lease_timeout(Duration::from_millis(300))
        .with_policy(WorkflowStore::default_policy().allow_module("bank"))
}

/// Waits until `what` holds (at most a minute).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_replay_and_resume_after_a_restart() {
    let pg = cluster();
    let store = store(&pg);
    assert!(store.is_shared());
    // The restarted runtime gets a new store: a new session, as a
    // restarted process has.
    journal::resume_serves_journaled_results(&store, &|| self::store(&pg));

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].steps, 3);
    let (tx, rx) = channel();
    let changed = ORDER.replace("bank.charge(...)", "bank.charge(7)");
    let rt = runtime(
        &store,
        MemorySource::new().with("order.lua", changed),
        &tx,
        false,
    );
    let err = rt.replay("order-1").unwrap().join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Nondeterminism, "{err}");
    assert!(rx.try_recv().is_err());
    rt.shutdown();

    store.delete("order-1").unwrap();
    assert_eq!(
        store.header("order-1").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn sleeps_signals_queries_cancels_and_new_runs_survive_a_restart() {
    let pg = cluster();
    let store = store(&pg);
    let (tx, _rx) = channel();
    let script = r#"
        local time, process, workflow = require("time"), require("process"), require("workflow")
        local run = ...
        workflow.publish("run", run)
        if run == 1 then workflow.continue_as_new(2) end
        time.sleep(300)
        local m, err = process.receive("go")
        if err then return "stopped: " .. err:kind() end
        return run + m.payload
    "#;
    let src = || MemorySource::new().with("w.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    for id in ["a", "b"] {
        rt.spawn(Spawn::workflow(id, "w.lua").args([1])).unwrap();
    }
    for id in ["a", "b"] {
        eventually("the second run sleeps", || {
            store.query(id, "run").ok() == Some(Value::Int(2))
                && store.history(id).is_ok_and(|h| !h.is_empty())
        });
    }
    rt.shutdown();

    // While no process runs them: a signal and a cancellation wait in the
    // database.
    let reader = self::store(&pg);
    reader.signal("a", "go", Value::Int(40)).unwrap();
    reader.cancel("b").unwrap();
    assert_eq!(reader.inbox("a").unwrap().len(), 1);
    assert_eq!(
        reader.signal("nope", "go", Value::Nil).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let store = self::store(&pg);
    let rt = runtime(&store, src(), &tx, true);
    let results: Vec<(String, Value)> = rt
        .recovered()
        .into_iter()
        .map(|(id, h)| (id, h.join_blocking().unwrap()))
        .collect();
    assert_eq!(results.len(), 2);
    for (id, result) in results {
        let want = match id.as_str() {
            "a" => Value::Int(42),
            _ => Value::from("stopped: CANCELED"),
        };
        assert_eq!(result, want, "{id}");
    }
    let runs = reader.runs("a").unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].header.status, Status::Continued);
    assert_eq!(reader.header("a").unwrap().run, 2);
    assert!(reader.inbox("a").unwrap().is_empty());
    assert_eq!(reader.query("a", "run").unwrap(), Value::Int(2));
    assert_eq!(
        reader.query("a", "nothing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(reader.cancel("a").unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(reader.check().unwrap().len(), 2);
    rt.shutdown();
}

#[test]
fn children_are_resumed_with_their_parent() {
    let pg = cluster();
    let store = store(&pg);
    let (tx, rx) = channel();
    let parent = r#"
        local workflow = require("workflow")
        local kids = {}
        for i = 1, 3 do kids[i] = workflow.start_child("kid-" .. i, "kid.lua", { i }) end
        local total = 0
        for _, kid in ipairs(kids) do total = total + workflow.await(kid) end
        return total
    "#;
    let kid = r#"
        local bank, process = require("bank"), require("process")
        local n = ...
        bank.charge(n)
        process.receive("go")
        return n
    "#;
    let src = || {
        MemorySource::new()
            .with("parent.lua", parent)
            .with("kid.lua", kid)
    };
    let rt = runtime(&store, src(), &tx, false);
    rt.spawn(Spawn::workflow("parent", "parent.lua")).unwrap();
    let mut charged: Vec<i64> = (0..3).map(|_| next(&rx)).collect();
    charged.sort_unstable();
    assert_eq!(charged, [1, 2, 3]);
    for i in 1..=3 {
        wait_steps(&store, &format!("kid-{i}"), 1);
    }
    rt.shutdown();

    let store = self::store(&pg);
    let rt = runtime(&store, src(), &tx, false);
    let h = rt.resume("parent").unwrap();
    for i in 1..=3 {
        let id = format!("kid-{i}");
        eventually("the child runs again", || rt.signal(&id, "go", 0).is_ok());
    }
    assert_eq!(h.join_blocking().unwrap(), Value::Int(6));
    assert!(rx.try_recv().is_err(), "a charge ran twice");
    let children = store.children("parent").unwrap();
    assert_eq!(children.len(), 3);
    for c in children {
        assert_eq!(c.header.unwrap().status, Status::Completed, "{}", c.id);
    }
    rt.shutdown();
}

#[test]
fn a_workflow_is_run_by_the_store_holding_its_lease_and_taken_over_when_it_goes() {
    let pg = cluster();
    let (tx, rx) = channel();
    let script = r#"
        local bank, process = require("bank"), require("process")
        local first = bank.charge(...)
        local m = process.receive("go")
        return first + bank.charge(m.payload)
    "#;
    let src = || MemorySource::new().with("w.lua", script);
    let holder = store(&pg);
    let rt_a = runtime(&holder, src(), &tx, false);
    let h = rt_a.spawn(Spawn::workflow("w", "w.lua").args([1])).unwrap();
    assert_eq!(next(&rx), 1);
    wait_steps(&holder, "w", 1);

    // Another process cannot run it while the holder does, and its
    // takeover leaves it alone.
    let other = store(&pg);
    let rt_b = runtime(&other, src(), &tx, true);
    assert!(rt_b.recovered().is_empty());
    let err = rt_b.resume("w").err().expect("the lease is held");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("lease"), "{err}");
    std::thread::sleep(Duration::from_millis(600));

    // The holder goes (its runtime and its session): the other store takes
    // the workflow over, and its receive gets the signal (from the inbox,
    // or at once if it was taken over already).
    rt_a.shutdown();
    assert_eq!(h.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    drop(rt_a);
    drop(holder);
    rt_b.signal("w", "go", 2).unwrap();
    assert_eq!(next(&rx), 2, "the second charge, run by the other store");
    eventually("the workflow completes", || {
        other
            .header("w")
            .is_ok_and(|h| h.status == Status::Completed)
    });
    assert_eq!(other.header("w").unwrap().result, Some(Ok(Value::Int(30))));
    assert!(rx.try_recv().is_err(), "the first charge ran again");
    rt_b.shutdown();
}

#[test]
fn a_bad_url_is_invalid_and_an_unreachable_database_unavailable() {
    let err = WorkflowStore::postgres("redis://localhost/0")
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let port = postgres::free_port();
    let store =
        WorkflowStore::postgres(&format!("postgres://troupe:hunter2@127.0.0.1:{port}/x")).unwrap();
    assert!(!store.path().to_string_lossy().contains("hunter2"));
    let err = store.list().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.message().contains("hunter2"), "{err}");
}

#[test]
fn a_database_restart_loses_the_leases_and_the_workflow_is_taken_over_again() {
    let mut pg = cluster();
    let store = store(&pg);
    let (tx, rx) = channel();
    let script = r#"
        local bank, process = require("bank"), require("process")
        local first = bank.charge(...)
        local m = process.receive("go")
        return first + bank.charge(m.payload)
    "#;
    let rt = runtime(&store, MemorySource::new().with("w.lua", script), &tx, true);
    let h = rt.spawn(Spawn::workflow("w", "w.lua").args([1])).unwrap();
    assert_eq!(next(&rx), 1);
    wait_steps(&store, "w", 1);

    // The writer's session ends with the server, and its lease with it:
    // the commit before the second charge fails, so the charge is not
    // made, and the workflow's process ends unfinished.
    pg.restart(true);
    store.signal("w", "go", Value::Int(2)).unwrap();
    let err = h.join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    // Its lease is free: the runtime takes it over from its history (and
    // the signal from its inbox), and it ends once, each charge made once.
    assert_eq!(next(&rx), 2);
    eventually("the workflow completes", || {
        store
            .header("w")
            .is_ok_and(|h| h.status == Status::Completed)
    });
    assert_eq!(store.header("w").unwrap().result, Some(Ok(Value::Int(30))));
    assert!(rx.try_recv().is_err(), "a charge ran twice");
    rt.shutdown();
}

#[test]
fn signals_and_cancellations_from_other_processes_reach_running_workflows() {
    let pg = cluster();
    let (tx, _rx) = channel();
    let script = r#"
        local process = require("process")
        local m, err = process.receive("go")
        if err then return "stopped: " .. err:kind() end
        local n, err2 = process.receive("go")
        if err2 then return "stopped: " .. err2:kind() end
        return m.payload + n.payload
    "#;
    let holder = store(&pg);
    let rt = runtime(
        &holder,
        MemorySource::new().with("w.lua", script),
        &tx,
        false,
    );
    let signaled = rt.spawn(Spawn::workflow("signaled", "w.lua")).unwrap();
    let canceled = rt.spawn(Spawn::workflow("canceled", "w.lua")).unwrap();

    // Another process's store writes to the database only; the runtime
    // running the workflows hands them over.
    let other = store(&pg);
    eventually("both workflows exist", || {
        other.header("signaled").is_ok() && other.header("canceled").is_ok()
    });
    other.signal("signaled", "go", Value::Int(1)).unwrap();
    other.signal("signaled", "go", Value::Int(2)).unwrap();
    other.cancel("canceled").unwrap();
    eventually("both workflows end", || {
        ["signaled", "canceled"]
            .iter()
            .all(|id| other.header(id).is_ok_and(|h| h.status != Status::Running))
    });
    assert_eq!(signaled.join_blocking().unwrap(), Value::Int(3));
    assert_eq!(
        canceled.join_blocking().unwrap(),
        Value::from("stopped: CANCELED")
    );
    // Each signal was received once, and left the inbox with it.
    assert!(other.inbox("signaled").unwrap().is_empty());
    let receives = other
        .history("signaled")
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e, troupe_workflow::Entry::Command { name, .. } if name == "process.receive"))
        .count();
    assert_eq!(receives, 2);
    rt.shutdown();
}
