//! The Lua engine (mlua, Lua 5.4). Each process owns a Lua state taken from
//! a pool of prepared, sandboxed states; scripts are compiled once to
//! bytecode and loaded into each process with its own fresh environment.
//!
//! What a process can reach: its own globals (`_ENV`), read-only views of
//! `string`, `table`, `math` (no `random` unless the policy allows
//! nondeterminism), `utf8` and a `coroutine` that relays commands, a
//! text-only `load`, `require` through the policy, `print`. Not `io`, `os`,
//! `debug`, `package`, `string.dump`, `dofile` or `loadfile`. Read-only
//! tables refuse `rawset` too, `setmetatable` refuses `__gc` (a finalizer
//! could run while another process owns the pooled state), and a `pcall`
//! or coroutine cannot swallow an exceeded limit.
//!
//! The engine also implements the `eval_runner` module (see `eval.rs`):
//! Lua source run in a fresh state under at most the caller's policy and
//! remaining limits.

mod convert;
mod error;
mod eval;
mod interpreter;
mod lightweight;
mod object;
mod patterns;
mod pool;
mod process;
mod state;
mod watchdog;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mlua::chunk::ChunkMode;
use mlua::debug::HookTriggers;
use mlua::{Lua, MultiValue, VmState};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::{Class, ModuleDef, ResultHandler};
use troupe_runtime::{Engine, Process, ProcessInit, Program};
use troupe_sources::Script;

pub use self::interpreter::LuaInterpreter;
use self::lightweight::Lightweight;
pub use self::pool::{DEFAULT_STATE_POOL, StatePoolStats};
use self::pool::{Ending, Pool};
use self::process::LuaProcess;
use self::state::{Prelude, ProcCtx};

/// A compiled Lua script: bytecode with debug info (for line numbers).
struct LuaProgram {
    /// Unique in this OS process: the key of the program's main function
    /// in each state's cache.
    id: u64,
    key: String,
    bytecode: Vec<u8>,
    /// The script compiled as a factory of main functions for lightweight
    /// processes (see [`lightweight::factory_source`]); `None` if that
    /// form does not compile (lightweight processes load `bytecode` then).
    factory: Option<Vec<u8>>,
}

/// The next [`LuaProgram::id`].
static NEXT_PROGRAM: AtomicU64 = AtomicU64::new(0);

/// The Lua engine. Cheap to clone.
#[derive(Clone)]
pub struct LuaEngine {
    pool: Arc<Pool>,
    /// The states lightweight processes share.
    light: Arc<Lightweight>,
}

impl Default for LuaEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl LuaEngine {
    /// A Lua engine whose `print` writes lines to stdout.
    pub fn new() -> Self {
        Self::with_output(|line| println!("{line}"))
    }

    /// A Lua engine whose `print` hands each line to `output`.
    pub fn with_output(output: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            pool: Arc::new(Pool::new(Arc::new(output), DEFAULT_STATE_POOL)),
            light: Arc::new(Lightweight::default()),
        }
    }

    /// How many Lua states this engine's lightweight processes are spread
    /// over (round robin, made on first use): with
    /// [`lightweight_state_memory`](Self::lightweight_state_memory), their
    /// memory is at most this many times the cap.
    pub fn lightweight_states(&self) -> usize {
        self.light.states()
    }

    /// Caps the memory of each Lua state that lightweight processes share
    /// at `bytes` (all the processes of that state together, plus the
    /// sandbox itself; default: no cap). The allocation that would pass the
    /// cap fails with `LIMIT_EXCEEDED` in the process making it. Set it
    /// before the engine's first lightweight spawn: it replaces the shared
    /// states.
    #[must_use]
    pub fn lightweight_state_memory(mut self, bytes: NonZeroUsize) -> Self {
        self.light = Arc::new(Lightweight::with_memory(Some(bytes)));
        self
    }

    /// The counters of the engine's isolated-state pool (shared by clones
    /// of this engine).
    pub fn pool_stats(&self) -> StatePoolStats {
        self.pool.stats()
    }
}

/// Compiles `code` to bytecode (with debug info, for line numbers) in a
/// pooled state. A syntax error is `INVALID`.
fn compile_bytecode(pool: &Pool, key: &str, code: &[u8]) -> Result<Vec<u8>, Error> {
    compile_with_factory(pool, key, code, false).map(|(bytecode, _)| bytecode)
}

