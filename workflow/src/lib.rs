//! Durable, deterministic workflows for Troupe, with no server: a process
//! spawned as a workflow journals every command it yields and the result it
//! got in an embedded database ([redb](https://docs.rs/redb)). After a
//! crash, the workflow is resumed by running its script again from the
//! start: journaled results are served without running anything, a script
//! that yields something else than its history fails with `NONDETERMINISM`,
//! and where the history ends the script continues live. `time.now`,
//! `process.receive` and any other command replay exactly; `time.sleep` is
//! a durable timer that, after a restart, waits only for what is left.
//!
//! ```no_run
//! use troupe_runtime::{Runtime, Spawn};
//! use troupe_workflow::WorkflowStore;
//! # fn engine() -> troupe_engines::lua::LuaEngine { troupe_engines::lua::LuaEngine::new() }
//!
//! let rt = Runtime::builder()
//!     .engine(engine())
//!     .journal_store(WorkflowStore::open("data/workflows.redb")?)
//!     .recover(true) // resume every unfinished workflow
//!     .build()?;
//! let h = rt.spawn(Spawn::workflow("order-42", "order.lua").args([42]))?;
//! let result = h.join_blocking()?;
//! # Ok::<(), troupe_dispatcher::Error>(())
//! ```
//!
//! **Durability.** A result only has to be durable before something
//! outside the workflow can observe what the script did with it. Records
//! are buffered and committed (group commit, one `fsync` shared by every
//! workflow committing then) before a command with an effect outside the
//! workflow runs and again before the script sees its result, before a
//! wait (`time.sleep`, `receive`), and before the end shows; local
//! commands (`time.now`, `rand`, `uuid`, …) ride along. So nothing the
//! outside sees is ever based on a result a crash could take back, and an
//! effect the script went past never runs again. A command that was running
//! when the process died has no journaled result and runs again on resume:
//! commands with outside effects (an HTTP call, a host module) run **at
//! least once**. Make them idempotent where that matters.
//!
//! **A shared store** (feature `postgres`): [`WorkflowStore::postgres`]
//! keeps the journals in PostgreSQL instead, where several troupe processes
//! share them. Each workflow is run by the one process holding its lease (a
//! PostgreSQL advisory lock held by the session the process writes
//! through), and a runtime built with `recover(true)` takes over the
//! workflows of a process that died within the lease timeout
//! ([`WorkflowStore::with_lease_timeout`]).
//!
//! This crate knows the runtime only through its journal hook
//! (`troupe_runtime::Journal`); it knows nothing of engines.

mod journal;
pub mod record;
#[cfg(feature = "postgres")]
mod shared;
mod spool;
mod store;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};
#[cfg(feature = "postgres")]
use std::time::Duration;

use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_modules::Policy;
pub use troupe_modules::builtin::workflow::ParentClose;
use troupe_runtime::{
    ChildDone, Journal, JournalStore, LatencyCounts, Reach, StartMode, StoredWorkflow, TakeOver,
    WorkflowStart,
};

use crate::journal::{Canceling, WorkflowJournal};
pub use crate::record::{Entry, FORMAT_VERSION, Header, Status, outcome_value};
pub use crate::spool::SPOOL_POLL;
#[cfg(feature = "postgres")]
pub use crate::store::postgres::DEFAULT_LEASE_TIMEOUT;
use crate::store::{Db, now_ms};
use troupe_modules::builtin::ids;

/// One row of [`WorkflowStore::list`].
#[derive(Debug)]
pub struct Summary {
    /// The workflow id.
    pub id: String,
    /// Its header, or why it cannot be read.
    pub header: Result<Header, Error>,
    /// How many steps its history holds.
    pub steps: u64,
}

/// One workflow as [`WorkflowStore::check`] read it back.
#[derive(Debug)]
pub struct Checked {
    /// The workflow id.
    pub id: String,
    /// How many steps its history holds, or the first record that does
    /// not decode.
    pub steps: Result<u64, Error>,
}

/// A past run of a workflow, ended by `workflow.continue_as_new`: see
/// [`WorkflowStore::runs`].
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Its header (status [`Status::Continued`]; `run` numbers it).
    pub header: Header,
    /// Its history, step 1 first.
    pub history: Vec<Entry>,
}

/// A child workflow, as [`WorkflowStore::children`] lists it.
#[derive(Debug)]
pub struct Child {
    /// The child's workflow id.
    pub id: String,
    /// What happens to it when its parent ends.
    pub parent_close: ParentClose,
    /// Its header, or why it cannot be read.
    pub header: Result<Header, Error>,
}

