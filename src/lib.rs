//! # Troupe
//!
//! An actor runtime for sandboxed script processes. Every script runs as a
//! lightweight process with a pid and a bounded mailbox; its coroutine never
//! blocks, it yields typed commands that a dispatcher runs, and a scheduler
//! resumes it on one of a few worker threads.
//!
//! ```
//! use troupe::{LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};
//!
//! let src = MemorySource::new().with("double.lua", "local n = ... return n * 2");
//! let rt = Runtime::builder().workers(2).source(src).engine(LuaEngine::new()).build()?;
//! let h = rt.spawn(Spawn::script("double.lua").args([21]).policy(Policy::plugin()))?;
//! assert_eq!(h.join_blocking()?, Value::Int(42));
//! # Ok::<(), troupe::Error>(())
//! ```
//!
//! The crates behind this facade, bottom-up: `troupe-dispatcher` (values,
//! errors, commands), `troupe-modules` (modules and policies),
//! `troupe-runtime` (scheduler and host API), `troupe-engines` (Lua, …),
//! `troupe-io` (the `fs`, `http` and `kv` modules), `troupe-sources`
//! (where scripts come from) and `troupe-workflow` (durable workflows).

pub mod host;

pub use troupe_dispatcher::{
    Call, Command, CommandId, Dispatched, DispatcherBuilder, Error, ErrorKind, HandlerCx, Pid,
    Value, from_value, to_value, value,
};
pub use troupe_engines::lua::{DEFAULT_STATE_POOL, LuaEngine, LuaInterpreter, StatePoolStats};
pub use troupe_engines::{
    AutoGrowPool, EngineFactory, EnginePool, Executor, Functions, Globals, HostFunction, Loader,
    Manager, Modules, PooledEngine, ScriptEngine, Watcher,
};
pub use troupe_io::{Fs, HostModule, Http, Kv};
pub use troupe_modules::types;

pub mod testing;
pub use troupe_dashboard::{Dashboard, DashboardHandle};
pub use troupe_modules::{
    Args, Bytes, CallError, Class, ClassSet, FnCx, FromArg, FromArgs, IntoRet, ModuleCommand,
    ModuleDef, ModuleRegistry, Obj, Object, Policy, Rest, Ret, RuleEffect, UserData, UserType,
    Yielded,
};
pub use troupe_runtime::machine;
pub use troupe_runtime::{
    ChildInfo, ChildSpec, CommandStats, Engine, HostMailbox, LATENCY_BOUNDS, LatencyCounts, Limits,
    Message, ParkedSends, ProcessHandle, ProcessInfo, ProcessKind, ProcessStatus, Restart, Runtime,
    RuntimeBuilder, RuntimeStats, Spawn, Strategy, SupervisedChild, Supervisor, SupervisorHandle,
    SupervisorTree, TOPICS_SHOWN, WORKERS_ENV, WaitingOn, source_error,
};
#[cfg(feature = "etcd")]
pub use troupe_sources::EtcdSource;
#[cfg(feature = "git")]
pub use troupe_sources::GitSource;
#[cfg(feature = "object-store")]
pub use troupe_sources::ObjectStoreSource;
#[cfg(feature = "redis")]
pub use troupe_sources::RedisSource;
#[cfg(feature = "sql")]
pub use troupe_sources::SqlSource;
#[cfg(feature = "archive")]
pub use troupe_sources::{ArchiveLimits, TarGzSource, ZipSource};
pub use troupe_sources::{
    CachedSource, Change, ChangeSink, EmbeddedSource, FileSource, HttpSource, LayerStrategy,
    LayeredSource, MemorySource, Script, Source, SourceError, TransformSource, Watch, WatchGuard,
    embed_scripts,
};
#[cfg(feature = "transforms")]
pub use troupe_sources::{FilterSource, Key, KeyError, PatternError};
/// How soon, by default, a PostgreSQL workflow store's processes take over
/// the workflows of one that died.
#[cfg(feature = "postgres")]
pub use troupe_workflow::DEFAULT_LEASE_TIMEOUT;
pub use troupe_workflow::{
    Checked, DEFAULT_HISTORY_LIMIT, Entry, Header, Run, Status, Summary, WorkflowStore,
};
