//! Workflows across runtime restarts, in one OS process: a runtime is shut
//! down while its workflows wait, and a new runtime on the same store
//! resumes them. Commands with outside effects are a host module (`bank`)
//! whose handler reports every call on a channel.

use std::sync::mpsc::channel;
use std::time::Duration;

use troupe_dispatcher::{ErrorKind, Value};
use troupe_runtime::Spawn;
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, Status, WorkflowStore};

#[path = "support/bank.rs"]
mod bank;
#[path = "support/history.rs"]
mod history;
#[path = "support/journal.rs"]
mod journal;
use history::names;
use journal::{ORDER, ints, next, runtime, wait_steps};

fn store_at(dir: &tempfile::TempDir) -> WorkflowStore {
    WorkflowStore::open(dir.path().join("wf.redb"))
        .unwrap()
        .with_policy(WorkflowStore::default_policy().allow_module("bank"))
}

/// Opens the store file behind the workflow store's back, once the last
/// runtime thread holding the store (a completion in flight can keep a
/// dropped runtime alive for a moment) has let go of it.
fn open_when_released(path: &std::path::Path) -> redb::Database {
    let started = std::time::Instant::now();
    loop {
        match redb::Database::create(path) {
            Ok(db) => return db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "store never released"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn resume_serves_journaled_results_without_running_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    // One process at a time opens the file: the restarted runtime uses the
    // same store.
    journal::resume_serves_journaled_results(&store, &|| store.clone());
}

#[test]
fn reordered_commands_fail_with_nondeterminism_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let v1 = r#"
        local bank, time, process = require("bank"), require("time"), require("process")
        bank.charge(1)
        time.sleep(1)
        bank.charge(2)
        process.receive("go")
    "#;
    let v2 = r#"
        local bank, time, process = require("bank"), require("time"), require("process")
        bank.charge(1)
        bank.charge(2)
        time.sleep(1)
        process.receive("go")
    "#;
    let rt = runtime(&store, MemorySource::new().with("w.lua", v1), &tx, false);
    rt.spawn(Spawn::workflow("w", "w.lua")).unwrap();
    assert_eq!((next(&rx), next(&rx)), (1, 2));
    // The second charge ran; wait until it is journaled too, or the old
    // script's resume below would make it again (at least once).
    wait_steps(&store, "w", 3);
    rt.shutdown();

    let rt = runtime(&store, MemorySource::new().with("w.lua", v2), &tx, false);
    let err = rt.resume("w").unwrap().join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Nondeterminism, "{err}");
    let msg = err.message();
    assert!(msg.contains("\"w\" step 2"), "{msg}");
    assert!(msg.contains("bank.charge 2"), "{msg}");
    assert!(msg.contains("time.sleep"), "{msg}");
    // Nothing ran live: the diverging charge was never made again.
    assert!(rx.try_recv().is_err());
    rt.shutdown();

    // The workflow stays unfinished, so the old script can still finish it.
    assert_eq!(store.header("w").unwrap().status, Status::Running);
    let rt = runtime(&store, MemorySource::new().with("w.lua", v1), &tx, false);
    let h = rt.resume("w").unwrap();
    h.try_send("go", 0).unwrap();
    h.join_blocking().unwrap();
    assert!(rx.try_recv().is_err());
    assert_eq!(store.header("w").unwrap().status, Status::Completed);
}

#[test]
fn a_thousand_workflows_survive_a_restart() {
    const N: i64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, _rx) = channel();
    let script = r#"
        local time, process = require("time"), require("process")
        local n = ...
        time.sleep(1)
        local msg = process.receive("go")
        return n + msg.payload
    "#;
    let src = || MemorySource::new().with("w.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    std::thread::scope(|s| {
        for t in 0..4 {
            let rt = &rt;
            s.spawn(move || {
                for i in (t..N).step_by(4) {
                    rt.spawn(Spawn::workflow(format!("w{i}"), "w.lua").args([i]))
                        .unwrap();
                }
            });
        }
    });
    rt.shutdown();

    let rt = runtime(&store, src(), &tx, true);
    let recovered = rt.recovered();
    assert_eq!(recovered.len(), N as usize);
    for (_, h) in &recovered {
        h.try_send("go", 1_000_000).unwrap();
    }
    for (id, h) in recovered {
        let n: i64 = id[1..].parse().unwrap();
        assert_eq!(h.join_blocking().unwrap(), Value::Int(n + 1_000_000));
    }
    let all = store.list().unwrap();
    assert_eq!(all.len(), N as usize);
    for s in all {
        let h = s.header.unwrap();
        assert_eq!(h.status, Status::Completed, "{}", s.id);
        assert_eq!(s.steps, 2, "{}", s.id);
    }
}

