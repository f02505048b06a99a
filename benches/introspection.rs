//! The cost of looking inside a running runtime, beside a raw baseline in
//! the same run.
//!
//! * `snapshot_100k` — `Runtime::processes()` with 100,000 live lightweight
//!   processes, each waiting in `process.receive("job")` with a name and
//!   one queued message; against iterating a bare `DashMap` of 100,000
//!   `Arc`ed records and cloning a string and two integers out of each
//!   (what any snapshot of a concurrent table costs at least), and against
//!   `Runtime::process_count()`.
//! * `one_process` — `Runtime::process(pid)` (with the queued topics)
//!   among the same 100,000, against one `DashMap::get`.
//!
//! Run with `cargo bench --bench introspection`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dashmap::DashMap;
use troupe::{Class, LuaEngine, MemorySource, Policy, Runtime, Spawn};

const PROCESSES: u64 = 100_000;

const WAITER: &str = r#"
local process = require("process")
process.receive("job")
"#;

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(MemorySource::new().with("waiter.lua", WAITER))
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Spawns the waiters, each with one queued message of another topic, and
/// waits until all are parked in their receive.
fn populate(rt: &Runtime) -> Vec<troupe::Pid> {
    let pids: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let h = rt
                .spawn(Spawn::script("waiter.lua").lightweight())
                .expect("spawn");
            rt.try_send(h.pid(), "other", 1).expect("send");
            h.pid()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while rt
        .processes()
        .iter()
        .any(|p| p.waiting.is_none() || p.mailbox_len != 1)
    {
        assert!(Instant::now() < deadline, "the waiters never settled");
        std::thread::sleep(Duration::from_millis(50));
    }
    pids
}

/// What the baseline copies out of each record.
struct Record {
    key: String,
    mailbox: usize,
    capacity: usize,
}

fn introspection(c: &mut Criterion) {
    let rt = runtime();
    let pids = populate(&rt);
    let table: DashMap<u64, Arc<Record>> = (0..PROCESSES)
        .map(|i| {
            let r = Record {
                key: "waiter.lua".to_owned(),
                mailbox: 1,
                capacity: 1024,
            };
            (i, Arc::new(r))
        })
        .collect();

    let mut g = c.benchmark_group("snapshot_100k");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(PROCESSES));
    g.bench_function("raw_dashmap_copy", |b| {
        b.iter(|| {
            let out: Vec<(String, usize, usize)> = table
                .iter()
                .map(|r| (r.key.clone(), r.mailbox, r.capacity))
                .collect();
            black_box(out)
        });
    });
    g.bench_function("process_count", |b| {
        b.iter(|| black_box(rt.process_count()))
    });
    g.bench_function("processes", |b| {
        b.iter(|| {
            let all = rt.processes();
            assert_eq!(all.len() as u64, PROCESSES);
            black_box(all)
        });
    });
    g.finish();

    let mut g = c.benchmark_group("one_process");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let pid = pids[pids.len() / 2];
    g.bench_function("raw_dashmap_get", |b| {
        b.iter(|| black_box(table.get(&(PROCESSES / 2)).map(|r| r.mailbox)));
    });
    g.bench_function("process", |b| {
        b.iter(|| black_box(rt.process(pid).expect("alive")));
    });
    g.finish();
    rt.shutdown();
}

criterion_group!(benches, introspection);
criterion_main!(benches);
