//! The Lua engine (mlua, Lua 5.4). Each process owns a Lua state taken from
//! a pool of prepared, sandboxed states; scripts are compiled once to
//! bytecode and loaded into each process with its own fresh environment.
//!
//! What a process can reach: its own globals (`_ENV`), read-only views of
//! `string`, `table`, `math` (no `random` unless the policy allows
//! nondeterminism), `utf8` and a `coroutine` that relays commands, a
//! text-only `load`, `require` through the policy, `print`. Not `io`, `os`,
//! `debug`, `package`, `string.dump`, `dofile` or `loadfile`.

mod convert;
mod error;
mod object;
mod process;
mod state;

use std::sync::Arc;
use std::time::Instant;

use mlua::chunk::ChunkMode;
use mlua::debug::HookTriggers;
use mlua::{Lua, MultiValue, VmState};
use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::{Class, ResultHandler};
use troupe_runtime::{Engine, Process, ProcessInit, Program};
use troupe_sources::Script;

use self::process::LuaProcess;
use self::state::{Output, Prelude, ProcCtx, new_state};

/// Idle states kept for reuse.
const MAX_IDLE_STATES: usize = 256;

/// A compiled Lua script: bytecode with debug info (for line numbers).
struct LuaProgram {
    key: String,
    bytecode: Vec<u8>,
}

/// Prepared Lua states waiting for a process.
pub(crate) struct Pool {
    idle: Mutex<Vec<Lua>>,
    output: Output,
}

impl Pool {
    fn take(&self) -> Result<Lua, Error> {
        if let Some(lua) = self.idle.lock().pop() {
            return Ok(lua);
        }
        new_state(&self.output)
            .map_err(|e| Error::internal(format!("cannot create a Lua state: {e}")))
    }

    /// Returns a state after its process ended. Everything the process made
    /// is unreachable now (its environment, thread and module proxies were
    /// its own); a full collection runs only when it left garbage behind.
    fn give_back(&self, lua: Lua, healthy: bool, had_limit: bool) {
        if !healthy {
            return;
        }
        if had_limit {
            let _ = lua.set_memory_limit(0);
        }
        if lua.used_memory() > 256 * 1024 {
            let _ = lua.gc_collect();
        }
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_STATES {
            idle.push(lua);
        }
    }
}

/// The Lua engine. Cheap to clone.
#[derive(Clone)]
pub struct LuaEngine {
    pool: Arc<Pool>,
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
            pool: Arc::new(Pool {
                idle: Mutex::new(Vec::new()),
                output: Arc::new(output),
            }),
        }
    }
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
    ctx.instructions += ctx.slice;
    if ctx.terminate.is_none() {
        if ctx
            .max_instructions
            .is_some_and(|max| ctx.instructions > max)
        {
            let max = ctx.max_instructions.unwrap_or_default();
            ctx.terminate = Some(Error::new(
                ErrorKind::LimitExceeded,
                format!("instruction limit of {max} exceeded"),
            ));
        } else if ctx.deadline.is_some_and(|d| Instant::now() >= d) {
            ctx.terminate = Some(Error::new(
                ErrorKind::Timeout,
                format!(
                    "process exceeded its wall-clock limit of {} ms",
                    ctx.timeout_ms
                ),
            ));
        }
    } else if ctx.preempting {
        // The last yield request was ignored: we are where Lua cannot yield
        // (a gsub callback, a sort comparator). Unwind with an error instead.
        let msg = ctx
            .terminate
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(mlua::Error::runtime(msg));
    }
    ctx.preempting = true;
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
        let lua = self.pool.take()?;
        let compiled = lua
            .load(&*script.code)
            .set_name(format!("@{}", script.key))
            .set_mode(ChunkMode::Text)
            .into_function()
            .map(|f| f.dump(false));
        self.pool.give_back(lua, true, false);
        let bytecode = compiled.map_err(|e| syntax_error(&script.key, &e))?;
        Ok(Arc::new(LuaProgram {
            key: script.key.clone(),
            bytecode,
        }))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let program = program
            .downcast_ref::<LuaProgram>()
            .ok_or_else(|| Error::internal("program was not compiled by the Lua engine"))?;
        let lua = self.pool.take()?;
        let (new_env, body) = {
            let p = lua
                .app_data_ref::<Prelude>()
                .ok_or_else(|| Error::internal("unprepared Lua state"))?;
            (p.new_env.clone(), p.body.clone())
        };
        let nondeterministic = init.policy.classes().contains(Class::Nondeterministic);
        let env: mlua::Table = new_env.call(nondeterministic).map_err(internal)?;
        let main = lua
            .load(&program.bytecode[..])
            .set_name(format!("@{}", program.key))
            .set_mode(ChunkMode::Binary)
            .set_environment(env.clone())
            .into_function()
            .map_err(internal)?;
        let limits = init.limits;
        let slice = limits.slice_instructions.get().min(u64::from(u32::MAX));
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(slice as u32),
            |lua, _| hook(lua),
        )
        .map_err(internal)?;
        // Hooks are per thread and copied when a thread is created: install
        // the hook first so the process's thread (and its coroutines) get it.
        let thread = lua.create_thread(body).map_err(internal)?;
        let memory_limit = limits.max_memory.map(|m| m.get());
        if let Some(m) = memory_limit {
            lua.set_memory_limit(lua.used_memory() + m)
                .map_err(internal)?;
        }
        let mut start = Vec::with_capacity(init.args.len() + 3);
        start.push(mlua::Value::Function(main));
        start.push(mlua::Value::Table(env.clone()));
        start.push(match &init.entry {
            Some(e) => mlua::Value::String(lua.create_string(e).map_err(internal)?),
            None => mlua::Value::Nil,
        });
        for a in &init.args {
            start.push(convert::to_lua(&lua, a).map_err(internal)?);
        }
        lua.set_app_data(ProcCtx {
            pid: init.pid,
            parent: init.parent,
            policy: init.policy,
            modules: init.modules,
            loaded: lua.create_table().map_err(internal)?,
            pending: None,
            preempting: false,
            instructions: 0,
            max_instructions: limits.max_instructions.map(|m| m.get()),
            slice,
            deadline: limits.timeout.map(|t| Instant::now() + t),
            timeout_ms: limits.timeout.map_or(0, |t| t.as_millis()),
            terminate: None,
        });
        Ok(Box::new(LuaProcess {
            lua: Some(lua),
            thread,
            start: Some(MultiValue::from_vec(start)),
            pool: Arc::clone(&self.pool),
            memory_limit,
            awaiting: ResultHandler::default(),
        }))
    }
}
