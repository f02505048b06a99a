//! What the deterministic engines (Starlark, CEL, expressions) share: a
//! process that evaluates its script on its first step and ends with the
//! value, the variables a script sees, the checks around a compiled
//! program, and the bookkeeping of their interpreters (open/closed, last
//! error, loaded scripts).
//!
//! A script of these languages cannot wait for anything (no receive, no
//! commands), so its process never yields: it runs to completion in one
//! step and its result is the process's result.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_runtime::{Process, Program, Resume, Step, StepCx};
use troupe_sources::{Script, Source, SourceError};

use crate::capability::closed;

/// The variable holding the spawn arguments as a list.
pub(crate) const ARGS: &str = "args";

/// The variables a script sees: `args` (the spawn arguments as a list) and
/// the entries of every map argument as variables of their own (a later
/// argument's entry wins; `args` itself is never replaced).
pub(crate) fn variables(args: &[Value]) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    for arg in args {
        if let Value::Map(map) = arg {
            for (name, value) in map {
                vars.insert(name.clone(), value.clone());
            }
        }
    }
    vars.insert(ARGS.to_owned(), Value::Array(args.to_vec()));
    vars
}

/// The script's text; `INVALID` when it is not UTF-8.
pub(crate) fn text<'a>(engine: &str, script: &'a Script) -> Result<&'a str, Error> {
    std::str::from_utf8(&script.code)
        .map_err(|e| Error::invalid(format!("{engine}: {}: not UTF-8: {e}", script.key)))
}

/// The program as the type its engine compiled; `INTERNAL` for a program
/// another engine made.
pub(crate) fn downcast<'a, T: Send + Sync + 'static>(
    engine: &str,
    program: &'a Program,
) -> Result<&'a T, Error> {
    program
        .downcast_ref::<T>()
        .ok_or_else(|| Error::internal(format!("program was not compiled by the {engine} engine")))
}

/// A process that runs its script once, on its first step, and ends with
/// the script's value or error.
pub(crate) struct OneShot<F>(Option<F>);

impl<F> OneShot<F>
where
    F: FnOnce() -> Result<Value, Error> + Send + 'static,
{
    /// A process that will run `run`.
    pub(crate) fn boxed(run: F) -> Box<dyn Process> {
        Box::new(Self(Some(run)))
    }
}

impl<F> Process for OneShot<F>
where
    F: FnOnce() -> Result<Value, Error> + Send + 'static,
{
    fn step(&mut self, _cx: &mut StepCx, _input: Resume) -> Step {
        match self.0.take().map(|run| run()) {
            Some(Ok(value)) => Step::Done(value),
            Some(Err(e)) => Step::Failed(e),
            None => Step::Failed(Error::internal("a finished script was stepped again")),
        }
    }
}

/// The interpreter side: whether the instance is open, the last error a
/// call returned, the bound source and the scripts loaded from it (or from
/// strings), compiled to `P`.
pub(crate) struct Shell<P> {
    kind: &'static str,
    open: bool,
    last_error: Option<Error>,
    source: Option<Arc<dyn Source>>,
    loaded: HashMap<String, P>,
}

impl<P> Shell<P> {
    /// A closed shell for an engine of `kind` (`init` opens it).
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            open: false,
            last_error: None,
            source: None,
            loaded: HashMap::new(),
        }
    }

    /// Opens the instance (idempotent).
    pub(crate) fn open(&mut self) {
        self.open = true;
    }

    /// Closes the instance and drops what it loaded.
    pub(crate) fn close(&mut self) {
        self.open = false;
        self.loaded.clear();
    }

    /// `UNAVAILABLE` once closed (or before `init`).
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

    /// Drops the loaded scripts and the last error (the source stays bound).
    pub(crate) fn reset(&mut self) {
        self.loaded.clear();
        self.last_error = None;
    }

    /// Binds the source [`Shell::load`] reads from.
    pub(crate) fn bind(&mut self, source: Arc<dyn Source>) {
        self.source = Some(source);
    }

    /// Reads `key` from the bound source and keeps it compiled.
    pub(crate) fn load(
        &mut self,
        key: &str,
        compile: impl FnOnce(&Script) -> Result<P, Error>,
    ) -> Result<(), Error> {
        self.check()?;
        let source = self.source.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "{}: no source bound to load {key:?} from",
                self.kind
            ))
        })?;
        let script = source.get(key).map_err(source_error)?;
        let program = compile(&script)?;
        self.loaded.insert(key.to_owned(), program);
        Ok(())
    }

    /// Keeps `code` compiled under `name`.
    pub(crate) fn load_string(
        &mut self,
        name: &str,
        code: &str,
        compile: impl FnOnce(&Script) -> Result<P, Error>,
    ) -> Result<(), Error> {
        self.check()?;
        let program = compile(&Script::from_content(name, code.as_bytes()))?;
        self.loaded.insert(name.to_owned(), program);
        Ok(())
    }

    /// A loaded script; `NOT_FOUND` when `key` was not loaded.
    pub(crate) fn loaded(&self, key: &str) -> Result<&P, Error> {
        self.check()?;
        self.loaded.get(key).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("{}: script {key:?} is not loaded", self.kind),
            )
        })
    }
}

