//! The loops the workflow benches time (included with
//! `#[path = "support/workflows.rs"]`): processes, plain or journaled,
//! each repeating one command.
// Each bench uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use troupe::{Runtime, Spawn, Value, WorkflowStore};

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

