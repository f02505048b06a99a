//! [`LuaInterpreter`]: the Lua engine as an embeddable [`ScriptEngine`] with
//! every capability. It owns one sandboxed state (the same prelude, `require`
//! and limits as a process) and one global environment that lives until
//! [`reset`](ScriptEngine::reset). Each run is a process of the Lua engine
//! stepped to completion on the calling thread: preemptions continue at
//! once, module commands fail `UNAVAILABLE` (they need the scheduler).

use std::collections::HashMap;
use std::sync::Arc;

use mlua::{Lua, MultiValue, Table};
use troupe_dispatcher::{Error, Pid, Value};
use troupe_modules::{Class, ModuleDef, ModuleRegistry, Policy};
use troupe_runtime::{Limits, Process, ProcessInit, Resume, Step, StepCx};
use troupe_sources::{MemorySource, Source, Watch};

use super::convert::{to_lua, to_value};
use super::state::{Output, Prelude, new_state, ok_values, raise, wrap};
use super::{Chunk, EvalExtras, Pool, compile_bytecode, internal, launch};
use crate::capability::{
    Executor, Functions, Globals, HostFunction, Loader, Modules, ScriptEngine, Watcher, closed,
    commands_need_a_process, source_error,
};

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
    output: Output,
    live: Option<Live>,
    closed: bool,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    limits: Limits,
    source: Arc<dyn Source>,
    /// Loaded scripts: bytecode by key.
    scripts: HashMap<String, Vec<u8>>,
    watches: HashMap<String, Watch>,
    last_error: Option<Error>,
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
            output: Arc::new(output),
            live: None,
            closed: false,
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::with_builtins()),
            limits: Limits::default(),
            source: Arc::new(MemorySource::new()),
            scripts: HashMap::new(),
            watches: HashMap::new(),
            last_error: None,
        }
    }

    /// Records the outcome of a call for [`ScriptEngine::last_error`].
    fn record<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            self.last_error = Some(e.clone());
        }
        r
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
        if self.closed {
            return Err(closed(KIND));
        }
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

    /// Reloads watched scripts the source changed since the last call.
    fn apply_changes(&mut self) {
        let mut changed = Vec::new();
        for (key, watch) in &self.watches {
            while let Some(change) = watch.try_recv() {
                if change.affects(key) {
                    changed.push(key.clone());
                }
            }
        }
        for key in changed {
            match self.compile_key(&key) {
                Ok(bytecode) => {
                    tracing::debug!(key, "reloaded a watched Lua script");
                    self.scripts.insert(key, bytecode);
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "keeping the old version of a watched Lua script");
                    self.last_error = Some(e);
                }
            }
        }
    }

    /// Reads `key` from the source and compiles it.
    fn compile_key(&mut self, key: &str) -> Result<Vec<u8>, Error> {
        let script = self.source.get(key).map_err(source_error)?;
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
        self.apply_changes();
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
            source: Arc::clone(&self.source),
            lightweight: false,
        };
        let extras = EvalExtras {
            env: Some((live.env.clone(), live.loaded.clone())),
            ..EvalExtras::default()
        };
        let mut process = launch(&live.pool, name, chunk, init, extras)?;
        let mut cx = StepCx {
            pid: Pid::new(0, 0),
        };
        let mut input = Resume::Start;
        loop {
            match process.step(&mut cx, input) {
                Step::Done(v) => return Ok(v),
                Step::Failed(e) => return Err(e),
                Step::Preempted => input = Resume::Continue,
                Step::Yield(_) => return Err(commands_need_a_process()),
            }
        }
    }

    /// The bytecode of loaded script `key`.
    fn loaded(&self, key: &str) -> Result<Vec<u8>, Error> {
        self.scripts
            .get(key)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("script {key:?} is not loaded")))
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
    fn kind(&self) -> &'static str {
        KIND
    }

    fn init(&mut self) -> Result<(), Error> {
        let r = self.live().map(|_| ());
        self.record(r)
    }

    fn close(&mut self) -> Result<(), Error> {
        self.closed = true;
        self.live = None;
        self.scripts.clear();
        self.watches.clear();
        Ok(())
    }

    fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.scripts.clear();
        self.watches.clear();
        self.last_error = None;
        let r = (|| {
            let (lua, _) = self.state()?;
            let fresh = fresh_env(&lua, &self.policy)?;
            lua.gc_collect().map_err(internal)?;
            if let Some(live) = self.live.as_mut() {
                (live.env, live.loaded) = fresh;
            }
            Ok(())
        })();
        self.record(r)
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
        self.record(r)
    }

    fn set_limits(&mut self, limits: Limits) -> Result<(), Error> {
        self.limits = limits;
        Ok(())
    }

    fn as_loader(&mut self) -> Result<&mut dyn Loader, Error> {
        Ok(self)
    }

    fn as_executor(&mut self) -> Result<&mut dyn Executor, Error> {
        Ok(self)
    }

    fn as_globals(&mut self) -> Result<&mut dyn Globals, Error> {
        Ok(self)
    }

    fn as_functions(&mut self) -> Result<&mut dyn Functions, Error> {
        Ok(self)
    }

    fn as_modules(&mut self) -> Result<&mut dyn Modules, Error> {
        Ok(self)
    }

    fn as_watcher(&mut self) -> Result<&mut dyn Watcher, Error> {
        Ok(self)
    }
}

