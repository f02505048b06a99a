//! Snapshots of the live processes and supervisors, for observers (the
//! dashboard, `troupe ps`, a host's own monitoring):
//! [`Runtime::processes`](crate::Runtime::processes),
//! [`Runtime::process`](crate::Runtime::process) and
//! [`Runtime::supervisors`](crate::Runtime::supervisors).
//!
//! A snapshot reads what each process keeps anyway (its state word, its
//! mailbox, its links, the command it waits on) under the locks the
//! runtime takes for those, one process at a time: nothing is counted on
//! the hot paths for it, and no process is stopped while it is read. A
//! process is therefore seen as it was at some instant during the call,
//! not all of them at the same instant. A process that is running while it
//! is read shows its memory and instruction count as of its last step
//! (`None` if it has not finished one).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use troupe_dispatcher::{CommandId, Pid};
use troupe_modules::builtin::ids;

use crate::entry::Entry;
use crate::scheduler::Scheduler;
use crate::supervisor_spec::ChildInfo;
use crate::timers::TimerKey;

/// How many queued topics [`Runtime::process`](crate::Runtime::process)
/// lists.
pub const TOPICS_SHOWN: usize = 16;

/// How a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessKind {
    /// A script in an interpreter state of its own.
    Isolated,
    /// A script in a coroutine of a state shared with other lightweight
    /// processes ([`Spawn::lightweight`](crate::Spawn::lightweight)).
    Lightweight,
    /// A process implemented in Rust (a supervisor).
    Native,
}

impl ProcessKind {
    /// Every kind.
    pub const ALL: [ProcessKind; 3] = [Self::Isolated, Self::Lightweight, Self::Native];

    /// Its name: `isolated`, `lightweight` or `native`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Isolated => "isolated",
            Self::Lightweight => "lightweight",
            Self::Native => "native",
        }
    }
}

/// Where a process is, as a snapshot sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessStatus {
    /// In a run queue, waiting for a worker.
    Runnable,
    /// Being stepped by a worker.
    Running,
    /// Parked until something comes for it (see [`ProcessInfo::waiting`]).
    Waiting,
    /// It ended and is being taken out of the table.
    Exiting,
}

impl ProcessStatus {
    /// Every status.
    pub const ALL: [ProcessStatus; 4] =
        [Self::Runnable, Self::Running, Self::Waiting, Self::Exiting];

    /// Its name: `runnable`, `running`, `waiting` or `exiting`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Runnable => "runnable",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Exiting => "exiting",
        }
    }
}

/// What a waiting process waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitingOn {
    /// A message, in `process.receive` (of `topic`, or of any topic).
    Receive {
        /// The topic asked for; `None` for any.
        topic: Option<String>,
    },
    /// The end of a `time.sleep`.
    Sleep {
        /// When it is due.
        until: SystemTime,
    },
    /// The result of a command run by the dispatcher or the IO pool (an
    /// HTTP request, a kv read, a blocked send…).
    Command {
        /// The command's name, e.g. `http.get`.
        name: String,
    },
}

/// One live process, as [`Runtime::processes`](crate::Runtime::processes)
/// saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: Pid,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// The key of its script in the runtime's source (a supervisor's
    /// label for a native process).
    pub script: String,
    /// The engine that runs it (`native` for a process in Rust).
    pub engine: Arc<str>,
    /// How it runs.
    pub kind: ProcessKind,
    /// The id of the workflow it runs, if it is journaled.
    pub workflow: Option<String>,
    /// Where it is.
    pub status: ProcessStatus,
    /// What it waits for, when [`ProcessStatus::Waiting`].
    pub waiting: Option<WaitingOn>,
    /// Messages queued in its mailbox.
    pub mailbox_len: usize,
    /// How many messages its mailbox holds at most.
    pub mailbox_capacity: usize,
    /// The bytes the queued messages count for.
    pub mailbox_bytes: usize,
    /// Sends suspended until its mailbox has room.
    pub blocked_senders: usize,
    /// The topics of the oldest queued messages, at most [`TOPICS_SHOWN`]:
    /// filled by [`Runtime::process`](crate::Runtime::process) only.
    pub topics: Vec<String>,
    /// Instructions its script ran, where the engine counts them (Lua
    /// does when the process has an instruction limit).
    pub instructions: Option<u64>,
    /// The bytes of memory it holds by itself (an isolated interpreter
    /// state); `None` for memory it shares.
    pub memory: Option<usize>,
    /// The process that spawned it; `None` if the host did.
    pub parent: Option<Pid>,
    /// The processes linked to it.
    pub links: Vec<Pid>,
    /// The processes it monitors.
    pub monitors: Vec<Pid>,
    /// The processes monitoring it.
    pub monitored_by: Vec<Pid>,
    /// Whether exit signals become `EXIT` messages for it.
    pub trap_exits: bool,
    /// When it was spawned.
    pub started_at: SystemTime,
}

