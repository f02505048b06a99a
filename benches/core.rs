//! Core-loop benchmarks of Troupe, each beside a raw baseline measured in the
//! same run, so the interesting figure is the ratio rather than the absolute
//! time (the machine is shared and noisy).
//!
//! * `yield_roundtrip` — one command inside a Troupe process: `time.now()`
//!   (an immediate command, answered inside the call) and `time.sleep(0)`
//!   (yielded, answered at once by the dispatcher, resumed), against a bare
//!   mlua coroutine doing `coroutine.yield()` resumed from Rust in a loop.
//!   Troupe time is per iteration of a script looping N times; the spawn and
//!   join around the loop are a constant that criterion's linear-regression
//!   slope removes. Target: ≤ 4× bare.
//! * `spawn` — spawn + run + exit of `return 1` from the host in batches
//!   (spawn K, then join all) on a single worker, so the throughput is per
//!   core; against a fresh `Lua::new()` + load precompiled bytecode + call,
//!   and against a new coroutine in one shared state. Target: ≥ 20,000
//!   spawns/s per core; lightweight processes (coroutines in shared
//!   states): ≥ 1,000,000/s.
//! * `ping_pong` — one message round trip between two Troupe processes (a
//!   script spawns a `pong.lua` partner), on one and on two workers,
//!   isolated and lightweight (target ≤ 0.5 µs); against two OS threads
//!   ping-ponging over `std::sync::mpsc`. Each Troupe case runs again with
//!   a dashboard serving and a client following its live process list, as
//!   an open browser tab does (target: within 2% of the plain case).
//!   (Runs with preemption effectively off; see the workaround note there.)
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua};
use troupe::{Class, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

#[path = "support/lua.rs"]
mod lua_support;
#[path = "support/spawn.rs"]
mod spawn_support;

use lua_support::{PONG, count};
use spawn_support::spawn_batches;

/// Scripts used by the Troupe side of every group.
/// A script calling `call` (a `time` function) N times.
fn command_loop(call: &str) -> String {
    format!("local time = require(\"time\")\nlocal n = ...\nfor _ = 1, n do {call} end\nreturn n\n")
}

fn source() -> MemorySource {
    MemorySource::new()
        .with("noop.lua", "return 1")
        .with("now_loop.lua", command_loop("time.now()"))
        .with("sleep0_loop.lua", command_loop("time.sleep(0)"))
        .with("pong.lua", PONG)
        .with(
            "ping.lua",
            r#"
local process = require("process")
local n, light = ...
local peer = assert(process.spawn("pong.lua", { lightweight = light }))
for i = 1, n do
  assert(process.send(peer, "ping", i))
  local reply = assert(process.receive("pong"))
  if reply.payload ~= i then
    error("out of order pong")
  end
end
assert(process.send(peer, "stop"))
return n
"#,
        )
}

fn runtime(workers: usize) -> Runtime {
    runtime_with_pool(workers, troupe::DEFAULT_STATE_POOL)
}

/// A runtime whose Lua engine keeps `pool` idle states for reuse.
fn runtime_with_pool(workers: usize, pool: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .state_pool(pool)
        .source(source())
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Runs `spawn` with the iteration count as its argument and returns how
/// long it took; the script must return that count.
/// With `light`, the process is lightweight and gets `true` as a second
/// argument (for its children).
fn timed_run(rt: &Runtime, spawn: Spawn, iters: u64, light: bool) -> Duration {
    let start = Instant::now();
    let spawn = if light {
        spawn.lightweight().args([count(iters), Value::Bool(true)])
    } else {
        spawn.args([count(iters)])
    };
    let h = rt.spawn(spawn).expect("spawn");
    let v = h.join_blocking().expect("join");
    let elapsed = start.elapsed();
    assert_eq!(v, count(iters));
    elapsed
}

/// A group of this file's settings: 15 samples, 1 s warm-up, 3 s of
/// measurement, throughput per element.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    g
}

fn yield_roundtrip(c: &mut Criterion) {
    let mut g = group(c, "yield_roundtrip");

    // Baseline: a bare mlua coroutine that yields forever, resumed from Rust.
    let lua = Lua::new();
    let body: Function = lua
        .load("return function() while true do coroutine.yield() end end")
        .eval()
        .expect("coroutine body");
    let co = lua.create_thread(body).expect("thread");
    g.bench_function("bare_mlua_resume_yield", |b| {
        b.iter(|| co.resume::<()>(()).expect("resume"));
    });

    // Troupe: N calls in one process. `time.now()` is immediate (answered
    // inside the call); `time.sleep(0)` is a yielded command the dispatcher
    // answers at once: a full yield, dispatch and resume round trip.
    let rt = runtime(1);
    for (name, script) in [
        ("troupe_time_now_immediate", "now_loop.lua"),
        ("troupe_time_sleep0_yielded", "sleep0_loop.lua"),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| timed_run(&rt, Spawn::script(script), iters, false));
        });
    }
    g.finish();
    rt.shutdown();
}

