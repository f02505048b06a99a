use std::any::Any;
use std::sync::Arc;

use troupe_dispatcher::{Error, Pid, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};
use troupe_sources::{Script, Source};

use crate::{Limits, Process};

/// A compiled script, opaque to the runtime. The runtime caches it per
/// `(key, version)` and hands it back to the engine that made it.
pub type Program = Arc<dyn Any + Send + Sync>;

/// Everything an engine needs to start one process.
#[derive(Clone)]
pub struct ProcessInit {
    /// The new process's pid.
    pub pid: Pid,
    /// The spawning process, if any.
    pub parent: Option<Pid>,
    /// The script's key in the runtime's source.
    pub key: String,
    /// Spawn arguments.
    pub args: Vec<Value>,
    /// A function to call after the chunk ran, instead of using its result.
    pub entry: Option<String>,
    /// What the process may load.
    pub policy: Arc<Policy>,
    /// The modules on offer.
    pub modules: Arc<ModuleRegistry>,
    /// Per-process limits.
    pub limits: Limits,
    /// The runtime's script source (for engines that load more scripts at
    /// run time, e.g. `eval_runner` imports).
    pub source: Arc<dyn Source>,
    /// Run as a lightweight process (a coroutine in a state shared with
    /// other processes) instead of an isolated one. Only asked of engines
    /// whose [`Engine::lightweight`] is true.
    pub lightweight: bool,
    /// The most memory one interpreter state may use when nothing smaller
    /// is asked (the runtime's `max_memory`). An engine that can bound
    /// its states' memory applies it to an isolated process without a
    /// `max_memory` of its own, and to the states it shares among
    /// lightweight processes, so running out of memory fails one process
    /// (or one shared state), never the host.
    pub memory_ceiling: Option<std::num::NonZeroUsize>,
    /// The process is a workflow: its commands are journaled and it is
    /// re-run on replay, so what it computes must not depend on its
    /// interpreter state (an engine gives it replay-safe iteration and
    /// naming, where its language has state-dependent ones).
    pub journaled: bool,
}

/// A script language. Engines compile scripts to [`Program`]s and turn
/// programs into [`Process`]es.
pub trait Engine: Send + Sync + 'static {
    /// The engine's name, e.g. `lua`.
    fn name(&self) -> &str;

    /// File extensions this engine runs, without the dot, e.g. `["lua"]`.
    fn extensions(&self) -> &[&str];

    /// Compiles a script. Syntax errors are `INVALID` and name `key:line`.
    fn compile(&self, script: &Script) -> Result<Program, Error>;

    /// Modules this engine implements itself (e.g. Lua's `eval_runner`).
    /// The runtime adds them to its registry so policies see their classes;
    /// only this engine's processes can load them.
    fn modules(&self) -> Vec<ModuleDef> {
        Vec::new()
    }

    /// Starts a process running `program`.
    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error>;

    /// Whether the engine runs lightweight processes
    /// ([`ProcessInit::lightweight`]); the runtime refuses a lightweight
    /// spawn with `INVALID` otherwise.
    fn lightweight(&self) -> bool {
        false
    }

    /// The host memory one process of this engine holds beyond what its
    /// [`Process::memory`](crate::Process::memory) reports (interpreter
    /// structures, stacks, the allocator's share), in bytes. The runtime
    /// charges it to its own `max_memory` (not to the spawn tree's, which
    /// counts a script's own memory) while the process lives, so the
    /// runtime's cap bounds what a fork bomb can make the host hold. The
    /// default, 256 KiB, is for engines that did not measure theirs.
    fn footprint(&self, lightweight: bool) -> usize {
        let _ = lightweight;
        256 << 10
    }

    /// Sets how many idle interpreter states the engine keeps for reuse by
    /// later isolated processes (0: a fresh state for every process).
    /// Engines without reusable states ignore it.
    fn set_state_pool(&self, capacity: usize) {
        let _ = capacity;
    }
}

/// A shared engine is an engine (for registries such as
/// `troupe_engines::EngineFactory` that hand out `Arc<dyn Engine>`s).
impl<E: Engine + ?Sized> Engine for Arc<E> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn extensions(&self) -> &[&str] {
        (**self).extensions()
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        (**self).compile(script)
    }

    fn modules(&self) -> Vec<ModuleDef> {
        (**self).modules()
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        (**self).instantiate(program, init)
    }

    fn lightweight(&self) -> bool {
        (**self).lightweight()
    }

    fn footprint(&self, lightweight: bool) -> usize {
        (**self).footprint(lightweight)
    }

    fn set_state_pool(&self, capacity: usize) {
        (**self).set_state_pool(capacity);
    }
}
