//! The isolated-state pool: prepared, sandboxed Lua states reused across
//! processes, with a reset between two owners.
//!
//! # Why the reset is complete
//!
//! A state is pooled again only after its process **finished normally**
//! (its script returned); a process that failed, hit a limit, was killed or
//! is dropped mid-run takes its state with it. What a finished process can
//! have left behind, and what happens to it:
//!
//! * **Globals and `package.loaded`**: every process runs in its own `_ENV`
//!   made by the prelude's `new_env`, and `require` caches in its own
//!   table; both hang off the per-process context, which the reset removes.
//!   The state's real globals are reachable from the trusted prelude only,
//!   and sandboxed code has no `package` library.
//! * **Library and module tables**: `string`, `table`, `math`, `utf8` and
//!   `coroutine` are empty views shared by the state's processes, every
//!   module an empty per-process proxy; their locked metatables refuse
//!   writes (`rawset` and `table.insert` too) and `getmetatable` on them
//!   gives `"locked"`, so nothing can be stored in them and the tables
//!   behind them are unreachable.
//! * **Shared metatables**: the string metatable is locked
//!   (`getmetatable("")` is a string, `setmetatable` takes tables only),
//!   userdata metatables (objects, errors, programs) are mlua's protected
//!   ones (`getmetatable(obj)` is `false`), and functions, numbers and
//!   booleans have no metatable a script can set without `debug`.
//! * **Registry**: unreachable from scripts (no `debug`); what the engine
//!   itself stored for the process (its environment, `require` cache,
//!   thread) is released with the context and the process.
//! * **Hooks, limits, counters**: the reset removes the instruction hook
//!   and the memory limit; instruction counts, deadlines and pending
//!   commands live in the per-process context. A memory-limited process
//!   starts after the previous owners' garbage is collected (within
//!   16 KB), so its limit counts its own allocations.
//! * **Random generator**: a process allowed `math.random` may have seeded
//!   it; the reset reseeds it unpredictably.
//! * **Program main functions**: a state keeps the main function of each
//!   program it ran (see [`program_main`]); the next process of the same
//!   program gets it with its own `_ENV`, and no script can reach it.
//! * **Garbage**: what the process allocated is unreachable; finalizers
//!   (`__gc`) are refused by the sandbox, so nothing runs when it is
//!   collected. A state that holds much of it is collected before reuse.
//!
//! Reusing a state costs the reset above (a few hash-map removals and a
//! Lua call at most); a new one costs `lua_newstate`, five libraries and
//! running the prelude (see the `spawn` group of `benches/core.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Table};
use parking_lot::Mutex;
use troupe_dispatcher::Error;

use super::state::{Output, Prelude, ProcCtx, new_state};

/// Idle states kept for reuse unless configured otherwise.
pub const DEFAULT_STATE_POOL: usize = 256;

/// A state holding more than this after its process is collected before
/// it is pooled again.
const COLLECT_ABOVE: usize = 256 * 1024;

/// Garbage a memory-limited process may find in its state before it is
/// collected (see [`settle`]).
const LIMIT_SLACK: usize = 16 * 1024;

/// Programs whose main function a state keeps (then it starts over).
const MAX_MAINS: usize = 16;

/// How the last user of a state ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The script returned (or the state only compiled a chunk).
    Clean,
    /// The script failed or was stopped at a yield.
    Failed,
    /// The state was dropped while Lua code ran in it.
    Broken,
}

/// Counters of a state pool, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatePoolStats {
    /// States made from scratch (a new Lua state plus the prelude).
    pub created: u64,
    /// Times a process (or compilation, or eval run) got a pooled state.
    pub reused: u64,
    /// States reset and put back after a clean finish.
    pub recycled: u64,
    /// States thrown away: their process did not finish cleanly, or the
    /// pool was full.
    pub discarded: u64,
    /// States waiting in the pool now.
    pub idle: usize,
}

/// Prepared Lua states waiting for a process (or an eval run).
pub(crate) struct Pool {
    idle: Mutex<Vec<Lua>>,
    capacity: AtomicUsize,
    /// Keeps states whose last run failed (an embedded interpreter whose
    /// globals outlive a failed run); process pools never do.
    persistent: bool,
    pub(crate) output: Output,
    created: AtomicU64,
    reused: AtomicU64,
    recycled: AtomicU64,
    discarded: AtomicU64,
}

impl Pool {
    /// An empty pool keeping up to `capacity` idle states.
    pub(crate) fn new(output: Output, capacity: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            capacity: AtomicUsize::new(capacity),
            persistent: false,
            output,
            created: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    /// A pool holding the one state of an embedded interpreter, kept after
    /// failed runs too (their globals are the interpreter's).
    pub(crate) fn persistent(output: Output, lua: Lua) -> Self {
        let mut pool = Self::new(output, 1);
        pool.persistent = true;
        pool.idle.get_mut().push(lua);
        pool
    }

    /// Sets how many idle states the pool keeps; extra ones are dropped.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
        let mut idle = self.idle.lock();
        while idle.len() > capacity {
            idle.pop();
        }
    }

    /// Whether no state waits in the pool.
    pub(crate) fn is_empty(&self) -> bool {
        self.idle.lock().is_empty()
    }

    /// A handle to the last idle state, left in the pool (the embedded
    /// interpreter's state between runs).
    pub(crate) fn peek(&self) -> Option<Lua> {
        self.idle.lock().last().cloned()
    }

