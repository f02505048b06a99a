//! The harness of `troupe bench`, the side-by-side benchmark (the CLI is a
//! thin entry to [`bench`]). Runs the same jobs in
//! Erlang/OTP (`benches/erlang/troupe_bench.erl`, when `erl` is installed),
//! in raw mlua and in Troupe, in one run, and prints one Markdown table with
//! the ratios.
//!
//! Every job is timed inside its own VM, so start-up is not counted. The
//! memory jobs run in a child process each (this binary re-executed with the
//! hidden `--child` flag), so memory one job freed cannot hide the growth of
//! the next. `--cluster` runs the remote jobs instead (see `cluster.rs`).

mod cluster;

pub use cluster::Etcd;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use mlua::chunk::ChunkMode;
use mlua::debug::HookTriggers;
use mlua::{Function, Lua, Thread, VmState};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::lua::LuaEngine;
use troupe_modules::{Class, Policy};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;

/// The Erlang half of the jobs, compiled with `erlc` at run time.
const ERLANG_SOURCE: &str = include_str!("../../erlang/troupe_bench.erl");

/// The ping-pong partner, the same script the criterion benches run.
const PONG: &str = include_str!("../../support/pong.lua");

/// The Troupe half of the jobs: one script, an entry function per job.
const TROUPE_SCRIPT: &str = r#"
local process = require("process")
local time = require("time")
local M = {}

function M.child() end

function M.sleeper() time.sleep(10) end

function M.idle() process.receive() end

function M.cpu(n)
  local x = 0
  for i = 1, n do x = x + i % 7 end
  return x
end

-- Spawns n linked children running `entry` (lightweight ones with
-- `light`) and waits for their n EXITs.
function M.fan_out(n, entry, light)
  process.trap_exits(true)
  local opts = { entry = entry, link = true, lightweight = light }
  for _ = 1, n do
    process.spawn("bench.lua", opts)
  end
  for _ = 1, n do
    local m = process.receive("EXIT")
    if m.payload.reason ~= "normal" then error("a child failed") end
  end
end

function M.ping(n, light)
  local peer = assert(process.spawn("pong.lua", { lightweight = light }))
  for i = 1, n do
    process.send(peer, "ping", i)
    if process.receive("pong").payload ~= i then error("out of order pong") end
  end
  process.send(peer, "stop")
end

-- `time.now()` is answered inside the call (an immediate command);
-- `time.sleep(0)` is yielded and answered at once by the dispatcher.
function M.commands(n, yielded)
  if yielded then
    local sleep = time.sleep
    for _ = 1, n do sleep(0) end
  else
    local now = time.now
    for _ = 1, n do now() end
  end
end

return M
"#;

/// The CPU-bound job for raw mlua, the same loop as `M.cpu`.
const CPU_CHUNK: &str = "local n = ... local x = 0 for i = 1, n do x = x + i % 7 end return x";

/// Instructions between two preemption checks, as Troupe's default slice.
const SLICE: u32 = 20_000;

/// How long the sleepers of the fan-out jobs sleep, in milliseconds.
const SLEEP_MS: u32 = 10;

/// Arguments of `troupe bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Runs every job with a tenth of its default size (a quick look, noisier).
    #[arg(long)]
    quick: bool,

    /// Leaves Erlang out even when `erl` is installed.
    #[arg(long)]
    no_erlang: bool,

    /// Runs the remote jobs instead: two Troupe nodes (`troupe run
    /// --cluster`, with an etcd of its own) beside two Erlang nodes, on
    /// loopback. Needs a troupe built with the `cluster` feature.
    #[arg(long, conflicts_with = "child")]
    cluster: bool,

    /// Scheduler workers of Troupe's runtime (default: available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// One memory job, run in a child process: prints bytes per unit.
    #[arg(long, hide = true, value_enum)]
    child: Option<MemoryJob>,
}

/// The memory jobs, each measured in a child process of its own.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MemoryJob {
    /// A fresh `Lua::new()` kept alive.
    MluaState,
    /// A coroutine suspended in `coroutine.yield()` in one shared state.
    MluaCoroutine,
    /// A Troupe process blocked in `process.receive()`.
    Troupe,
    /// A lightweight Troupe process blocked in `process.receive()`.
    TroupeLightweight,
}

/// The sizes of the jobs.
struct Sizes {
    spawns: usize,
    states: usize,
    rounds: usize,
    commands: usize,
    idle: usize,
    sleepers: [usize; 2],
    cpu: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        let d = if quick { 10 } else { 1 };
        Self {
            spawns: 100_000 / d,
            states: 5_000 / d,
            rounds: 100_000 / d,
            commands: 1_000_000 / d,
            idle: 10_000 / d,
            sleepers: [100_000 / d, 1_000_000 / d],
            cpu: 5_000_000 / d,
        }
    }
}

