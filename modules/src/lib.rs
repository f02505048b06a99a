//! What scripts may `require`, and what they get when they do.
//!
//! A [`ModuleDef`] is a named table of functions defined in Rust, tagged with
//! [`Class`]es. Its functions are engine-neutral: they take [`Args`] (neutral
//! [`Value`](troupe_dispatcher::Value)s) and give back a [`Ret`]: values, an
//! error object, or a [`Call`](troupe_dispatcher::Call) the engine yields to
//! the dispatcher. A [`Policy`] (default-deny) decides which modules a process
//! may load, and the [`ModuleRegistry`] is the one place that applies it.
//!
//! This crate knows nothing of schedulers or engines; the command handlers
//! behind the built-in `time` and `process` modules live in the runtime.

mod args;
pub mod builtin;
mod class;
mod module;
mod policy;
mod registry;
mod size;
mod typed;
pub mod types;
mod userdata;

pub use args::{ArgError, Args};
pub use class::{Class, ClassSet};
pub use module::{CallError, FnCx, FunctionDef, ModuleDef, Ret};
pub use policy::{Policy, Rule, RuleEffect};
pub use registry::ModuleRegistry;
pub use size::parse_size;
pub use typed::{Bytes, FromArg, FromArgs, IntoRet, ModuleCommand, Rest, ResultHandler, Yielded};
pub use userdata::{Method, Obj, Object, TypeKey, UserData, UserType, UserTypeShape};
