//! Script source benchmarks, each beside a baseline measured in the same
//! run, so the ratio is the figure that counts.
//!
//! * `file_get` — one `FileSource::get` of an unchanged 2 KB script (served
//!   from its cache: one `lstat`), beside the raw `std::fs::read` of the
//!   same file, what a `get` did before the cache (resolve the root and the
//!   path, read, hash) and a `MemorySource::get`.
//! * `spawn_from_source` — spawn + run + exit of `return 1` (1 worker, in
//!   batches) with the script read from a `MemorySource` (the baseline: an
//!   in-memory map), from a `CachedSource` over a `FileSource` (what a host
//!   serving scripts from disk with hot reload uses), and from a bare
//!   `FileSource` (its own cache, validated by a `stat` per spawn).
//! * `reload_latency` — time from saving an edited script (write a temporary
//!   file, rename it over the old one, as editors do) until a spawn runs the
//!   new code, through `CachedSource<FileSource>` with `hot_reload(true)`;
//!   against the raw notification: the same save until a bare
//!   `FileSource::watch` reports it. Both use the default 50 ms debounce,
//!   which dominates; each save starts from a quiet watcher.
//!
//! Run with `cargo bench --bench sources`.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use troupe::{CachedSource, Change, FileSource, MemorySource, Runtime, Source, Spawn, Value};

#[path = "support/sources.rs"]
mod source_support;

use source_support::runtime;

fn save(dir: &Path, name: &str, code: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, code).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// Waits until a file written now is old enough for `FileSource` to keep
/// its content (content read within 2 s of a change is read again).
fn settle_file_cache() {
    std::thread::sleep(Duration::from_millis(2_100));
}

fn file_get(c: &mut Criterion) {
    let mut g = c.benchmark_group("file_get");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let dir = tempfile::tempdir().expect("temp dir");
    let code = format!("return {{{}}}\n", "1, ".repeat(680));
    save(dir.path(), "s.lua", &code);
    settle_file_cache();
    let path = dir.path().join("s.lua");
    g.bench_function("std_fs_read", |b| {
        b.iter(|| std::fs::read(&path).expect("read"));
    });
    g.bench_function("resolve_read_hash", |b| {
        b.iter(|| {
            let root = dir.path().canonicalize().expect("root");
            let real = path.canonicalize().expect("path");
            assert!(real.starts_with(&root));
            let code = std::fs::read(&real).expect("read");
            // The FNV-1a content hash `Script::from_content` computes.
            code.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
            })
        });
    });
    let files = FileSource::new(dir.path());
    g.bench_function("file_source_get", |b| {
        b.iter(|| files.get("s.lua").expect("get"));
    });
    let memory = MemorySource::new().with("s.lua", &code);
    g.bench_function("memory_source_get", |b| {
        b.iter(|| memory.get("s.lua").expect("get"));
    });
    g.finish();
    assert_eq!(
        files.disk_reads(),
        1,
        "every get after the first was cached"
    );
}

fn spawn_from_source(c: &mut Criterion) {
    const BATCH: u64 = 500;
    let mut g = c.benchmark_group("spawn_from_source");
    g.sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BATCH));
    let dir = tempfile::tempdir().expect("temp dir");
    save(dir.path(), "noop.lua", "return 1");
    settle_file_cache();
    let cases: [(&str, Runtime); 3] = [
        (
            "memory",
            runtime(MemorySource::new().with("noop.lua", "return 1")),
        ),
        (
            "cached_file",
            runtime(CachedSource::new(FileSource::new(dir.path()))),
        ),
        ("file", runtime(FileSource::new(dir.path()))),
    ];
    for (name, rt) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let handles: Vec<_> = (0..BATCH)
                    .map(|_| rt.spawn(Spawn::script("noop.lua")).expect("spawn"))
                    .collect();
                for h in handles {
                    assert_eq!(h.join_blocking().expect("join"), Value::Int(1));
                }
            });
        });
    }
    g.finish();
    for (_, rt) in cases {
        rt.shutdown();
    }
}

/// Lets the file watcher's debounce window close, so every measured save
/// starts from a quiet watcher (not timed).
fn settle() {
    std::thread::sleep(Duration::from_millis(150));
}

fn reload_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("reload_latency");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().expect("temp dir");
    save(dir.path(), "v.lua", "return 0");
    let mut version = 0_i64;

    let files = FileSource::new(dir.path());
    let watch = files.watch("").expect("watch");
    g.bench_function("raw_file_watch_event", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                version += 1;
                settle();
                let start = Instant::now();
                save(dir.path(), "v.lua", &format!("return {version}"));
                loop {
                    match watch.recv_timeout(Duration::from_secs(10)) {
                        Some(Change::Updated { key }) if key == "v.lua" => break,
                        Some(_) => {}
                        None => panic!("no file event"),
                    }
                }
                total += start.elapsed();
                while watch.try_recv().is_some() {}
            }
            total
        });
    });
    drop(watch);

    let rt = runtime(CachedSource::new(FileSource::new(dir.path())));
    g.bench_function("write_to_new_code_served", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                settle();
                // Served from the cache now (a read racing the last
                // invalidation is not cached, so make sure it is).
                let h = rt.spawn(Spawn::script("v.lua")).expect("spawn");
                assert_eq!(h.join_blocking().expect("join"), Value::Int(version));
                version += 1;
                let start = Instant::now();
                save(dir.path(), "v.lua", &format!("return {version}"));
                let deadline = start + Duration::from_secs(10);
                loop {
                    let h = rt.spawn(Spawn::script("v.lua")).expect("spawn");
                    if h.join_blocking().expect("join") == Value::Int(version) {
                        break;
                    }
                    assert!(Instant::now() < deadline, "new code never served");
                    std::thread::sleep(Duration::from_micros(200));
                }
                total += start.elapsed();
            }
            total
        });
    });
    g.finish();
    rt.shutdown();
}

criterion_group!(benches, file_get, spawn_from_source, reload_latency);
criterion_main!(benches);
