//! The embeddable face of every engine: one interpreter instance
//! ([`ScriptEngine`]) and the optional capabilities it may offer
//! ([`Loader`], [`Executor`], [`Globals`], [`Functions`], [`Modules`],
//! [`Watcher`]).
//!
//! A user asks an instance for a capability through its `as_*` accessor; an
//! engine without it answers `UNAVAILABLE` with "capability not supported by
//! ENGINE: CAP" (see [`unsupported`]) instead of panicking, so code written
//! against several engines can probe what each one offers.
//!
//! ```
//! # #[cfg(feature = "lua")] {
//! use troupe_engines::{EngineFactory, ScriptEngine};
//! use troupe_dispatcher::Value;
//!
//! let mut lua = EngineFactory::builtin().create("lua")?;
//! lua.init()?;
//! lua.as_globals()?.set_global("n", Value::Int(20))?;
//! assert_eq!(lua.as_executor()?.execute_string("return n + 22")?, Value::Int(42));
//! # }
//! # Ok::<(), troupe_dispatcher::Error>(())
//! ```
//!
//! Instances run scripts to completion on the calling thread under the
//! [`Limits`] and [`Policy`] set on them. Module *commands* (`time.sleep`,
//! message passing, …) need the scheduler: in an embedded instance they fail
//! `UNAVAILABLE` "commands need a process (spawn the script)"; spawn the
//! script through a `Runtime` for those.

use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};
use troupe_runtime::Limits;
use troupe_sources::Source;

use crate::cancel::CancellationToken;

/// A host function scripts can call: values in, a value or an error out.
pub type HostFunction = Arc<dyn Fn(Vec<Value>) -> Result<Value, Error> + Send + Sync>;

/// One interpreter instance. `Send` so pools can move it between threads;
/// engines whose interpreter is `!Send` keep it on a dedicated thread and
/// implement this trait on a handle.
pub trait ScriptEngine: Send {
    /// The engine's kind, e.g. "lua", "js".
    fn kind(&self) -> &'static str;
    /// Prepares the interpreter (idempotent).
    fn init(&mut self) -> Result<(), Error>;
    /// Releases the interpreter; later calls fail UNAVAILABLE.
    fn close(&mut self) -> Result<(), Error>;
    /// The last error any call returned, if any.
    fn last_error(&self) -> Option<&Error>;
    /// Drops everything scripts and users set (globals, loaded scripts,
    /// registered functions) so the instance can serve another user.
    fn reset(&mut self) -> Result<(), Error>;
    /// Policy for `require`/`import` in this instance (default: deny all).
    fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
    ) -> Result<(), Error>;
    /// Limits for each execution (instructions/time/memory as the engine can).
    fn set_limits(&mut self, limits: Limits) -> Result<(), Error>;
    /// The cancellation handle of later executes and calls: once `token`
    /// is cancelled (from any thread) they stop with `CANCELED`, a running
    /// one included (see [`crate::cancel`] for how soon, per engine).
    /// `None` removes it; so does [`reset`](ScriptEngine::reset).
    fn set_cancel(&mut self, token: Option<CancellationToken>);
    /// Loading scripts by key or from a string, if the engine can.
    fn as_loader(&mut self) -> Result<&mut dyn Loader, Error> {
        Err(unsupported(self.kind(), "loader"))
    }
    /// Running loaded scripts or source text, if the engine can.
    fn as_executor(&mut self) -> Result<&mut dyn Executor, Error> {
        Err(unsupported(self.kind(), "executor"))
    }
    /// Setting and reading global variables, if the engine has them.
    fn as_globals(&mut self) -> Result<&mut dyn Globals, Error> {
        Err(unsupported(self.kind(), "globals"))
    }
    /// Host functions for scripts and script functions for the host, if the
    /// engine has functions.
    fn as_functions(&mut self) -> Result<&mut dyn Functions, Error> {
        Err(unsupported(self.kind(), "functions"))
    }
    /// Registering modules scripts can `require`/`import`, if the engine can.
    fn as_modules(&mut self) -> Result<&mut dyn Modules, Error> {
        Err(unsupported(self.kind(), "modules"))
    }
    /// Hot reload of loaded scripts from the bound source, if the engine can.
    fn as_watcher(&mut self) -> Result<&mut dyn Watcher, Error> {
        Err(unsupported(self.kind(), "watcher"))
    }

    /// Runs script `key`, loading it from the bound source first when it
    /// is not loaded yet.
    fn execute_key(&mut self, key: &str) -> Result<Value, Error> {
        if !self.as_executor()?.loaded().iter().any(|k| k == key) {
            self.as_loader()?.load(key)?;
        }
        self.as_executor()?.execute(key)
    }
}

