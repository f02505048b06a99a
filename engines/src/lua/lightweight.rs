//! Lightweight processes: each is one coroutine in a Lua state shared with
//! other lightweight processes, instead of a state of its own.
//!
//! The engine keeps a small set of shared states ([`SHARED_PER_CORE`] per
//! core) and places each new lightweight process in the next one, round
//! robin (a process spawning a child from its step puts it in its own state
//! when the chosen one is busy: a step never waits for a second lock). A
//! shared state is behind a mutex: a step locks the state of its process,
//! installs the process's context ([`ProcCtx`], which the module
//! functions, `require` and the instruction hook read) as the state's app
//! data, resumes the coroutine and takes the context back. The scheduler
//! may run any process on any worker; two workers stepping processes of the
//! same state take turns on the mutex (with several states per core, that
//! is the exception), and a process never runs on two workers at once.
//!
//! What a process can reach is its own: its environment (made by the
//! prelude's `new_light_env`: its own globals, with the shared base library
//! read through a locked `__index` whose table no script can reach), its
//! `require` cache and the module proxies in it, its thread, its context.
//! The library and module tables behind the proxies are shared and
//! read-only (the same sandbox as for isolated processes, which already
//! share a pooled state with the processes before and after them). Memory
//! is the state's: a lightweight process has no memory limit of its own,
//! and the state may have one for all its processes together
//! ([`LuaEngine::lightweight_state_memory`](super::LuaEngine::lightweight_state_memory)).

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use mlua::{Function, Lua};
use parking_lot::Mutex;
use troupe_dispatcher::Error;
use troupe_runtime::{Process, ProcessInit, Resume, Step, StepCx};

use super::pool::{Pool, cached_main, load_binary};
use super::process::LuaProcess;
use super::state::ProcCtx;
use super::{Chunk, EvalExtras, prepare};

/// `code` wrapped so that its compiled chunk, called with an environment,
/// returns a new main function of the script with that `_ENV`: the per
/// process main function is then a closure of an already loaded prototype
/// instead of a new load of the bytecode. (An isolated state reuses its
/// one main function and sets its `_ENV`; in a shared state that would
/// change the globals of the live processes that share the function.) The
/// prefix is on the script's first line, so line numbers stay the same.
pub(crate) fn factory_source(code: &[u8]) -> Vec<u8> {
    const HEAD: &[u8] = b"local _ENV = ... return function(...) ";
    const TAIL: &[u8] = b"\nend";
    let mut out = Vec::with_capacity(HEAD.len() + code.len() + TAIL.len());
    out.extend_from_slice(HEAD);
    out.extend_from_slice(code);
    out.extend_from_slice(TAIL);
    out
}

/// The factory of program `id` (`bytecode`, made from [`factory_source`]),
/// loaded in `lua` on first use: called with an environment, it returns a
/// new main function of the program with that `_ENV` (the prelude's
/// `new_light_env` calls it).
pub(crate) fn factory(lua: &Lua, id: u64, name: &str, bytecode: &[u8]) -> mlua::Result<Function> {
    let (factory, _) = cached_main(lua, (id, true), || {
        // The factory's own `_ENV` is never read (the script's names
        // resolve to the local `_ENV`); an empty table, to be sure.
        load_binary(lua, name, bytecode, lua.create_table()?)
    })?;
    Ok(factory)
}

/// Shared states per core (more states, fewer workers waiting on the same
/// state's mutex).
const SHARED_PER_CORE: usize = 4;

