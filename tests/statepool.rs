//! The isolated-state pool: a Lua state is reused only after its process
//! finished normally, and nothing one process leaves in it reaches the
//! next. Every test runs on one worker with a pool of one state and checks
//! the pool's counters, so the processes provably shared a state.

use std::num::{NonZeroU64, NonZeroUsize};

use troupe::{
    Class, Error, Limits, LuaEngine, MemorySource, Policy, Runtime, Spawn, StatePoolStats, Value,
};

/// The first process: leaves whatever it can in its state.
const POLLUTER: &str = r#"
leak_global = "A"
_G.leak_g = "A"
rawset(_G, "leak_raw", "A")
local json = require("json")
local errors = require("errors")

-- No `package`, no `debug`: neither the module cache of the state nor its
-- registry is reachable.
assert(package == nil and debug == nil, "package or debug reachable")
assert(load("return debug")() == nil, "debug reachable through load")

-- Module tables are read-only, their metatables locked.
assert(not pcall(function() json.leak = "A" end), "module table writable")
assert(not pcall(rawset, json, "leak", "A"), "module table rawset")
assert(not pcall(setmetatable, json, {}), "module metatable replaced")
assert(getmetatable(json) == "locked", "module metatable reachable")

-- The shared libraries and the string metatable refuse changes.
for name, lib in pairs({ string = string, table = table, math = math, utf8 = utf8,
                         coroutine = coroutine }) do
  assert(not pcall(function() lib.leak = "A" end), name .. " writable")
  assert(not pcall(rawset, lib, "leak", "A"), name .. " rawset")
  assert(not pcall(table.insert, lib, "A"), name .. " table.insert")
  assert(getmetatable(lib) == "locked", name .. " metatable reachable")
end
assert(getmetatable("") == "locked", "string metatable reachable")
assert(not pcall(setmetatable, "", {}), "string metatable replaced")
assert(not pcall(function() getmetatable("").__index.leak = "A" end), "string __index")

-- Shared values: functions take no metatable, userdata metatables are
-- protected.
assert(not pcall(setmetatable, print, {}), "function metatable set")
local e = errors.new({ kind = errors.INVALID, message = "x" })
assert(type(getmetatable(e)) ~= "table", "userdata metatable reachable")
assert(not pcall(setmetatable, e, {}), "userdata metatable replaced")

-- A predictable random generator for whoever comes next.
math.randomseed(42)
return true
"#;

/// The second process: finds none of it.
const OBSERVER: &str = r#"
assert(leak_global == nil and leak_g == nil and leak_raw == nil, "globals leaked")
assert(rawget(_G, "leak_global") == nil, "globals leaked (rawget)")
local json = require("json")
assert(rawget(json, "leak") == nil and json.leak == nil, "module state leaked")
assert(string.leak == nil and ("x").leak == nil, "string library leaked")
for _, lib in ipairs({ table, math, utf8, coroutine }) do
  assert(lib.leak == nil and lib[1] == nil, "library leaked")
end
return math.random(1, 1 << 40)
"#;

/// What the random generator gives first after `math.randomseed(42)`.
const SEEDED: &str = "math.randomseed(42) return math.random(1, 1 << 40)";

/// Needs a few hundred thousand instructions and a few MB.
const HUNGRY: &str = r#"
local t = {}
for i = 1, 200000 do t[i] = i end
return #t
"#;

/// Run twice on one state: its main function is loaded once per state and
/// must still start from a fresh environment every time.
const SAME: &str = r#"
local n = ...
local first = seen == nil
seen = n
local function get() return seen end
return { first, get() == n }
"#;

fn scripts() -> MemorySource {
    MemorySource::new()
        .with("polluter.lua", POLLUTER)
        .with("observer.lua", OBSERVER)
        .with("seeded.lua", SEEDED)
        .with("hungry.lua", HUNGRY)
        .with("ok.lua", "return 1")
        .with("same.lua", SAME)
        .with(
            "litter.lua",
            "local t = {} for i = 1, 1500 do t[i] = {i} end return #t",
        )
        .with(
            "needs_88k.lua",
            "local t = {} for i = 1, 1000 do t[i] = {i} end return #t",
        )
        .with("fails.lua", "error('boom')")
        .with("waits.lua", "require('process').receive()")
}

/// One worker, a pool of `pool` states, and the engine to read counters from.
fn runtime(pool: usize) -> (Runtime, LuaEngine) {
    let engine = LuaEngine::with_output(|_| {});
    let rt = Runtime::builder()
        .workers(1)
        .state_pool(pool)
        .source(scripts())
        .engine(engine.clone())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds");
    (rt, engine)
}

fn run(rt: &Runtime, spawn: Spawn) -> Result<Value, Error> {
    rt.spawn(spawn)?.join_blocking()
}

