//! Sandbox benchmarks, each beside a raw baseline measured in the same run.
//!
//! * `preemption` — a CPU-bound loop (~1M VM instructions) as a Troupe
//!   process (instruction hook every 20,000 instructions, a preemption yield
//!   to the scheduler at each, one worker), against the same function in a
//!   bare mlua state with no hook, and with only the count hook (returning
//!   `Continue`). Target: Troupe ≤ 1.10× no hook.
//! * `eval_runner` — `runner.run{source = "return 1 + 1"}` from a Troupe
//!   process (fresh pooled state, policy and limits per run), per call of a
//!   script looping N times; against a fresh `Lua::new()` + load + call per
//!   run. Target: ≥ 10,000 runs/s per core.
//!
//! Run with `cargo bench --bench sandbox`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mlua::debug::HookTriggers;
use mlua::{Function, Lua, VmState};
use troupe::{LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

/// The CPU-bound chunk: returns a checksum so nothing is optimized away.
const SPIN: &str = "local n = 0 for i = 1, 250000 do n = n + i % 7 end return n";

/// What `SPIN` returns.
const SPIN_RESULT: i64 = 749_997;

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("spin.lua", SPIN).with(
            "eval_loop.lua",
            r#"
local runner = require("eval_runner")
local n = ...
for _ = 1, n do
  assert(runner.run{source = "return 1 + 1"} == 2)
end
return n
"#,
        ))
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_module("eval_runner"))
        .build()
        .expect("runtime builds")
}

fn bare_spin(hook: bool) -> (Lua, Function) {
    let lua = Lua::new();
    if hook {
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(20_000), |_, _| {
            Ok(VmState::Continue)
        })
        .expect("hook installs");
    }
    let f = lua.load(SPIN).into_function().expect("compiles");
    (lua, f)
}

fn preemption(c: &mut Criterion) {
    let mut g = c.benchmark_group("preemption");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, hook) in [("bare_mlua_no_hook", false), ("bare_mlua_count_hook", true)] {
        let (_lua, f) = bare_spin(hook);
        g.bench_function(name, |b| {
            b.iter(|| {
                let n: i64 = f.call(()).expect("runs");
                assert_eq!(n, SPIN_RESULT);
            });
        });
    }
    let rt = runtime();
    g.bench_function("troupe_process_preempted", |b| {
        b.iter(|| {
            let h = rt.spawn(Spawn::script("spin.lua")).expect("spawns");
            assert_eq!(h.join_blocking(), Ok(Value::Int(SPIN_RESULT)));
        });
    });
    g.finish();
    rt.shutdown();
}

fn eval_runner(c: &mut Criterion) {
    let mut g = c.benchmark_group("eval_runner");
    g.sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    g.bench_function("bare_mlua_fresh_state_load_call", |b| {
        b.iter(|| {
            let lua = Lua::new();
            let v: i64 = lua.load("return 1 + 1").eval().expect("runs");
            black_box(v)
        });
    });
    let rt = runtime();
    g.bench_function("troupe_runner_run", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let h = rt
                .spawn(Spawn::script("eval_loop.lua").args([iters]))
                .expect("spawns");
            let n = h.join_blocking().expect("loop runs");
            assert_eq!(n.as_i64(), i64::try_from(iters).ok());
            start.elapsed()
        });
    });
    g.finish();
    rt.shutdown();
}

criterion_group!(benches, preemption, eval_runner);
criterion_main!(benches);