/// How a row's figures read.
#[derive(Clone, Copy)]
enum Unit {
    /// Nanoseconds per unit of work.
    Nanos,
    /// Bytes per process.
    Bytes,
    /// Seconds for the whole job (and the rate in processes per second).
    Seconds(usize),
    /// Milliseconds for the whole job.
    Millis,
    /// Nanoseconds per unit of work, and the rate.
    NanosRate,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Nanos if v >= 10_000.0 => format!("{:.1} µs", v / 1e3),
            Unit::Nanos => format!("{v:.0} ns"),
            Unit::Bytes => format!("{v:.0} B"),
            Unit::Seconds(n) => format!("{v:.2} s ({:.0} k/s)", n as f64 / v / 1e3),
            Unit::Millis => format!("{v:.1} ms"),
            Unit::NanosRate => format!("{} ({:.0} k/s)", Unit::Nanos.show(v), 1e6 / v),
        }
    }
}

/// One line of the table.
struct Row {
    job: String,
    unit: Unit,
    erlang: Option<f64>,
    mlua: Option<f64>,
    troupe: Option<f64>,
    light: Option<f64>,
}

impl Row {
    fn new(job: impl Into<String>, unit: Unit) -> Self {
        Self {
            job: job.into(),
            unit,
            erlang: None,
            mlua: None,
            troupe: None,
            light: None,
        }
    }

    fn cells(&self) -> [String; 8] {
        let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| self.unit.show(v));
        let ratio = |ours: Option<f64>, base: Option<f64>| match (ours, base) {
            (Some(t), Some(b)) if b > 0.0 => format!("{:.2}×", t / b),
            _ => "".to_owned(),
        };
        [
            self.job.clone(),
            show(self.erlang),
            show(self.mlua),
            show(self.troupe),
            show(self.light),
            ratio(self.troupe, self.erlang),
            ratio(self.light, self.erlang),
            ratio(self.troupe, self.mlua),
        ]
    }
}

/// How many steps `troupe bench` reports to its `step` callback.
const BENCH_STEPS: u64 = 9;

impl BenchArgs {
    /// Whether the remote jobs were asked for (`--cluster`).
    pub fn cluster(&self) -> bool {
        self.cluster
    }

    /// How many steps [`bench`] reports to its `step` callback.
    pub fn steps(&self) -> u64 {
        if self.cluster {
            cluster::STEPS
        } else {
            BENCH_STEPS
        }
    }
}

