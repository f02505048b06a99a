//! [`WasmInterpreter`]: the embeddable face of the WebAssembly engine.
//!
//! Each loaded script is an instance of its own that keeps its memory and
//! globals between calls; the last one loaded is the *current* instance,
//! whose exports `call_function` reaches. There is no `Globals` capability:
//! wasm globals hold only numbers, not every `Value`.
//! `execute` calls a loaded instance's `run`; `execute_string` compiles and
//! runs a throwaway instance. Guests run to completion on the calling
//! thread; module commands fail `UNAVAILABLE` (they need a process).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};
use troupe_runtime::Limits;
use troupe_sources::{Script, Source};
use wasmtime::{Instance, Module, Store};

use super::Shared;
use super::abi::{self, DEFAULT_ENTRY};
use super::error::from_wasmtime;
use super::host::{Ctx, Host};
use super::process::{new_store, run_to_end};
use crate::cancel::CancelSlot;
use crate::capability::{
    Executor, Functions, HostFunction, Loader, Modules, ScriptEngine, Watcher,
};
use crate::shell::{Shell, shell_methods};

const KIND: &str = "wasm";

/// A loaded script: its own store and instance.
struct Loaded {
    store: Store<Host>,
    instance: Instance,
}

/// One WebAssembly interpreter instance (see the module docs).
pub struct WasmInterpreter {
    /// The loaded scripts, instantiated.
    shell: Shell<Loaded>,
    shared: Result<Arc<Shared>, Error>,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    limits: Limits,
    functions: HashMap<String, HostFunction>,
    current: Option<String>,
}

impl Default for WasmInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl WasmInterpreter {
    /// An interpreter with a deny-all policy, the built-in modules, default
    /// limits and an empty source.
    pub fn new() -> Self {
        Self {
            shell: Shell::opened(KIND),
            shared: Shared::new().map(Arc::new),
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::with_builtins()),
            limits: Limits::default(),
            functions: HashMap::new(),
            current: None,
        }
    }

    fn shared(&self) -> Result<Arc<Shared>, Error> {
        self.shell.check()?;
        self.shared.clone()
    }

    /// What the host functions of this interpreter's guests see.
    fn ctx(&self, key: &str) -> Arc<Ctx> {
        Arc::new(Ctx {
            pid: Pid::new(0, 0),
            parent: None,
            key: key.to_owned(),
            policy: Arc::clone(&self.policy),
            modules: Arc::clone(&self.modules),
            functions: self.functions.clone(),
            exchange: None,
        })
    }

    /// Gives every loaded instance the current policy, modules, functions
    /// and memory limit.
    fn refresh(&mut self) {
        for key in self.shell.keys() {
            let ctx = self.ctx(&key);
            if let Ok(mut l) = self.shell.take(&key) {
                let host = l.store.data_mut();
                host.ctx = ctx;
                host.limiter.max_memory = self.limits.max_memory.map(|m| m.get());
                self.shell.keep(&key, l);
            }
        }
    }

    /// Compiles `code` and instantiates it under `key`.
    fn instantiate(&self, key: &str, code: &[u8]) -> Result<Loaded, Error> {
        let shared = self.shared()?;
        instantiate(
            &shared,
            self.ctx(key),
            &self.limits,
            key,
            code,
            self.shell.cancel(),
        )
    }

    /// Calls export `name` of `loaded` with fresh fuel.
    fn call(&self, loaded: &mut Loaded, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let max = self.limits.max_instructions.map(|m| m.get());
        let Loaded { store, instance } = loaded;
        store
            .set_fuel(max.unwrap_or(u64::MAX))
            .map_err(|e| Error::internal(format!("wasmtime: {e:#}")))?;
        run_to_end(
            async {
                match abi::invoke(store, instance, name, args).await {
                    Ok(r) => r,
                    Err(e) => Err(from_wasmtime(&e, store.data(), max)),
                }
            },
            deadline(&self.limits),
            self.shell.cancel(),
        )?
    }

    /// Calls export `name` of the loaded script `key`.
    fn call_loaded(&mut self, key: &str, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        if self.shell.apply_reloads() {
            self.refresh();
        }
        let mut loaded = self.shell.take(key)?;
        let r = self.call(&mut loaded, name, args);
        self.shell.keep(key, loaded);
        r
    }

    fn keep(&mut self, key: &str, code: &[u8]) -> Result<(), Error> {
        let loaded = self.instantiate(key, code)?;
        self.shell.keep(key, loaded);
        self.current = Some(key.to_owned());
        Ok(())
    }
}

/// The wall-clock deadline of a run starting now under `limits`.
fn deadline(limits: &Limits) -> Option<(Instant, std::time::Duration)> {
    limits
        .timeout
        .and_then(|t| Some((Instant::now().checked_add(t)?, t)))
}

