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
//! `starlark`, `cel`, `expr` (expr-lang), `evalexpr`, `tcl` (molt). [`EnginePool`], [`AutoGrowPool`] and
//! [`Manager`] share instances between tasks, threads and tenants.

#[cfg(any(feature = "python", feature = "tcl"))]
mod alloc;
pub mod cancel;
pub mod capability;
#[cfg(feature = "cel")]
pub mod cel;
#[cfg(any(
    feature = "cel",
    feature = "expr",
    feature = "evalexpr",
    feature = "starlark",
    feature = "tcl"
))]
mod deterministic;
#[cfg(feature = "evalexpr")]
pub mod evalexpr;
#[cfg(feature = "expr")]
pub mod expr;
pub mod factory;
#[cfg(feature = "js")]
pub mod js;
#[cfg(feature = "lua")]
pub mod lua;
pub mod manager;
#[cfg(any(feature = "js", feature = "python", feature = "starlark"))]
mod nesting;
pub mod pool;
#[cfg(feature = "python")]
pub mod python;
#[cfg(any(
    feature = "lua",
    feature = "js",
    feature = "python",
    feature = "wasm",
    feature = "starlark",
    feature = "cel",
    feature = "expr",
    feature = "evalexpr",
    feature = "tcl"
))]
mod shell;
#[cfg(feature = "starlark")]
pub mod starlark;
#[cfg(feature = "tcl")]
pub mod tcl;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use capability::{
    Executor, Functions, Globals, HostFunction, Loader, Modules, ScriptEngine, Watcher, unsupported,
};
pub use factory::EngineFactory;
pub use manager::Manager;
pub use pool::{AutoGrowPool, EnginePool, PooledEngine};
