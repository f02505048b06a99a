//! Workflows across runtime restarts, in one OS process: a runtime is shut
//! down while its workflows wait, and a new runtime on the same store
//! resumes them. Commands with outside effects are a host module (`bank`)
//! whose handler reports every call on a channel.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use parking_lot::Mutex;
use troupe_dispatcher::{Call, CommandId, ErrorKind, Value};
use troupe_engines::lua::LuaEngine;
use troupe_modules::{Class, ModuleDef, Ret};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, Status, WorkflowStore};

const CHARGE: CommandId = CommandId(2000);

/// A host module with an outside effect: `bank.charge(n)` returns `n * 10`
/// and reports `n` on the channel.
fn bank() -> ModuleDef {
    ModuleDef::new("bank")
        .class(Class::Network)
        .command("charge", |_cx, args| {
            Ok(Ret::Call(Call::new(CHARGE, args.get(0).clone())))
        })
}

fn store_at(dir: &tempfile::TempDir) -> WorkflowStore {
    WorkflowStore::open(dir.path().join("wf.redb"))
        .unwrap()
        .with_policy(WorkflowStore::default_policy().allow_module("bank"))
}

fn runtime(
    store: &WorkflowStore,
    src: MemorySource,
    charges: &Sender<i64>,
    recover: bool,
) -> Runtime {
    let charges = Mutex::new(charges.clone());
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .module(bank())
        .commands(move |b| {
            b.inline(CHARGE, "bank.charge", move |_, v| {
                let n = v.as_i64().unwrap_or_default();
                let _ = charges.lock().send(n);
                Ok(Value::Int(n * 10))
            })?;
            Ok(())
        })
        .unwrap()
        .journal_store(store.clone())
        .recover(recover)
        .build()
        .unwrap()
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

fn ints(v: &[i64]) -> Value {
    Value::Array(v.iter().copied().map(Value::Int).collect())
}

fn next(rx: &Receiver<i64>) -> i64 {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("a charge in time")
}

const ORDER: &str = r#"
local bank = require("bank")
local process = require("process")
local first = bank.charge(...)
local msg = process.receive("go")
local second = bank.charge(msg.payload)
return { first, second }
"#;

#[test]
fn resume_serves_journaled_results_without_running_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir);
    let (tx, rx) = channel();
    let src = || MemorySource::new().with("order.lua", ORDER);

    let rt = runtime(&store, src(), &tx, false);
    let h = rt
        .spawn(Spawn::workflow("order-1", "order.lua").args([3]))
        .unwrap();
    assert_eq!(next(&rx), 3);
    // The first charge is journaled before the script reaches `receive`;
    // a restart now leaves the workflow waiting there, unfinished.
    rt.shutdown();
    assert_eq!(h.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    assert_eq!(store.header("order-1").unwrap().status, Status::Running);

    let rt = runtime(&store, src(), &tx, true);
    let mut recovered = rt.recovered();
    assert_eq!(recovered.len(), 1);
    let (id, h) = recovered.remove(0);
    assert_eq!(id, "order-1");
    h.send("go", 4).unwrap();
    assert_eq!(h.join_blocking().unwrap(), ints(&[30, 40]));
    // The first charge was served from the journal: only the second ran.
    assert_eq!(next(&rx), 4);
    assert!(rx.try_recv().is_err());

    let names: Vec<String> = store
        .history("order-1")
        .unwrap()
        .into_iter()
        .map(|Entry::Command { name, .. }| name)
        .collect();
    assert_eq!(names, ["bank.charge", "process.receive", "bank.charge"]);
    let header = store.header("order-1").unwrap();
    assert_eq!(header.status, Status::Completed);
    assert_eq!(header.result, Some(Ok(ints(&[30, 40]))));

    // A finished workflow replays to the same result without any charge.
    let replayed = rt.replay("order-1").unwrap().join_blocking().unwrap();
    assert_eq!(replayed, ints(&[30, 40]));
    assert!(rx.try_recv().is_err());
    assert_eq!(
        rt.resume("order-1").err().map(|e| e.kind()),
        Some(ErrorKind::Conflict)
    );
    assert_eq!(
        rt.spawn(Spawn::workflow("order-1", "order.lua").args([1]))
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::AlreadyExists)
    );
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
    h.send("go", 0).unwrap();
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
        h.send("go", 1_000_000).unwrap();
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
    let (_, h) = &recovered[0];
    h.send("go", 5).unwrap();
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
    h.send("go", 0).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::Array(drawn));
}
