//! The hook through which a runtime reaches processes of other nodes.
//!
//! The runtime knows nothing of networks: a cluster (`troupe-cluster`)
//! implements [`RemoteNodes`] and is handed to
//! [`Runtime::set_remote`](crate::Runtime::set_remote). From then on a send
//! to a pid of another node (`pid.node() != 0`) goes to the hook instead of
//! a local mailbox, `whereis` (and a send to a name) falls back to the
//! cluster's global names, and `register(name, {global = true})` claims a
//! name cluster-wide. Messages arriving from other nodes come in through
//! [`Runtime::deliver_remote`](crate::Runtime::deliver_remote).
//!
//! Links, monitors and kills that cross nodes travel as [`RemoteSignal`]s:
//! the runtime hands them to [`RemoteNodes::signal`], in the same queue
//! as the messages to that node (so a message and a signal from one
//! process to another stay in order), and takes the other nodes' through
//! [`Runtime::deliver_signal`](crate::Runtime::deliver_signal). When a
//! node goes away, [`Runtime::node_down`](crate::Runtime::node_down) fires
//! every link and monitor to its processes with reason `noconnection`.

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Dispatched, Error, ErrorKind, HandlerCx, Pid, Tag, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};

use crate::entry::Entry;
use crate::exit::{Exit, NOPROC};
use crate::mailbox::Message;
use crate::scheduler::Scheduler;
use crate::spawn::MAX_MAILBOX;
use crate::{Limits, Runtime, Spawn};

/// A cluster operation that finishes later (on the runtime's IO pool).
pub type RemoteFuture<T = ()> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// What a runtime needs of a cluster: sending to other nodes and the
/// global name registry.
pub trait RemoteNodes: Send + Sync + 'static {
    /// Queues `msg` for `to`, a pid of another node, if that node's
    /// outgoing queue has room (`Ok(None)`); gives the message back when
    /// it is full (`Ok(Some(msg))`). `UNAVAILABLE` if the node is not a
    /// live member of the cluster.
    fn try_send(&self, to: Pid, msg: Message) -> Result<Option<Message>, Error>;

    /// Queues `msg` for `to`, waiting while its node's queue is full.
    fn send(&self, to: Pid, msg: Message) -> RemoteFuture;

    /// The pid registered cluster-wide under `name`, if any.
    fn whereis(&self, name: &str) -> Option<Pid>;

    /// Claims `name` cluster-wide for `pid`, a process of this node:
    /// `ALREADY_EXISTS` if it is taken.
    fn register(&self, name: &str, pid: Pid) -> RemoteFuture;

    /// Queues `signal` for its process of another node
    /// ([`RemoteSignal::to`]), after the messages already queued for that
    /// node and never held back by a full queue; false if that node is
    /// not a live member (the runtime then acts as if the signal came back
    /// with reason `noconnection`).
    fn signal(&self, signal: RemoteSignal) -> bool;

    /// Asks node `node` to start the process `req` describes (the other
    /// node starts it with [`Runtime::spawn_for`](crate::Runtime::spawn_for));
    /// answers its pid once it is made there, before it runs.
    /// `UNAVAILABLE` if `node` is not a live member, or goes away before
    /// it answers.
    fn spawn(&self, node: &str, req: RemoteSpawn) -> RemoteFuture<Pid>;
}

/// A cluster a runtime joins as it is built
/// ([`RuntimeBuilder::cluster`](crate::RuntimeBuilder::cluster));
/// `troupe-cluster`'s `Cluster` is one.
pub trait ClusterMember: Send + Sync + 'static {
    /// The module scripts reach the cluster through (`cluster`).
    fn module(&self) -> ModuleDef;

    /// Hooks the cluster into the built runtime
    /// ([`Runtime::set_remote`](crate::Runtime::set_remote)) and starts
    /// delivering what other nodes send to its processes.
    fn attach(self: Arc<Self>, rt: &Runtime) -> Result<(), Error>;
}

