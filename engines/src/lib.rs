//! Script engines. Each engine has two faces:
//!
//! - a **process engine** ([`troupe_runtime::Engine`]): it turns source text
//!   into a compiled program and programs into
//!   [`Process`](troupe_runtime::Process)es the scheduler steps. Engines do
//!   not know the scheduler's internals: they see
//!   [`ProcessInit`](troupe_runtime::ProcessInit) and return
//!   [`Step`](troupe_runtime::Step)s;
//! - an **embeddable interpreter** ([`ScriptEngine`] and its optional
//!   capabilities, see [`capability`]) that runs scripts to completion on
//!   the caller's thread.
//!
//! [`EngineFactory::builtin`] knows every engine compiled in, one cargo
//! feature each: `lua` (default; mlua, Lua 5.4), `js`, `python`, `wasm`,
//! `starlark`, `cel`, `expr`.

pub mod capability;
pub mod factory;
#[cfg(feature = "lua")]
pub mod lua;

pub use capability::{
    Executor, Functions, Globals, HostFunction, Loader, Modules, ScriptEngine, Watcher, unsupported,
};
pub use factory::EngineFactory;