thread_local! {
    /// The shared state whose mutex this OS thread holds (its address; 0
    /// for none): a process spawning a lightweight child from a step must
    /// not wait for its own state.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// A state shared by lightweight processes.
struct Shared {
    /// Used only by the thread holding `lock`.
    lua: Lua,
    /// Held while one of the state's processes runs or one is made in it.
    lock: Mutex<()>,
    /// The slice the state's global hook was installed with (0: none yet;
    /// new threads copy it; a process with another slice reinstalls it).
    /// Changed only under `lock`.
    slice: AtomicU64,
    /// The most memory the state may use (all its processes together).
    memory_limit: Option<usize>,
}

/// The engine's shared states, made on first use. There are at least four,
/// so the next one after the state a spawning process holds is another.
pub(crate) struct Lightweight {
    states: Vec<std::sync::OnceLock<Arc<Shared>>>,
    next: AtomicUsize,
    /// The memory limit of each shared state (all its processes together).
    memory: Option<NonZeroUsize>,
}

impl Default for Lightweight {
    fn default() -> Self {
        Self::with_memory(None)
    }
}

impl Lightweight {
    /// Shared states whose memory (each) is at most `memory` bytes.
    pub(crate) fn with_memory(memory: Option<NonZeroUsize>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            states: (0..cores * SHARED_PER_CORE)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            next: AtomicUsize::new(0),
            memory,
        }
    }

    /// The shared state the next process goes to (a prepared state from
    /// `pool`, never given back, capped at the engine's state memory or
    /// else `ceiling`).
    fn pick(&self, pool: &Arc<Pool>, ceiling: Option<NonZeroUsize>) -> Result<Arc<Shared>, Error> {
        let mut i = self.next.fetch_add(1, Ordering::Relaxed) % self.states.len();
        let held = HELD.get();
        if held != 0
            && self.states[i]
                .get()
                .is_some_and(|s| Arc::as_ptr(s) as usize == held)
        {
            i = (i + 1) % self.states.len();
        }
        let cell = &self.states[i];
        if let Some(s) = cell.get() {
            return Ok(Arc::clone(s));
        }
        let lua = pool.take()?;
        let resident = ProcCtx::inert(&lua, pool).map_err(|e| Error::internal(e.to_string()))?;
        lua.set_app_data(resident);
        let memory_limit = self.memory.or(ceiling).map(NonZeroUsize::get);
        if let Some(m) = memory_limit {
            lua.set_memory_limit(m)
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        Ok(Arc::clone(cell.get_or_init(|| {
            Arc::new(Shared {
                memory_limit,
                lua,
                lock: Mutex::new(()),
                slice: AtomicU64::new(0),
            })
        })))
    }

    /// The state whose lock this thread holds (`held`), if it is one of
    /// this engine's.
    /// How many shared states there are (made or not yet).
    pub(crate) fn states(&self) -> usize {
        self.states.len()
    }

    fn held(&self, held: usize) -> Option<Arc<Shared>> {
        self.states
            .iter()
            .filter_map(|c| c.get())
            .find(|s| Arc::as_ptr(s) as usize == held)
            .map(Arc::clone)
    }

    /// Starts `chunk` as a lightweight process. A memory limit is
    /// `INVALID`: memory is accounted per shared state.
    pub(crate) fn launch(
        &self,
        pool: &Arc<Pool>,
        name: &str,
        chunk: Chunk<'_>,
        init: ProcessInit,
    ) -> Result<LightProcess, Error> {
        if init.limits.max_memory.is_some() {
            return Err(Error::invalid(
                "a lightweight process cannot have a memory limit of its own \
                 (memory is shared by the processes of a state); spawn it isolated",
            ));
        }
        let target = self.pick(pool, init.memory_ceiling)?;
        // Inside a step (a process spawning a child) this thread holds its
        // own state's lock: waiting for another state's lock could deadlock
        // with a process of that state spawning into ours, so the child
        // goes to our own state when its target is busy.
        let held = HELD.get();
        let guard = match held {
            0 => Some(target.lock.lock()),
            _ => target.lock.try_lock(),
        };
        let shared = match (&guard, self.held(held)) {
            (None, Some(own)) => own,
            (None, None) => return Err(Error::internal("no lightweight state to spawn into")),
            (Some(_), _) => Arc::clone(&target),
        };
        let slice = init.limits.check_every().min(u64::from(u32::MAX));
        let set_hook = shared.slice.swap(slice, Ordering::Relaxed) != slice;
        let (mut inner, ctx) = prepare(
            &shared.lua,
            pool,
            name,
            chunk,
            init,
            EvalExtras::default(),
            set_hook,
        )?;
        drop(guard);
        // Running out of the state's memory names the state's limit.
        inner.memory_limit = shared.memory_limit;
        Ok(LightProcess { shared, inner, ctx })
    }
}

/// Swaps `ctx` with the context the state holds (the state's resident
/// [`ProcCtx::inert`] between steps); false if it holds none.
fn swap_ctx(lua: &Lua, ctx: &mut ProcCtx) -> bool {
    lua.app_data_mut::<ProcCtx>()
        .map(|mut held| std::mem::swap(&mut *held, ctx))
        .is_some()
}

/// A lightweight process: its thread (in `inner`, which has no state of
/// its own) and its context while it does not run.
pub(crate) struct LightProcess {
    shared: Arc<Shared>,
    inner: LuaProcess,
    ctx: ProcCtx,
}

impl Process for LightProcess {
    fn step(&mut self, cx: &mut StepCx<'_>, input: Resume) -> Step {
        let _guard = self.shared.lock.lock();
        let lua = &self.shared.lua;
        let outer = HELD.replace(Arc::as_ptr(&self.shared) as usize);
        let step = if swap_ctx(lua, &mut self.ctx) {
            let step = self.inner.step_in(lua, cx, input);
            swap_ctx(lua, &mut self.ctx);
            step
        } else {
            Step::Failed(Error::internal("a shared state without its context"))
        };
        HELD.set(outer);
        step
    }
}