/// `troupe bench`: runs every job and returns the table (or, with
/// `--child`, one memory figure). `step(n, what)` is called as step `n`
/// of [`BENCH_STEPS`] starts.
pub fn bench(args: &BenchArgs, step: &mut dyn FnMut(u64, &str)) -> Result<String, Error> {
    let sizes = Sizes::new(args.quick);
    let workers = args.workers.map(usize::from);
    if let Some(job) = args.child {
        return memory_child(job, sizes.idle, workers).map(|b| format!("{b:.1}\n"));
    }
    if args.cluster {
        return cluster::bench(args, step);
    }
    step(1, "Erlang/OTP");
    let erlang = if args.no_erlang {
        Err("left out (--no-erlang)".to_owned())
    } else {
        erlang(&sizes)
    };
    let mut notes = Vec::new();
    let erl = |name: &str| erlang.as_ref().ok().and_then(|m| m.get(name)).copied();
    if let Err(why) = &erlang {
        notes.push(format!("Erlang: {why}."));
    }
    let rt = troupe_runtime(workers)?;
    // Runs `entry` in an isolated process; with `light`, in a lightweight
    // one whose children (the last argument says so) are lightweight too.
    let run_as = |light: bool, entry: &str, mut args: Vec<Value>| -> Result<f64, Error> {
        let mut spawn = Spawn::script("bench.lua")
            .entry(entry)
            .policy(Policy::plugin().allow_class(Class::Process));
        if light {
            spawn = spawn.lightweight();
            args.push(Value::Bool(true));
        }
        let spawn = spawn.args(args);
        let t0 = Instant::now();
        rt.spawn(spawn)?.join_blocking()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    let run = |entry: &str, args: Vec<Value>| run_as(false, entry, args);
    let light = |entry: &str, args: Vec<Value>| run_as(true, entry, args);
    let count = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let per = |secs: f64, n: usize| secs * 1e9 / n as f64;

    let mut rows = Vec::new();

    step(2, "spawn + run + exit");
    let mut r = Row::new(
        format!(
            "spawn + run + exit ({} linked, EXIT collected)",
            sizes.spawns
        ),
        Unit::Nanos,
    );
    r.erlang = erl("spawn");
    r.mlua = Some(mlua_fresh_state(sizes.states)?);
    r.troupe = Some(per(
        run("fan_out", vec![count(sizes.spawns), "child".into()])?,
        sizes.spawns,
    ));
    r.light = Some(per(
        light("fan_out", vec![count(sizes.spawns), "child".into()])?,
        sizes.spawns,
    ));
    rows.push(r);
    let mut r = Row::new("spawn + run + exit, coroutine in one state", Unit::Nanos);
    r.mlua = Some(mlua_coroutine_spawn(sizes.spawns)?);
    rows.push(r);

    step(3, "ping-pong");
    let yield_ns = mlua_resume_yield(sizes.commands)?;
    let mut r = Row::new(
        format!("ping-pong round trip ({} rounds)", sizes.rounds),
        Unit::Nanos,
    );
    r.erlang = erl("ping_pong");
    r.mlua = Some(yield_ns);
    r.troupe = Some(per(run("ping", vec![count(sizes.rounds)])?, sizes.rounds));
    r.light = Some(per(light("ping", vec![count(sizes.rounds)])?, sizes.rounds));
    rows.push(r);
    for (what, yielded) in [
        ("immediate command `time.now()`", false),
        ("yielded no-op command `time.sleep(0)`", true),
    ] {
        step(if yielded { 5 } else { 4 }, what);
        let job = || vec![count(sizes.commands), Value::Bool(yielded)];
        let mut r = Row::new(format!("{what} ({})", sizes.commands), Unit::Nanos);
        r.mlua = Some(yield_ns);
        r.troupe = Some(per(run("commands", job())?, sizes.commands));
        r.light = Some(per(light("commands", job())?, sizes.commands));
        rows.push(r);
    }

    step(6, "idle memory");
    let child = |job: MemoryJob| memory_in_child(job, args);
    let mut r = Row::new(
        format!("idle memory per process ({})", sizes.idle),
        Unit::Bytes,
    );
    r.erlang = erl("memory");
    r.mlua = Some(child(MemoryJob::MluaState)?);
    r.troupe = Some(child(MemoryJob::Troupe)?);
    r.light = Some(child(MemoryJob::TroupeLightweight)?);
    rows.push(r);
    let mut r = Row::new("idle memory, coroutine in one state", Unit::Bytes);
    r.mlua = Some(child(MemoryJob::MluaCoroutine)?);
    rows.push(r);

    step(7, "sleepers fanned out");
    let mut fan_outs = Vec::new();
    for (i, n) in sizes.sleepers.into_iter().enumerate() {
        let mut r = Row::new(
            format!("{n} sleepers ({SLEEP_MS} ms) fanned out + collected"),
            Unit::Seconds(n),
        );
        r.erlang = erl(&format!("sleepers{i}"));
        r.troupe = Some(run("fan_out", vec![count(n), "sleeper".into()])?);
        r.light = Some(light("fan_out", vec![count(n), "sleeper".into()])?);
        fan_outs.push((r.erlang, r.troupe, r.light));
        rows.push(r);
    }
    let [small, large] = sizes.sleepers;
    if let [(e0, t0, l0), (e1, t1, l1)] = fan_outs[..] {
        let runs = [
            ("Erlang", e0, e1),
            ("Troupe isolated", t0, t1),
            ("Troupe lightweight", l0, l1),
        ];
        for (name, a, b) in runs {
            if let (Some(a), Some(b)) = (a, b) {
                notes.push(format!(
                    "{name}: {large} sleepers took {:.1}× the time of {small} (linear: {:.0}×).",
                    b / a,
                    large as f64 / small as f64
                ));
            }
        }
    }

    step(8, "CPU-bound loop");
    let mut r = Row::new(
        format!("CPU-bound loop ({} iterations)", sizes.cpu),
        Unit::Millis,
    );
    r.erlang = erl("cpu");
    r.mlua = Some(mlua_cpu(sizes.cpu, false)? * 1e3);
    r.troupe = Some(run("cpu", vec![count(sizes.cpu)])? * 1e3);
    r.light = Some(light("cpu", vec![count(sizes.cpu)])? * 1e3);
    rows.push(r);
    let mut r = Row::new(
        format!("CPU-bound loop, count hook every {SLICE} instructions"),
        Unit::Millis,
    );
    r.mlua = Some(mlua_cpu(sizes.cpu, true)? * 1e3);
    rows.push(r);
    rt.shutdown();
    step(BENCH_STEPS, "done");

    Ok(table(&rows, &notes, workers))
}

/// The Markdown table and its notes.
fn table(rows: &[Row], notes: &[String], workers: Option<usize>) -> String {
    let workers = workers.map_or_else(|| "one per core".to_owned(), |n| n.to_string());
    let mut out = String::from(
        "| job | Erlang/OTP | raw mlua | Troupe isolated | Troupe lightweight \
         | isolated ÷ Erlang | lightweight ÷ Erlang | isolated ÷ mlua |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!("| {} |\n", r.cells().join(" | ")));
    }
    out.push_str(&format!(
        "\nTroupe: workers = {workers}, default limits and preemption, \
         plugin policy + process. raw mlua: spawn = fresh `Lua::new()` + precompiled bytecode \
         + call; ping-pong and command = one coroutine resume/yield from Rust; idle memory = a \
         fresh state kept alive. Lightweight: the same jobs in lightweight processes \
         (coroutines in shared states), their children lightweight too.\n"
    ));
    for n in notes {
        out.push_str(&format!("{n}\n"));
    }
    out
}

/// A runtime with the bench script, as `troupe run` builds it.
fn troupe_runtime(workers: Option<usize>) -> Result<Runtime, Error> {
    let mut b = Runtime::builder()
        .source(
            MemorySource::new()
                .with("bench.lua", TROUPE_SCRIPT)
                .with("pong.lua", PONG),
        )
        .engine(LuaEngine::new());
    if let Some(n) = workers {
        b = b.workers(n);
    }
    b.build()
}

fn lua_error(e: mlua::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("raw mlua: {e}"))
}

