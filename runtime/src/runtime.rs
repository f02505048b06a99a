use std::num::NonZeroUsize;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use troupe_dispatcher::{DispatcherBuilder, Error, ErrorKind, IoPool, Pid, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};
use troupe_sources::{FileSource, Script, Source};

use crate::engine::Engine;
use crate::exit::{Exit, ExitCell};
use crate::introspect::{ProcessInfo, ProcessKind, ProcessStatus, SupervisorTree};
use crate::journal::{Deliver, Interrupt, JournalStore, Reach, Stop};
use crate::mailbox::Message;
use crate::quota::{Caps, Quota};
use crate::reload::Reloader;
use crate::remote::{ClusterMember, RemoteNodes, RemoteSignal, RemoteSpawn};
use crate::scheduler::{Scheduler, SchedulerParts};
use crate::send::ParkedSends;
use crate::stats::RuntimeStats;
use crate::{Limits, Spawn, journaled};

/// Configures and starts a [`Runtime`].
pub struct RuntimeBuilder {
    workers: usize,
    io_threads: usize,
    node: u32,
    source: Option<Arc<dyn Source>>,
    hot_reload: bool,
    engines: Vec<Arc<dyn Engine>>,
    modules: ModuleRegistry,
    dispatcher: DispatcherBuilder,
    policy: Policy,
    limits: Limits,
    mailbox: usize,
    mailbox_bytes: usize,
    max_processes: Option<NonZeroUsize>,
    max_memory: Option<NonZeroUsize>,
    journals: Option<Arc<dyn JournalStore>>,
    recover: bool,
    state_pool: Option<usize>,
    cluster: Option<Arc<dyn ClusterMember>>,
}

