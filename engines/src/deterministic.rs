//! What the deterministic engines (Starlark, CEL, expressions) share: a
//! process that evaluates its script on its first step and ends with the
//! value, the variables a script sees, the checks around a compiled
//! program, and the [`interpreter!`] macro that makes an interpreter of
//! them around a [`Shell`](crate::shell::Shell).
//!
//! A script of these languages cannot wait for anything (no receive, no
//! commands), so its process never yields: it runs to completion in one
//! step and its result is the process's result.

use std::collections::BTreeMap;

use troupe_dispatcher::{Error, Value};
use troupe_runtime::{Process, Program, Resume, Step, StepCx};
use troupe_sources::Script;

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

/// `e` (from the language `lang`, whose messages start `lang: `) naming
/// the script `key` instead: `key:1:4: …` for a position, `key: …`
/// otherwise. The kind and details are kept.
#[cfg(any(feature = "cel", feature = "expr"))]
pub(crate) fn located(lang: &str, key: &str, e: Error) -> Error {
    let message = e
        .message()
        .strip_prefix(lang)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(e.message());
    let sep = if message.starts_with(|c: char| c.is_ascii_digit()) {
        ":"
    } else {
        ": "
    };
    let out = Error::new(e.kind(), format!("{key}{sep}{message}"));
    match e.details() {
        Some(details) => out.with_details(details.clone()),
        None => out,
    }
}

/// Calls the function `name` of an expression language: evaluates
/// `name(_0, _1, …)` with `eval`, the arguments bound as `_0`, `_1`, ….
#[cfg(any(feature = "cel", feature = "expr"))]
pub(crate) fn call_by_name(
    lang: &str,
    name: &str,
    args: Vec<Value>,
    eval: impl FnOnce(&str, &BTreeMap<String, Value>) -> Result<Value, Error>,
) -> Result<Value, Error> {
    let identifier = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !identifier {
        return Err(Error::invalid(format!(
            "{lang}: {name:?} is not a function name"
        )));
    }
    let names: Vec<String> = (0..args.len()).map(|i| format!("_{i}")).collect();
    let src = format!("{name}({})", names.join(", "));
    let params: BTreeMap<String, Value> = names.into_iter().zip(args).collect();
    eval(&src, &params)
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
    fn step(&mut self, _cx: &mut StepCx<'_>, _input: Resume) -> Step {
        match self.0.take().map(|run| run()) {
            Some(Ok(value)) => Step::Done(value),
            Some(Err(e)) => Step::Failed(e),
            None => Step::Failed(Error::internal("a finished script was stepped again")),
        }
    }
}

/// Implements `ScriptEngine` (with the `Loader`, `Executor`, `Globals`,
/// `Functions` and `Watcher` capabilities), `Loader`, `Executor` and
/// `Watcher` for an interpreter
/// whose `shell` field is a [`Shell`](crate::shell::Shell) made with
/// `Shell::new` (closed until `init`), given its `compile(&Script)`,
/// `run(&self, &P)`, `clear(&mut self)` (forget what users set) and
/// `apply_limits(&mut self, Limits)` methods. With `modules`, it also
/// offers the `Modules` capability and hands `set_policy` to its
/// `apply_policy(&mut self, Arc<Policy>, Arc<ModuleRegistry>)`.
macro_rules! interpreter {
    ($interpreter:ty) => {
        $crate::deterministic::interpreter!(@engine $interpreter [] {
            /// The language loads no modules: the policy has nothing to act on.
            fn set_policy(
                &mut self,
                _policy: ::std::sync::Arc<::troupe_modules::Policy>,
                _modules: ::std::sync::Arc<::troupe_modules::ModuleRegistry>,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()
            }
        });
    };
    ($interpreter:ty, modules) => {
        $crate::deterministic::interpreter!(@engine $interpreter [as_modules: Modules] {
            fn set_policy(
                &mut self,
                policy: ::std::sync::Arc<::troupe_modules::Policy>,
                modules: ::std::sync::Arc<::troupe_modules::ModuleRegistry>,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()?;
                self.apply_policy(policy, modules);
                Ok(())
            }
        });
    };
    (@engine $interpreter:ty [$($accessor:ident: $capability:ident),*] { $($set_policy:tt)* }) => {
        impl $crate::capability::ScriptEngine for $interpreter {
            $crate::shell::shell_methods!(as_loader: Loader, as_executor: Executor,
                as_globals: Globals, as_functions: Functions, as_watcher: Watcher
                $(, $accessor: $capability)*);

            fn init(&mut self) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.open();
                Ok(())
            }

            fn close(&mut self) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.close();
                self.clear();
                Ok(())
            }

            fn reset(&mut self) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()?;
                self.shell.reset();
                self.clear();
                Ok(())
            }

            $($set_policy)*

            fn set_limits(
                &mut self,
                limits: ::troupe_runtime::Limits,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()?;
                self.apply_limits(limits);
                Ok(())
            }
        }

        impl $crate::capability::Loader for $interpreter {
            fn bind_source(&mut self, source: ::std::sync::Arc<dyn ::troupe_sources::Source>) {
                self.shell.bind(source);
            }

            fn load(&mut self, key: &str) -> Result<(), ::troupe_dispatcher::Error> {
                let r = self
                    .shell
                    .check()
                    .and_then(|()| self.shell.read(key))
                    .and_then(|script| Self::compile(&script))
                    .map(|program| self.shell.keep(key, program));
                self.shell.record(r)
            }

            fn load_string(
                &mut self,
                name: &str,
                code: &str,
            ) -> Result<(), ::troupe_dispatcher::Error> {
                let r = self
                    .shell
                    .check()
                    .and_then(|()| {
                        Self::compile(&::troupe_sources::Script::from_content(
                            name,
                            code.as_bytes(),
                        ))
                    })
                    .map(|program| self.shell.keep(name, program));
                self.shell.record(r)
            }
        }

        impl $crate::capability::Watcher for $interpreter {
            fn watch(&mut self, key: &str) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.check()?;
                let compile = |script: &::troupe_sources::Script| Self::compile(script);
                self.shell.watch(key, ::std::sync::Arc::new(compile))
            }

            fn unwatch(&mut self, key: &str) -> Result<(), ::troupe_dispatcher::Error> {
                self.shell.unwatch(key);
                Ok(())
            }
        }

        impl $crate::capability::Executor for $interpreter {
            fn loaded(&self) -> Vec<String> {
                self.shell.loaded_keys()
            }

            fn execute(
                &mut self,
                key: &str,
            ) -> Result<::troupe_dispatcher::Value, ::troupe_dispatcher::Error> {
                self.shell.apply_reloads();
                let r = self
                    .shell
                    .check()
                    .and_then(|()| self.shell.cancel().check())
                    .and_then(|()| self.shell.loaded(key).cloned())
                    .and_then(|program| self.run(&program));
                self.shell.record(r)
            }

            fn execute_named(
                &mut self,
                name: &str,
                code: &str,
            ) -> Result<::troupe_dispatcher::Value, ::troupe_dispatcher::Error> {
                let r = self.shell.check().and_then(|()| {
                    self.shell.cancel().check()?;
                    let script = ::troupe_sources::Script::from_content(name, code.as_bytes());
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