/// A live supervisor and its children, as
/// [`Runtime::supervisors`](crate::Runtime::supervisors) saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorTree {
    /// The supervisor's pid.
    pub pid: Pid,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// Its children, in the order of its spec.
    pub children: Vec<SupervisedChild>,
}

/// One child of a supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisedChild {
    /// The id from its spec.
    pub id: String,
    /// Its pid while it runs.
    pub pid: Option<Pid>,
    /// The supervisors under it: itself, if the child is a supervisor,
    /// and those its script started.
    pub supervisors: Vec<SupervisorTree>,
}

/// What a process came from, kept in its entry for snapshots (packed:
/// every live process carries one).
#[derive(Debug)]
pub(crate) struct Origin {
    /// The id of the process that spawned it (0: the host; pids start at
    /// 1), on node `parent_node`.
    parent_id: u64,
    parent_node: u32,
    /// Its engine, an index into the runtime's engines (`u16::MAX`:
    /// native).
    engine: u16,
    /// How it runs.
    pub kind: ProcessKind,
    /// When it was spawned, in µs since the scheduler started.
    started_us: u64,
    /// The id of the workflow it runs, if journaled.
    pub workflow: Option<Box<str>>,
}

/// [`Origin::engine`] of a native process.
const NO_ENGINE: u16 = u16::MAX;

impl Origin {
    /// The origin of a process spawned now by `parent`.
    pub fn new(
        sched: &Scheduler,
        parent: Option<Pid>,
        engine: Option<usize>,
        kind: ProcessKind,
    ) -> Self {
        Self {
            parent_id: parent.map_or(0, Pid::id),
            parent_node: parent.map_or(0, Pid::node),
            engine: engine
                .and_then(|e| u16::try_from(e).ok())
                .unwrap_or(NO_ENGINE),
            kind,
            started_us: u64::try_from(sched.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            workflow: None,
        }
    }

    /// The process that spawned it; `None` if the host did.
    pub fn parent(&self) -> Option<Pid> {
        (self.parent_id != 0).then(|| Pid::new(self.parent_node, self.parent_id))
    }

    /// Its engine's index; `None` for a native process.
    fn engine(&self) -> Option<usize> {
        (self.engine != NO_ENGINE).then_some(usize::from(self.engine))
    }
}

/// The supervisors of a snapshot, to be made into trees.
struct Forest<'a> {
    sched: &'a Scheduler,
    /// Each supervisor's children.
    children: HashMap<Pid, Vec<ChildInfo>>,
    /// The supervisors under each child pid.
    under: HashMap<Pid, Vec<Pid>>,
}

impl Forest<'_> {
    /// Supervisor `pid` and what hangs from it; `None` if it was already
    /// shown (a child list changing during the snapshot cannot loop it).
    fn tree(&self, pid: Pid, seen: &mut HashSet<Pid>) -> Option<SupervisorTree> {
        if !seen.insert(pid) {
            return None;
        }
        let name = self
            .sched
            .table
            .lookup(pid)
            .and_then(|e| e.links.lock().name().map(str::to_owned));
        let children = self
            .children
            .get(&pid)
            .into_iter()
            .flatten()
            .map(|c| {
                let nested = c.pid.and_then(|p| self.under.get(&p));
                SupervisedChild {
                    id: c.id.clone(),
                    pid: c.pid,
                    supervisors: nested
                        .into_iter()
                        .flatten()
                        .filter_map(|s| self.tree(*s, seen))
                        .collect(),
                }
            })
            .collect();
        Some(SupervisorTree {
            pid,
            name,
            children,
        })
    }
}

/// Native processes' engine name.
const NATIVE: &str = "native";

impl Scheduler {
    /// A snapshot of every live process, by pid.
    pub(crate) fn processes(&self) -> Vec<ProcessInfo> {
        let clock = Clock::now(self.started);
        self.table
            .entries_by_pid()
            .iter()
            .map(|e| self.snapshot(e, &clock, 0))
            .collect()
    }

    /// How many live processes there are of each status and kind, read
    /// from their state words alone: no lock, no snapshot.
    pub(crate) fn census(&self) -> Vec<(ProcessStatus, ProcessKind, usize)> {
        let mut counts = [[0usize; ProcessKind::ALL.len()]; ProcessStatus::ALL.len()];
        self.table.each(|e| {
            counts[e.state.status() as usize][e.origin.kind as usize] += 1;
        });
        ProcessStatus::ALL
            .iter()
            .flat_map(|s| ProcessKind::ALL.iter().map(move |k| (*s, *k)))
            .map(|(s, k)| (s, k, counts[s as usize][k as usize]))
            .collect()
    }

    /// A snapshot of process `pid`, with its queued topics; `None` if it
    /// is not alive.
    pub(crate) fn process(&self, pid: Pid) -> Option<ProcessInfo> {
        let entry = self.table.lookup(pid)?;
        Some(self.snapshot(&entry, &Clock::now(self.started), TOPICS_SHOWN))
    }