impl RuntimeBuilder {
    /// Number of scheduler worker threads (default: available cores). The
    /// environment variable [`WORKERS_ENV`] (`TROUPE_WORKERS=N`), when set,
    /// overrides this for every runtime of the process, e.g. to run a whole
    /// test suite with one worker.
    #[must_use]
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Number of tokio threads for async command handlers (default: 2).
    #[must_use]
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n.max(1);
        self
    }

    /// Where scripts come from (default: files under the current directory).
    #[must_use]
    pub fn source(mut self, source: impl Source) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Watches the source (default: off): changed scripts are recompiled as
    /// the changes arrive, a version that fails to compile is logged and
    /// the previous one kept, and processes spawned with
    /// [`Spawn::restart_on_change`] are stopped for their supervisors to
    /// restart them on the new code. Without it, changes are still picked
    /// up by the next spawn (each spawn asks the source for the version).
    #[must_use]
    pub fn hot_reload(mut self, on: bool) -> Self {
        self.hot_reload = on;
        self
    }

    /// Adds a script engine (and the modules it implements); the first one
    /// claiming an extension runs it.
    #[must_use]
    pub fn engine(mut self, engine: impl Engine) -> Self {
        for m in engine.modules() {
            self.modules.insert(m);
        }
        self.engines.push(Arc::new(engine));
        self
    }

    /// Adds a host module (replacing a built-in of the same name) with the
    /// handlers of its commands ([`ModuleDef::handle`],
    /// [`ModuleDef::handle_async`], [`ModuleDef::async_command`]); a
    /// command id taken twice makes [`RuntimeBuilder::build`] fail with
    /// `ALREADY_EXISTS`. This is how every module is added, a host's own
    /// ([`HostModule`](crate::HostModule)s such as `troupe-io`'s `fs`,
    /// `http` and `kv` included).
    #[must_use]
    pub fn module(mut self, module: ModuleDef) -> Self {
        self.modules.insert(module);
        self
    }

    /// Makes the runtime a node of `cluster` (`troupe-cluster`'s
    /// `Cluster::join`): its module is added, and the runtime is hooked
    /// into it once built, so its processes reach other nodes' processes.
    #[must_use]
    pub fn cluster(mut self, cluster: Arc<dyn ClusterMember>) -> Self {
        self.modules.insert(cluster.module());
        self.cluster = Some(cluster);
        self
    }

    /// The policy of processes the host spawns without one (default: plugin).
    #[must_use]
    pub fn default_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The limits of processes spawned without their own.
    #[must_use]
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The mailbox capacity of processes spawned without their own
    /// (default: 1024 messages).
    #[must_use]
    pub fn mailbox_capacity(mut self, n: usize) -> Self {
        self.mailbox = n.max(1);
        self
    }

    /// The most bytes any mailbox may hold queued (default: 64 MiB). A
    /// send that would go past it waits as on a full mailbox; a message
    /// larger than this is refused with `LIMIT_EXCEEDED`.
    #[must_use]
    pub fn mailbox_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.mailbox_bytes = bytes.get();
        self
    }

    /// The most processes alive at once on this node, every spawn tree
    /// together (default: one per 8 KiB of the machine's memory, see
    /// [`max_memory`](Self::max_memory), at least 4,096). A spawn past it
    /// fails with `LIMIT_EXCEEDED`. A tree's own cap is
    /// [`Limits::max_processes`].
    #[must_use]
    pub fn max_processes(mut self, n: NonZeroUsize) -> Self {
        self.max_processes = Some(n);
        self
    }

    /// The most memory the processes of this node may hold together,
    /// their isolated interpreter states, queued messages and what each
    /// costs the host beyond its state
    /// ([`Engine::footprint`](crate::Engine::footprint)) (default:
    /// half the memory this OS process can count on: the least of the
    /// machine's RAM, its cgroup's limit and `ulimit -v`). It is also the
    /// limit of each interpreter state that has none of its own (an
    /// isolated process without [`Limits::max_memory`], a state shared by
    /// lightweight processes): running out of memory fails that process
    /// with `LIMIT_EXCEEDED`, never the host. A tree's own cap is
    /// [`Limits::max_memory`].
    #[must_use]
    pub fn max_memory(mut self, bytes: NonZeroUsize) -> Self {
        self.max_memory = Some(bytes);
        self
    }

    /// How many idle interpreter states each engine keeps for reuse by
    /// isolated processes (0: a fresh state per process; default: the
    /// engine's own, 256 for Lua). A state is reused only after its process
    /// finished normally, and is reset first. The size belongs to the
    /// engine, so engine clones shared with other runtimes get it too.
    #[must_use]
    pub fn state_pool(mut self, capacity: usize) -> Self {
        self.state_pool = Some(capacity);
        self
    }

    /// Where workflow journals live (see [`Spawn::workflow`]).
    #[must_use]
    pub fn journal_store(mut self, store: impl JournalStore) -> Self {
        self.journals = Some(Arc::new(store));
        self
    }

    /// Whether [`build`](Self::build) resumes every unfinished workflow of
    /// the journal store (default: no). Their handles are in
    /// [`Runtime::recovered`].
    #[must_use]
    pub fn recover(mut self, on: bool) -> Self {
        self.recover = on;
        self
    }

    /// Starts the worker threads (which also drive the timers) and the IO pool, then
    /// (with [`recover`](Self::recover)) resumes unfinished workflows. A
    /// workflow that cannot be resumed (a corrupt journal) is logged and
    /// left alone; the others still run.
    pub fn build(mut self) -> Result<Runtime, Error> {
        // Asked of the builder or through the environment (which wins),
        // a count past the limit is refused either way.
        let env = workers_from_env()?;
        for n in [Some(self.workers), env].into_iter().flatten() {
            if n > MAX_WORKERS {
                return Err(Error::invalid(format!(
                    "{n} workers are more than the limit of {MAX_WORKERS}: each is an OS thread, \
                     and one per core is the most that helps"
                )));
            }
        }
        let workers = env.unwrap_or(self.workers);
        if let Some(capacity) = self.state_pool {
            for engine in &self.engines {
                engine.set_state_pool(capacity);
            }
        }
        let unavailable = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Unavailable, format!("cannot start {what}: {e}"))
        };
        let io = IoPool::new(self.io_threads)?;
        // The handlers the modules bring (only the module that won its
        // name: a host module replacing a built-in replaces its handlers).
        for module in self.modules.iter() {
            module.register_handlers(&mut self.dispatcher)?;
        }
        journaled::register(&mut self.dispatcher)?;
        let source = self
            .source
            .take()
            .unwrap_or_else(|| Arc::new(FileSource::new(".")));
        let sched = Arc::new_cyclic(|weak: &Weak<Scheduler>| {
            let dispatcher = std::mem::take(&mut self.dispatcher).build(io.clone());
            Scheduler::new(SchedulerParts {
                node: self.node,
                dispatcher,
                me: weak.clone(),
                modules: Arc::new(self.modules),
                engines: self.engines,
                source,
                default_policy: Arc::new(self.policy),
                default_limits: self.limits,
                default_mailbox: self.mailbox,
                mailbox_bytes: self.mailbox_bytes,
                caps: node_caps(self.max_processes, self.max_memory),
                journals: self.journals.clone(),
                workers,
            })
        });
        sched.builtins.check(&sched.dispatcher)?;
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let s = Arc::clone(&sched);
            let t = std::thread::Builder::new()
                .name(format!("troupe-worker-{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || s.work(i))
                .map_err(|e| unavailable("worker thread", e))?;
            threads.push(t);
        }
        let reloader = if self.hot_reload {
            Reloader::start(&sched)
        } else {
            None
        };
        if let Some(store) = &self.journals {
            let weak = Arc::downgrade(&sched);
            let deliver: Deliver = Arc::new(move |pid, topic: &str, payload| {
                let sched = weak.upgrade().ok_or_else(|| {
                    Error::new(ErrorKind::Unavailable, "the runtime has shut down")
                })?;
                let from = None;
                let topic = topic.to_owned();
                sched.deliver(
                    pid,
                    Message {
                        from,
                        topic,
                        payload,
                    },
                )
            });
            let weak = Arc::downgrade(&sched);
            let interrupt: Interrupt = Arc::new(move |pid, wait, error| {
                weak.upgrade()
                    .is_some_and(|sched| sched.interrupt_wait(pid, wait, error))
            });
            let weak = Arc::downgrade(&sched);
            let stop: Stop = Arc::new(move |pid, error| {
                weak.upgrade()
                    .is_some_and(|sched| sched.stop(pid, Exit::Failed(error)))
            });
            store.attach(Reach {
                deliver,
                interrupt,
                stop,
            });
        }
        let rt = Runtime {
            owner: Arc::new(Owner {
                reloader: Mutex::new(reloader),
                sched,
                threads: Mutex::new(threads),
                io,
                recovered: Mutex::new(Vec::new()),
            }),
        };
        if let Some(cluster) = self.cluster.take() {
            cluster.attach(&rt)?;
        }
        if self.recover {
            rt.recover_all()?;
            if let Some(store) = &self.journals {
                let owner = Arc::downgrade(&rt.owner);
                store.take_over(Arc::new(move |id| match owner.upgrade() {
                    Some(owner) => Runtime { owner }.resume(id).map(drop),
                    None => Err(Error::new(
                        ErrorKind::Unavailable,
                        "the runtime has shut down",
                    )),
                }));
            }
        }
        Ok(rt)
    }
}