/// A source's error as a script-visible error.
fn source_error(e: SourceError) -> Error {
    let kind = match &e {
        SourceError::NotFound { .. } => ErrorKind::NotFound,
        _ if e.is_retryable() => ErrorKind::Unavailable,
        _ => ErrorKind::Invalid,
    };
    Error::new(kind, e.to_string())
}

/// Implements `ScriptEngine` (with the `Loader`, `Executor`, `Globals` and
/// `Functions` capabilities), `Loader` and `Executor` for an interpreter
/// whose `shell` field is a [`Shell`], given its `compile(&Script)`,
/// `run(&self, &P)`, `clear(&mut self)` (forget what users set) and
/// `apply_limits(&mut self, Limits)` methods.
macro_rules! interpreter {
    ($interpreter:ty, $kind:expr) => {
        impl $crate::capability::ScriptEngine for $interpreter {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn init(&mut self) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.open();
                Ok(())
            }

            fn close(&mut self) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.close();
                self.clear();
                Ok(())
            }

            fn last_error(&self) -> Option<&::troupe_dispatcher::Error> {
                self.shell.last_error()
            }

            fn reset(&mut self) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()?;
                self.shell.reset();
                self.clear();
                Ok(())
            }

            /// The language loads no modules: the policy has nothing to act on.
            fn set_policy(
                &mut self,
                _policy: ::std::sync::Arc<::troupe_modules::Policy>,
                _modules: ::std::sync::Arc<::troupe_modules::ModuleRegistry>,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()
            }

            fn set_limits(
                &mut self,
                limits: ::troupe_runtime::Limits,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()?;
                self.apply_limits(limits);
                Ok(())
            }

            fn as_loader(
                &mut self,
            ) -> Result<&mut dyn $crate::capability::Loader, ::troupe_dispatcher::Error> {
                Ok(self)
            }

            fn as_executor(
                &mut self,
            ) -> Result<&mut dyn $crate::capability::Executor, ::troupe_dispatcher::Error> {
                Ok(self)
            }

            fn as_globals(
                &mut self,
            ) -> Result<&mut dyn $crate::capability::Globals, ::troupe_dispatcher::Error> {
                Ok(self)
            }

            fn as_functions(
                &mut self,
            ) -> Result<&mut dyn $crate::capability::Functions, ::troupe_dispatcher::Error> {
                Ok(self)
            }
        }

        impl $crate::capability::Loader for $interpreter {
            fn bind_source(&mut self, source: ::std::sync::Arc<dyn ::troupe_sources::Source>) {
                self.shell.bind(source);
            }

            fn load(&mut self, key: &str) -> Result<(), ::troupe_dispatcher::Error> {
                let r = self.shell.load(key, Self::compile);
                self.shell.record(r)
            }

            fn load_many(&mut self, keys: &[&str]) -> Result<(), ::troupe_dispatcher::Error> {
                keys.iter().try_for_each(|key| self.load(key))
            }

            fn load_string(
                &mut self,
                name: &str,
                code: &str,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                let r = self.shell.load_string(name, code, Self::compile);
                self.shell.record(r)
            }
        }

        impl $crate::capability::Executor for $interpreter {
            fn execute(
                &mut self,
                key: &str,
            ) -> Result<::troupe_dispatcher::Value, ::troupe_dispatcher::Error> {
                let r = self
                    .shell
                    .loaded(key)
                    .cloned()
                    .and_then(|program| self.run(&program));
                self.shell.record(r)
            }

            fn execute_many(
                &mut self,
                keys: &[&str],
            ) -> Result<Vec<::troupe_dispatcher::Value>, ::troupe_dispatcher::Error> {
                keys.iter().map(|key| self.execute(key)).collect()
            }

            fn execute_string(
                &mut self,
                code: &str,
            ) -> Result<::troupe_dispatcher::Value, ::troupe_dispatcher::Error> {
                let r = self.shell.check().and_then(|()| {
                    let script =
                        ::troupe_sources::Script::from_content("<string>", code.as_bytes());
                    Self::compile(&script).and_then(|program| self.run(&program))
                });
                self.shell.record(r)
            }
        }
    };
}
pub(crate) use interpreter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_entries_become_variables_beside_args() {
        let map: Value = [("x".to_owned(), Value::Int(1))].into_iter().collect();
        let vars = variables(&[Value::Int(7), map.clone()]);
        assert_eq!(vars.get("x"), Some(&Value::Int(1)));
        assert_eq!(
            vars.get(ARGS),
            Some(&Value::Array(vec![Value::Int(7), map]))
        );
    }
}