fn spawn(c: &mut Criterion) {
    const BATCH: u64 = 1000;
    let mut g = group(c, "spawn");

    // Baseline 1: a fresh state per "process", running precompiled bytecode.
    let bytecode = {
        let lua = Lua::new();
        let f = lua.load("return 1").into_function().expect("compile");
        f.dump(false)
    };
    g.bench_function("bare_mlua_new_state_load_call", |b| {
        b.iter(|| {
            let lua = Lua::new();
            let f = lua
                .load(&bytecode[..])
                .set_mode(ChunkMode::Binary)
                .into_function()
                .expect("load");
            let v: i64 = f.call(()).expect("call");
            black_box(v);
        });
    });

    // Baseline 2: a new coroutine per "process" in one shared state.
    let lua = Lua::new();
    let f = lua
        .load(&bytecode[..])
        .set_mode(ChunkMode::Binary)
        .into_function()
        .expect("load");
    g.bench_function("bare_mlua_coroutine_shared_state", |b| {
        b.iter(|| {
            let co = lua.create_thread(f.clone()).expect("thread");
            let v: i64 = co.resume(()).expect("resume");
            black_box(v);
        });
    });

    // Troupe: spawn a batch from the host on one worker, then join them all;
    // with the default state pool, with none (a fresh state, five
    // libraries and the prelude per process), and lightweight (a coroutine
    // in a shared state).
    let noop = Spawn::script("noop.lua");
    for (name, pool, spawn) in [
        (
            "troupe_spawn_run_exit_1_worker",
            troupe::DEFAULT_STATE_POOL,
            noop.clone(),
        ),
        ("troupe_spawn_run_exit_1_worker_no_pool", 0, noop.clone()),
        (
            "troupe_lightweight_spawn_run_exit_1_worker",
            troupe::DEFAULT_STATE_POOL,
            noop.lightweight(),
        ),
    ] {
        let rt = runtime_with_pool(1, pool);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| spawn_batches(&rt, &spawn, BATCH, iters, &Value::Int(1)));
        });
        rt.shutdown();
    }
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = group(c, "ping_pong");

    // Baseline: two OS threads, one round trip = send + blocking receive.
    let (to_echo, echo_rx) = mpsc::sync_channel::<u64>(1);
    let (echo_tx, from_echo) = mpsc::sync_channel::<u64>(1);
    let echo = thread::spawn(move || {
        while let Ok(v) = echo_rx.recv() {
            if echo_tx.send(v).is_err() {
                break;
            }
        }
    });
    g.bench_function("os_threads_mpsc", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            to_echo.send(i).expect("send");
            assert_eq!(from_echo.recv().expect("recv"), i);
        });
    });
    drop(to_echo);
    echo.join().expect("echo thread");

    // Troupe: one script pings a partner it spawned N times; then the
    // same with a dashboard serving and a client following its process
    // list (an open browser tab), to measure what watching costs.
    for workers in [1, 2] {
        let rt = runtime(workers);
        g.bench_function(format!("troupe_processes_{workers}_workers"), |b| {
            b.iter_custom(|iters| timed_run(&rt, Spawn::script("ping.lua"), iters, false));
        });
        let watcher = Watcher::start(&rt);
        g.bench_function(
            format!("troupe_processes_{workers}_workers_dashboard_watched"),
            |b| b.iter_custom(|iters| timed_run(&rt, Spawn::script("ping.lua"), iters, false)),
        );
        watcher.stop();
        g.bench_function(
            format!("troupe_lightweight_processes_{workers}_workers"),
            |b| b.iter_custom(|iters| timed_run(&rt, Spawn::script("ping.lua"), iters, true)),
        );
        rt.shutdown();
    }
    g.finish();
}

/// A dashboard of a runtime and a client reading its live process list
/// (one view a second, as an open browser tab gets it), until stopped.
struct Watcher {
    dashboard: troupe::DashboardHandle,
    reader: thread::JoinHandle<usize>,
}

impl Watcher {
    fn start(rt: &Runtime) -> Self {
        let dashboard = troupe::Dashboard::new(rt)
            .serve("127.0.0.1:0".parse().expect("an address"))
            .expect("the dashboard starts");
        let url = format!("http://{}/api/events/processes", dashboard.local_addr());
        let reader = thread::spawn(move || {
            let io = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            io.block_on(async {
                let mut resp = reqwest::get(&url).await.expect("the stream opens");
                let mut events = 0;
                while let Ok(Some(chunk)) = resp.chunk().await {
                    events += chunk.windows(5).filter(|w| w == b"data:").count();
                }
                events
            })
        });
        Self { dashboard, reader }
    }

    /// Stops the dashboard; the client saw at least its first view.
    fn stop(self) {
        self.dashboard.stop();
        let events = self.reader.join().expect("the reader");
        assert!(events >= 1, "the client got the process list");
    }
}

criterion_group!(benches, yield_roundtrip, spawn, ping_pong);
criterion_main!(benches);