/// A process one node asks another to start
/// (`process.spawn(script, {node = "b"}, ...)`). The other node runs the
/// script from its own source, under at most `policy` and its own ceiling.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteSpawn {
    /// The spawning process, as the spawning node writes it.
    pub parent: Pid,
    /// The script's key (already resolved against the spawner's).
    pub key: String,
    /// The new process's `...`.
    pub args: Vec<Value>,
    /// The function to call after the chunk ran, if any.
    pub entry: Option<String>,
    /// The mailbox capacity, if not the other node's default.
    pub mailbox: Option<usize>,
    /// Link the new process to `parent` before it runs.
    pub link: bool,
    /// Run it as a lightweight process.
    pub lightweight: bool,
    /// Stop it when its script changes on the other node.
    pub restart_on_change: bool,
    /// The most the new process may do: the spawner's own policy, narrowed
    /// by the spawn's `allow`.
    pub policy: Policy,
    /// Its wall-clock limit: the spawner's, or the spawn's shorter
    /// `timeout`.
    pub timeout: Option<Duration>,
}

impl RemoteSpawn {
    /// The request `spec`, a child of `parent`, stands for.
    pub(crate) fn new(spec: Spawn, parent: &Entry) -> Self {
        let policy = match spec.policy {
            Some(own) => Policy::clone(&own).within(&parent.policy),
            None => Policy::clone(&parent.policy),
        };
        RemoteSpawn {
            parent: parent.pid,
            key: spec.key,
            args: spec.args,
            entry: spec.entry,
            mailbox: spec.mailbox,
            link: spec.link.is_some(),
            lightweight: spec.lightweight,
            restart_on_change: spec.restart_on_change,
            policy,
            timeout: spec.limits.map_or(parent.limits.timeout, |l| l.timeout),
        }
    }

    /// Roughly the bytes it takes, as [`crate::Message::weight`] counts a
    /// message's: its key, entry and arguments.
    pub fn weight(&self) -> usize {
        let entry = self.entry.as_ref().map_or(0, String::len);
        self.args
            .iter()
            .fold(self.key.len().saturating_add(entry), |n, a| {
                n.saturating_add(a.approx_size())
            })
    }

    /// The spawn this node makes of it: the policy narrowed to `ceiling`
    /// (names of modules this node lacks dropped), this node's `limits`
    /// with the request's timeout when shorter. No link yet: see
    /// [`Scheduler::spawn_for`].
    fn spec(self, ceiling: &Arc<Policy>, modules: &ModuleRegistry, limits: &Limits) -> Spawn {
        let mut spec = Spawn::script(self.key);
        spec.args = self.args;
        spec.entry = self.entry;
        spec.mailbox = self.mailbox.map(|n| n.clamp(1, MAX_MAILBOX));
        spec.lightweight = self.lightweight;
        spec.restart_on_change = self.restart_on_change;
        spec.policy = Some(Arc::new(self.policy.known(modules).within(ceiling)));
        if let Some(asked) = self.timeout {
            let mut limits = *limits;
            limits.timeout = Some(limits.timeout.map_or(asked, |own| own.min(asked)));
            spec.limits = Some(limits);
        }
        spec
    }
}

/// Why a process ended, as a link carries it to another node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExitReason {
    /// It returned: linked processes that do not trap exits ignore it.
    Normal,
    /// It was killed.
    Killed,
    /// It failed with this error.
    Failed(Error),
    /// It was not alive when the link was made.
    NoProc,
    /// Its node went away, or could not be reached.
    NoConnection,
}

/// The reason a link or monitor to a process of a node that went away
/// reports.
pub(crate) const NOCONNECTION: &str = "noconnection";

impl ExitReason {
    pub(crate) fn of(exit: &Exit) -> Self {
        match exit {
            Exit::Normal(_) => ExitReason::Normal,
            Exit::Killed => ExitReason::Killed,
            Exit::Failed(e) => ExitReason::Failed(e.clone()),
        }
    }