    /// The pool's counters.
    pub(crate) fn stats(&self) -> StatePoolStats {
        StatePoolStats {
            created: self.created.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            recycled: self.recycled.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            idle: self.idle.lock().len(),
        }
    }

    /// A pooled state, or a new one.
    pub(crate) fn take(&self) -> Result<Lua, Error> {
        if let Some(lua) = self.idle.lock().pop() {
            self.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(lua);
        }
        let lua = new_state(&self.output)
            .map_err(|e| Error::internal(format!("cannot create a Lua state: {e}")))?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(lua)
    }

    /// Returns a state after its process ended: reset and pooled after a
    /// clean finish (see the module docs), dropped otherwise.
    pub(crate) fn give_back(&self, lua: Lua, ending: Ending) {
        let keep = match ending {
            Ending::Clean => true,
            Ending::Failed => self.persistent,
            Ending::Broken => false,
        };
        if !keep || reset(&lua, !self.persistent).is_err() {
            self.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.capacity.load(Ordering::Relaxed) {
            idle.push(lua);
            drop(idle);
            self.recycled.fetch_add(1, Ordering::Relaxed);
        } else {
            drop(idle);
            self.discarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Clears what a finished process left in `lua` outside its own
/// environment: its context (counters, limits, `require` cache), the
/// instruction hook, the memory limit and, when `reseed` is set and the
/// process could use `math.random`, the generator's seed.
fn reset(lua: &Lua, reseed: bool) -> mlua::Result<()> {
    let reseed = lua
        .remove_app_data::<ProcCtx>()
        .is_some_and(|ctx| ctx.random)
        && reseed;
    lua.remove_global_hook();
    lua.set_memory_limit(0)?;
    if reseed {
        let f = lua.app_data_ref::<Prelude>().map(|p| p.reseed.clone());
        if let Some(f) = f {
            f.call::<()>(())?;
        }
    }
    if lua.used_memory() > COLLECT_ABOVE {
        collect(lua)?;
    }
    Ok(())
}

/// What a state held right after its last full collection.
struct Settled(usize);

/// A full collection of `lua`, remembered by [`settle`].
pub(crate) fn collect(lua: &Lua) -> mlua::Result<()> {
    lua.gc_collect()?;
    lua.set_app_data(Settled(lua.used_memory()));
    Ok(())
}

/// Collects what earlier owners of `lua` left behind when it exceeds
/// [`LIMIT_SLACK`], before a memory limit is set relative to the memory in
/// use: the limit then counts the new process's own allocations, not its
/// predecessors' garbage (which the collector could free at any moment).
pub(crate) fn settle(lua: &Lua) -> mlua::Result<()> {
    let settled = lua.app_data_ref::<Settled>().map_or(0, |s| s.0);
    if lua.used_memory() > settled.saturating_add(LIMIT_SLACK) {
        collect(lua)?;
    }
    Ok(())
}

/// Main functions of the programs a state loaded, by program id and
/// whether it is the lightweight factory form (app data of every prepared
/// state).
#[derive(Default)]
pub(crate) struct Mains(HashMap<(u64, bool), Function>);

/// Function `key` of `lua`'s [`Mains`], or the one `load` makes (then kept,
/// the cache starting over when full); whether it was just made.
pub(crate) fn cached_main(
    lua: &Lua,
    key: (u64, bool),
    load: impl FnOnce() -> mlua::Result<Function>,
) -> mlua::Result<(Function, bool)> {
    if let Some(f) = lua
        .app_data_ref::<Mains>()
        .and_then(|m| m.0.get(&key).cloned())
    {
        return Ok((f, false));
    }
    let f = load()?;
    if let Some(mut mains) = lua.app_data_mut::<Mains>() {
        if mains.0.len() >= MAX_MAINS {
            mains.0.clear();
        }
        mains.0.insert(key, f.clone());
    }
    Ok((f, true))
}

/// Loads precompiled chunk `bytecode` (named `name`) in `lua` as a function
/// whose `_ENV` is `env`.
pub(crate) fn load_binary(
    lua: &Lua,
    name: &str,
    bytecode: &[u8],
    env: Table,
) -> mlua::Result<Function> {
    lua.load(bytecode)
        .set_name(format!("@{name}"))
        .set_mode(ChunkMode::Binary)
        .set_environment(env)
        .into_function()
}

/// The main function of program `id` (`bytecode`, called `name`) in `lua`,
/// with `env` as its `_ENV`. Loaded on the program's first process in this
/// state; later processes get the same function with their own environment
/// instead of loading the bytecode again. Sharing it is safe because a
/// state serves one process at a time and is reused only after a clean
/// finish: the previous process's closures, which still share the old
/// `_ENV` upvalue, are unreachable by then, and a script has no way to reach
/// its own main function or its upvalues (no `debug`).
pub(crate) fn program_main(
    lua: &Lua,
    id: u64,
    name: &str,
    bytecode: &[u8],
    env: &Table,
) -> mlua::Result<Function> {
    let (main, fresh) = cached_main(lua, (id, false), || {
        load_binary(lua, name, bytecode, env.clone())
    })?;
    if fresh {
        return Ok(main);
    }
    // SAFETY: `main` is a Lua function of this state made by `load` from a
    // main chunk, whose only upvalue (number 1) is `_ENV`; the closure runs
    // with `main` and `env` at stack slots 1 and 2 and pops what it pushed.
    unsafe {
        lua.exec_raw::<()>((main.clone(), env.clone()), |state| {
            mlua::ffi::lua_setupvalue(state, 1, 1);
            mlua::ffi::lua_settop(state, 0);
        })?;
    }
    Ok(main)
}