/// The default of [`WorkflowStore::with_history_limit`]: Temporal's cap is
/// 51,200 events.
pub const DEFAULT_HISTORY_LIMIT: u64 = 50_000;

/// Signals handed to a running workflow's mailbox that it has not
/// journaled receiving yet: `(inbox seq, {topic, payload})`.
pub(crate) type Posted = Arc<Mutex<VecDeque<(u64, Value)>>>;

/// A parent waiting in `workflow.await`: its id, and what its await
/// gets the child's outcome with.
type Waiter = (Arc<str>, ChildDone);

/// A workflow with a live process in this runtime.
struct Live {
    pid: Pid,
    posted: Posted,
    cancel: Arc<Canceling>,
    /// The inbox signals its process has (read when it started, or handed
    /// over since), by sequence number; none until it has read its inbox.
    /// Those other OS processes store in a shared store's inbox later are
    /// handed over by the watcher (see `shared.rs`).
    seen: Mutex<Option<HashSet<u64>>>,
}

/// Where a store keeps its journals.
enum Backend {
    /// An embedded redb file (the store's path).
    File,
    /// A PostgreSQL database: its URL, and how long a dead process may
    /// keep the leases of the workflows it ran (set before the first use).
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        lease_timeout: Mutex<Duration>,
    },
}

pub(crate) struct Inner {
    /// The database file, or a PostgreSQL store's URL without its password.
    path: PathBuf,
    backend: Backend,
    db: OnceLock<Result<Db, Error>>,
    policy: Mutex<Policy>,
    /// The most steps a run's history may hold.
    history_limit: AtomicU64,
    /// Workflows with a live process in this runtime.
    running: Mutex<HashMap<Arc<str>, Live>>,
    /// Parents waiting in `workflow.await`, by child.
    awaiting: Mutex<HashMap<Arc<str>, Waiter>>,
    /// How to reach the processes of the runtime using the store.
    reach: Mutex<Option<Reach>>,
    /// Starts the spool watcher (a file) or the inbox watcher (PostgreSQL)
    /// once.
    spool: Once,
    /// Starts the takeover of dead processes' workflows (PostgreSQL) once.
    #[cfg(feature = "postgres")]
    takeover: Once,
}

/// A workflow store: an embedded database file holding workflow journals
/// ([`open`](Self::open)), or a PostgreSQL database several OS processes
/// share ([`postgres`](Self::postgres), feature `postgres`). Cheap to
/// clone. Hand it to a runtime with `RuntimeBuilder::journal_store`; read
/// it with [`list`](Self::list), [`header`](Self::header) and
/// [`history`](Self::history).
///
/// One OS process at a time may open a store file. A PostgreSQL store is
/// shared: each workflow is run by the one process holding its lease.
#[derive(Clone)]
pub struct WorkflowStore {
    inner: Arc<Inner>,
}