/// ns per fresh `Lua::new()` + precompiled bytecode + call, state dropped.
fn mlua_fresh_state(n: usize) -> Result<f64, Error> {
    let bytecode = Lua::new()
        .load("return 1")
        .into_function()
        .map_err(lua_error)?
        .dump(true);
    let t0 = Instant::now();
    for _ in 0..n {
        let lua = Lua::new();
        let f = lua
            .load(&bytecode[..])
            .set_mode(ChunkMode::Binary)
            .into_function()
            .map_err(lua_error)?;
        f.call::<i64>(()).map_err(lua_error)?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e9 / n as f64)
}

/// ns per coroutine created in one state, run to its end and dropped.
fn mlua_coroutine_spawn(n: usize) -> Result<f64, Error> {
    let lua = Lua::new();
    let f = lua.load("return 1").into_function().map_err(lua_error)?;
    let t0 = Instant::now();
    for _ in 0..n {
        let co = lua.create_thread(f.clone()).map_err(lua_error)?;
        co.resume::<i64>(()).map_err(lua_error)?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e9 / n as f64)
}

/// ns per `coroutine.yield()` resumed from Rust.
fn mlua_resume_yield(n: usize) -> Result<f64, Error> {
    let lua = Lua::new();
    let f = lua
        .load("while true do coroutine.yield() end")
        .into_function()
        .map_err(lua_error)?;
    let co = lua.create_thread(f).map_err(lua_error)?;
    let t0 = Instant::now();
    for _ in 0..n {
        co.resume::<()>(()).map_err(lua_error)?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e9 / n as f64)
}

/// Seconds for the CPU-bound loop, with or without a count hook.
fn mlua_cpu(n: usize, hook: bool) -> Result<f64, Error> {
    let lua = Lua::new();
    if hook {
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(SLICE), |_, _| {
            Ok(VmState::Continue)
        })
        .map_err(lua_error)?;
    }
    let f = lua.load(CPU_CHUNK).into_function().map_err(lua_error)?;
    let t0 = Instant::now();
    f.call::<i64>(n).map_err(lua_error)?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Runs one memory job in a child process and reads its figure.
