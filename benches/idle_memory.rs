//! Memory per idle Troupe process — a process blocked in
//! `process.receive()` — beside two raw mlua baselines measured in the same
//! run: a fresh `Lua::new()` kept alive, and a coroutine suspended in
//! `coroutine.yield()` in one shared state. Target: ≤ 40 KB per idle
//! (isolated) process, ≤ 2 KB per idle lightweight process.
//!
//! Each measurement runs in its own child process (this binary re-executed
//! with `TROUPE_IDLE_MODE` set), so memory freed by one measurement cannot be
//! reused by the next and hide its growth. A measurement reads the resident
//! set size (`/proc/self/statm`) before and after creating N idle units, once
//! the RSS has settled, and prints bytes per unit.
//!
//! Run with `cargo bench --bench idle_memory` (Linux only). `TROUPE_IDLE_N`
//! overrides N (default 20,000).

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mlua::{Function, Lua, Thread};
use troupe::{Class, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

const MODE_VAR: &str = "TROUPE_IDLE_MODE";
const DEFAULT_N: usize = 20_000;

/// Resident set size of this process in bytes.
fn rss_bytes() -> u64 {
    troupe::machine::resident_memory().expect("/proc/self/statm (Linux)")
}

/// Polls the RSS until it changes by less than 0.5 % over three polls 100 ms
/// apart (or 10 s pass), then returns it.
fn settled_rss() -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = rss_bytes();
    let mut stable = 0;
    while stable < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let now = rss_bytes();
        if now.abs_diff(last) * 200 < last {
            stable += 1;
        } else {
            stable = 0;
        }
        last = now;
    }
    last
}

fn per_unit(before: u64, after: u64, n: usize) -> u64 {
    after.saturating_sub(before) / n as u64
}

/// Baseline: N fresh `Lua::new()` states kept alive.
fn bare_states(n: usize) -> u64 {
    let before = settled_rss();
    let mut states = Vec::with_capacity(n);
    for _ in 0..n {
        let lua = Lua::new();
        let v: i64 = lua.load("return 1").eval().expect("eval");
        assert_eq!(v, 1);
        states.push(lua);
    }
    let after = settled_rss();
    assert_eq!(states.len(), n);
    per_unit(before, after, n)
}

/// Baseline: N coroutines suspended in `coroutine.yield()` in one state.
fn bare_coroutines(n: usize) -> u64 {
    let lua = Lua::new();
    let body: Function = lua
        .load("return function() coroutine.yield() return 1 end")
        .eval()
        .expect("body");
    let before = settled_rss();
    let mut threads: Vec<Thread> = Vec::with_capacity(n);
    for _ in 0..n {
        let co = lua.create_thread(body.clone()).expect("thread");
        co.resume::<()>(()).expect("resume to the yield");
        threads.push(co);
    }
    let after = settled_rss();
    assert_eq!(threads.len(), n);
    per_unit(before, after, n)
}

/// Troupe: N processes blocked in `process.receive()` (lightweight ones
/// with `light`).
fn troupe_idle(n: usize, light: bool) -> u64 {
    let src = MemorySource::new()
        .with(
            "idle.lua",
            "local process = require('process') process.receive() return 1",
        )
        .with("noop.lua", "return 1");
    let rt = Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime");
    // Warm up: compile cache, worker threads, first states.
    for _ in 0..100 {
        let h = rt.spawn(Spawn::script("noop.lua")).expect("spawn");
        assert_eq!(h.join_blocking().expect("join"), Value::Int(1));
    }
    let before = settled_rss();
    let mut pids = Vec::with_capacity(n);
    for _ in 0..n {
        let spawn = Spawn::script("idle.lua");
        let spawn = if light { spawn.lightweight() } else { spawn };
        pids.push(rt.spawn(spawn).expect("spawn").pid());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.process_count() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(rt.process_count() >= n, "only {} alive", rt.process_count());
    let after = settled_rss();
    assert!(rt.process_count() >= n, "idle processes exited");
    for pid in pids {
        rt.kill(pid);
    }
    rt.shutdown();
    per_unit(before, after, n)
}

fn measure(mode: &str, n: usize) -> u64 {
    match mode {
        "troupe" => troupe_idle(n, false),
        "troupe_lightweight" => troupe_idle(n, true),
        "lua_state" => bare_states(n),
        "coroutine" => bare_coroutines(n),
        other => panic!("unknown mode {other:?}"),
    }
}

fn main() {
    let n = std::env::var("TROUPE_IDLE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_N);
    if let Ok(mode) = std::env::var(MODE_VAR) {
        println!("{}", measure(&mode, n));
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let exe = std::env::current_exe().expect("current exe");
    let run = |mode: &str| -> u64 {
        let out = Command::new(&exe)
            .env(MODE_VAR, mode)
            .env("TROUPE_IDLE_N", n.to_string())
            .output()
            .expect("child run");
        assert!(
            out.status.success(),
            "{mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("bytes per unit")
    };
    let troupe = run("troupe");
    let light = run("troupe_lightweight");
    let state = run("lua_state");
    let coroutine = run("coroutine");
    let kb = |b: u64| b as f64 / 1024.0;
    println!("idle memory, N = {n} units, RSS delta / N:");
    println!(
        "  troupe process blocked in receive   {:>8.1} KiB  ({troupe} B)",
        kb(troupe)
    );
    println!(
        "  troupe lightweight process            {:>7.1} KiB  ({light} B)  target <= 2 KiB: {}",
        kb(light),
        if light <= 2 * 1024 { "met" } else { "NOT met" }
    );
    println!(
        "  bare mlua: fresh Lua::new()          {:>8.1} KiB  ({state} B)  troupe/this = {:.2}x",
        kb(state),
        troupe as f64 / state.max(1) as f64
    );
    println!(
        "  bare mlua: yielded coroutine, 1 state {:>7.1} KiB  ({coroutine} B)  troupe/this = {:.2}x",
        kb(coroutine),
        troupe as f64 / coroutine.max(1) as f64
    );
    println!(
        "  target <= 40 KiB per idle process: {}",
        if troupe <= 40 * 1024 {
            "met"
        } else {
            "NOT met"
        }
    );
}