impl WorkflowStore {
    /// A store in the database file `path` (created with its directory if
    /// missing), opened on first use.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_backend(path.into(), Backend::File)
    }

    /// A store in the PostgreSQL database at `url`
    /// (`postgres://user:password@host:port/database`), connected on first
    /// use; its tables (`troupe_workflow_*`) are created if missing.
    /// Several troupe processes may use it at once: each workflow is run by
    /// the process holding its lease (see
    /// [`with_lease_timeout`](Self::with_lease_timeout)), and reads work
    /// from any of them, or any other process, at any time. `INVALID` if
    /// `url` is not a `postgres://` or `postgresql://` URL.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str) -> Result<Self, Error> {
        let shown = store::postgres::redacted(url)?;
        Ok(Self::with_backend(
            PathBuf::from(shown),
            Backend::Postgres {
                url: url.to_owned(),
                lease_timeout: Mutex::new(DEFAULT_LEASE_TIMEOUT),
            },
        ))
    }

    /// Sets how soon, at most, another process resumes the workflows of a
    /// process that died, with a PostgreSQL store (default
    /// [`DEFAULT_LEASE_TIMEOUT`]; at least 100 ms): a runtime built with
    /// `recover(true)` looks for workflows whose lease is free ten times
    /// per timeout, and PostgreSQL drops the session (and so the leases)
    /// of a process whose host stopped answering within about the timeout.
    /// A process that was killed loses its leases at once. Call it before
    /// the store's first use (its connection keeps the timeout it was made
    /// with); a file store ignores it.
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn with_lease_timeout(self, timeout: Duration) -> Self {
        if let Backend::Postgres { lease_timeout, .. } = &self.inner.backend {
            *lease_timeout.lock() = timeout.max(store::postgres::MIN_LEASE_TIMEOUT);
        }
        self
    }

    fn with_backend(path: PathBuf, backend: Backend) -> Self {
        Self {
            inner: Arc::new(Inner {
                path,
                backend,
                db: OnceLock::new(),
                policy: Mutex::new(Self::default_policy()),
                history_limit: AtomicU64::new(DEFAULT_HISTORY_LIMIT),
                running: Mutex::new(HashMap::new()),
                awaiting: Mutex::new(HashMap::new()),
                reach: Mutex::new(None),
                spool: Once::new(),
                #[cfg(feature = "postgres")]
                takeover: Once::new(),
            }),
        }
    }

    /// Opens the store file `path` now, reporting any failure
    /// (`UNAVAILABLE` if another process has it open).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let s = Self::new(path);
        s.db()?;
        Ok(s)
    }

    /// Sets the policy of workflow processes spawned without one (and of
    /// resumed ones). Default: [`WorkflowStore::default_policy`].
    #[must_use]
    pub fn with_policy(self, policy: Policy) -> Self {
        *self.inner.policy.lock() = policy;
        self
    }

    /// Sets the most steps one run of a workflow may journal (default
    /// [`DEFAULT_HISTORY_LIMIT`]): a warning is logged at 80%, and the
    /// command that would go past it fails the workflow with
    /// `LIMIT_EXCEEDED`, naming `workflow.continue_as_new` as the way to
    /// carry on with a fresh history. At least 1.
    #[must_use]
    pub fn with_history_limit(self, steps: u64) -> Self {
        self.inner
            .history_limit
            .store(steps.max(1), Ordering::Relaxed);
        self
    }

    /// The workflow preset plus the `time`, `rand` and `uuid` modules by
    /// name: their results are journaled commands, so they replay exactly,
    /// while the rest of the `nondeterministic` class (and `math.random`,
    /// which is not a command) stays out.
    pub fn default_policy() -> Policy {
        Policy::workflow()
            .allow_module("time")
            .allow_module("rand")
            .allow_module("uuid")
    }

    /// The database file; for a PostgreSQL store, its URL without the
    /// password.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether several OS processes share this store (PostgreSQL), each
    /// running the workflows whose lease it holds.
    pub fn is_shared(&self) -> bool {
        !matches!(self.inner.backend, Backend::File)
    }

    pub(crate) fn db(&self) -> Result<&Db, Error> {
        self.inner
            .db
            .get_or_init(|| match &self.inner.backend {
                Backend::File => Db::open(&self.inner.path),
                #[cfg(feature = "postgres")]
                Backend::Postgres { url, lease_timeout } => {
                    Db::postgres(url, *lease_timeout.lock())
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The open database, once every record queued so far is written:
    /// what the read side starts from, so it sees every step, header and
    /// end record journaled before the call.
    fn flushed(&self) -> Result<&Db, Error> {
        let db = self.db()?;
        db.flush()?;
        Ok(db)
    }

    /// Waits until every record queued so far is durable (returns at once
    /// if none is). Reads do this themselves; a host that exits right after
    /// a workflow ended can call it to be sure its end record is written.
    pub fn flush(&self) -> Result<(), Error> {
        self.flushed().map(|_| ())
    }

    /// How many durable commits (one `fsync`, or one PostgreSQL commit,
    /// each) the store has made
    /// since it was opened: workflows' records are buffered and committed
    /// only where the durability rule needs them (see the crate docs).
    pub fn commits(&self) -> Result<u64, Error> {
        Ok(self.db()?.commits())
    }

    /// How long those commits took (each from its transaction's start to
    /// the end of its `fsync`).
    pub fn commit_latencies(&self) -> Result<LatencyCounts, Error> {
        Ok(self.db()?.commit_latencies())
    }

    /// The header of workflow `id` (`NOT_FOUND` if unknown).
    pub fn header(&self, id: &str) -> Result<Header, Error> {
        self.flushed()?.header(id)
    }

    /// The history of workflow `id`, step 1 first.
    pub fn history(&self, id: &str) -> Result<Vec<Entry>, Error> {
        Ok(self.flushed()?.history(id)?.entries)
    }

    /// Every workflow, ordered by id.
    pub fn list(&self) -> Result<Vec<Summary>, Error> {
        self.flushed()?.list()
    }

    /// Every workflow, ordered by id, with whether all of it reads back:
    /// its header and each step of its history decode (`Ok(steps)`), or
    /// the first record that does not (`INTERNAL` naming it). An error
    /// of the whole call means the store itself is unreadable.
    pub fn check(&self) -> Result<Vec<Checked>, Error> {
        self.check_with(&mut |_, _| {})
    }

    /// [`check`](Self::check), calling `checked(n, of)` after each
    /// workflow (the `n`th of `of`): the progress of a long check.
    pub fn check_with(&self, checked: &mut dyn FnMut(u64, u64)) -> Result<Vec<Checked>, Error> {
        let db = self.flushed()?;
        let list = db.list()?;
        let of = list.len() as u64;
        Ok(list
            .into_iter()
            .zip(1u64..)
            .map(|(s, n)| {
                let steps = s
                    .header
                    .and_then(|_| db.history(&s.id))
                    .map(|h| h.entries.len() as u64);
                checked(n, of);
                Checked { id: s.id, steps }
            })
            .collect())
    }

    /// The past runs of workflow `id`, first run first: those
    /// `workflow.continue_as_new` ended (the current run is
    /// [`header`](Self::header) and [`history`](Self::history)). Empty for
    /// a workflow that never continued; `NOT_FOUND` if unknown.
    pub fn runs(&self, id: &str) -> Result<Vec<Run>, Error> {
        let db = self.flushed()?;
        db.header(id)?;
        Ok(db
            .runs(id)?
            .into_iter()
            .map(|(header, history)| Run { header, history })
            .collect())
    }

    /// What workflow `id` last published under `key` with
    /// `workflow.publish(key, value)` (a query of its state; a running
    /// workflow's latest publish is included). `NOT_FOUND` if the workflow
    /// does not exist or published nothing under `key`.
    pub fn query(&self, id: &str, key: &str) -> Result<Value, Error> {
        let db = self.flushed()?;
        db.header(id)?;
        db.query(id, key)
    }

    /// Deletes workflow `id` and its history. A workflow running in this
    /// process cannot be deleted (`CONFLICT`).
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        if self.inner.running.lock().contains_key(id) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("workflow {id:?} is running"),
            ));
        }
        self.flushed()?.delete(id)
    }

    /// Sends the unfinished workflow `id` the message `{topic, payload}`,
    /// durably (in the store's inbox) before it returns. If a runtime using
    /// this store runs the workflow, its process gets it in its mailbox and
    /// journals it when a `process.receive` takes it, which also removes it
    /// from the inbox. Otherwise the next resume hands it to the first
    /// matching `process.receive`, ahead of the mailbox, as `{from = nil,
    /// topic, payload}`. `NOT_FOUND` if unknown, `CONFLICT` if finished.
    /// Another OS process holding the store file: see [`post`](Self::post).
    pub fn signal(&self, id: &str, topic: &str, payload: Value) -> Result<(), Error> {
        let message = signal_message(topic, payload.clone());
        // Held across the write, so a workflow starting meanwhile either
        // reads this signal from its inbox or is found running here.
        let running = self.inner.running.lock();
        let seq = self.flushed()?.signal(id, &message)?;
        self.hand_over(running, id, seq, topic, payload);
        Ok(())
    }

    /// Hands the inbox signal `seq` of `id`, `{topic, payload}`, to its
    /// process if it runs here and has not got it yet (queued as posted,
    /// then sent to its mailbox); `running` is released before the mailbox.
    fn hand_over(
        &self,
        running: parking_lot::MutexGuard<'_, HashMap<Arc<str>, Live>>,
        id: &str,
        seq: u64,
        topic: &str,
        payload: Value,
    ) {
        let Some(live) = running.get(id) else {
            return;
        };
        // Not one it read from its inbox or got already.
        if !live
            .seen
            .lock()
            .as_mut()
            .is_some_and(|seen| seen.insert(seq))
        {
            return;
        }
        live.posted
            .lock()
            .push_back((seq, signal_message(topic, payload.clone())));
        let pid = live.pid;
        drop(running);
        let reach = self.inner.reach.lock().clone();
        let delivered = match reach {
            Some(reach) => (reach.deliver)(pid, topic, payload),
            None => Err(Error::new(
                ErrorKind::Unavailable,
                "no runtime uses the store",
            )),
        };
        if let Err(e) = delivered {
            // It stays in the inbox: the next resume receives it.
            tracing::warn!(workflow = %id, %pid, error = %e, "signal kept for the next resume");
        }
    }

    /// Leaves the message `{topic, payload}` for workflow `id` in the
    /// spool directory of the store file `path` (`PATH.signals/`, one file
    /// per signal, written to a temporary name and renamed), for when
    /// another OS process holds the store: the runtime using it picks the
    /// file up within [`SPOOL_POLL`], signals the workflow with it (see
    /// [`signal`](Self::signal)) and then removes it. A file it cannot
    /// deliver (an unknown or finished workflow, unreadable bytes) is
    /// renamed to `*.rejected` and logged. Returns the file's path.
    pub fn post(path: &Path, id: &str, topic: &str, payload: Value) -> Result<PathBuf, Error> {
        spool::post(path, id, topic, payload)
    }

    /// Asks the unfinished workflow `id` to stop, durably (in the store)
    /// before it returns: its script gets an error of kind `CANCELED` from
    /// its next command, once, or at once if it waits in `time.sleep` or
    /// `process.receive` in a runtime using this store; a workflow not
    /// running gets it on its next resume. Cleanup code may still run
    /// commands; the workflow ends however its script ends. `NOT_FOUND` if
    /// unknown, `CONFLICT` if finished. Another OS process holding the
    /// store file: see [`post_cancel`](Self::post_cancel).
    pub fn cancel(&self, id: &str) -> Result<(), Error> {
        // Held across the write, as for a signal.
        let running = self.inner.running.lock();
        self.flushed()?.cancel(id)?;
        self.cancel_live(running, id);
        Ok(())
    }

    /// Delivers the cancellation of `id` to its process if it runs here:
    /// its next command gets `CANCELED`, and at once a wait it is in or a
    /// `workflow.await`; `running` is released before.
    fn cancel_live(&self, running: parking_lot::MutexGuard<'_, HashMap<Arc<str>, Live>>, id: &str) {
        let Some(live) = running.get(id) else {
            return;
        };
        live.cancel.requested.store(true, Ordering::SeqCst);
        let (pid, wait) = (live.pid, live.cancel.waiting());
        let delivered = live.cancel.delivered.load(Ordering::SeqCst);
        drop(running);
        if !delivered {
            // A `workflow.await` ends with the cancellation.
            let waiter = self.take_waiter(|(parent, _)| **parent == *id);
            if let Some(done) = waiter {
                done(Err(journal::canceled_error(id)));
            }
        }
        let reach = self.inner.reach.lock().clone();
        if let (Some(wait), Some(reach)) = (wait, reach) {
            (reach.interrupt)(pid, wait, journal::canceled_error(id));
        }
    }

    /// The child workflows of `id` (started with `workflow.start_child`),
    /// in id order: their parent-close policies and headers. `NOT_FOUND`
    /// if `id` is unknown.
    pub fn children(&self, id: &str) -> Result<Vec<Child>, Error> {
        let db = self.flushed()?;
        db.header(id)?;
        Ok(db
            .children(id)?
            .into_iter()
            .map(|(child, parent_close)| Child {
                header: db.header(&child),
                id: child,
                parent_close,
            })
            .collect())
    }

    /// Takes the first `workflow.await` waiter `pick` chooses.
    fn take_waiter(&self, pick: impl Fn(&Waiter) -> bool) -> Option<ChildDone> {
        let mut awaiting = self.inner.awaiting.lock();
        let child = awaiting
            .iter()
            .find(|(_, w)| pick(w))
            .map(|(c, _)| Arc::clone(c))?;
        awaiting.remove(&child).map(|(_, done)| done)
    }

    /// Hands the outcome of the child workflow `id`, which just ended, to
    /// its parent if it waits in `workflow.await`.
    pub(crate) fn child_ended(&self, id: &str, result: &Result<Value, Error>) {
        let waiter = self.inner.awaiting.lock().remove(id);
        if let Some((_, done)) = waiter {
            done(child_outcome(id, result.clone()));
        }
    }

    /// Applies the parent-close policy of each unfinished child of the
    /// workflow `parent`, which ended: terminates, cancels or leaves it.
    pub(crate) fn close_children(&self, parent: &str) {
        let children = match self.flushed().and_then(|db| db.children(parent)) {
            Ok(children) => children,
            Err(e) => {
                tracing::error!(workflow = %parent, error = %e, "cannot close the workflow's children");
                return;
            }
        };
        for (child, close) in children {
            let running = self
                .header(&child)
                .is_ok_and(|h| h.status == Status::Running);
            let closed = match close {
                _ if !running => continue,
                ParentClose::Abandon => continue,
                ParentClose::RequestCancel => self.cancel(&child),
                ParentClose::Terminate => self.terminate(parent, &child),
            };
            if let Err(e) = closed {
                tracing::error!(workflow = %child, %parent, error = %e, "cannot close child workflow");
            }
        }
    }

    /// Ends the child workflow `child` of `parent` at once, with a
    /// `CANCELED` error: its process is stopped if it runs here (its
    /// journal then records the end), its end written otherwise.
    fn terminate(&self, parent: &str, child: &str) -> Result<(), Error> {
        let error = Error::new(
            ErrorKind::Canceled,
            format!("workflow {child:?} was terminated: its parent workflow {parent:?} ended"),
        );
        let pid = self.inner.running.lock().get(child).map(|l| l.pid);
        let reach = self.inner.reach.lock().clone();
        if let (Some(pid), Some(reach)) = (pid, reach)
            && (reach.stop)(pid, error.clone())
        {
            return Ok(());
        }
        let result = Err(error);
        let db = self.db()?;
        // Written under the child's lease: `UNAVAILABLE` if another process
        // runs it.
        db.lease(child)?;
        db.send(store::Op::Finish {
            id: child.into(),
            result: result.clone(),
        });
        db.send(store::Op::Unlease { id: child.into() });
        self.child_ended(child, &result);
        self.close_children(child);
        Ok(())
    }

    /// Leaves a cancellation of workflow `id` in the spool of the store file
    /// `path`, for when another OS process holds the store (see
    /// [`post`](Self::post)); the runtime using it cancels the workflow
    /// within [`SPOOL_POLL`]. Returns the file's path.
    pub fn post_cancel(path: &Path, id: &str) -> Result<PathBuf, Error> {
        spool::post_cancel(path, id)
    }

    /// The signals waiting for workflow `id`: `(seq, {topic, payload})`.
    pub fn inbox(&self, id: &str) -> Result<Vec<(u64, Value)>, Error> {
        self.flushed()?.inbox(id)
    }

    /// Marks `id` as running in this process as `pid`; `ALREADY_EXISTS`
    /// if it is.
    fn claim(&self, id: &str, pid: Pid) -> Result<(Arc<str>, Posted, Arc<Canceling>), Error> {
        let mut running = self.inner.running.lock();
        if running.contains_key(id) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("workflow {id:?} is already running"),
            ));
        }
        let id: Arc<str> = id.into();
        let posted = Posted::default();
        let cancel = Arc::new(Canceling::default());
        let live = Live {
            pid,
            posted: Arc::clone(&posted),
            cancel: Arc::clone(&cancel),
            seen: Mutex::new(None),
        };
        running.insert(Arc::clone(&id), live);
        Ok((id, posted, cancel))
    }

    /// Records the inbox signals the process of `id` read when it started.
    fn seen(&self, running: &HashMap<Arc<str>, Live>, id: &str, seqs: HashSet<u64>) {
        if let Some(live) = running.get(id) {
            *live.seen.lock() = Some(seqs);
        }
    }

    /// Delivers the signals other OS processes left in the spool.
    pub(crate) fn ingest_spool(&self) {
        spool::ingest(self);
    }

    /// Forgets that `id` runs here, and gives up its lease once its
    /// records are written.
    pub(crate) fn release(&self, id: &str) {
        self.inner.running.lock().remove(id);
        if let Ok(db) = self.db() {
            db.send(store::Op::Unlease { id: id.into() });
        }
    }

    fn start(
        &self,
        (id, posted, cancel): (Arc<str>, Posted, Arc<Canceling>),
        w: &WorkflowStart<'_>,
    ) -> Result<WorkflowJournal, Error> {
        let db = self.db()?;
        let mut journal = WorkflowJournal {
            id: Arc::clone(&id),
            store: self.clone(),
            history: Vec::new(),
            cursor: 0,
            timers: Default::default(),
            mode: w.mode,
            next_step: 1,
            live: None,
            versions: Default::default(),
            replay_end: 0,
            side_effects: 0,
            inbox: Default::default(),
            consume: None,
            posted,
            pending: Vec::new(),
            side_effect_escaped: false,
            limit: self.inner.history_limit.load(Ordering::Relaxed),
            warned: false,
            cancel,
            canceled: false,
            has_children: false,
        };
        if w.mode == StartMode::New {
            let header = Header {
                id: id.to_string(),
                key: w.script.key.clone(),
                args: w.args.to_vec(),
                script_hash: w.script.version,
                status: Status::Running,
                started_ms: now_ms(),
                finished_ms: None,
                result: None,
                policy: Some(w.policy.clone()),
                run: 1,
                deadline_ms: w.timeout.map(|t| {
                    let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
                    now_ms().saturating_add(ms)
                }),
                parent: w.parent.map(|(p, _)| p.to_owned()),
            };
            let child_of = w.parent.map(|(p, close)| (p.to_owned(), close));
            // A new workflow has nothing in its inbox yet.
            self.seen(&self.inner.running.lock(), &id, HashSet::new());
            db.create(id, record::encode(&header)?, child_of)?;
            return Ok(journal);
        }
        if w.mode == StartMode::Resume {
            // Only the process holding its lease runs a workflow; leased,
            // it reads what the previous holder committed.
            db.lease(&id)?;
        }
        // Records a previous process of this workflow queued must be in.
        db.flush()?;
        let header = db.header(&id)?;
        if w.mode == StartMode::Resume && header.status != Status::Running {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "workflow {id:?} has already {} (see its history, or replay it)",
                    header.status.as_str()
                ),
            ));
        }
        if header.script_hash != w.script.version {
            tracing::info!(workflow = %id, key = %header.key, "the script changed since the workflow started");
        }
        let stored = db.history(&id)?;
        journal.next_step = stored.entries.len() as u64 + 1;
        journal.versions = journal::recorded_versions(&stored.entries);
        journal.replay_end = stored
            .entries
            .iter()
            .rposition(|e| !journal::is_marker(e))
            .map_or(0, |i| i + 1);
        journal.history = stored.entries;
        journal.timers = stored.deadlines.into_iter().collect();
        if w.mode == StartMode::Resume {
            // Under the lock a signal takes across its write, so each one
            // is either read here or handed over later.
            let running = self.inner.running.lock();
            journal.inbox = db.inbox(&id)?.into();
            self.seen(
                &running,
                &id,
                journal.inbox.iter().map(|(seq, _)| *seq).collect(),
            );
            drop(running);
            let requested = db.canceled(&id)?;
            journal.cancel.requested.store(requested, Ordering::SeqCst);
        }
        // A history that holds its cancellation got it already.
        journal.canceled = journal
            .history
            .iter()
            .any(|Entry::Command { call, result, .. }| journal::is_own_cancel(call, result));
        journal
            .cancel
            .delivered
            .store(journal.canceled, Ordering::SeqCst);
        journal.has_children = journal
            .history
            .iter()
            .any(|Entry::Command { call, .. }| call.id == ids::WORKFLOW_START_CHILD);
        Ok(journal)
    }
}