fn memory_in_child(job: MemoryJob, args: &BenchArgs) -> Result<f64, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("cannot find myself: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "--child"]);
    cmd.arg(match job {
        MemoryJob::MluaState => "mlua-state",
        MemoryJob::MluaCoroutine => "mlua-coroutine",
        MemoryJob::Troupe => "troupe",
        MemoryJob::TroupeLightweight => "troupe-lightweight",
    });
    if args.quick {
        cmd.arg("--quick");
    }
    if let Some(n) = args.workers {
        cmd.args(["--workers", &n.to_string()]);
    }
    let out = cmd
        .output()
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("cannot run {job:?}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| {
        Error::new(
            ErrorKind::Internal,
            format!(
                "memory job {job:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
    })
}

/// Idle processes spawned before the baseline of the per-process memory.
const WARM_UP_PROCESSES: usize = 256;

/// Bytes of resident memory per idle unit: `n` units made and kept.
fn memory_child(job: MemoryJob, n: usize, workers: Option<usize>) -> Result<f64, Error> {
    let before = settled_rss()?;
    let after = match job {
        MemoryJob::MluaState => {
            let states = (0..n)
                .map(|_| {
                    let lua = Lua::new();
                    lua.load("x = 1").exec().map(|()| lua)
                })
                .collect::<Result<Vec<Lua>, _>>()
                .map_err(lua_error)?;
            let after = settled_rss()?;
            drop(states);
            after
        }
        MemoryJob::MluaCoroutine => {
            let lua = Lua::new();
            let f: Function = lua
                .load("coroutine.yield()")
                .into_function()
                .map_err(lua_error)?;
            let threads = (0..n)
                .map(|_| {
                    let co = lua.create_thread(f.clone())?;
                    co.resume::<()>(()).map(|()| co)
                })
                .collect::<Result<Vec<Thread>, _>>()
                .map_err(lua_error)?;
            let after = settled_rss()?;
            drop(threads);
            after
        }
        MemoryJob::Troupe | MemoryJob::TroupeLightweight => {
            // Per process of a running runtime, as Erlang's figure is per
            // process of a running VM: the runtime and its first processes
            // (the shared states, pools and queues they create) come before
            // the baseline.
            let rt = troupe_runtime(workers)?;
            let spawn = || {
                let spawn = Spawn::script("bench.lua")
                    .entry("idle")
                    .policy(Policy::plugin().allow_class(Class::Process));
                rt.spawn(if job == MemoryJob::TroupeLightweight {
                    spawn.lightweight()
                } else {
                    spawn
                })
            };
            for _ in 0..WARM_UP_PROCESSES {
                spawn()?;
            }
            let before = settled_rss()?;
            for _ in 0..n {
                spawn()?;
            }
            let after = settled_rss()?;
            rt.shutdown();
            return Ok(after.saturating_sub(before) as f64 / n as f64);
        }
    };
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// The resident set size once it changed by less than 0.5 % over three
/// polls 100 ms apart (or after 10 s).
fn settled_rss() -> Result<u64, Error> {
    let rss = || {
        troupe_runtime::machine::resident_memory()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "no /proc/self/statm to read"))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut last, mut stable) = (rss()?, 0);
    while stable < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss()?;
        stable = if now.abs_diff(last) * 200 < last {
            stable + 1
        } else {
            0
        };
        last = now;
    }
    Ok(last)
}

/// Compiles and runs the Erlang half: the figures by name, or why not.
fn erlang(sizes: &Sizes) -> Result<std::collections::HashMap<String, f64>, String> {
    if !on_path("erl") || !on_path("erlc") {
        return Err(
            "`erl`/`erlc` not found, Erlang left out (Debian: apt-get install erlang-base)"
                .to_owned(),
        );
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("troupe-bench-{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        compile_erlang(&dir, "troupe_bench.erl", ERLANG_SOURCE)?;
        let call = format!(
            "troupe_bench:main([{}, {}, {}, {}, {}, {}]), init:stop().",
            sizes.rounds, sizes.spawns, sizes.idle, sizes.sleepers[0], sizes.sleepers[1], sizes.cpu
        );
        // Run inside the scratch directory so a crash dump lands there and
        // is removed with it, never in the user's working directory.
        let out = Command::new("erl")
            .current_dir(&dir)
            .args(["-noshell", "+P", "4000000", "-pa"])
            .arg(&dir)
            .args(["-eval", &call])
            .output()
            .map_err(|e| format!("erl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "erl failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (name, v) = l.split_once(' ')?;
                Some((name.to_owned(), v.trim().parse().ok()?))
            })
            .collect())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Whether `tool` is an executable file in one of `PATH`'s directories.
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}

/// Writes Erlang `source` as `dir/name` and compiles it there with `erlc`.
fn compile_erlang(dir: &std::path::Path, name: &str, source: &str) -> Result<(), String> {
    let src = dir.join(name);
    std::fs::write(&src, source).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let out = Command::new("erlc")
        .arg("-o")
        .arg(dir)
        .arg(&src)
        .output()
        .map_err(|e| format!("erlc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "erlc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