/// [`compile_bytecode`], and with `factory` also the lightweight factory
/// form of the script (see [`lightweight::factory_source`]; `None` if it
/// does not compile), in the same pooled state.
fn compile_with_factory(
    pool: &Pool,
    key: &str,
    code: &[u8],
    factory: bool,
) -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
    let lua = pool.take()?;
    let compiled = dump(&lua, key, code);
    let wrapped = (factory && compiled.is_ok())
        .then(|| dump(&lua, key, &lightweight::factory_source(code)).ok())
        .flatten();
    pool.give_back(lua, Ending::Clean);
    Ok((compiled.map_err(|e| syntax_error(key, &e))?, wrapped))
}

/// `code` (named `key`) compiled in `lua`, as bytecode.
fn dump(lua: &Lua, key: &str, code: &[u8]) -> mlua::Result<Vec<u8>> {
    lua.load(code)
        .set_name(format!("@{key}"))
        .set_mode(ChunkMode::Text)
        .into_function()
        .map(|f| f.dump(false))
}

/// [`compile_bytecode`] in a bare state of the calling thread, away from
/// any pool (background reloads).
fn compile_detached(key: &str, code: &[u8]) -> Result<Vec<u8>, Error> {
    thread_local! {
        static COMPILER: Lua = Lua::new();
    }
    COMPILER.with(|lua| dump(lua, key, code).map_err(|e| syntax_error(key, &e)))
}