impl JournalStore for WorkflowStore {
    fn open(&self, w: &WorkflowStart<'_>) -> Result<Box<dyn Journal>, Error> {
        let claimed = self.claim(w.id, w.pid)?;
        let id = Arc::clone(&claimed.0);
        match self.start(claimed, w) {
            Ok(j) => Ok(Box::new(j)),
            Err(e) => {
                self.release(&id);
                Err(e)
            }
        }
    }

    fn load(&self, id: &str) -> Result<StoredWorkflow, Error> {
        let h = self.header(id)?;
        Ok(StoredWorkflow {
            key: h.key,
            args: h.args,
            policy: h.policy,
            deadline_ms: h.deadline_ms,
            parent: h.parent,
        })
    }

    fn unfinished_children(&self, id: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .children(id)?
            .into_iter()
            .filter(|c| matches!(&c.header, Ok(h) if h.status == Status::Running))
            .map(|c| c.id)
            .collect())
    }

    fn await_child(&self, parent: &str, child: &str, done: ChildDone) -> Result<(), Error> {
        let header = self.header(child)?;
        if header.parent.as_deref() != Some(parent) {
            return Err(Error::not_found(format!(
                "workflow.await: workflow {child:?} is not a child of workflow {parent:?}"
            )));
        }
        let cancel = self
            .inner
            .running
            .lock()
            .get(parent)
            .map(|l| Arc::clone(&l.cancel));
        // Registered first, then the child's end and the cancellation are
        // read: whichever comes first takes the waiter, so none is missed
        // and none answered twice.
        let child: Arc<str> = child.into();
        {
            let mut awaiting = self.inner.awaiting.lock();
            // A parent awaits one child at a time: a waiter of an await that
            // timed out goes.
            awaiting.retain(|_, (p, _)| **p != *parent);
            awaiting.insert(Arc::clone(&child), (parent.into(), done));
        }
        let waiter = if cancel.is_some_and(|c| {
            c.requested.load(Ordering::SeqCst) && !c.delivered.load(Ordering::SeqCst)
        }) {
            Some(Err(journal::canceled_error(parent)))
        } else {
            self.header(&child)?
                .result
                .map(|result| child_outcome(&child, result))
        };
        if let Some(outcome) = waiter {
            let done = self.inner.awaiting.lock().remove(&child);
            if let Some((_, done)) = done {
                done(outcome);
            }
        }
        Ok(())
    }

    /// On a shared store, only those no process runs (their lease is
    /// free).
    fn unfinished(&self) -> Result<Vec<String>, Error> {
        if self.is_shared() {
            return self.flushed()?.orphans();
        }
        let mut rows: Vec<(u64, String)> = Vec::new();
        for s in self.list()? {
            match s.header {
                Ok(h) if h.status == Status::Running => rows.push((h.started_ms, s.id)),
                Ok(_) => {}
                Err(e) => tracing::error!(workflow = %s.id, error = %e, "cannot recover workflow"),
            }
        }
        rows.sort();
        Ok(rows.into_iter().map(|(_, id)| id).collect())
    }

    fn policy(&self) -> Policy {
        self.inner.policy.lock().clone()
    }

    fn signal(&self, id: &str, topic: &str, payload: Value) -> Result<(), Error> {
        WorkflowStore::signal(self, id, topic, payload)
    }

    fn cancel(&self, id: &str) -> Result<(), Error> {
        WorkflowStore::cancel(self, id)
    }

    /// Also starts watching a store file's spool directory (see
    /// [`WorkflowStore::post`]).
    /// On a PostgreSQL store, watches instead the inboxes of the workflows
    /// running here for signals and cancellations from other processes.
    fn attach(&self, reach: Reach) {
        *self.inner.reach.lock() = Some(reach);
        let inner = Arc::downgrade(&self.inner);
        self.inner.spool.call_once(|| match self.inner.backend {
            Backend::File => spool::watch(inner),
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => shared::watch_inboxes(inner),
        });
    }

    /// With a PostgreSQL store, resumes the unfinished workflows whose
    /// lease is free (their process died) from now on, ten times per
    /// lease timeout; a store file has no one to take over from.
    fn take_over(&self, resume: TakeOver) {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres { lease_timeout, .. } = &self.inner.backend {
            let every = *lease_timeout.lock() / 10;
            self.inner
                .takeover
                .call_once(|| shared::watch(Arc::downgrade(&self.inner), every, resume));
        }
        #[cfg(not(feature = "postgres"))]
        drop(resume);
    }
}

