//! What every interpreter keeps beside its engine's own state: whether it
//! is open, the last error a call returned, the bound source and the
//! scripts loaded from it (or from strings), compiled to `P`, with their
//! background reloads ([`reload`]); and
//! [`shell_methods!`], the `ScriptEngine` methods that only read the shell
//! (`kind`, `last_error`) with the `as_*` accessors of the capabilities an
//! interpreter has.

pub(crate) mod reload;

use std::collections::HashMap;
use std::sync::Arc;

use troupe_dispatcher::Error;
use troupe_sources::{MemorySource, Script, Source};

use self::reload::{Compile, Reloads};
use crate::cancel::CancelSlot;
use crate::capability::{closed, source_error};

/// The bookkeeping of one interpreter instance (see the module docs).
/// Interpreters that keep their compiled scripts elsewhere (JS keeps them
/// on its JS thread) use `Shell<()>` and leave the loaded scripts empty.
pub(crate) struct Shell<P = ()> {
    kind: &'static str,
    open: bool,
    last_error: Option<Error>,
    source: Arc<dyn Source>,
    loaded: HashMap<String, P>,
    /// The loaded keys, in the order they were first loaded.
    order: Vec<String>,
    cancel: CancelSlot,
    /// Watched keys, reloaded in the background.
    reloads: Reloads<P>,
}