    /// What `EXIT` and `DOWN` messages show: `"normal"`, `"killed"`,
    /// `"noproc"`, `"noconnection"`, or the error as a map.
    pub(crate) fn value(&self) -> Value {
        match self {
            ExitReason::Normal => Value::from("normal"),
            ExitReason::Killed => Value::from("killed"),
            ExitReason::Failed(e) => e.to_value(),
            ExitReason::NoProc => Value::from(NOPROC),
            ExitReason::NoConnection => Value::from(NOCONNECTION),
        }
    }

    /// The exit a linked process that does not trap exits takes, from
    /// `from`'s; none for a normal exit.
    pub(crate) fn propagated(&self, from: Pid) -> Option<Exit> {
        match self {
            ExitReason::Normal => None,
            ExitReason::Killed => Some(Exit::Killed),
            ExitReason::Failed(e) => Some(Exit::Failed(e.clone())),
            ExitReason::NoProc => Some(Exit::Failed(Error::not_found(format!(
                "{NOPROC}: the linked {from} was not alive"
            )))),
            ExitReason::NoConnection => Some(Exit::Failed(Error::new(
                ErrorKind::Unavailable,
                format!("{NOCONNECTION}: the node of the linked {from} went away"),
            ))),
        }
    }
}

/// A link, monitor or exit signal between a process of one node and a
/// process of another. Every pid is as the sending node writes it; the
/// cluster rewrites them for the receiving node (see
/// [`RemoteSignal::map_pids`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RemoteSignal {
    /// `from` linked itself to `to`.
    Link {
        /// The process that linked.
        from: Pid,
        /// The process it linked to.
        to: Pid,
    },
    /// `from` removed its link to `to`.
    Unlink {
        /// The process that unlinked.
        from: Pid,
        /// The process it was linked to.
        to: Pid,
    },
    /// `from`, linked to `to`, ended (or was not alive when linked).
    Exit {
        /// The process that ended.
        from: Pid,
        /// The linked process.
        to: Pid,
        /// Why it ended.
        reason: ExitReason,
    },
    /// `process.kill(to)` from `from`.
    Kill {
        /// The killer.
        from: Pid,
        /// The process to kill.
        to: Pid,
    },
    /// `watcher` started monitoring `target` with monitor `r`.
    Monitor {
        /// The monitoring process.
        watcher: Pid,
        /// The monitored one.
        target: Pid,
        /// The monitor's ref, on the watcher's node.
        r: i64,
    },
    /// `watcher` stopped its monitor `r` of `target`.
    Demonitor {
        /// The monitoring process.
        watcher: Pid,
        /// The monitored one.
        target: Pid,
        /// The monitor's ref, on the watcher's node.
        r: i64,
    },
    /// `target`, monitored by `watcher` with `r`, ended (or was not alive).
    Down {
        /// The process that ended.
        target: Pid,
        /// The monitoring process.
        watcher: Pid,
        /// The monitor's ref, on the watcher's node.
        r: i64,
        /// Why it ended.
        reason: ExitReason,
    },
}

impl RemoteSignal {
    /// The process of the other node the signal is for.
    pub fn to(&self) -> Pid {
        match self {
            RemoteSignal::Link { to, .. }
            | RemoteSignal::Unlink { to, .. }
            | RemoteSignal::Exit { to, .. }
            | RemoteSignal::Kill { to, .. } => *to,
            RemoteSignal::Monitor { target, .. } | RemoteSignal::Demonitor { target, .. } => {
                *target
            }
            RemoteSignal::Down { watcher, .. } => *watcher,
        }
    }

