//! [`LuaInterpreter`]: the Lua engine as an embeddable [`ScriptEngine`] with
//! every capability. It owns one sandboxed state (the same prelude, `require`
//! and limits as a process) and one global environment that lives until
//! [`reset`](ScriptEngine::reset). Each run is a process of the Lua engine
//! stepped to completion on the calling thread: preemptions continue at
//! once unless the cancellation handle was cancelled, module commands fail
//! `UNAVAILABLE` (they need the scheduler).

use std::sync::Arc;

use mlua::{Lua, MultiValue, Table};
use troupe_dispatcher::{Error, Pid, Value};
use troupe_modules::{Class, ModuleDef, ModuleRegistry, Policy};
use troupe_runtime::{Limits, Process, ProcessInit, Resume, Step, StepCx};
use troupe_sources::{Script, Source};

use super::convert::{to_lua, to_value};
use super::state::{Output, Prelude, new_state, ok_values, raise, wrap};
use super::{Chunk, EvalExtras, Pool, compile_bytecode, compile_detached, internal, launch};
use crate::capability::{
    Executor, Functions, Globals, HostFunction, Loader, Modules, ScriptEngine, Watcher, closed,
    commands_need_a_process,
};
use crate::shell::{Shell, shell_methods};

/// The kind every Lua interpreter reports.
const KIND: &str = "lua";

/// The state of an initialised interpreter.
struct Live {
    /// A pool holding exactly this interpreter's state while no run uses it.
    pool: Arc<Pool>,
    /// The global environment scripts run in.
    env: Table,
    /// `require`'s cache.
    loaded: Table,
}

/// A Lua interpreter instance: globals, loaded scripts and host functions
/// persist between calls until [`reset`](ScriptEngine::reset).
///
/// ```
/// use troupe_engines::lua::LuaInterpreter;
/// use troupe_engines::ScriptEngine;
/// use troupe_dispatcher::Value;
///
/// let mut lua = LuaInterpreter::new();
/// lua.as_loader()?.load_string("lib", "function double(n) return n * 2 end")?;
/// lua.as_executor()?.execute("lib")?;
/// let r = lua.as_functions()?.call_function("double", vec![Value::Int(21)])?;
/// assert_eq!(r, Value::Int(42));
/// # Ok::<(), troupe_dispatcher::Error>(())
/// ```
pub struct LuaInterpreter {
    /// Loaded scripts: bytecode by key.
    shell: Shell<Vec<u8>>,
    output: Output,
    live: Option<Live>,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    limits: Limits,
}

impl Default for LuaInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl LuaInterpreter {
    /// An interpreter whose `print` writes lines to stdout, with a deny-all
    /// policy, default limits and an empty source.
    pub fn new() -> Self {
        Self::with_output(|line| println!("{line}"))
    }

    /// An interpreter whose `print` hands each line to `output`.
    pub fn with_output(output: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            shell: Shell::opened(KIND),
            output: Arc::new(output),
            live: None,
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::with_builtins()),
            limits: Limits::default(),
        }
    }

    /// A fresh state with an empty environment and `require` cache.
    fn start(&self) -> Result<Live, Error> {
        let lua = new_state(&self.output)
            .map_err(|e| Error::internal(format!("cannot create a Lua state: {e}")))?;
        let (env, loaded) = fresh_env(&lua, &self.policy)?;
        let pool = Arc::new(Pool::persistent(Arc::clone(&self.output), lua));
        Ok(Live { pool, env, loaded })
    }

    /// The live state, starting it on first use.
    fn live(&mut self) -> Result<&Live, Error> {
        self.shell.check()?;
        if self.live.is_none() {
            self.live = Some(self.start()?);
        }
        self.live.as_ref().ok_or_else(|| closed(KIND))
    }

    /// The interpreter's state, for work outside a run.
    fn state(&mut self) -> Result<(Lua, Table), Error> {
        let live = self.live()?;
        let lua = live
            .pool
            .peek()
            .ok_or_else(|| Error::internal("the Lua interpreter lost its state"))?;
        Ok((lua, live.env.clone()))
    }

    /// Reads `key` from the source and compiles it.
    fn compile_key(&mut self, key: &str) -> Result<Vec<u8>, Error> {
        let script = self.shell.read(key)?;
        let pool = Arc::clone(&self.live()?.pool);
        compile_bytecode(&pool, key, &script.code)
    }

    /// Runs `chunk` (or, with `entry`, the global function `entry`) to
    /// completion in the interpreter's environment.
    fn run(
        &mut self,
        name: &str,
        chunk: Chunk<'_>,
        entry: Option<String>,
        args: Vec<Value>,
    ) -> Result<Value, Error> {
        self.shell.apply_reloads();
        if self.live()?.pool.is_empty() {
            // A run died in a way that made its state unusable: start over.
            tracing::warn!("the Lua interpreter lost its state; starting a fresh one");
            self.live = Some(self.start()?);
        }
        self.live()?;
        let live = self.live.as_ref().ok_or_else(|| closed(KIND))?;
        let init = ProcessInit {
            pid: Pid::new(0, 0),
            parent: None,
            key: name.to_owned(),
            args,
            entry,
            policy: Arc::clone(&self.policy),
            modules: Arc::clone(&self.modules),
            limits: self.limits,
            source: Arc::clone(self.shell.source()),
            lightweight: false,
            memory_ceiling: None,
            journaled: false,
        };
        let extras = EvalExtras {
            env: Some((live.env.clone(), live.loaded.clone())),
            ..EvalExtras::default()
        };
        let cancel = self.shell.cancel();
        cancel.check()?;
        let mut process = launch(&live.pool, name, chunk, init, extras)?;
        let mut cx = StepCx::new(Pid::new(0, 0));
        let mut input = Resume::Start;
        loop {
            match process.step(&mut cx, input) {
                Step::Done(v) => return Ok(v),
                Step::Failed(e) => return Err(e),
                Step::Preempted => {
                    cancel.check()?;
                    input = Resume::Continue;
                }
                Step::Yield(_) => return Err(commands_need_a_process()),
            }
        }
    }
}