/// Source text or bytecode made by [`compile_bytecode`].
#[derive(Clone, Copy)]
pub(crate) enum Chunk<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    /// The bytecode of a compiled program, loaded once per state (see
    /// [`pool::program_main`]).
    Program(u64, &'a [u8]),
    /// The factory bytecode of a compiled program, loaded once per shared
    /// state (see [`lightweight::factory`]).
    Factory(u64, &'a [u8]),
}

/// What an `eval_runner` run adds to a plain process.
#[derive(Default)]
pub(crate) struct EvalExtras {
    /// Globals set before the chunk runs (`input`, `ctx`).
    pub globals: BTreeMap<String, Value>,
    /// Tables `require` returns by name (read-only).
    pub custom: BTreeMap<String, Value>,
    /// Scripts `require` loads by name, on first use.
    pub imports: HashMap<String, Script>,
    /// Nesting level below the process (1 for an eval run by a process).
    pub depth: u8,
    /// An environment and `require` cache to run in instead of fresh ones
    /// (an embedded interpreter keeps its globals between runs). They must
    /// belong to the state the pool hands out.
    pub env: Option<(mlua::Table, mlua::Table)>,
}

/// Starts `chunk` (called `name` in errors) in a state from `pool`: a fresh
/// environment, the instruction hook, the memory limit, the context.
pub(crate) fn launch(
    pool: &Arc<Pool>,
    name: &str,
    chunk: Chunk<'_>,
    init: ProcessInit,
    extras: EvalExtras,
) -> Result<LuaProcess, Error> {
    let lua = pool.take()?;
    let (mut process, ctx) = prepare(&lua, pool, name, chunk, init, extras, true)?;
    lua.set_app_data(ctx);
    process.lua = Some(lua);
    Ok(process)
}

/// Makes the thread that runs `chunk` in `lua` and its context (for the
/// caller to install as the state's app data while the thread runs). With
/// `set_hook`, installs the state's instruction hook for this process's
/// slice first; without, the state has it already.
pub(crate) fn prepare(
    lua: &Lua,
    pool: &Arc<Pool>,
    name: &str,
    chunk: Chunk<'_>,
    init: ProcessInit,
    extras: EvalExtras,
    set_hook: bool,
) -> Result<(LuaProcess, ProcCtx), Error> {
    let (new_env, body, run_entry, handler) = {
        let p = lua
            .app_data_ref::<Prelude>()
            .ok_or_else(|| Error::internal("unprepared Lua state"))?;
        let new_env = if init.lightweight {
            &p.new_light_env
        } else {
            &p.new_env
        };
        (
            new_env.clone(),
            p.body.clone(),
            p.run_entry.clone(),
            p.handler.clone(),
        )
    };
    let nondeterministic = init.policy.classes().contains(Class::Nondeterministic);
    // A lightweight process's environment, `require` cache and main
    // function (from its program's factory) come from one call.
    let mut made_main = None;
    let (env, loaded) = match (extras.env, chunk) {
        (Some((env, loaded)), _) => (env, loaded),
        (None, Chunk::Factory(id, code)) if init.lightweight => {
            let factory = lightweight::factory(lua, id, name, code).map_err(internal)?;
            let (env, loaded, main) = new_env
                .call::<(mlua::Table, mlua::Table, mlua::Function)>((nondeterministic, factory))
                .map_err(internal)?;
            made_main = Some(main);
            (env, loaded)
        }
        (None, _) if init.lightweight => new_env.call(nondeterministic).map_err(internal)?,
        (None, _) => (
            new_env
                .call((nondeterministic, init.journaled))
                .map_err(internal)?,
            lua.create_table().map_err(internal)?,
        ),
    };
    for (k, v) in &extras.globals {
        env.raw_set(k.as_str(), convert::to_lua(lua, v).map_err(internal)?)
            .map_err(internal)?;
    }
    let (code, mode) = match chunk {
        Chunk::Text(t) => (t, ChunkMode::Text),
        Chunk::Binary(b) => (b, ChunkMode::Binary),
        Chunk::Program(_, b) | Chunk::Factory(_, b) => (b, ChunkMode::Binary),
    };
    let main = match (made_main, chunk) {
        (Some(main), _) => Ok(main),
        (None, Chunk::Program(id, _)) => pool::program_main(lua, id, name, code, &env),
        (None, Chunk::Factory(id, _)) => {
            lightweight::factory(lua, id, name, code).and_then(|factory| factory.call(&env))
        }
        (None, _) => lua
            .load(code)
            .set_name(format!("@{name}"))
            .set_mode(mode)
            .set_environment(env.clone())
            .into_function(),
    }
    .map_err(|e| match mode {
        ChunkMode::Text => syntax_error(name, &e),
        ChunkMode::Binary => internal(e),
    })?;
    state::custom_modules(lua, &env, &loaded, &extras.custom).map_err(internal)?;
    let mut limits = init.limits;
    if !init.lightweight && limits.max_memory.is_none() {
        // Running out of memory ends this process, not the host.
        limits.max_memory = init.memory_ceiling;
    }
    let slice = limits.check_every().min(u64::from(u32::MAX));
    if set_hook {
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(slice as u32),
            |lua, _| hook(lua),
        )
        .map_err(internal)?;
    }
    // Hooks are per thread and copied when a thread is created: install
    // the hook first so the process's thread (and its coroutines) get it.
    let thread = lua.create_thread(body).map_err(internal)?;
    // Without an instruction limit (and outside eval runs, which count for
    // their caller), the process's own thread runs without a hook and the
    // watchdog preempts it by time: a hook costs on every instruction.
    let timed = limits.max_instructions.is_none() && extras.depth == 0;
    let hook_fn = if timed {
        // SAFETY: the thread was just created by this state and is not
        // running; its hook is mlua's global hook procedure.
        unsafe {
            let hook = mlua::ffi::lua_gethook(thread.state());
            mlua::ffi::lua_sethook(thread.state(), None, 0, 0);
            hook
        }
    } else {
        None
    };
    let memory_limit = match limits.max_memory {
        Some(m) => {
            pool::settle(lua).map_err(internal)?;
            let abs = lua.used_memory().saturating_add(m.get());
            lua.set_memory_limit(abs).map_err(internal)?;
            Some(abs)
        }
        None => None,
    };
    let mut start = Vec::with_capacity(init.args.len() + 2);
    match &init.entry {
        None => {
            start.push(mlua::Value::Function(main));
            start.push(mlua::Value::Function(handler));
            for a in &init.args {
                start.push(convert::to_lua(lua, a).map_err(internal)?);
            }
        }
        Some(entry) => {
            // Packed, with their count (a `nil` among them survives).
            let args = if init.args.is_empty() {
                mlua::Value::Nil
            } else {
                let t = lua
                    .create_sequence_from(init.args.iter().map(convert::Neutral))
                    .map_err(internal)?;
                t.raw_set("n", init.args.len()).map_err(internal)?;
                mlua::Value::Table(t)
            };
            start.push(mlua::Value::Function(run_entry));
            start.push(mlua::Value::Function(handler));
            start.push(mlua::Value::Function(main));
            start.push(mlua::Value::Table(env.clone()));
            start.push(mlua::Value::String(
                lua.create_string(entry).map_err(internal)?,
            ));
            start.push(args);
        }
    }
    let ctx = ProcCtx {
        pid: init.pid,
        parent: init.parent,
        key: init.key,
        source: init.source,
        pool: Arc::clone(pool),
        policy: init.policy,
        modules: init.modules,
        env,
        loaded,
        imports: state::Imports::boxed(extras.imports),
        eval_depth: extras.depth,
        random: nondeterministic,
        memory_limit,
        pending: None,
        preempting: false,
        nested_preempt: false,
        main_thread: thread.state() as usize,
        instructions: 0,
        max_instructions: limits.max_instructions.map(|m| m.get()),
        slice,
        timed,
        hook_fn,
        deadline: limits.deadline(Instant::now()),
        timeout_ms: limits.timeout.map_or(0, |t| t.as_millis()),
        terminate: None,
    };
    let process = LuaProcess {
        lua: None,
        thread,
        start: Some(MultiValue::from_vec(start)),
        pool: Arc::clone(pool),
        memory_limit: limits.max_memory.map(|m| m.get()),
        awaiting: ResultHandler::default(),
        hook: hook_fn,
        clean: false,
    };
    Ok((process, ctx))
}