/// The environment variable that overrides the worker count of every runtime
/// (see [`RuntimeBuilder::workers`]).
pub const WORKERS_ENV: &str = "TROUPE_WORKERS";

/// `TROUPE_WORKERS` as a worker count: `None` when unset, `INVALID_ARGUMENT`
/// when it is not a positive integer.
/// A message from the host (no sender pid).
fn host_message(topic: &str, payload: impl Into<Value>) -> Message {
    Message {
        from: None,
        topic: topic.to_owned(),
        payload: payload.into(),
    }
}

/// The stack of a worker thread: reserved, and touched only as deep as the
/// deepest parse or conversion goes (parsers fed by scripts bound their
/// depth to fit well inside it).
const WORKER_STACK: usize = 16 << 20;

/// The most scheduler workers a runtime starts ([`RuntimeBuilder::workers`]).
pub const MAX_WORKERS: usize = 1024;

/// The node-wide caps: the ones asked for, else what fits the machine
/// (see [`RuntimeBuilder::max_memory`] and
/// [`RuntimeBuilder::max_processes`]).
fn node_caps(processes: Option<NonZeroUsize>, memory: Option<NonZeroUsize>) -> Caps {
    let machine = crate::machine::memory();
    let memory = memory.or_else(|| machine.and_then(|m| NonZeroUsize::new(m.get() / 2)));
    let processes = processes.or_else(|| {
        let per_8k = machine.map_or(0, |m| m.get() / 8192);
        NonZeroUsize::new(per_8k.clamp(4096, 1 << 26))
    });
    Caps { processes, memory }
}

