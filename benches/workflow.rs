//! Durable workflows against plain processes and raw redb, in the same run
//! and on the same disk.
//!
//! * `workflow_roundtrip` — one command yielded in a loop by plain
//!   processes and by workflows. `time.now()` is local to a workflow: its
//!   record rides along with the next commit, so a journaled `time.now`
//!   costs no `fsync` of its own (the loop's end commits them all).
//!   `time.sleep(0)` is a wait: what is buffered commits before it starts,
//!   so every one pays a durable commit, shared by all the workflows
//!   committing at that moment. Sequentially (`_1`) one workflow pays the
//!   whole commit (beside it: one raw redb durable commit); with 256
//!   processes at once (`_256`: spawned and parked in `receive` before the
//!   clock starts, then each looping; time per command, the journaled
//!   `receive` and each workflow's end record included) the group-commit
//!   writer shares each `fsync`, which is where the ≤ 3× target applies.
//! * `workflow_replay` — `Runtime::replay` of a 10,000-step history (read
//!   it, run the script, serve every step from it), beside a raw redb range
//!   read and MessagePack decode of the same 10,000 records.
//!
//! Run with `cargo bench --bench workflow`.

#[path = "support/workflows.rs"]
mod workflows;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::Database;
use troupe::{LuaEngine, MemorySource, Runtime, Spawn, WorkflowStore};
use workflows::{LOOP, count, loops, raw_commit, read_raw, write_raw};

/// The commands looped: a local one and a wait.
const COMMANDS: [(&str, &str); 2] = [("now", "time.now()"), ("sleep", "time.sleep(0)")];

/// Processes running at once in the concurrent groups.
const WIDE: u64 = 256;

/// Commands each of them runs.
const EACH: u64 = 100;

/// Steps of the replayed history.
const STEPS: u64 = 10_000;

/// The time of `iters` commands: `procs` processes running `script`,
/// looping `each` times, scaled to `iters` commands.
fn per_command(
    rt: &Runtime,
    script: &str,
    journaled: bool,
    (procs, each): (u64, u64),
    iters: u64,
) -> Duration {
    let took = loops(rt, script, journaled, procs, each);
    took.mul_f64(iters as f64 / (procs * each) as f64)
}

fn workflow_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let raw = Database::create(dir.path().join("raw.redb")).expect("raw db");
    let store = WorkflowStore::open(dir.path().join("wf.redb")).expect("store");
    let rt = Runtime::builder()
        .workers(2)
        .source(
            COMMANDS
                .iter()
                .fold(MemorySource::new(), |src, (name, command)| {
                    src.with(&format!("{name}.lua"), LOOP.replace("COMMAND", command))
                }),
        )
        .engine(LuaEngine::new())
        .journal_store(store.clone())
        .build()
        .expect("runtime builds");

    let mut g = c.benchmark_group("workflow_roundtrip");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    let mut step = 0u64;
    g.bench_function("raw_redb_durable_commit", |b| {
        b.iter(|| {
            step += 1;
            raw_commit(&raw, step);
        });
    });
    for (name, _) in COMMANDS {
        let script = format!("{name}.lua");
        for (journaled, kind) in [(false, "plain"), (true, "journaled")] {
            for (procs, each, width) in [(1, None, "1"), (WIDE, Some(EACH), "256")] {
                g.bench_function(format!("{name}_{kind}_{width}"), |b| {
                    b.iter_custom(|iters| match each {
                        Some(each) => per_command(&rt, &script, journaled, (procs, each), iters),
                        // A workflow's history is capped (see
                        // `WorkflowStore::with_history_limit`): a long
                        // loop is several workflows, one after another.
                        None => (0..iters.div_ceil(STEPS))
                            .map(|i| {
                                let n = (iters - i * STEPS).min(STEPS);
                                loops(&rt, &script, journaled, procs, n)
                            })
                            .sum(),
                    });
                });
            }
        }
    }
    g.finish();

    // One 10,000-step history, and the same records written raw.
    let h = rt
        .spawn(Spawn::workflow("long", "now.lua").args([count(STEPS)]))
        .expect("spawn");
    h.join_blocking().expect("the long workflow runs");
    let history = store.history("long").expect("history");
    assert_eq!(history.len() as u64, STEPS);
    write_raw(&raw, "long", &history);

    let mut g = c.benchmark_group("workflow_replay");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(STEPS));
    g.bench_function("raw_redb_read_10k", |b| {
        b.iter(|| assert_eq!(read_raw(&raw, "long"), STEPS));
    });
    g.bench_function("replay_10k_steps", |b| {
        b.iter(|| {
            let h = rt.replay("long").expect("replay");
            assert_eq!(h.join_blocking().expect("replays"), count(STEPS));
        });
    });
    g.finish();
    rt.shutdown();
}

criterion_group!(benches, workflow_bench);
criterion_main!(benches);