impl<P> Shell<P> {
    /// A closed shell for an engine of `kind`, with an empty source:
    /// [`Shell::open`] opens it (for interpreters that need `init`).
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            open: false,
            last_error: None,
            source: Arc::new(MemorySource::new()),
            loaded: HashMap::new(),
            order: Vec::new(),
            cancel: CancelSlot::default(),
            reloads: Reloads::default(),
        }
    }

    /// An open shell, for interpreters that start on first use.
    #[cfg(any(feature = "lua", feature = "js", feature = "python", feature = "wasm"))]
    pub(crate) fn opened(kind: &'static str) -> Self {
        Self {
            open: true,
            ..Self::new(kind)
        }
    }

    /// The engine's kind.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    /// Opens the instance (idempotent).
    #[cfg(any(
        feature = "starlark",
        feature = "cel",
        feature = "expr",
        feature = "evalexpr",
        feature = "tcl"
    ))]
    pub(crate) fn open(&mut self) {
        self.open = true;
    }

    /// Closes the instance and drops what it loaded and watched.
    pub(crate) fn close(&mut self) {
        self.open = false;
        self.loaded.clear();
        self.order.clear();
        self.reloads.clear();
    }

    /// `UNAVAILABLE` once closed (or, for a shell made closed, before it
    /// was opened).
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.open {
            Ok(())
        } else {
            Err(closed(self.kind))
        }
    }

    /// The last error [`Shell::record`] saw.
    pub(crate) fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// Remembers `result`'s error as the last error and passes it on.
    pub(crate) fn record<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            self.last_error = Some(e.clone());
        }
        result
    }

    /// Drops the loaded scripts, the last error, the watches and the
    /// cancellation handle (the source stays bound).
    pub(crate) fn reset(&mut self) {
        self.loaded.clear();
        self.order.clear();
        self.last_error = None;
        self.cancel.set(None);
        self.reloads.clear();
    }

    /// Forgets the loaded scripts (the instance lost them).
    #[cfg(feature = "js")]
    pub(crate) fn forget_loaded(&mut self) {
        self.loaded.clear();
        self.order.clear();
    }

    /// Reloads `key` with `compile`, in the background, whenever the bound
    /// source changes it (see [`reload`]).
    pub(crate) fn watch(&mut self, key: &str, compile: Compile<P>) -> Result<(), Error>
    where
        P: Send + 'static,
    {
        let r = self.reloads.watch(&self.source, key, compile);
        self.record(r)
    }

    /// Stops reloading `key`.
    pub(crate) fn unwatch(&mut self, key: &str) {
        self.reloads.unwatch(key);
    }

    /// Keeps the versions the background reloaded since the last call (a
    /// failed reload becomes the last error); true if there was one.
    pub(crate) fn apply_reloads(&mut self) -> bool {
        let mut any = false;
        for (key, version) in self.reloads.take() {
            match version {
                Ok(program) => {
                    self.keep(&key, program);
                    any = true;
                }
                Err(e) => self.last_error = Some(e),
            }
        }
        any
    }

    /// The instance's cancellation handle.
    pub(crate) fn cancel(&self) -> &CancelSlot {
        &self.cancel
    }

    /// Binds the source [`Shell::read`] reads from.
    pub(crate) fn bind(&mut self, source: Arc<dyn Source>) {
        self.source = source;
    }

    /// The bound source (an empty one until [`Shell::bind`]).
    #[cfg(feature = "lua")]
    pub(crate) fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Reads `key` from the bound source, its error as a [`Loader`]'s.
    ///
    /// [`Loader`]: crate::capability::Loader
    pub(crate) fn read(&self, key: &str) -> Result<Script, Error> {
        self.source.get(key).map_err(source_error)
    }

    /// Keeps `program` as the loaded script `key`.
    pub(crate) fn keep(&mut self, key: &str, program: P) {
        self.note_loaded(key);
        self.loaded.insert(key.to_owned(), program);
    }

    /// Records that `key` is loaded (its place in the load order is its
    /// first load).
    pub(crate) fn note_loaded(&mut self, key: &str) {
        if !self.order.iter().any(|k| k == key) {
            self.order.push(key.to_owned());
        }
    }

    /// The loaded keys, in load order.
    pub(crate) fn loaded_keys(&self) -> Vec<String> {
        self.order.clone()
    }

    /// A loaded script; `NOT_FOUND` when `key` was not loaded.
    #[cfg(any(
        feature = "lua",
        feature = "python",
        feature = "starlark",
        feature = "cel",
        feature = "expr",
        feature = "evalexpr",
        feature = "tcl"
    ))]
    pub(crate) fn loaded(&self, key: &str) -> Result<&P, Error> {
        self.loaded.get(key).ok_or_else(|| not_loaded(key))
    }

    /// Takes the loaded script `key` out (put it back with
    /// [`Shell::keep`]); `NOT_FOUND` when `key` was not loaded.
    #[cfg(feature = "wasm")]
    pub(crate) fn take(&mut self, key: &str) -> Result<P, Error> {
        self.loaded.remove(key).ok_or_else(|| not_loaded(key))
    }

    /// The keys of the loaded scripts.
    #[cfg(feature = "wasm")]
    pub(crate) fn keys(&self) -> Vec<String> {
        self.loaded.keys().cloned().collect()
    }
}

/// `NOT_FOUND: script "KEY" is not loaded`
pub(crate) fn not_loaded(key: &str) -> Error {
    Error::not_found(format!("script {key:?} is not loaded"))
}

/// Inside `impl ScriptEngine for T` whose field `shell` is a [`Shell`]:
/// `kind`, `last_error` and `set_cancel` from the shell, and an `as_*` accessor
/// returning `Ok(self)` for each `as_capability: Capability` pair named
/// (the capabilities `T` implements).
macro_rules! shell_methods {
    ($($accessor:ident: $capability:ident),* $(,)?) => {
        fn kind(&self) -> &'static str {
            self.shell.kind()
        }

        fn last_error(&self) -> Option<&::troupe_dispatcher::Error> {
            self.shell.last_error()
        }

        fn set_cancel(&mut self, token: Option<$crate::cancel::CancellationToken>) {
            self.shell.cancel().set(token);
        }

        $(
            fn $accessor(
                &mut self,
            ) -> Result<&mut dyn $crate::capability::$capability, ::troupe_dispatcher::Error> {
                Ok(self)
            }
        )*
    };
}
pub(crate) use shell_methods;