    /// The signal with both of its pids rewritten by `f`.
    #[must_use]
    pub fn map_pids(self, f: impl Fn(Pid) -> Pid) -> Self {
        match self {
            RemoteSignal::Link { from, to } => RemoteSignal::Link {
                from: f(from),
                to: f(to),
            },
            RemoteSignal::Unlink { from, to } => RemoteSignal::Unlink {
                from: f(from),
                to: f(to),
            },
            RemoteSignal::Exit { from, to, reason } => RemoteSignal::Exit {
                from: f(from),
                to: f(to),
                reason,
            },
            RemoteSignal::Kill { from, to } => RemoteSignal::Kill {
                from: f(from),
                to: f(to),
            },
            RemoteSignal::Monitor { watcher, target, r } => RemoteSignal::Monitor {
                watcher: f(watcher),
                target: f(target),
                r,
            },
            RemoteSignal::Demonitor { watcher, target, r } => RemoteSignal::Demonitor {
                watcher: f(watcher),
                target: f(target),
                r,
            },
            RemoteSignal::Down {
                target,
                watcher,
                r,
                reason,
            } => RemoteSignal::Down {
                target: f(target),
                watcher: f(watcher),
                r,
                reason,
            },
        }
    }
}

impl Scheduler {
    /// The cluster that reaches `to`, when it is a pid of another node and
    /// this node is in a cluster (outside one, such a pid is simply not a
    /// live process here).
    pub(crate) fn remote_of(&self, to: Pid) -> Option<&Arc<dyn RemoteNodes>> {
        if to.node() == self.table.node() {
            return None;
        }
        self.remote.get()
    }

    /// The cluster, or `UNAVAILABLE` outside one.
    pub(crate) fn cluster(&self) -> Result<&Arc<dyn RemoteNodes>, Error> {
        self.remote
            .get()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "this node is not in a cluster"))
    }

    /// Starts the process node `req.parent.node()` asked for (see
    /// [`Runtime::spawn_for`](crate::Runtime::spawn_for)).
    pub(crate) fn spawn_for(
        &self,
        req: RemoteSpawn,
        ceiling: Option<&Arc<Policy>>,
        reply: impl FnOnce(Result<Pid, Error>),
    ) {
        let (parent, link) = (req.parent, req.link);
        let ceiling = ceiling.unwrap_or(&self.default_policy);
        let spec = req.spec(ceiling, &self.modules, &self.default_limits);
        let entry = match self.prepare(spec, None, None, None) {
            Ok(entry) => entry,
            Err(e) => return reply(Err(e)),
        };
        let child = entry.pid;
        // The link goes back ahead of the answer, in the same queue, so the
        // spawner's node has it before anything the child does can arrive.
        let linked = link && {
            entry.links.lock().sets().links.insert(parent);
            self.remote_of(parent).is_some_and(|r| {
                r.signal(RemoteSignal::Link {
                    from: child,
                    to: parent,
                })
            })
        };
        reply(Ok(child));
        self.start(entry);
        if link && !linked {
            let reason = ExitReason::NoConnection;
            let exit = RemoteSignal::Exit {
                from: parent,
                to: child,
                reason,
            };
            self.table.deliver_signal(exit, self);
        }
    }

    /// Runs `op` on the IO pool for process `pid`'s yield `tag`, which it
    /// answers with what `op` gives (`TIMEOUT` after `timeout`).
    pub(crate) fn remote_pending(
        &self,
        (pid, tag): (Pid, Tag),
        op: RemoteFuture<Value>,
        timeout: Option<Duration>,
    ) -> Dispatched {
        let completer = HandlerCx {
            pid,
            tag,
            sink: &self.sink,
            can_wait: true,
        }
        .completer();
        let task = self.dispatcher.io().spawn(async move {
            let done = match timeout {
                None => op.await,
                Some(after) => tokio::time::timeout(after, op).await.unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Timeout,
                        "timed out waiting for room in the queue to another node",
                    ))
                }),
            };
            completer.complete(done);
        });
        Dispatched::Pending(Some(task.abort_handle()))
    }
}

/// `RATE_LIMITED`: the queue to `to`'s node is full.
pub(crate) fn queue_full(to: Pid) -> Error {
    Error::new(
        ErrorKind::RateLimited,
        format!("the queue of messages to the node of {to} is full"),
    )
}