#[test]
fn a_corrupt_journal_entry_fails_only_its_workflow_with_internal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let (tx, rx) = channel();
    let src = || MemorySource::new().with("order.lua", ORDER);
    {
        let store = store_at(&dir);
        let rt = runtime(&store, src(), &tx, false);
        for (id, n) in [("good", 1), ("truncated", 2), ("garbage", 3)] {
            rt.spawn(Spawn::workflow(id, "order.lua").args([n]))
                .unwrap();
        }
        let mut seen = [next(&rx), next(&rx), next(&rx)];
        seen.sort();
        assert_eq!(seen, [1, 2, 3]);
        for id in ["good", "truncated", "garbage"] {
            wait_steps(&store, id, 1);
        }
        rt.shutdown();
    }
    {
        // Damage two histories behind the store's back.
        use redb::ReadableTable;
        let db = open_when_released(&path);
        let history: redb::TableDefinition<(&str, u64), &[u8]> =
            redb::TableDefinition::new("history");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(history).unwrap();
            let whole = t.get(("truncated", 1)).unwrap().unwrap().value().to_vec();
            t.insert(("truncated", 1), &whole[..whole.len() / 2])
                .unwrap();
            t.insert(("garbage", 1), &[1u8, 0xc1, 0xff, 0x00][..])
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = store_at(&dir);
    let rt = runtime(&store, src(), &tx, true);
    let recovered = rt.recovered();
    let ids: Vec<&str> = recovered.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["good"]);
    for id in ["truncated", "garbage"] {
        let err = rt
            .resume(id)
            .err()
            .expect("a corrupt history cannot resume");
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains(&format!("{id:?}")), "{err}");
        assert!(err.message().contains("step 1"), "{err}");
        let err = store.history(id).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
    // `troupe workflow check` says which workflows read back, and why not.
    let checked = store.check().unwrap();
    let ids: Vec<&str> = checked.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["garbage", "good", "truncated"]);
    assert!(checked[1].steps.as_ref().is_ok_and(|steps| *steps >= 1));
    for bad in [&checked[0], &checked[2]] {
        let err = bad.steps.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.message().contains("step 1"), "{err}");
    }
    let (_, h) = &recovered[0];
    h.try_send("go", 5).unwrap();
    assert_eq!(h.join_blocking().unwrap(), ints(&[10, 50]));
}

#[test]
fn random_numbers_and_uuids_replay_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, _rx) = channel();
    let script = r#"
        local rand, uuid, process = require("rand"), require("uuid"), require("process")
        local drawn = { rand.int(1, 1000000000), rand.float(), uuid.v4() }
        process.receive("go")
        return drawn
    "#;
    let src = || MemorySource::new().with("r.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    rt.spawn(Spawn::workflow("r", "r.lua")).unwrap();
    // Wait until the three draws are journaled (and the script waits).
    let started = std::time::Instant::now();
    while store.history("r").unwrap().len() < 3 {
        assert!(started.elapsed() < Duration::from_secs(30), "no draws");
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.shutdown();
    let drawn: Vec<Value> = store
        .history("r")
        .unwrap()
        .into_iter()
        .map(|Entry::Command { result, .. }| result.unwrap())
        .collect();

    let rt = runtime(&store, src(), &tx, false);
    let h = rt.resume("r").unwrap();
    h.try_send("go", 0).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::Array(drawn));
}