/// What a parent's `workflow.await` gets from its child's end: the
/// result, or the error with its kind (and retryability) kept, its
/// message naming the child and its details holding the child's id and
/// error.
fn child_outcome(id: &str, result: Result<Value, Error>) -> Result<Value, Error> {
    result.map_err(|e| {
        let details = Value::Map(
            [
                ("child".to_owned(), Value::from(id)),
                ("error".to_owned(), e.to_value()),
            ]
            .into_iter()
            .collect(),
        );
        Error::new(
            e.kind(),
            format!("child workflow {id:?} failed: {}", e.message()),
        )
        .retryable(e.is_retryable())
        .with_details(details)
    })
}

/// The topic and payload of a signal as the inbox keeps it.
#[cfg(feature = "postgres")]
fn signal_parts(message: Value) -> Option<(String, Value)> {
    let Value::Map(mut map) = message else {
        return None;
    };
    let topic = map.remove("topic")?.as_str()?.to_owned();
    Some((topic, map.remove("payload").unwrap_or(Value::Nil)))
}

/// A signal as the inbox keeps it: `{topic, payload}`.
fn signal_message(topic: &str, payload: Value) -> Value {
    Value::Map(
        [
            ("topic".to_owned(), Value::from(topic)),
            ("payload".to_owned(), payload),
        ]
        .into_iter()
        .collect(),
    )
}