/// A new global environment (and `require` cache) in `lua`.
fn fresh_env(lua: &Lua, policy: &Policy) -> Result<(Table, Table), Error> {
    let new_env = lua
        .app_data_ref::<Prelude>()
        .map(|p| p.new_env.clone())
        .ok_or_else(|| Error::internal("unprepared Lua state"))?;
    let nondeterministic = policy.classes().contains(Class::Nondeterministic);
    let env: Table = new_env.call(nondeterministic).map_err(internal)?;
    let loaded = lua.create_table().map_err(internal)?;
    Ok((env, loaded))
}

impl ScriptEngine for LuaInterpreter {
    shell_methods!(as_loader: Loader, as_executor: Executor, as_globals: Globals,
        as_functions: Functions, as_modules: Modules, as_watcher: Watcher);

    fn init(&mut self) -> Result<(), Error> {
        let r = self.live().map(|_| ());
        self.shell.record(r)
    }

    fn close(&mut self) -> Result<(), Error> {
        self.shell.close();
        self.live = None;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.shell.reset();
        let r = (|| {
            let (lua, _) = self.state()?;
            let fresh = fresh_env(&lua, &self.policy)?;
            lua.gc_collect().map_err(internal)?;
            if let Some(live) = self.live.as_mut() {
                (live.env, live.loaded) = fresh;
            }
            Ok(())
        })();
        self.shell.record(r)
    }

    fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
    ) -> Result<(), Error> {
        self.policy = policy;
        self.modules = modules;
        // `math.random` depends on the policy: take `math` from a fresh
        // environment; modules loaded under the old policy are forgotten.
        let r = match &self.live {
            Some(_) => (|| {
                let (lua, env) = self.state()?;
                let (fresh, loaded) = fresh_env(&lua, &self.policy)?;
                let math: mlua::Value = fresh.raw_get("math").map_err(internal)?;
                env.raw_set("math", math).map_err(internal)?;
                if let Some(live) = self.live.as_mut() {
                    live.loaded = loaded;
                }
                Ok(())
            })(),
            None => Ok(()),
        };
        self.shell.record(r)
    }

    fn set_limits(&mut self, limits: Limits) -> Result<(), Error> {
        self.limits = limits;
        Ok(())
    }
}

impl Loader for LuaInterpreter {
    fn bind_source(&mut self, source: Arc<dyn Source>) {
        self.shell.bind(source);
    }

    fn load(&mut self, key: &str) -> Result<(), Error> {
        let r = self.compile_key(key).map(|b| self.shell.keep(key, b));
        self.shell.record(r)
    }

    fn load_string(&mut self, name: &str, code: &str) -> Result<(), Error> {
        let r = self.live().map(|l| Arc::clone(&l.pool)).and_then(|pool| {
            compile_bytecode(&pool, name, code.as_bytes()).map(|b| self.shell.keep(name, b))
        });
        self.shell.record(r)
    }
}

impl Executor for LuaInterpreter {
    fn loaded(&self) -> Vec<String> {
        self.shell.loaded_keys()
    }

    fn execute(&mut self, key: &str) -> Result<Value, Error> {
        self.shell.apply_reloads();
        let r = self
            .shell
            .loaded(key)
            .cloned()
            .and_then(|b| self.run(key, Chunk::Binary(&b), None, Vec::new()));
        self.shell.record(r)
    }

    fn execute_named(&mut self, name: &str, code: &str) -> Result<Value, Error> {
        let r = self.run(name, Chunk::Text(code.as_bytes()), None, Vec::new());
        self.shell.record(r)
    }
}

impl Globals for LuaInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        let r = self.state().and_then(|(lua, env)| {
            let v = to_lua(&lua, &value).map_err(internal)?;
            env.raw_set(name, v).map_err(internal)
        });
        self.shell.record(r)
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        let r = self.state().and_then(|(_, env)| {
            let v: mlua::Value = env.raw_get(name).map_err(internal)?;
            to_value(&v)
        });
        self.shell.record(r)
    }
}

impl Functions for LuaInterpreter {
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        let f = self.shell.cancel().guard(f);
        let r = self.state().and_then(|(lua, env)| {
            let raw = lua
                .create_function(move |lua, args: MultiValue| {
                    let result = args
                        .iter()
                        .map(to_value)
                        .collect::<Result<Vec<_>, _>>()
                        .and_then(|args| f(args));
                    match result {
                        Ok(v) => ok_values(lua, std::slice::from_ref(&v)),
                        Err(e) => raise(lua, e),
                    }
                })
                .map_err(internal)?;
            let wrapped = wrap(&lua, raw).map_err(internal)?;
            env.raw_set(name, wrapped).map_err(internal)
        });
        self.shell.record(r)
    }

    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self.run(name, Chunk::Text(b""), Some(name.to_owned()), args);
        self.shell.record(r)
    }
}

impl Modules for LuaInterpreter {
    fn register_module(&mut self, def: ModuleDef) -> Result<(), Error> {
        Arc::make_mut(&mut self.modules).insert(def);
        Ok(())
    }
}

impl Watcher for LuaInterpreter {
    fn watch(&mut self, key: &str) -> Result<(), Error> {
        let compile = |script: &Script| compile_detached(&script.key, &script.code);
        self.shell.watch(key, Arc::new(compile))
    }

    fn unwatch(&mut self, key: &str) -> Result<(), Error> {
        self.shell.unwatch(key);
        Ok(())
    }
}