fn workers_from_env() -> Result<Option<usize>, Error> {
    let Some(text) = std::env::var_os(WORKERS_ENV) else {
        return Ok(None);
    };
    match text.to_str().and_then(|t| t.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::invalid(format!(
            "{WORKERS_ENV}={text:?} must be a positive integer"
        ))),
    }
}

pub(crate) struct Owner {
    reloader: Mutex<Option<Reloader>>,
    sched: Arc<Scheduler>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    io: IoPool,
    /// Workflows resumed by `build`, until the host takes them.
    pub(crate) recovered: Mutex<Vec<(String, Pid, Arc<ExitCell>)>>,
}

impl Owner {
    fn shutdown(&self) {
        if let Some(r) = self.reloader.lock().take() {
            r.stop();
        }
        let threads: Vec<_> = std::mem::take(&mut *self.threads.lock());
        if threads.is_empty() {
            return;
        }
        self.sched.shut_down();
        for t in threads {
            let _ = t.join();
        }
        self.sched.timers.clear();
        self.sched.drain();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A running Troupe node: worker threads stepping script processes. Cheap to
/// clone (`Send + Sync`); it shuts down when the last clone is dropped or on
/// [`Runtime::shutdown`].
#[derive(Clone)]
pub struct Runtime {
    pub(crate) owner: Arc<Owner>,
}

impl Runtime {
    /// Starts configuring a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            io_threads: 2,
            node: 0,
            source: None,
            hot_reload: false,
            engines: Vec::new(),
            modules: ModuleRegistry::with_builtins(),
            dispatcher: DispatcherBuilder::new(),
            policy: Policy::plugin(),
            limits: Limits::default(),
            mailbox: 1024,
            mailbox_bytes: 64 << 20,
            max_processes: None,
            max_memory: None,
            journals: None,
            recover: false,
            state_pool: None,
            cluster: None,
        }
    }

    pub(crate) fn sched(&self) -> &Scheduler {
        &self.owner.sched
    }

    /// The scheduler, shared (for what keeps a weak link to it).
    pub(crate) fn sched_arc(&self) -> &Arc<Scheduler> {
        &self.owner.sched
    }

    /// Spawns a process running a script from the runtime's source.
    pub fn spawn(&self, spawn: Spawn) -> Result<ProcessHandle, Error> {
        self.spawn_with(spawn, None)
    }

    /// Spawns a process running `code` given directly, under the name `key`
    /// (which picks the engine by extension and anchors relative spawns).
    pub fn spawn_code(&self, spawn: Spawn, code: impl AsRef<[u8]>) -> Result<ProcessHandle, Error> {
        let script = Script::from_content(spawn.key.clone(), code.as_ref());
        self.spawn_with(spawn, Some(script))
    }

    /// The handle of the live process `pid` whose result goes to `exit`
    /// (its tree found while it lives).
    pub(crate) fn handle(&self, pid: Pid, exit: Arc<ExitCell>) -> ProcessHandle {
        let tree = self
            .sched()
            .table
            .lookup(pid)
            .map_or_else(Weak::new, |e| Arc::downgrade(&e.quota));
        ProcessHandle {
            pid,
            exit,
            tree,
            rt: self.clone(),
        }
    }

    fn spawn_with(&self, spawn: Spawn, code: Option<Script>) -> Result<ProcessHandle, Error> {
        let exit = Arc::new(ExitCell::default());
        let sched = self.sched();
        let entry = sched.prepare(spawn, None, code, Some(Arc::clone(&exit)))?;
        let handle = ProcessHandle {
            pid: entry.pid,
            exit,
            tree: Arc::downgrade(&entry.quota),
            rt: self.clone(),
        };
        sched.start(entry);
        Ok(handle)
    }

    /// Sends a message from the host to `pid`, waiting while its mailbox
    /// is full (the receiver taking a message makes room; nothing polls).
    /// `NOT_FOUND` if `pid` is not alive, or ends before it takes the
    /// message.
    pub async fn send(
        &self,
        pid: Pid,
        topic: &str,
        payload: impl Into<Value>,
    ) -> Result<(), Error> {
        let msg = host_message(topic, payload);
        self.sched().send_parked(pid, msg)?.wait().await
    }

