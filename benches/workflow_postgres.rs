//! The two journal stores side by side, in the same run: a redb file and a
//! PostgreSQL database (a cluster of the bench's own, Debian's
//! `postgresql`, with its default durability: every commit is flushed),
//! each against plain processes and its raw durable commit.
//!
//! * `workflow_store_roundtrip` — as `--bench workflow`: `time.sleep(0)`
//!   (a wait: every one commits) and `time.now()` (local: rides along)
//!   looped by plain processes and by workflows, one at a time (`_1`) and
//!   256 at once (`_256`, where the group-commit writer shares each commit
//!   among the workflows committing then). Beside them: one raw redb
//!   insert + durable commit, and one raw sqlx `INSERT` + `COMMIT`.
//! * `workflow_store_replay` — `Runtime::replay` of a 10,000-step history
//!   from each store, beside a raw read of the same 10,000 records (one
//!   row each) and their MessagePack decode from each database.
//! * `workflow_failover` — how long a PostgreSQL store takes to resume a
//!   workflow whose process stopped: a runtime holding its lease stops
//!   (its lease goes, as when a killed process's session closes), and the
//!   time until another runtime on the store, built with `recover(true)`
//!   and the default lease timeout (10 s: it looks every second), has
//!   taken it over and ended it. The stops fall at moments spread over the
//!   second between two looks.
//!
//! Run with `cargo bench --features postgres --bench workflow_postgres`.

#[path = "../sources/tests/support/postgres.rs"]
mod postgres;
#[path = "support/workflows.rs"]
mod workflows;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::Database;
use sqlx::Connection;
use troupe::{Entry, LuaEngine, MemorySource, Runtime, Spawn, Status, Value, WorkflowStore};
use workflows::{LOOP, count, fresh_id, loops, raw_commit, read_raw, write_raw};

/// The commands looped: a wait and a local one.
const COMMANDS: [(&str, &str); 2] = [("sleep", "time.sleep(0)"), ("now", "time.now()")];

/// Processes running at once in the concurrent groups.
const WIDE: u64 = 256;

/// Commands each of them runs.
const EACH: u64 = 100;

/// Steps of the replayed history.
const STEPS: u64 = 10_000;

fn runtime(store: &WorkflowStore, recover: bool) -> Runtime {
    let scripts = COMMANDS
        .iter()
        .fold(MemorySource::new(), |src, (name, command)| {
            src.with(&format!("{name}.lua"), LOOP.replace("COMMAND", command))
        })
        .with(
            "wait.lua",
            "return require('process').receive('go').payload",
        );
    Runtime::builder()
        .workers(2)
        .source(scripts)
        .engine(LuaEngine::new())
        .journal_store(store.clone())
        .recover(recover)
        .build()
        .expect("runtime builds")
}

/// The time of `iters` commands looped by `procs` processes (`each`
/// commands a process when they are many, as many as asked in workflows
/// of at most [`STEPS`] when it is one).
fn commands(rt: &Runtime, script: &str, journaled: bool, procs: u64, iters: u64) -> Duration {
    if procs > 1 {
        let took = loops(rt, script, journaled, procs, EACH);
        return took.mul_f64(iters as f64 / (procs * EACH) as f64);
    }
    (0..iters.div_ceil(STEPS))
        .map(|i| loops(rt, script, journaled, 1, (iters - i * STEPS).min(STEPS)))
        .sum()
}

