//! The engine-agnostic heart of Troupe: processes, the scheduler that steps
//! them on a few worker threads, mailboxes, timers, and the host API.
//!
//! A [`Process`] is anything that can be *stepped*: given how its last yield
//! ended ([`Resume`]), it runs until it yields a command, finishes, fails or
//! uses up its time slice ([`Step`]). Engines (Lua, …) implement [`Process`]
//! and [`Engine`]; the scheduler never knows which language runs.
//!
//! Commands go to the [`Dispatcher`](troupe_dispatcher::Dispatcher). Inline
//! results resume the process on the same worker at once; anything slower
//! parks the process until its [`Completion`](troupe_dispatcher::Completion)
//! wakes it. `scheduler.rs` says what the scheduler is made of; `state.rs`
//! holds the state machine that makes sure a completion racing a yield is
//! never lost. The runtime's own commands (`process`, `time`, `supervisor`,
//! `workflow.signal`) are typed, with a handler file per module
//! (`commands/`); mailboxes apply backpressure: a `send` to a full one
//! parks the sender until the receiver makes room (`mailbox.rs`,
//! `send.rs`). A module is added one way, [`RuntimeBuilder::module`]: a
//! [`ModuleDef`](troupe_modules::ModuleDef) brings the handlers of its
//! commands with it, and a [`HostModule`] makes one from a host's state.

mod commands;
mod engine;
mod entry;
mod exit;
mod host;
mod host_module;
mod idle;
mod introspect;
mod journal;
mod journaled;
mod latency;
mod limits;
mod links;
pub mod machine;
mod mailbox;
mod process;
mod programs;
mod queue;
mod quota;
mod registry;
mod reload;
mod remote;
mod runtime;
mod scheduler;
mod send;
mod spawn;
mod spawning;
mod state;
mod stats;
mod supervisor;
mod supervisor_spec;
mod table;
mod timers;
mod wheel;
mod worker;
mod workflows;

pub use engine::{Engine, ProcessInit, Program};
pub use host::HostMailbox;
pub use host_module::HostModule;
pub use introspect::{
    ProcessInfo, ProcessKind, ProcessStatus, SupervisedChild, SupervisorTree, TOPICS_SHOWN,
    WaitingOn,
};
pub use journal::{
    Before, ChildDone, Deliver, Inline, Interrupt, Journal, JournalStore, Reach, StartMode, Stop,
    StoredWorkflow, TakeOver, Wait, WorkflowStart,
};
pub use latency::{LATENCY_BOUNDS, Latencies, LatencyCounts};
pub use limits::Limits;
pub use mailbox::Message;
pub use process::{Process, Resume, Step, StepCx};
pub use remote::{ClusterMember, ExitReason, RemoteFuture, RemoteNodes, RemoteSignal, RemoteSpawn};
pub use runtime::{MAX_WORKERS, ProcessHandle, Runtime, RuntimeBuilder, WORKERS_ENV};
pub use send::ParkedSends;
pub use spawn::{Spawn, check_spawn_options, source_error};
pub use stats::{CommandStats, RuntimeStats};
pub use supervisor::SupervisorHandle;
pub use supervisor_spec::{ChildInfo, ChildSpec, Restart, Strategy, Supervisor};
