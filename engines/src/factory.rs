//! The engine registry: every compiled-in engine by name and by file
//! extension, as an embeddable interpreter ([`ScriptEngine`]) and as a
//! process engine for the runtime ([`Engine`]).
//!
//! ```
//! # #[cfg(feature = "lua")] {
//! use troupe_engines::EngineFactory;
//!
//! let factory = EngineFactory::builtin();
//! assert!(factory.names().contains(&"lua"));
//! let engine = factory.for_path("jobs/report.lua")?;
//! assert_eq!(engine.kind(), "lua");
//! # }
//! # Ok::<(), troupe_dispatcher::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind};
use troupe_runtime::Engine;

use crate::capability::ScriptEngine;

/// Makes a fresh interpreter instance.
pub type InterpreterMaker = Arc<dyn Fn() -> Box<dyn ScriptEngine> + Send + Sync>;

/// One registered engine.
#[derive(Clone)]
struct Entry {
    process: Arc<dyn Engine>,
    interpreter: InterpreterMaker,
}

/// Engines by name and by extension. Cheap to clone.
#[derive(Clone, Default)]
pub struct EngineFactory {
    by_name: BTreeMap<String, Entry>,
    by_extension: BTreeMap<String, String>,
}

impl EngineFactory {
    /// A factory with no engines.
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory with every engine compiled in (one cargo feature each).
    pub fn builtin() -> Self {
        #[allow(unused_mut)]
        let mut f = Self::new();
        // One line per engine: its process engine and its interpreter.
        #[cfg(feature = "lua")]
        f.builtin_engine::<crate::lua::LuaEngine, crate::lua::LuaInterpreter>();
        #[cfg(feature = "starlark")]
        f.builtin_engine::<crate::starlark::StarlarkEngine, crate::starlark::StarlarkInterpreter>();
        #[cfg(feature = "cel")]
        f.builtin_engine::<crate::cel::CelEngine, crate::cel::CelInterpreter>();
        #[cfg(feature = "expr")]
        f.builtin_engine::<crate::expr::ExprEngine, crate::expr::ExprInterpreter>();
        #[cfg(feature = "tcl")]
        f.builtin_engine::<crate::tcl::TclEngine, crate::tcl::TclInterpreter>();
        #[cfg(feature = "evalexpr")]
        f.builtin_engine::<crate::evalexpr::EvalexprEngine, crate::evalexpr::EvalexprInterpreter>();
        #[cfg(feature = "js")]
        f.builtin_engine::<crate::js::JsEngine, crate::js::JsInterpreter>();
        #[cfg(feature = "wasm")]
        f.builtin_engine::<crate::wasm::WasmEngine, crate::wasm::WasmInterpreter>();
        #[cfg(feature = "python")]
        f.builtin_engine::<crate::python::PythonEngine, crate::python::PythonInterpreter>();
        f
    }

    /// Registers engine `E` (made with `E::default()`) with interpreter `I`
    /// (see [`register`](EngineFactory::register)).
    pub fn add<E, I>(&mut self) -> Result<&mut Self, Error>
    where
        E: Engine + Default,
        I: ScriptEngine + Default + 'static,
    {
        self.register(Arc::new(E::default()), || Box::new(I::default()))
    }

    /// Registers an engine under its process engine's name and extensions
    /// (a later engine wins an extension both claim). `interpreter` makes
    /// its embeddable instances. `ALREADY_EXISTS` if the name is taken:
    /// [`unregister`](EngineFactory::unregister) it first.
    pub fn register(
        &mut self,
        process: Arc<dyn Engine>,
        interpreter: impl Fn() -> Box<dyn ScriptEngine> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let name = process.name();
        if self.by_name.contains_key(name) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("an engine named {name:?} is already registered"),
            ));
        }
        self.insert(process, Arc::new(interpreter));
        Ok(self)
    }

    /// A compiled-in engine (their names are distinct).
    fn builtin_engine<E, I>(&mut self)
    where
        E: Engine + Default,
        I: ScriptEngine + Default + 'static,
    {
        self.insert(Arc::new(E::default()), Arc::new(|| Box::new(I::default())));
    }

    fn insert(&mut self, process: Arc<dyn Engine>, interpreter: InterpreterMaker) {
        let name = process.name().to_owned();
        for ext in process.extensions() {
            self.by_extension.insert((*ext).to_owned(), name.clone());
        }
        self.by_name.insert(
            name,
            Entry {
                process,
                interpreter,
            },
        );
    }

    /// Removes engine `name` and the extensions it claims; `NOT_FOUND` if
    /// there is none.
    pub fn unregister(&mut self, name: &str) -> Result<(), Error> {
        self.by_name
            .remove(name)
            .ok_or_else(|| Error::not_found(format!("no engine named {name:?}")))?;
        self.by_extension.retain(|_, engine| engine != name);
        Ok(())
    }

    /// A fresh, uninitialised interpreter of engine `name`; `NOT_FOUND`
    /// (naming the engines on offer) if there is none.
    pub fn create(&self, name: &str) -> Result<Box<dyn ScriptEngine>, Error> {
        self.by_name
            .get(name)
            .map(|e| (e.interpreter)())
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no engine named {name:?} (compiled in: {})",
                    self.names().join(", ")
                ))
            })
    }

    /// The name of the engine that runs files like `path` (by extension).
    pub fn name_for_path(&self, path: impl AsRef<Path>) -> Result<&str, Error> {
        let path = path.as_ref();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        self.by_extension
            .get(ext)
            .map(String::as_str)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no engine runs {} (extensions compiled in: {})",
                    path.display(),
                    self.extensions().join(", ")
                ))
            })
    }

    /// A fresh interpreter of the engine that runs files like `path`.
    pub fn for_path(&self, path: impl AsRef<Path>) -> Result<Box<dyn ScriptEngine>, Error> {
        self.create(self.name_for_path(path)?)
    }

    /// The process engine registered as `name`.
    pub fn process_engine(&self, name: &str) -> Option<Arc<dyn Engine>> {
        self.by_name.get(name).map(|e| Arc::clone(&e.process))
    }

    /// The registered engines' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// The registered file extensions (without the dot), sorted.
    pub fn extensions(&self) -> Vec<&str> {
        self.by_extension.keys().map(String::as_str).collect()
    }

    /// Every process engine, for `Runtime::builder().engine(..)`.
    pub fn process_engines(&self) -> Vec<Arc<dyn Engine>> {
        self.by_name
            .values()
            .map(|e| Arc::clone(&e.process))
            .collect()
    }
}
