//! Chaos: for a minute (`TROUPE_CHAOS_SECS`) and at least 10,000
//! processes, on one worker and then on two, the host keeps 200 script
//! trees going, whose processes
//! pick at random among sending to, linking, monitoring and killing
//! recent pids, receiving and sleeping with short timeouts, spawning
//! children (linked or not), trapping exits, failing, and starting fork
//! bombs that run into their tree's process cap. Each tree is killed once
//! its root has ended (a bomb's copies outlive it). Afterwards nothing
//! may be left: no process in the table, no timer, no byte charged, and
//! the resident memory (the allocator's free pages given back) no more
//! than 10% or 4 MB above what a warm-up round left;
//! the runtime still runs a script.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use troupe::{Limits, LuaEngine, MemorySource, Policy, ProcessHandle, Runtime, Spawn, Value};

const CHAOS: &str = r#"
    local process, time = require("process"), require("time")
    local depth = ... or 0
    local seq = tonumber(process.pid():match("(%d+)>$"))
    math.randomseed(seq)
    local function peer()
      return "<0." .. math.max(1, seq - math.random(1, 300)) .. ">"
    end
    for step = 1, math.random(5, 40) do
      local r = math.random(100)
      if r <= 15 then process.try_send(peer(), "noise", {step = step, pad = ("x"):rep(r)})
      elseif r <= 22 then process.send(peer(), "noise", step, {timeout = 5})
      elseif r <= 30 then process.link(peer())
      elseif r <= 37 then process.monitor(peer())
      elseif r <= 41 then process.kill(peer())
      elseif r <= 52 then process.receive(nil, math.random(0, 5))
      elseif r <= 60 then time.sleep(math.random(0, 3))
      elseif r <= 70 and depth < 3 then
        process.spawn("chaos.lua", {link = math.random(2) == 1}, depth + 1)
      elseif r <= 72 then process.spawn("bomb.lua", {link = math.random(2) == 1})
      elseif r <= 74 then error("chaos at step " .. step)
      elseif r <= 76 then process.trap_exits(math.random(2) == 1)
      else
        local t = {}
        for i = 1, 200 do t[i] = i * r end
      end
    end
    return seq
"#;

/// A fork bomb: every copy spawns linked copies until its tree's process
/// cap refuses one, then waits.
const BOMB: &str = r#"
    local process = require("process")
    while process.spawn("bomb.lua", {link = true}) do end
    process.receive("never")
"#;

#[cfg(target_env = "gnu")]
unsafe extern "C" {
    /// glibc: gives the heap's free memory back to the OS.
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// The resident memory once the allocator gave back what is free: what
/// is measured is what is still held, not how far the allocator's
/// high-water mark went.
fn rss_bytes() -> u64 {
    // SAFETY: malloc_trim takes no pointer and only releases free pages.
    #[cfg(target_env = "gnu")]
    unsafe {
        malloc_trim(0);
    }
    troupe::machine::resident_memory().expect("/proc/self/statm (Linux)")
}

/// The least resident memory seen over two seconds: memory a thread frees
/// a moment after the round (the last trees' states and mailboxes) is not
/// a leak, and a leak stays.
fn settled_rss_bytes() -> u64 {
    (0..10).fold(rss_bytes(), |least, _| {
        std::thread::sleep(Duration::from_millis(200));
        least.min(rss_bytes())
    })
}

fn chaos_secs() -> u64 {
    std::env::var("TROUPE_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// What one round did.
struct Round {
    /// Trees started.
    roots: usize,
    /// Roots that ended in an error (raised, killed, or linked to one).
    failed: usize,
    /// Processes spawned in all, roots included (pids are sequential).
    processes: u64,
    /// Processes still alive when their tree was killed.
    killed_after: usize,
}

/// Keeps 200 trees going, killing each tree once its root ended, until
/// `secs` passed and at least `processes` were spawned; then waits until
/// nothing is left.
fn round(rt: &Runtime, processes: u64, secs: u64) -> Round {
    let limits = Limits {
        max_processes: NonZeroUsize::new(64),
        timeout: Some(Duration::from_secs(20)),
        ..Limits::default()
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut live: VecDeque<ProcessHandle> = VecDeque::new();
    let mut out = Round {
        roots: 0,
        failed: 0,
        processes: 0,
        killed_after: 0,
    };
    let mut first = None;
    let mut spawned = |live: &mut VecDeque<ProcessHandle>, out: &mut Round| {
        let h = rt
            .spawn(Spawn::script("chaos.lua").limits(limits))
            .expect("a root spawns");
        let id = h.pid().id();
        out.processes = id - *first.get_or_insert(id) + 1;
        out.roots += 1;
        live.push_back(h);
    };
    let finish = |h: ProcessHandle, out: &mut Round| {
        if h.join_blocking().is_err() {
            out.failed += 1;
        }
        out.killed_after += h.kill_tree();
    };
    while out.processes < processes || Instant::now() < deadline {
        while live.len() < 200 {
            spawned(&mut live, &mut out);
        }
        if let Some(h) = live.pop_front() {
            finish(h, &mut out);
        }
    }
    while let Some(h) = live.pop_front() {
        finish(h, &mut out);
    }
    let settle = Instant::now() + Duration::from_secs(60);
    while (rt.process_count() > 0 || rt.pending_timers() > 0) && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

/// The two runs one after the other: resident memory is the test
/// process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn chaos(workers: usize) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = Runtime::builder()
        .workers(workers)
        .source(
            MemorySource::new()
                .with("chaos.lua", CHAOS)
                .with("bomb.lua", BOMB)
                .with("ok.lua", "return 'still running'"),
        )
        .engine(LuaEngine::with_output(|_| {}))
        .default_policy(Policy::trusted())
        // Pooled states are kept on purpose: they would read as a leak.
        .state_pool(0)
        .build()
        .expect("runtime builds");
    let secs = chaos_secs();
    // A warm-up round first: the allocator's and the tables' high-water
    // marks are what the real round is measured against.
    round(&rt, 2_000, secs.div_ceil(6));
    let start = rss_bytes();
    let began = Instant::now();
    let r = round(&rt, 10_000, secs);
    let took = began.elapsed();
    let end = settled_rss_bytes();
    eprintln!(
        "chaos on {workers} worker(s): {} processes in {} trees in {took:.1?} ({} roots failed, \
         {} processes killed with their trees); RSS {:.1} MB -> {:.1} MB",
        r.processes,
        r.roots,
        r.failed,
        r.killed_after,
        start as f64 / 1e6,
        end as f64 / 1e6
    );
    assert_eq!(rt.process_count(), 0, "processes left in the table");
    assert_eq!(rt.pending_timers(), 0, "timers left");
    assert_eq!(rt.memory_in_use(), 0, "bytes still charged");
    // Once the allocator gave back its free pages the start can be small:
    // 4 MB of slack is a dozen bytes for each of the 300,000 or more
    // processes a minute runs, far below any leak per process.
    assert!(
        end <= start + (start / 10).max(4 << 20),
        "RSS grew from {start} to {end} bytes"
    );
    let ok = rt
        .spawn(Spawn::script("ok.lua"))
        .expect("spawns after the chaos");
    assert_eq!(ok.join_blocking().unwrap(), Value::from("still running"));
    rt.shutdown();
}

#[test]
fn chaos_on_one_worker_leaves_nothing_behind() {
    chaos(1);
}

#[test]
fn chaos_on_two_workers_leaves_nothing_behind() {
    chaos(2);
}
