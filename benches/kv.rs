//! The `kv` module against raw redb, in the same run and on the same disk,
//! so the ratio is the cost of the module (policy check, yielding a command,
//! the IO pool hop, MessagePack) over the store itself.
//!
//! * `kv_get` — read one small map value by key: raw redb (read
//!   transaction, `get`, decode MessagePack) vs `Kv::get` from Rust vs
//!   `kv.get(key)` in a Lua process looping N times (spawn and join are
//!   amortised over the loop).
//! * `kv_put` — write one small map value: raw redb (write transaction,
//!   insert, durable commit) vs `Kv::put` vs `kv.put(key, value)` in a
//!   script. Each put is a durable (fsync'd) commit, which dominates.
//!
//! Run with `cargo bench --bench kv`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::{Database, ReadableDatabase, TableDefinition};
use troupe::{Class, HostModule, Kv, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("raw");

/// The value every group reads or writes: a small record.
fn record() -> Value {
    Value::Map(BTreeMap::from([
        ("name".to_owned(), Value::from("Ada")),
        ("visits".to_owned(), Value::Int(42)),
        ("score".to_owned(), Value::Float(9.5)),
    ]))
}

const SCRIPTS: &str = r#"
local kv = require("kv")
local op, n = ...
if op == "get" then
  for _ = 1, n do
    assert(kv.get("bench/key"))
  end
else
  local v = {name = "Ada", visits = 42, score = 9.5}
  for i = 1, n do
    assert(kv.put("bench/put/" .. (i % 64), v))
  end
end
return n
"#;

/// A runtime with `kv` on `kv`, one worker, and a script process running
/// `op` `iters` times; returns the wall time of spawn to join.
fn script_time(rt: &Runtime, op: &str, iters: u64) -> Duration {
    let n = Value::Int(i64::try_from(iters).expect("iteration count fits i64"));
    let start = Instant::now();
    let h = rt
        .spawn(Spawn::script("kv.lua").args([Value::from(op), n.clone()]))
        .expect("spawn");
    let result = h.join_blocking().expect("join");
    let elapsed = start.elapsed();
    assert_eq!(result, n);
    elapsed
}

fn kv_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let raw = Database::create(dir.path().join("raw.redb")).expect("raw db");
    let kv = Kv::open(dir.path().join("kv")).expect("kv store");
    let bytes = rmp_serde::to_vec(&record()).expect("encode");
    {
        let txn = raw.begin_write().expect("write txn");
        txn.open_table(TABLE)
            .expect("table")
            .insert("bench/key", bytes.as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    kv.put("bench/key", &record()).expect("kv put");
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("kv.lua", SCRIPTS))
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Storage))
        .module(kv.module())
        .build()
        .expect("runtime builds");

    let mut g = c.benchmark_group("kv_get");
    g.sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    g.bench_function("raw_redb", |b| {
        b.iter(|| {
            let txn = raw.begin_read().expect("read txn");
            let table = txn.open_table(TABLE).expect("table");
            let guard = table.get("bench/key").expect("get").expect("present");
            let v: Value = rmp_serde::from_slice(guard.value()).expect("decode");
            black_box(v)
        });
    });
    g.bench_function("kv_rust_api", |b| {
        b.iter(|| black_box(kv.get("bench/key").expect("get")));
    });
    g.bench_function("kv_from_script", |b| {
        b.iter_custom(|iters| script_time(&rt, "get", iters));
    });
    g.finish();

    let mut g = c.benchmark_group("kv_put");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("raw_redb", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("bench/put/{}", i % 64);
            let bytes = rmp_serde::to_vec(&record()).expect("encode");
            let txn = raw.begin_write().expect("write txn");
            txn.open_table(TABLE)
                .expect("table")
                .insert(key.as_str(), bytes.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        });
    });
    g.bench_function("kv_rust_api", |b| {
        b.iter(|| {
            i += 1;
            kv.put(&format!("bench/put/{}", i % 64), &record())
                .expect("put");
        });
    });
    g.bench_function("kv_from_script", |b| {
        b.iter_custom(|iters| script_time(&rt, "put", iters));
    });
    g.finish();

    rt.shutdown();
    kv.close();
}

criterion_group!(benches, kv_bench);
criterion_main!(benches);
