//! The loops the workflow benches time (included with
//! `#[path = "support/workflows.rs"]`): processes, plain or journaled,
//! each repeating one command.
// Each bench uses a part of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use troupe::{Entry, Runtime, Spawn, Value, WorkflowStore};

/// The raw baseline's table: `(id, step)` → an entry or 40 bytes.
pub const RAW: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("raw");

/// The raw baseline of a commit: one 40-byte insert at `step`, durably.
pub fn raw_commit(raw: &Database, step: u64) {
    let txn = raw.begin_write().expect("write txn");
    txn.open_table(RAW)
        .expect("table")
        .insert(("bench", step), [1u8; 40].as_slice())
        .expect("insert");
    txn.commit().expect("commit");
}

/// Writes `history` raw under `id`, one MessagePack row per step.
pub fn write_raw(raw: &Database, id: &str, history: &[Entry]) {
    let txn = raw.begin_write().expect("write txn");
    {
        let mut t = txn.open_table(RAW).expect("table");
        for (step, e) in (1..).zip(history) {
            let bytes = rmp_serde::to_vec_named(e).expect("encode");
            t.insert((id, step), bytes.as_slice()).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

/// Reads and decodes the raw rows of `id`; how many there were.
pub fn read_raw(raw: &Database, id: &str) -> u64 {
    let txn = raw.begin_read().expect("read txn");
    let t = txn.open_table(RAW).expect("table");
    let mut n = 0;
    for row in t.range((id, 1)..=(id, u64::MAX)).expect("range") {
        let (_, v) = row.expect("row");
        let e: Entry = rmp_serde::from_slice(v.value()).expect("decode");
        black_box(e);
        n += 1;
    }
    n
}

/// A loop of `COMMAND`, `n` times, after a `go` when `parked`.
pub const LOOP: &str = r#"
local time, process = require("time"), require("process")
local n, parked = ...
if parked then process.receive("go") end
for _ = 1, n do COMMAND end
return n
"#;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A workflow id not used before in this run: `PREFIX-N`.
pub fn fresh_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// A count as a script argument.
pub fn count(n: u64) -> Value {
    Value::Int(i64::try_from(n).expect("count fits i64"))
}

/// Spawns `procs` processes running `script` (workflows if `journaled`)
/// parked in `receive`, then releases them to loop `each` times and
/// returns the wall time from the release until all of them ended.
pub fn loops(rt: &Runtime, script: &str, journaled: bool, procs: u64, each: u64) -> Duration {
    let handles: Vec<_> = (0..procs)
        .map(|_| {
            let spawn = if journaled {
                Spawn::workflow(fresh_id("bench"), script)
            } else {
                Spawn::script(script).policy(WorkflowStore::default_policy())
            };
            rt.spawn(spawn.args([count(each), Value::Bool(true)]))
                .expect("spawn")
        })
        .collect();
    let start = Instant::now();
    for h in &handles {
        h.try_send("go", Value::Nil).expect("release");
    }
    for h in handles {
        assert_eq!(h.join_blocking().expect("join"), count(each));
    }
    start.elapsed()
}