fn syntax_error(key: &str, e: &mlua::Error) -> Error {
    let text = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Error::invalid(format!("syntax error: {text}")).with_details(Value::from(key))
}

fn internal(e: mlua::Error) -> Error {
    match e {
        mlua::Error::MemoryError(m) => Error::new(ErrorKind::LimitExceeded, m),
        other => Error::internal(other.to_string()),
    }
}

/// The instruction hook: counts instructions, enforces the instruction and
/// wall-clock limits, and asks for a preemption yield every slice.
fn hook(lua: &Lua) -> mlua::Result<VmState> {
    let Some(mut ctx) = lua.app_data_mut::<ProcCtx>() else {
        return Ok(VmState::Continue);
    };
    if ctx.terminate.is_none() {
        // A timed process counts no instructions (its slices are timed).
        let slice = if ctx.timed { 0 } else { ctx.slice };
        ctx.charge(slice);
    } else if ctx.preempting {
        // The last yield request was ignored: we are where Lua cannot yield
        // (a sort comparator, a `__tostring`). Unwind with an error instead.
        let msg = ctx
            .terminate
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(mlua::Error::runtime(msg));
    }
    ctx.preempting = true;
    if lua.current_thread().state() as usize != ctx.main_thread {
        ctx.nested_preempt = true;
    }
    Ok(VmState::Yield)
}

impl Engine for LuaEngine {
    fn name(&self) -> &str {
        "lua"
    }

    fn extensions(&self) -> &[&str] {
        &["lua"]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        let (bytecode, factory) =
            compile_with_factory(&self.pool, &script.key, &script.code, true)?;
        Ok(Arc::new(LuaProgram {
            id: NEXT_PROGRAM.fetch_add(1, Ordering::Relaxed),
            key: script.key.clone(),
            bytecode,
            factory,
        }))
    }

    fn modules(&self) -> Vec<ModuleDef> {
        state::native_modules()
    }

    fn set_state_pool(&self, capacity: usize) {
        self.pool.set_capacity(capacity);
    }

    fn lightweight(&self) -> bool {
        true
    }

    /// Measured with `troupe bench` (idle memory per process): an idle
    /// isolated process holds about 98 KB of resident memory, its state's
    /// heap (what its `Process::memory` reports) included; a lightweight
    /// one about 10 KB, which its shared state does not report per
    /// process.
    fn footprint(&self, lightweight: bool) -> usize {
        if lightweight { 10 << 10 } else { 72 << 10 }
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let program = program
            .downcast_ref::<LuaProgram>()
            .ok_or_else(|| Error::internal("program was not compiled by the Lua engine"))?;
        let key = program.key.clone();
        if init.lightweight {
            let chunk = match &program.factory {
                Some(f) => Chunk::Factory(program.id, f),
                None => Chunk::Binary(&program.bytecode),
            };
            return Ok(Box::new(self.light.launch(&self.pool, &key, chunk, init)?));
        }
        let process = launch(
            &self.pool,
            &key,
            Chunk::Program(program.id, &program.bytecode),
            init,
            EvalExtras::default(),
        )?;
        Ok(Box::new(process))
    }
}
