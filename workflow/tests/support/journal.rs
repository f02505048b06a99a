//! Journal cases every store must pass (included with
//! `#[path = "support/journal.rs"]`, beside `support/bank.rs`), and what
//! they share: a runtime with the `bank` module, waits and values.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use troupe_dispatcher::{ErrorKind, Value};
use troupe_engines::lua::LuaEngine;
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, Status, WorkflowStore};

use crate::bank::bank;

/// A two-worker runtime on `store` with the `bank` module reporting to
/// `charges`, resuming unfinished workflows if `recover`.
pub fn runtime(
    store: &WorkflowStore,
    src: MemorySource,
    charges: &Sender<i64>,
    recover: bool,
) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .module(bank(charges))
        .journal_store(store.clone())
        .recover(recover)
        .build()
        .unwrap()
}

/// An array of ints.
pub fn ints(v: &[i64]) -> Value {
    Value::Array(v.iter().copied().map(Value::Int).collect())
}

/// The next charge, within 30 s.
pub fn next(rx: &Receiver<i64>) -> i64 {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("a charge in time")
}

/// Waits until `id` has journaled `n` steps.
pub fn wait_steps(store: &WorkflowStore, id: &str, n: usize) {
    let started = Instant::now();
    while store.history(id).map_or(0, |h| h.len()) < n {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id}: {n} steps never journaled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Charges its argument, waits for `go`, charges the payload.
pub const ORDER: &str = r#"
local bank = require("bank")
local process = require("process")
local first = bank.charge(...)
local msg = process.receive("go")
local second = bank.charge(msg.payload)
return { first, second }
"#;

/// A workflow is run until its first charge is journaled, its runtime
/// shut down, and a new runtime on `reopen()` (the same store, or a new
/// session on it) recovers it: the journaled charge is not made again, the
/// history and the end are as an uninterrupted run's, and a finished
/// workflow replays without charges, cannot be resumed or started again.
pub fn resume_serves_journaled_results(store: &WorkflowStore, reopen: &dyn Fn() -> WorkflowStore) {
    let (tx, rx) = channel();
    let src = || MemorySource::new().with("order.lua", ORDER);

    let rt = runtime(store, src(), &tx, false);
    let h = rt
        .spawn(Spawn::workflow("order-1", "order.lua").args([3]))
        .unwrap();
    assert_eq!(next(&rx), 3);
    // Once the first charge is journaled, a restart leaves the workflow
    // waiting in `receive`, unfinished.
    wait_steps(store, "order-1", 1);
    rt.shutdown();
    assert_eq!(h.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    assert_eq!(store.header("order-1").unwrap().status, Status::Running);

    let store = reopen();
    let rt = runtime(&store, src(), &tx, true);
    let mut recovered = rt.recovered();
    assert_eq!(recovered.len(), 1);
    let (id, h) = recovered.remove(0);
    assert_eq!(id, "order-1");
    h.try_send("go", 4).unwrap();
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