fn run_ok(rt: &Runtime, key: &str) -> Value {
    run(rt, Spawn::script(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
fn nothing_leaks_from_one_process_to_the_next() {
    let (rt, engine) = runtime(1);
    assert_eq!(run_ok(&rt, "polluter.lua"), Value::Bool(true));
    let after_seed = run_ok(&rt, "observer.lua");
    let seeded = run_ok(&rt, "seeded.lua");
    // The generator was reseeded after the polluter (equal draws from 2^40
    // values would mean the seed leaked).
    assert_ne!(after_seed, seeded, "the random seed leaked");
    let stats = engine.pool_stats();
    // Compiling and running all three used one state, over and over.
    assert_eq!(stats.created, 1, "{stats:?}");
    assert!(stats.reused >= 5, "{stats:?}");
    rt.shutdown();
}

#[test]
fn the_same_program_starts_from_a_fresh_environment_each_time() {
    let (rt, engine) = runtime(1);
    for n in 1..=3 {
        let v = run(&rt, Spawn::script("same.lua").args([n])).expect("same.lua");
        assert_eq!(v, Value::Array(vec![Value::Bool(true), Value::Bool(true)]));
    }
    let stats = engine.pool_stats();
    assert_eq!(stats.created, 1, "{stats:?}");
    rt.shutdown();
}

#[test]
fn limits_and_counters_do_not_carry_over() {
    let (rt, engine) = runtime(1);
    let tight = Limits {
        max_memory: NonZeroUsize::new(1 << 20),
        max_instructions: NonZeroU64::new(1_200_000),
        ..Limits::default()
    };
    // Within its limits alone, but not with another run's usage added.
    let once = || {
        run(
            &rt,
            Spawn::script("hungry.lua").limits(Limits {
                max_memory: NonZeroUsize::new(8 << 20),
                ..tight
            }),
        )
    };
    assert_eq!(once().expect("first run"), Value::Int(200_000));
    assert_eq!(once().expect("second run"), Value::Int(200_000));
    // A tight memory limit, then a process without one that needs more.
    assert_eq!(
        run(&rt, Spawn::script("ok.lua").limits(tight)).expect("ok"),
        Value::Int(1)
    );
    let unlimited = Limits {
        max_memory: None,
        ..Limits::default()
    };
    let v = run(&rt, Spawn::script("hungry.lua").limits(unlimited)).expect("memory limit leaked");
    assert_eq!(v, Value::Int(200_000));
    let stats = engine.pool_stats();
    assert_eq!(stats.created, 1, "{stats:?}");
    rt.shutdown();
}

#[test]
fn a_memory_limit_counts_the_process_own_allocations_only() {
    let (rt, engine) = runtime(1);
    let limit = |kb: usize| Limits {
        max_memory: NonZeroUsize::new(kb * 1024),
        ..Limits::default()
    };
    // ~140 KB of garbage left in the state (too little to be collected
    // when it goes back to the pool), then a process needing ~88 KB under a
    // 64 KB limit: the predecessor's garbage must not serve as headroom.
    for _ in 0..2 {
        assert_eq!(run_ok(&rt, "litter.lua"), Value::Int(1500));
        let over = run(&rt, Spawn::script("needs_88k.lua").limits(limit(64)));
        assert!(over.is_err(), "{over:?}");
    }
    assert_eq!(run_ok(&rt, "litter.lua"), Value::Int(1500));
    let v = run(&rt, Spawn::script("needs_88k.lua").limits(limit(256)));
    assert_eq!(v.expect("within 256 KB"), Value::Int(1000));
    let stats = engine.pool_stats();
    // The over-limit runs took their states with them.
    assert_eq!((stats.created, stats.discarded), (3, 2), "{stats:?}");
    rt.shutdown();
}

#[test]
fn states_of_failed_or_killed_processes_are_discarded() {
    let (rt, engine) = runtime(1);
    run_ok(&rt, "ok.lua");
    let base = engine.pool_stats();
    assert!(run(&rt, Spawn::script("fails.lua")).is_err());
    let h = rt.spawn(Spawn::script("waits.lua")).expect("spawn");
    assert!(h.kill());
    assert!(h.join_blocking().is_err());
    let stats = engine.pool_stats();
    assert_eq!(stats.discarded - base.discarded, 2, "{stats:?}");
    // Each needed a new state: the pooled one went to the first, was lost
    // with it, and the killed process needed another.
    assert!(stats.created > base.created, "{stats:?}");
    rt.shutdown();
}

#[test]
fn a_pool_of_zero_makes_a_state_per_process() {
    let (rt, engine) = runtime(0);
    for _ in 0..3 {
        run_ok(&rt, "ok.lua");
    }
    let StatePoolStats {
        created,
        reused,
        idle,
        ..
    } = engine.pool_stats();
    // One for compiling, one per process.
    assert_eq!((created, reused, idle), (4, 0, 0));
    rt.shutdown();
}