impl Loader for LuaInterpreter {
    fn bind_source(&mut self, source: Arc<dyn Source>) {
        self.source = source;
    }

    fn load(&mut self, key: &str) -> Result<(), Error> {
        let r = self
            .compile_key(key)
            .map(|b| drop(self.scripts.insert(key.to_owned(), b)));
        self.record(r)
    }

    fn load_many(&mut self, keys: &[&str]) -> Result<(), Error> {
        keys.iter().try_for_each(|k| self.load(k))
    }

    fn load_string(&mut self, name: &str, code: &str) -> Result<(), Error> {
        let r = self.live().map(|l| Arc::clone(&l.pool)).and_then(|pool| {
            compile_bytecode(&pool, name, code.as_bytes())
                .map(|b| drop(self.scripts.insert(name.to_owned(), b)))
        });
        self.record(r)
    }
}

impl Executor for LuaInterpreter {
    fn execute(&mut self, key: &str) -> Result<Value, Error> {
        self.apply_changes();
        let r = self
            .loaded(key)
            .and_then(|b| self.run(key, Chunk::Binary(&b), None, Vec::new()));
        self.record(r)
    }

    fn execute_many(&mut self, keys: &[&str]) -> Result<Vec<Value>, Error> {
        keys.iter().map(|k| self.execute(k)).collect()
    }

    fn execute_string(&mut self, code: &str) -> Result<Value, Error> {
        let r = self.run("string", Chunk::Text(code.as_bytes()), None, Vec::new());
        self.record(r)
    }
}

impl Globals for LuaInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        let r = self.state().and_then(|(lua, env)| {
            let v = to_lua(&lua, &value).map_err(internal)?;
            env.raw_set(name, v).map_err(internal)
        });
        self.record(r)
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        let r = self.state().and_then(|(_, env)| {
            let v: mlua::Value = env.raw_get(name).map_err(internal)?;
            to_value(&v)
        });
        self.record(r)
    }
}

impl Functions for LuaInterpreter {
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
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
        self.record(r)
    }

    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self.run(name, Chunk::Text(b""), Some(name.to_owned()), args);
        self.record(r)
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
        let r = self
            .source
            .watch(key)
            .map_err(source_error)
            .map(|w| drop(self.watches.insert(key.to_owned(), w)));
        self.record(r)
    }

    fn unwatch(&mut self, key: &str) -> Result<(), Error> {
        self.watches.remove(key);
        Ok(())
    }
}