/// `UNAVAILABLE: capability not supported by ENGINE: CAP`
pub fn unsupported(engine: &str, capability: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("capability not supported by {engine}: {capability}"),
    )
}

/// Loads scripts into an instance: compiled once, kept under their key.
pub trait Loader {
    /// The source [`load`](Loader::load) reads keys from.
    fn bind_source(&mut self, source: Arc<dyn Source>);
    /// Reads `key` from the bound source, compiles it and keeps it.
    fn load(&mut self, key: &str) -> Result<(), Error>;
    /// [`load`](Loader::load)s every key; stops at the first error.
    fn load_many(&mut self, keys: &[&str]) -> Result<(), Error> {
        keys.iter().try_for_each(|key| self.load(key))
    }
    /// Compiles `code` and keeps it under `name`.
    fn load_string(&mut self, name: &str, code: &str) -> Result<(), Error>;
}

/// Runs scripts in an instance.
pub trait Executor {
    /// Runs the loaded script `key` (`NOT_FOUND` if it was not loaded).
    fn execute(&mut self, key: &str) -> Result<Value, Error>;
    /// Runs loaded scripts in order; stops at the first error.
    fn execute_many(&mut self, keys: &[&str]) -> Result<Vec<Value>, Error> {
        keys.iter().map(|key| self.execute(key)).collect()
    }
    /// The keys of the loaded scripts, in the order they were first loaded.
    fn loaded(&self) -> Vec<String>;
    /// Runs every loaded script, in load order (an `execute` with no key);
    /// stops at the first error.
    fn execute_all(&mut self) -> Result<Vec<Value>, Error> {
        self.loaded().iter().map(|key| self.execute(key)).collect()
    }
    /// Compiles and runs `code` once, called `name` in its errors and
    /// tracebacks.
    fn execute_named(&mut self, name: &str, code: &str) -> Result<Value, Error>;
    /// Compiles and runs `code` once, called `<string>` in its errors.
    fn execute_string(&mut self, code: &str) -> Result<Value, Error> {
        self.execute_named("<string>", code)
    }
}

/// The instance's global variables.
pub trait Globals {
    /// Sets global `name` to `value`.
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error>;
    /// The value of global `name`; `Nil` if unset.
    fn get_global(&mut self, name: &str) -> Result<Value, Error>;
}

/// Functions across the host/script boundary.
pub trait Functions {
    /// Makes `f` callable from scripts as the global function `name`.
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error>;
    /// Calls the script's global function `name` with `args`.
    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error>;
}

/// Modules scripts can `require`/`import`.
pub trait Modules {
    /// Makes a module requirable (still subject to the policy). Only its
    /// pure functions run in an embedded instance; its commands fail
    /// UNAVAILABLE "commands need a process (spawn the script)".
    fn register_module(&mut self, def: ModuleDef) -> Result<(), Error>;
}

/// Hot reload.
pub trait Watcher {
    /// Reload `key` into this instance whenever the bound source changes it.
    fn watch(&mut self, key: &str) -> Result<(), Error>;
    /// Stops reloading `key`.
    fn unwatch(&mut self, key: &str) -> Result<(), Error>;
}

/// The error an embedded instance gives for a module command.
pub fn commands_need_a_process() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "commands need a process (spawn the script)",
    )
}

/// The error every call on a closed instance gives.
pub fn closed(engine: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("the {engine} interpreter is closed"),
    )
}

/// A source's error as the error a [`Loader`] gives.
pub use troupe_runtime::source_error;