    /// [`Runtime::send`] for synchronous hosts: blocks the calling thread
    /// while the mailbox is full. Do not call it on a worker or an async
    /// task.
    pub fn send_blocking(
        &self,
        pid: Pid,
        topic: &str,
        payload: impl Into<Value>,
    ) -> Result<(), Error> {
        let msg = host_message(topic, payload);
        self.sched().send_parked(pid, msg)?.wait_blocking()
    }

    /// Joins this node to a cluster: sends to pids of other nodes, global
    /// names and `register(name, {global = true})` go through `remote`
    /// from now on. `ALREADY_EXISTS` if it already joined one.
    pub fn set_remote(&self, remote: Arc<dyn RemoteNodes>) -> Result<(), Error> {
        self.sched().remote.set(remote).map_err(|_| {
            Error::new(
                ErrorKind::AlreadyExists,
                "this node is already in a cluster",
            )
        })
    }

    /// Delivers a message that process `from` of another node sent to
    /// `to`, a process of this node, without waiting: if `to`'s mailbox is
    /// full the message waits there, counted in `parked`, whose
    /// [`ParkedSends::settled`] the caller awaits before it takes more (the
    /// backpressure a cluster passes back to the sending node). `NOT_FOUND`
    /// if `to` is not alive.
    pub fn deliver_remote(
        &self,
        parked: &Arc<ParkedSends>,
        from: Option<Pid>,
        to: Pid,
        topic: String,
        payload: Value,
    ) -> Result<(), Error> {
        let msg = Message {
            from,
            topic,
            payload,
        };
        self.sched().send_counted(to, msg, parked)
    }

    /// Acts on a link, monitor or exit signal a process of another node
    /// sent to one of this node (its pids as this node writes them).
    pub fn deliver_signal(&self, signal: RemoteSignal) {
        let sched = self.sched();
        sched.table.deliver_signal(signal, sched);
    }

    /// Starts the process another node asked for
    /// ([`RemoteNodes::spawn`](crate::RemoteNodes::spawn)): from this
    /// runtime's source, under the request's policy narrowed to `ceiling`
    /// (default: this runtime's default policy), with this runtime's
    /// default limits (and the request's timeout, if shorter), in a spawn
    /// tree of its own. `reply` gets the new pid (or why none started)
    /// before the process runs, and after a linked one's link was queued
    /// back to the spawner, so the spawner's node learns of both before
    /// anything the process does.
    pub fn spawn_for(
        &self,
        req: RemoteSpawn,
        ceiling: Option<&Arc<Policy>>,
        reply: impl FnOnce(Result<Pid, Error>),
    ) {
        self.sched().spawn_for(req, ceiling, reply);
    }

    /// Delivers a notice to `pid` the way the runtime delivers `EXIT` and
    /// `DOWN`: from no process, and past a full mailbox (a notice is never
    /// lost to backpressure). False if `pid` is not alive.
    pub fn notify(&self, pid: Pid, topic: &str, payload: impl Into<Value>) -> bool {
        self.sched()
            .deliver_with(pid, host_message(topic, payload), false, |_, _| ())
            .is_ok()
    }

    /// Node `node` (a pid node index) went away or cannot be reached:
    /// links to its processes deliver exit signals and monitors of them
    /// `DOWN`s, with reason `noconnection`.
    pub fn node_down(&self, node: u32) {
        let sched = self.sched();
        sched.table.node_down(node, sched);
    }

    /// Sends without waiting: `RATE_LIMITED` if `pid`'s mailbox is full,
    /// `NOT_FOUND` if it is not alive.
    pub fn try_send(&self, pid: Pid, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.sched().deliver(pid, host_message(topic, payload))
    }

    /// Kills `pid` (untrappable; its exit reason is `"killed"`); false if
    /// it does not exist (any more).
    pub fn kill(&self, pid: Pid) -> bool {
        self.sched().stop(pid, Exit::Killed)
    }