#[test]
fn local_commands_between_two_waits_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, _rx) = channel();
    let script = r#"
        local rand, time = require("rand"), require("time")
        time.sleep(1)
        local sum = 0
        for _ = 1, 1000 do sum = sum + rand.int(1, 6) end
        time.sleep(1)
        return sum
    "#;
    let rt = runtime(
        &store,
        MemorySource::new().with("d.lua", script),
        &tx,
        false,
    );
    let before = store.commits().unwrap();
    let sum = rt
        .spawn(Spawn::workflow("d", "d.lua"))
        .unwrap()
        .join_blocking()
        .unwrap();
    store.flush().unwrap();
    let commits = store.commits().unwrap() - before;
    // The header and first timer before the first sleep, the thousand
    // draws with the second timer before the second sleep, the last sleep's
    // record before the end shows, the end record, the flush: not one per
    // draw.
    assert!(commits <= 6, "{commits} commits");
    let history = store.history("d").unwrap();
    assert_eq!(history.len(), 1002, "every draw is journaled");
    let drawn: i64 = history[1..1001]
        .iter()
        .map(|Entry::Command { result, .. }| result.as_ref().unwrap().as_i64().unwrap())
        .sum();
    assert_eq!(Value::Int(drawn), sum);
}

#[test]
fn signals_sent_while_a_workflow_is_down_are_received_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let script = r#"
        local process = require("process")
        local a = process.receive("approve")
        local b = process.receive()
        return { a.payload, b.topic, b.payload }
    "#;
    let src = || MemorySource::new().with("s.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    let h = rt.spawn(Spawn::workflow("s", "s.lua")).unwrap();
    rt.shutdown();
    assert!(h.join_blocking().is_err());

    // Sent while no process runs it; the topic filter skips the first.
    store.signal("s", "note", Value::from("hi")).unwrap();
    store.signal("s", "approve", Value::Int(7)).unwrap();
    assert_eq!(store.inbox("s").unwrap().len(), 2);
    let rt = runtime(&store, src(), &tx, true);
    let (_, h) = rt.recovered().remove(0);
    let expected = Value::Array(vec![Value::Int(7), Value::from("note"), Value::from("hi")]);
    assert_eq!(h.join_blocking().unwrap(), expected);
    assert!(
        store.inbox("s").unwrap().is_empty(),
        "received signals leave the inbox"
    );
    assert_eq!(names(&store, "s"), ["process.receive", "process.receive"]);
    assert_eq!(rt.replay("s").unwrap().join_blocking().unwrap(), expected);
    let done = store.signal("s", "late", Value::Nil).unwrap_err();
    assert_eq!(done.kind(), ErrorKind::Conflict);
    assert_eq!(
        store.signal("nope", "x", Value::Nil).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(rx.try_recv().is_err());
}

#[test]
fn signals_by_id_reach_a_running_workflow_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let script = r#"
        local process = require("process")
        local a = process.receive("approve")
        process.receive("go")
        local b = process.receive("ship")
        return { a.payload, b.payload }
    "#;
    let src = || MemorySource::new().with("r.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    let h = rt.spawn(Spawn::workflow("r", "r.lua")).unwrap();
    rt.signal("r", "approve", 1).unwrap();
    // Received and journaled: it leaves the inbox in the same commit.
    wait_steps(&store, "r", 1);
    assert!(store.inbox("r").unwrap().is_empty());
    // Sent to the mailbox but not received before the restart: kept.
    rt.signal("r", "ship", 2).unwrap();
    assert_eq!(store.inbox("r").unwrap().len(), 1);
    rt.shutdown();
    assert!(h.join_blocking().is_err());

    let rt = runtime(&store, src(), &tx, true);
    let (_, h) = rt.recovered().remove(0);
    // From another OS process's point of view: through the spool.
    WorkflowStore::post(store.path(), "r", "go", Value::Nil).unwrap();
    assert_eq!(h.join_blocking().unwrap(), ints(&[1, 2]));
    assert_eq!(
        names(&store, "r"),
        ["process.receive", "process.receive", "process.receive"]
    );
    assert!(store.inbox("r").unwrap().is_empty());
    let done = rt.signal("r", "late", 3).unwrap_err();
    assert_eq!(done.kind(), ErrorKind::Conflict, "{done}");
    assert_eq!(
        rt.signal("nope", "x", 0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // A spooled signal no workflow can take is set aside, not retried.
    let file = WorkflowStore::post(store.path(), "nope", "x", Value::Nil).unwrap();
    let rejected = file.with_extension("rejected");
    let started = std::time::Instant::now();
    while !rejected.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never rejected"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!file.exists());
    assert!(rx.try_recv().is_err());
}

#[test]
fn processes_signal_workflows_by_id_within_their_policy() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let waiter = r#"
        local m = require("process").receive("go")
        return m.payload
    "#;
    let sender = r#"
        local workflow = require("workflow")
        local id, payload = ...
        local ok, err = workflow.signal(id, "go", payload)
        if ok then return ok end
        return err:kind()
    "#;
    let src = MemorySource::new()
        .with("waiter.lua", waiter)
        .with("sender.lua", sender);
    let rt = runtime(&store, src, &tx, false);
    let h = rt.spawn(Spawn::workflow("wf", "waiter.lua")).unwrap();
    let send = |id: &str, policy: troupe_modules::Policy| {
        rt.spawn(
            Spawn::script("sender.lua")
                .args([Value::from(id), Value::Int(5)])
                .policy(policy),
        )
        .unwrap()
        .join_blocking()
        .unwrap()
    };
    let denied = WorkflowStore::default_policy().rule(
        "workflow.signal",
        "w*",
        troupe_modules::RuleEffect::Deny,
    );
    assert_eq!(send("wf", denied), Value::from("PERMISSION_DENIED"));
    assert_eq!(
        send("nope", WorkflowStore::default_policy()),
        Value::from("NOT_FOUND")
    );
    assert_eq!(
        send("wf", WorkflowStore::default_policy()),
        Value::Bool(true)
    );
    assert_eq!(h.join_blocking().unwrap(), Value::Int(5));
    assert_eq!(names(&store, "wf"), ["process.receive"]);
    assert!(store.inbox("wf").unwrap().is_empty());
    assert!(rx.try_recv().is_err());
}

/// Waits until workflow `id` has journaled `n` steps: a charge reported on
/// the channel may not be journaled yet when the test restarts the runtime
/// (effects are at least once), so tests that check none is repeated wait.
#[test]
fn workflow_version_lets_a_changed_script_resume_old_histories() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let old = r#"
        local bank, time, process = require("bank"), require("time"), require("process")
        bank.charge(1)
        time.sleep(1)
        bank.charge(2)
        process.receive("go")
        return "old"
    "#;
    // The same reordering the NONDETERMINISM test makes, guarded.
    let guarded = |min: i64| {
        format!(
            r#"
        local bank, time, process = require("bank"), require("time"), require("process")
        local workflow = require("workflow")
        bank.charge(1)
        local v = workflow.version("charge-first", {min}, 1)
        if v == workflow.DEFAULT_VERSION then
            time.sleep(1)
            bank.charge(2)
        else
            bank.charge(2)
            time.sleep(1)
        end
        process.receive("go")
        -- Asked again, the same change has the same version; the version
        -- API does not yield, so it works where Lua cannot yield.
        local again
        table.sort({{2, 1}}, function(a, b)
            again = workflow.version("charge-first", {min}, 1)
            return a < b
        end)
        return again
    "#
        )
    };
    let rt = runtime(&store, MemorySource::new().with("w.lua", old), &tx, false);
    rt.spawn(Spawn::workflow("old", "w.lua")).unwrap();
    assert_eq!((next(&rx), next(&rx)), (1, 2));
    wait_steps(&store, "old", 3);
    rt.shutdown();

    let rt = runtime(
        &store,
        MemorySource::new().with("w.lua", guarded(-1)),
        &tx,
        false,
    );
    // The old history takes the old branch: nothing diverges, nothing reruns.
    let h = rt.resume("old").unwrap();
    h.try_send("go", 0).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::Int(-1));
    assert!(rx.try_recv().is_err());
    // A new run records the newest version and takes the new branch.
    let h = rt.spawn(Spawn::workflow("new", "w.lua")).unwrap();
    assert_eq!((next(&rx), next(&rx)), (1, 2));
    h.try_send("go", 0).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::Int(1));
    assert_eq!(
        names(&store, "new"),
        [
            "bank.charge",
            "workflow.version",
            "bank.charge",
            "time.sleep",
            "process.receive"
        ]
    );
    assert_eq!(
        names(&store, "old"),
        [
            "bank.charge",
            "time.sleep",
            "bank.charge",
            "process.receive"
        ]
    );
    // Both histories replay under the guarded script.
    assert_eq!(
        rt.replay("new").unwrap().join_blocking().unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        rt.replay("old").unwrap().join_blocking().unwrap(),
        Value::Int(-1)
    );
    rt.shutdown();

    // A script that no longer supports the old history says so by change id.
    let rt = runtime(
        &store,
        MemorySource::new().with("w.lua", guarded(0)),
        &tx,
        false,
    );
    let err = rt.replay("old").unwrap().join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Nondeterminism, "{err}");
    assert!(err.message().contains("\"charge-first\""), "{err}");
    assert!(err.message().contains("DEFAULT_VERSION"), "{err}");
    assert_eq!(
        rt.replay("new").unwrap().join_blocking().unwrap(),
        Value::Int(1)
    );
    rt.shutdown();
    let newer = guarded(0).replace("0, 1)", "2, 3)");
    let rt = runtime(
        &store,
        MemorySource::new().with("w.lua", &*newer),
        &tx,
        false,
    );
    let err = rt.replay("new").unwrap().join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Nondeterminism, "{err}");
    assert!(
        err.message().contains("\"charge-first\" has version 1"),
        "{err}"
    );
    assert!(rx.try_recv().is_err());
}