    /// The supervision forest: each live supervisor with its children,
    /// and under each child the supervisors it is or started.
    pub(crate) fn supervisors(&self) -> Vec<SupervisorTree> {
        let sups: Vec<(Pid, Vec<ChildInfo>)> = self
            .table
            .supervisors
            .iter()
            .map(|s| (*s.key(), s.value().lock().clone()))
            .collect();
        let supervised: HashSet<Pid> = sups
            .iter()
            .flat_map(|(_, children)| children.iter().filter_map(|c| c.pid))
            .collect();
        // Each supervisor under the pid it hangs from: itself when it is a
        // child, else the process that started it.
        let mut under: HashMap<Pid, Vec<Pid>> = HashMap::new();
        let mut roots = Vec::new();
        for (pid, _) in &sups {
            let parent = self.table.lookup(*pid).and_then(|e| e.origin.parent());
            match parent {
                _ if supervised.contains(pid) => under.entry(*pid).or_default().push(*pid),
                Some(p) if supervised.contains(&p) => under.entry(p).or_default().push(*pid),
                _ => roots.push(*pid),
            }
        }
        let trees = Forest {
            sched: self,
            children: sups.into_iter().collect(),
            under,
        };
        roots.sort_unstable();
        let mut seen = HashSet::new();
        roots
            .into_iter()
            .filter_map(|pid| trees.tree(pid, &mut seen))
            .collect()
    }

    fn snapshot(&self, e: &Entry, clock: &Clock, topics: usize) -> ProcessInfo {
        let status = e.state.status();
        let (mailbox_len, mailbox_capacity, mailbox_bytes, blocked_senders, topics, receive) = {
            let m = e.mailbox.lock();
            (
                m.len(),
                m.capacity,
                m.bytes(),
                m.blocked_sends(),
                m.topics(topics),
                m.waiter.as_ref().map(|w| w.topic.clone()),
            )
        };
        let (name, trap_exits, [links, monitors, monitored_by]) = {
            let l = e.links.lock();
            (l.name().map(str::to_owned), l.trap_exits, l.peers())
        };
        // A running process's slot is held by its worker: read what the
        // last step left only when it is free.
        let (command, memory, instructions) = match e.slot.try_lock() {
            Some(slot) => (
                slot.waiting,
                slot.process.as_ref().and_then(|p| p.memory()),
                slot.process.as_ref().and_then(|p| p.instructions()),
            ),
            None => (None, None, None),
        };
        let waiting = match (status, receive, command) {
            (ProcessStatus::Waiting, Some(topic), _) => Some(WaitingOn::Receive { topic }),
            (ProcessStatus::Waiting, None, Some(id)) => Some(self.waits_on(e, id, clock)),
            _ => None,
        };
        let o = &e.origin;
        ProcessInfo {
            pid: e.pid,
            name,
            script: e.key.to_string(),
            engine: o
                .engine()
                .and_then(|i| self.programs.engine_name(i))
                .unwrap_or_else(|| Arc::from(NATIVE)),
            kind: o.kind,
            workflow: o.workflow.as_deref().map(str::to_owned),
            status,
            waiting,
            mailbox_len,
            mailbox_capacity,
            mailbox_bytes,
            blocked_senders,
            topics,
            instructions,
            memory,
            parent: o.parent(),
            links,
            monitors,
            monitored_by,
            trap_exits,
            started_at: clock.wall(Duration::from_micros(o.started_us)),
        }
    }

    /// What a process parked on the yield of command `id` waits for.
    fn waits_on(&self, e: &Entry, id: CommandId, clock: &Clock) -> WaitingOn {
        let timer = TimerKey::from_bits(e.sleep_timer.load(Ordering::Acquire));
        if id == ids::TIME_SLEEP
            && let Some(due) = timer.and_then(|k| self.timers.due(k))
        {
            return WaitingOn::Sleep {
                until: clock.wall(due.saturating_duration_since(clock.started)),
            };
        }
        WaitingOn::Command {
            name: self
                .command_name(id)
                .unwrap_or("unknown command")
                .to_owned(),
        }
    }
}

/// The scheduler's start, on the monotonic clock and the wall clock, to
/// turn the one into the other.
struct Clock {
    started: Instant,
    wall_started: SystemTime,
}

impl Clock {
    fn now(started: Instant) -> Self {
        let (now, wall) = (Instant::now(), SystemTime::now());
        Self {
            started,
            wall_started: wall
                .checked_sub(now.saturating_duration_since(started))
                .unwrap_or(wall),
        }
    }

    /// The wall-clock time `since` after the scheduler started.
    fn wall(&self, since: Duration) -> SystemTime {
        self.wall_started
            .checked_add(since)
            .unwrap_or(self.wall_started)
    }
}