    /// The pid registered under `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.sched().table.whereis(name)
    }

    /// How many processes are alive.
    pub fn process_count(&self) -> usize {
        self.sched().table.len()
    }

    /// What the runtime has done since it started: spawns, exits by
    /// reason, messages, full mailboxes, steals and parks, and each
    /// command's calls and waits (counters that only grow, kept per worker
    /// thread at next to no cost).
    pub fn stats(&self) -> RuntimeStats {
        let sched = self.sched();
        sched.stats.read(|id| sched.command_name(id))
    }

    /// A snapshot of every live process, by pid: what each is, where it
    /// is, what it waits for, its mailbox, links and monitors. Reads each
    /// process under its own locks without stopping any (see
    /// [`ProcessInfo`]); cheap enough to call every second with 100,000
    /// processes.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.sched().processes()
    }

    /// How many live processes there are of each status and kind (every
    /// pair, zeros included): what [`Runtime::processes`] would count,
    /// without taking a snapshot (no lock, no allocation per process).
    pub fn census(&self) -> Vec<(ProcessStatus, ProcessKind, usize)> {
        self.sched().census()
    }

    /// A snapshot of process `pid`, with the topics of its oldest queued
    /// messages; `None` if it is not alive.
    pub fn process(&self, pid: Pid) -> Option<ProcessInfo> {
        self.sched().process(pid)
    }

    /// The supervision tree: each top supervisor with its children, and
    /// under each child the supervisors it is or its script started.
    pub fn supervisors(&self) -> Vec<SupervisorTree> {
        self.sched().supervisors()
    }

    /// The bytes charged to this node's processes now: their isolated
    /// interpreter states (as of their last step, to within 64 KiB each),
    /// their queued messages and their engines' footprints; what
    /// [`RuntimeBuilder::max_memory`] caps.
    pub fn memory_in_use(&self) -> usize {
        self.sched().quota.memory()
    }

    /// The IO pool async handlers run on (for hosts that want to block on a
    /// future from synchronous code).
    pub fn io(&self) -> &IoPool {
        &self.owner.io
    }

    /// How many timers are pending: sleeps, `receive` timeouts and
    /// wall-clock limits of live processes. A timer is cancelled as soon as
    /// what it waits for is over (the process ended, the message came), so
    /// this never grows with finished work.
    pub fn pending_timers(&self) -> usize {
        self.owner.sched.timers.len()
    }

    /// Stops every process (they fail with `CANCELED`), then joins the worker
    /// threads and drops the pending timers. Idempotent.
    pub fn shutdown(&self) {
        self.owner.shutdown();
    }
}

/// A process the host spawned: its pid, a way to message and stop it, and
/// its result.
pub struct ProcessHandle {
    pub(crate) pid: Pid,
    pub(crate) exit: Arc<ExitCell>,
    /// The spawn tree it roots (see [`ProcessHandle::kill_tree`]).
    pub(crate) tree: Weak<Quota>,
    pub(crate) rt: Runtime,
}

impl ProcessHandle {
    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends it a message, waiting while its mailbox is full (see
    /// [`Runtime::send`]).
    pub async fn send(&self, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.rt.send(self.pid, topic, payload).await
    }

    /// Sends it a message, blocking the calling thread while its mailbox
    /// is full (see [`Runtime::send_blocking`]).
    pub fn send_blocking(&self, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.rt.send_blocking(self.pid, topic, payload)
    }

    /// Sends it a message without waiting: `RATE_LIMITED` if its mailbox
    /// is full (see [`Runtime::try_send`]).
    pub fn try_send(&self, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.rt.try_send(self.pid, topic, payload)
    }

    /// Kills it; its result becomes a `CANCELED` error and its exit reason
    /// `"killed"`.
    pub fn kill(&self) -> bool {
        self.rt.kill(self.pid)
    }

    /// Kills it and every process it spawned, and they spawned, still
    /// alive (even after it ended itself), and refuses their spawns from
    /// now on; how many were alive. The way to stop a script that spawns
    /// faster than its links can take its processes down, such as a fork
    /// bomb at its `max_processes`.
    pub fn kill_tree(&self) -> usize {
        self.tree
            .upgrade()
            .map_or(0, |tree| self.rt.sched().kill_tree(&tree))
    }

    /// Waits for its result.
    pub async fn join(&self) -> Result<Value, Error> {
        self.exit.wait().await
    }

    /// Waits for its result, blocking the calling thread.
    pub fn join_blocking(&self) -> Result<Value, Error> {
        self.exit.wait_blocking()
    }
}