const SIDE_EFFECTS: &str = r#"
    local workflow, bank, errors = require("workflow"), require("bank"), require("errors")
    local process = require("process")
    local id = workflow.id()
    -- Commands inside the function run, unjournaled; only its value is.
    local total = workflow.side_effect(function()
        return bank.charge(5) + bank.charge(6)
    end)
    local ok, err = pcall(workflow.side_effect, function()
        bank.charge(7)
        error(errors.new({ kind = "INVALID", message = "no" }))
    end)
    process.receive("go")
    return { id = id, total = total, failed = err:kind() }
"#;

#[test]
fn side_effects_run_once_and_replay_their_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let src = || MemorySource::new().with("se.lua", SIDE_EFFECTS);
    let rt = runtime(&store, src(), &tx, false);
    rt.spawn(Spawn::workflow("se", "se.lua")).unwrap();
    assert_eq!((next(&rx), next(&rx), next(&rx)), (5, 6, 7));
    wait_steps(&store, "se", 2);
    rt.shutdown();

    let rt = runtime(&store, src(), &tx, true);
    let (_, h) = rt.recovered().remove(0);
    h.try_send("go", 0).unwrap();
    let expected: Value = [
        ("id", Value::from("se")),
        ("total", Value::Int(110)),
        ("failed", Value::from("INVALID")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(h.join_blocking().unwrap(), expected);
    // Neither function ran again.
    assert!(rx.try_recv().is_err());
    assert_eq!(
        names(&store, "se"),
        [
            "workflow.side_effect",
            "workflow.side_effect",
            "process.receive"
        ]
    );

    // Outside a workflow the same script runs as is: no id, effects run.
    let h = rt
        .spawn(Spawn::script("se.lua").policy(WorkflowStore::default_policy().allow_module("bank")))
        .unwrap();
    assert_eq!((next(&rx), next(&rx), next(&rx)), (5, 6, 7));
    h.try_send("go", 0).unwrap();
    let Value::Map(mut plain) = expected else {
        unreachable!()
    };
    plain.remove("id");
    assert_eq!(h.join_blocking().unwrap(), Value::Map(plain));
}

#[test]
fn retries_are_journaled_and_not_run_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let script = r#"
        local workflow, bank, process = require("workflow"), require("bank"), require("process")
        local opts = { attempts = 5, backoff_ms = 1, multiplier = 2, non_retryable = { "INVALID" } }
        -- Refused twice (UNAVAILABLE), then accepted.
        local paid = workflow.retry(opts, function(attempt)
            return bank.charge(attempt < 3 and -attempt or attempt)
        end)
        -- INVALID is not retried; three attempts in all are not enough.
        local _, invalid = workflow.retry(opts, function() return bank.charge(-100) end)
        local _, busy = workflow.retry({ attempts = 2, backoff_ms = 1 }, function()
            return bank.charge(-9)
        end)
        process.receive("go")
        return { paid, invalid:kind(), busy:kind() }
    "#;
    let src = || MemorySource::new().with("r.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    rt.spawn(Spawn::workflow("r", "r.lua")).unwrap();
    let attempts: Vec<i64> = (0..6).map(|_| next(&rx)).collect();
    assert_eq!(attempts, [-1, -2, 3, -100, -9, -9]);
    wait_steps(&store, "r", 9);
    rt.shutdown();

    let rt = runtime(&store, src(), &tx, true);
    let (_, h) = rt.recovered().remove(0);
    h.try_send("go", 0).unwrap();
    assert_eq!(
        h.join_blocking().unwrap(),
        Value::Array(vec![
            Value::Int(30),
            Value::from("INVALID"),
            Value::from("UNAVAILABLE")
        ])
    );
    assert!(rx.try_recv().is_err(), "no attempt ran again");
    assert_eq!(
        names(&store, "r"),
        [
            "bank.charge",
            "time.sleep",
            "bank.charge",
            "time.sleep",
            "bank.charge",
            "bank.charge",
            "bank.charge",
            "time.sleep",
            "bank.charge",
            "process.receive"
        ]
    );
}

#[test]
fn a_resume_runs_with_the_policy_the_workflow_started_with() {
    let dir = tempfile::tempdir().unwrap();
    // The store's policy allows `bank`; this workflow was started without it.
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let script = r#"
        local process = require("process")
        process.receive("go")
        local ok, err = pcall(require, "bank")
        return ok and "allowed" or err:kind()
    "#;
    let src = || MemorySource::new().with("p.lua", script);
    let rt = runtime(&store, src(), &tx, false);
    rt.spawn(Spawn::workflow("narrow", "p.lua").policy(WorkflowStore::default_policy()))
        .unwrap();
    rt.spawn(Spawn::workflow("wide", "p.lua")).unwrap();
    rt.shutdown();

    let rt = runtime(&store, src(), &tx, true);
    for (id, h) in rt.recovered() {
        h.try_send("go", 0).unwrap();
        let expected = if id == "narrow" {
            "PERMISSION_DENIED"
        } else {
            "allowed"
        };
        assert_eq!(h.join_blocking().unwrap(), Value::from(expected), "{id}");
    }
    assert_eq!(
        store.header("narrow").unwrap().policy.unwrap().classes(),
        WorkflowStore::default_policy().classes()
    );
    // A replay checks the history under the same policy.
    assert_eq!(
        rt.replay("narrow").unwrap().join_blocking().unwrap(),
        Value::from("PERMISSION_DENIED")
    );
    assert!(rx.try_recv().is_err());
}

/// Polls until workflow `id` has published `want` under `key`.
fn wait_published(store: &WorkflowStore, id: &str, key: &str, want: Value) {
    let started = std::time::Instant::now();
    loop {
        match store.query(id, key) {
            Ok(v) if v == want => return,
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id}: {key} never became {want:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_running_workflows_published_state_is_queried_by_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, _rx) = channel();
    let progress = r#"
        local process, workflow = require("process"), require("workflow")
        for i = 1, 3 do
            workflow.publish("progress", {step = i})
            process.receive("next")
        end
        return "done"
    "#;
    let plain = r#"
        local ok, a, b = pcall(require("workflow").publish, "progress", 1)
        local err = ok and b or a
        return err:kind()
    "#;
    let src = MemorySource::new()
        .with("p.lua", progress)
        .with("plain.lua", plain);
    let rt = runtime(&store, src, &tx, false);
    let h = rt.spawn(Spawn::workflow("p", "p.lua")).unwrap();
    for i in 1..=3 {
        let step = Value::Map([("step".to_owned(), Value::Int(i))].into_iter().collect());
        wait_published(&store, "p", "progress", step);
        h.try_send("next", 0).unwrap();
    }
    assert_eq!(h.join_blocking().unwrap(), Value::from("done"));
    let last = store.query("p", "progress").unwrap();
    assert_eq!(last.get("step"), Some(&Value::Int(3)));
    let unknown = store.query("p", "other").unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound, "{unknown}");
    let missing = store.query("nobody", "progress").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    // Only a workflow has state to query.
    let policy = WorkflowStore::default_policy();
    let kind = rt
        .spawn(Spawn::script("plain.lua").policy(policy))
        .unwrap()
        .join_blocking()
        .unwrap();
    assert_eq!(kind, Value::from("INVALID"));
    rt.shutdown();
    // Deleting the workflow deletes what it published.
    store.delete("p").unwrap();
    let gone = store.query("p", "progress").unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
}