/// Compiles `code` and instantiates it under `key`, for guests that see
/// `ctx`.
fn instantiate(
    shared: &Shared,
    ctx: Arc<Ctx>,
    limits: &Limits,
    key: &str,
    code: &[u8],
    cancel: &CancelSlot,
) -> Result<Loaded, Error> {
    let module: Module = shared.compile(key, code)?;
    let mut store = new_store(shared, ctx, limits)?;
    let max = limits.max_instructions.map(|m| m.get());
    let instantiated = run_to_end(
        async {
            shared
                .linker
                .instantiate_async(&mut store, &module)
                .await
                .map_err(|e| (from_wasmtime(&e, store.data(), max), e))
        },
        deadline(limits),
        cancel,
    );
    match instantiated? {
        Ok(instance) => Ok(Loaded { store, instance }),
        Err((err, e)) if err.kind() == ErrorKind::Internal => {
            Err(Error::invalid(format!("cannot instantiate {key}: {e:#}")))
        }
        Err((err, _)) => Err(err),
    }
}

impl ScriptEngine for WasmInterpreter {
    shell_methods!(as_loader: Loader, as_executor: Executor, as_functions: Functions,
        as_modules: Modules, as_watcher: Watcher);

    fn init(&mut self) -> Result<(), Error> {
        let r = self.shared().map(|_| ());
        self.shell.record(r)
    }

    fn close(&mut self) -> Result<(), Error> {
        self.shell.close();
        self.current = None;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.shell.check()?;
        self.shell.reset();
        self.current = None;
        self.functions.clear();
        Ok(())
    }

    fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
    ) -> Result<(), Error> {
        self.policy = policy;
        self.modules = modules;
        self.refresh();
        Ok(())
    }

    fn set_limits(&mut self, limits: Limits) -> Result<(), Error> {
        self.limits = limits;
        self.refresh();
        Ok(())
    }
}

impl Loader for WasmInterpreter {
    fn bind_source(&mut self, source: Arc<dyn Source>) {
        self.shell.bind(source);
    }

    fn load(&mut self, key: &str) -> Result<(), Error> {
        let r = self
            .shell
            .read(key)
            .and_then(|script| self.keep(key, &script.code));
        self.shell.record(r)
    }

    fn load_string(&mut self, name: &str, code: &str) -> Result<(), Error> {
        let r = self.keep(name, code.as_bytes());
        self.shell.record(r)
    }
}

impl Executor for WasmInterpreter {
    fn loaded(&self) -> Vec<String> {
        self.shell.loaded_keys()
    }

    fn execute(&mut self, key: &str) -> Result<Value, Error> {
        let r = self.call_loaded(key, DEFAULT_ENTRY, Vec::new());
        self.shell.record(r)
    }

    fn execute_named(&mut self, name: &str, code: &str) -> Result<Value, Error> {
        let r = self
            .instantiate(name, code.as_bytes())
            .and_then(|mut l| self.call(&mut l, DEFAULT_ENTRY, Vec::new()));
        self.shell.record(r)
    }
}

impl Functions for WasmInterpreter {
    /// Makes `f` callable from guests as `call("host", name, args)`.
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.shell.check()?;
        let f = self.shell.cancel().guard(f);
        self.functions.insert(name.to_owned(), f);
        self.refresh();
        Ok(())
    }

    /// Calls export `name` of the current instance (see `docs/wasm-abi.md`
    /// for how arguments and results cross).
    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self
            .current
            .clone()
            .ok_or_else(|| Error::not_found("no WebAssembly module is loaded"))
            .and_then(|key| self.call_loaded(&key, name, args));
        self.shell.record(r)
    }
}

impl Watcher for WasmInterpreter {
    /// Reinstantiates `key` in the background whenever the source changes
    /// it; the new instance starts with fresh memory and globals.
    fn watch(&mut self, key: &str) -> Result<(), Error> {
        let (shared, ctx, limits) = (self.shared()?, self.ctx(key), self.limits);
        let compile = move |script: &Script| {
            let cancel = CancelSlot::default();
            instantiate(
                &shared,
                Arc::clone(&ctx),
                &limits,
                &script.key,
                &script.code,
                &cancel,
            )
        };
        self.shell.watch(key, Arc::new(compile))
    }

    fn unwatch(&mut self, key: &str) -> Result<(), Error> {
        self.shell.unwatch(key);
        Ok(())
    }
}

impl Modules for WasmInterpreter {
    fn register_module(&mut self, def: ModuleDef) -> Result<(), Error> {
        Arc::make_mut(&mut self.modules).insert(def);
        self.refresh();
        Ok(())
    }
}