fn store_bench(c: &mut Criterion) {
    let pg = postgres::Postgres::start_durable();
    pg.create_database("journal");
    pg.create_database("raw");
    let dir = tempfile::tempdir().expect("temp dir");
    let raw_redb = Database::create(dir.path().join("raw.redb")).expect("raw db");
    let io = tokio::runtime::Runtime::new().expect("tokio");
    let mut raw_pg = io.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&pg.url("raw"))
            .await
            .expect("raw connection");
        sqlx::raw_sql(
            "CREATE TABLE raw (id text, step bigint, entry bytea, PRIMARY KEY (id, step))",
        )
        .execute(&mut conn)
        .await
        .expect("raw table");
        conn
    });
    let stores = [
        (
            "redb",
            WorkflowStore::open(dir.path().join("wf.redb")).expect("store"),
        ),
        (
            "postgres",
            WorkflowStore::postgres(&pg.url("journal")).expect("store"),
        ),
    ];
    let runtimes: Vec<(&str, Runtime)> = stores
        .iter()
        .map(|(name, store)| (*name, runtime(store, false)))
        .collect();

    let mut g = c.benchmark_group("workflow_store_roundtrip");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let mut step = 0u64;
    g.bench_function("raw_redb_durable_commit", |b| {
        b.iter(|| {
            step += 1;
            raw_commit(&raw_redb, step);
        });
    });
    g.bench_function("raw_postgres_durable_commit", |b| {
        b.iter(|| {
            step += 1;
            let step = i64::try_from(step).expect("fits");
            io.block_on(async {
                let mut tx = raw_pg.begin().await.expect("begin");
                sqlx::query("INSERT INTO raw (id, step, entry) VALUES ('bench', $1, $2)")
                    .bind(step)
                    .bind([1u8; 40].as_slice())
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                tx.commit().await.expect("commit");
            });
        });
    });
    for (name, _) in COMMANDS {
        let script = format!("{name}.lua");
        for width in [1, WIDE] {
            // Plain processes do not touch the store: one runtime does.
            let plain = &runtimes[0].1;
            g.bench_function(format!("{name}_plain_{width}"), |b| {
                b.iter_custom(|iters| commands(plain, &script, false, width, iters));
            });
            for (store, rt) in &runtimes {
                g.bench_function(format!("{name}_journaled_{store}_{width}"), |b| {
                    b.iter_custom(|iters| commands(rt, &script, true, width, iters));
                });
            }
        }
    }
    g.finish();

    let mut g = c.benchmark_group("workflow_store_replay");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(STEPS));
    let long = |rt: &Runtime, id: &str| {
        let h = rt
            .spawn(Spawn::workflow(id, "now.lua").args([count(STEPS)]))
            .expect("spawn");
        h.join_blocking().expect("the long workflow runs");
    };
    long(&runtimes[0].1, "long-redb");
    let history = stores[0].1.history("long-redb").expect("history");
    let entries: Vec<Vec<u8>> = history
        .iter()
        .map(|e| rmp_serde::to_vec_named(e).expect("encode"))
        .collect();
    write_raw(&raw_redb, "long", &history);
    io.block_on(async {
        let mut tx = raw_pg.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO raw (id, step, entry) SELECT 'long', * FROM UNNEST($1::bigint[], $2::bytea[])",
        )
        .bind((1..=i64::try_from(STEPS).expect("fits")).collect::<Vec<i64>>())
        .bind(&entries)
        .execute(&mut *tx)
        .await
        .expect("insert");
        tx.commit().await.expect("commit");
    });
    g.bench_function("raw_redb_read_10k", |b| {
        b.iter(|| assert_eq!(read_raw(&raw_redb, "long"), STEPS));
    });
    g.bench_function("raw_postgres_read_10k", |b| {
        b.iter(|| {
            let rows: Vec<Vec<u8>> = io.block_on(async {
                sqlx::query_scalar("SELECT entry FROM raw WHERE id = 'long' ORDER BY step")
                    .fetch_all(&mut raw_pg)
                    .await
                    .expect("select")
            });
            for bytes in &rows {
                let e: Entry = rmp_serde::from_slice(bytes).expect("decode");
                black_box(e);
            }
            assert_eq!(rows.len() as u64, STEPS);
        });
    });
    for (store, rt) in &runtimes {
        let id = format!("long-{store}");
        if *store != "redb" {
            long(rt, &id);
        }
        g.bench_function(format!("replay_10k_steps_{store}"), |b| {
            b.iter(|| {
                let h = rt.replay(&id).expect("replay");
                assert_eq!(h.join_blocking().expect("replays"), count(STEPS));
            });
        });
    }
    g.finish();
    for (_, rt) in runtimes {
        rt.shutdown();
    }

    let url = pg.url("journal");
    let survivor = WorkflowStore::postgres(&url).expect("store");
    let taker = runtime(&survivor, true);
    let mut g = c.benchmark_group("workflow_failover");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("takeover_default_lease_timeout", |b| {
        let mut stops = 0u64;
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    // Somewhere in the second between two looks.
                    stops += 1;
                    let phase = Duration::from_millis(stops * 379 % 1000);
                    let id = fresh_id("failover");
                    let holder = WorkflowStore::postgres(&url).expect("store");
                    let rt = runtime(&holder, false);
                    rt.spawn(Spawn::workflow(id.clone(), "wait.lua"))
                        .expect("spawn");
                    while survivor.header(&id).is_err() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(phase);
                    let start = Instant::now();
                    rt.shutdown();
                    drop(rt);
                    drop(holder);
                    // Its `go`, once no one runs it: the resume receives it
                    // from the inbox (or, taken over already, at once).
                    survivor.signal(&id, "go", Value::Int(1)).expect("signal");
                    while survivor.header(&id).expect("header").status != Status::Completed {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    start.elapsed()
                })
                .sum()
        });
    });
    g.finish();
    taker.shutdown();
}

criterion_group!(benches, store_bench);
criterion_main!(benches);
