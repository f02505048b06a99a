//! The journal store behind [`WorkflowStore`](crate::WorkflowStore): one
//! writer thread doing group commit, in front of one of two backends:
//!
//! - [`file`]: an embedded redb file, which one OS process at a time opens;
//! - `postgres` (feature `postgres`): a PostgreSQL database that several
//!   troupe processes share, each workflow run by the one holding its lease.
//!
//! A backend is a [`Tables`] (the read side, and the few writes that do not
//! go through the writer: signals, cancellations, deletes) and a
//! [`Committer`] (the writer's transactions). `lib.rs` and `journal.rs` see
//! only [`Db`] and the [`Op`]s they send it.
//!
//! Every write of a running workflow — its header, each history entry,
//! timer and marker, its end record — goes through one writer thread: it
//! takes whatever records are queued (a workflow's buffered records come as
//! one [`Op::Batch`]), writes them in one transaction, makes it durable
//! (one `fsync`, or one PostgreSQL commit), then wakes every process
//! waiting for its records. Many concurrent workflows therefore share each
//! commit, and no worker thread ever waits for one: only a process waiting
//! for its own commit is parked until it is durable. Readers call
//! [`Db::flush`] first, which waits only if something is queued, so they
//! see every record sent before them.

mod file;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use troupe_dispatcher::{Completer, Error, ErrorKind, Value};
use troupe_modules::builtin::workflow::ParentClose;
use troupe_runtime::{Latencies, LatencyCounts};

use crate::Summary;
use crate::record::{Chunk, Entry, Header, Status, decode, decode_entries};
#[cfg(feature = "postgres")]
use postgres::Postgres;

/// Records a writer transaction can hold at most.
const MAX_BATCH: usize = 4096;

/// How long the writer waits for the next record of a batch it expects to
/// grow (see `Writer::collect`).
const LINGER_GAP: Duration = Duration::from_micros(200);

/// How long the writer waits for a batch to grow in all: a fraction of an
/// `fsync`.
const LINGER_MAX: Duration = Duration::from_millis(1);

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since the Unix epoch, with their fraction (as `time.now`).
pub(crate) fn now_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `NOT_FOUND`: there is no workflow `id`.
pub(crate) fn unknown(id: &str) -> Error {
    Error::not_found(format!("workflow {id:?} does not exist"))
}

/// `NOT_FOUND`: workflow `id` went while it was written to.
pub(crate) fn deleted_while_running(id: &str) -> Error {
    Error::not_found(format!("workflow {id:?} was deleted while it ran"))
}

/// The header record of `id`.
pub(crate) fn read_header(id: &str, bytes: &[u8]) -> Result<Header, Error> {
    decode(bytes).map_err(|e| {
        Error::internal(format!(
            "workflow {id:?}: its header record is unreadable: {e}"
        ))
    })
}

/// Appends the chunk of `id`'s history that starts at step `first` to
/// `entries`, the steps before it: `INTERNAL` if a step is missing in
/// between or the chunk does not decode.
pub(crate) fn read_chunk(
    id: &str,
    entries: &mut Vec<Entry>,
    first: u64,
    bytes: &[u8],
) -> Result<(), Error> {
    if first != entries.len() as u64 + 1 {
        return Err(Error::internal(format!(
            "workflow {id:?}: its history is missing step {}",
            entries.len() + 1
        )));
    }
    entries.extend(decode_entries(bytes).map_err(|e| {
        Error::internal(format!(
            "workflow {id:?}: journal entries from step {first} are unreadable: {e}"
        ))
    })?);
    Ok(())
}

/// Appends a chunk of run `run` of `id`, from step `first`, to `entries`.
pub(crate) fn read_run_chunk(
    id: &str,
    run: u32,
    entries: &mut Vec<Entry>,
    first: u64,
    bytes: &[u8],
) -> Result<(), Error> {
    entries.extend(decode_entries(bytes).map_err(|e| {
        Error::internal(format!(
            "workflow {id:?}: run {run}, entries from step {first} are unreadable: {e}"
        ))
    })?);
    Ok(())
}

/// The header of run `run` of `id`.
pub(crate) fn read_run(id: &str, run: u32, bytes: &[u8]) -> Result<Header, Error> {
    decode(bytes).map_err(|e| {
        Error::internal(format!(
            "workflow {id:?}: the header of run {run} is unreadable: {e}"
        ))
    })
}

/// What `id` published under `key`; `NOT_FOUND` if nothing.
pub(crate) fn read_published(id: &str, key: &str, bytes: Option<&[u8]>) -> Result<Value, Error> {
    let bytes = bytes.ok_or_else(|| {
        Error::not_found(format!("workflow {id:?} published nothing under {key:?}"))
    })?;
    decode(bytes).map_err(|e| {
        Error::internal(format!(
            "workflow {id:?}: the value published under {key:?} is unreadable: {e}"
        ))
    })
}

/// The inbox signal `seq` of `id`.
pub(crate) fn read_signal(id: &str, seq: u64, bytes: &[u8]) -> Result<Value, Error> {
    decode(bytes).map_err(|e| {
        Error::internal(format!(
            "workflow {id:?}: inbox signal {seq} is unreadable: {e}"
        ))
    })
}

/// The parent-close policy of `child`, a child of `id`.
pub(crate) fn read_close(id: &str, child: &str, close: &str) -> Result<ParentClose, Error> {
    ParentClose::parse(close).ok_or_else(|| {
        Error::internal(format!(
            "workflow {id:?}: child {child:?} has an unknown parent-close policy {close:?}"
        ))
    })
}

/// `header` ended with `result`.
pub(crate) fn finish(header: &mut Header, result: &Result<Value, Error>) {
    header.status = if result.is_ok() {
        Status::Completed
    } else {
        Status::Failed
    };
    header.finished_ms = Some(now_ms());
    header.result = Some(result.clone());
}

/// `workflow.continue_as_new(args)` on the current run's `header`: the
/// header the run is filed under, and that of the next run, which it
/// becomes.
pub(crate) fn continue_as_new(header: &mut Header, args: &[Value]) -> Header {
    let now = now_ms();
    let past = Header {
        status: Status::Continued,
        finished_ms: Some(now),
        ..header.clone()
    };
    header.run = header.run.saturating_add(1);
    header.args = args.to_vec();
    header.started_ms = now;
    header.finished_ms = None;
    header.result = None;
    header.status = Status::Running;
    past
}

/// A workflow's history as stored.
pub(crate) struct Stored {
    /// Its entries, step 1 first.
    pub entries: Vec<Entry>,
    /// `(step, deadline)` of the sleep that was in flight when it stopped.
    pub deadlines: Vec<(u64, u64)>,
}

/// One write for the writer thread.
pub(crate) enum Op {
    /// A new workflow's header ([`Db::create`] checked that its id is free)
    /// and, for a child workflow, its parent and parent-close policy.
    Create {
        id: Arc<str>,
        header: Vec<u8>,
        child_of: Option<(String, ParentClose)>,
    },
    /// History entries of consecutive steps from `first`: commands'
    /// results and `workflow.version` markers.
    Entries {
        id: Arc<str>,
        first: u64,
        chunk: Chunk,
        /// The steps of sleeps that ended with them: their timers go.
        timers: Vec<u64>,
        /// The inbox signals they received, removed with them.
        consumed: Vec<u64>,
    },
    /// A workflow published `value` (encoded) under `key`.
    Publish {
        id: Arc<str>,
        key: String,
        value: Vec<u8>,
    },
    /// A sleep started: its deadline, for resuming after a crash.
    Timer {
        id: Arc<str>,
        step: u64,
        deadline: u64,
    },
    /// The workflow ended.
    Finish {
        id: Arc<str>,
        result: Result<Value, Error>,
    },
    /// `workflow.continue_as_new`: the current run and its history become
    /// a past run, and a new run with `args` starts with an empty history.
    ContinueAsNew { id: Arc<str>, args: Vec<Value> },
    /// Records of one workflow, in order, written in the same commit; then
    /// `durable`, if any, is completed.
    Batch {
        ops: Vec<Op>,
        durable: Option<Completer>,
    },
    /// Completed once every op queued before it is durable.
    Durable(Completer),
    /// Moves the `log` into `history`; answered once that and everything
    /// queued before it is durable.
    Settle { reply: Sender<Result<(), Error>> },
    /// Takes the lease of workflow `id`, so this process alone runs it
    /// (answered `UNAVAILABLE` if another process holds it); a store one
    /// process opens grants it at once.
    Lease {
        id: Arc<str>,
        reply: Sender<Result<(), Error>>,
    },
    /// Gives up the lease of workflow `id` once everything queued before it
    /// is durable: this process stopped running it.
    Unlease { id: Arc<str> },
}

impl Op {
    fn fail(self, e: &Error) {
        match self {
            Op::Durable(durable) => durable.complete(Err(e.clone())),
            Op::Batch { ops, durable } => {
                for op in ops {
                    op.fail(e);
                }
                if let Some(durable) = durable {
                    durable.complete(Err(e.clone()));
                }
            }
            Op::Create { id, .. } | Op::Finish { id, .. } | Op::ContinueAsNew { id, .. } => {
                tracing::error!(workflow = %id, error = %e, "cannot journal the workflow's header or end");
            }
            Op::Settle { reply } => {
                let _ = reply.send(Err(e.clone()));
            }
            Op::Lease { id, reply } => {
                tracing::debug!(workflow = %id, error = %e, "cannot take the workflow's lease");
                let _ = reply.send(Err(e.clone()));
            }
            Op::Unlease { id } => {
                // Its session's end gives it up.
                tracing::warn!(workflow = %id, error = %e, "cannot give up the workflow's lease");
            }
            Op::Timer { .. } | Op::Entries { .. } | Op::Publish { .. } => {}
        }
    }

    /// Appends this op to a writer batch, a [`Batch`](Op::Batch) as its
    /// ops and then its completion.
    fn flatten_into(self, batch: &mut Vec<Op>) {
        match self {
            Op::Batch { ops, durable } => {
                batch.extend(ops);
                batch.extend(durable.map(Op::Durable));
            }
            op => batch.push(op),
        }
    }
}

/// What the writer and its senders share: how far the writer got, for
/// [`Db::flush`], and the ids whose header is queued but not yet written,
/// for [`Db::create`].
#[derive(Default)]
pub(crate) struct Shared {
    /// Ops handed to the writer.
    sent: AtomicU64,
    /// Ops the writer has finished (written or failed).
    done: AtomicU64,
    /// Rows in a store file's `log` table, not yet moved to `history`.
    logged: AtomicU64,
    /// Durable transactions the writer has made.
    commits: AtomicU64,
    /// How long they took, from the transaction's start to its end
    /// (durable).
    commit_time: Latencies,
    /// New workflows whose header is queued.
    creating: Mutex<HashSet<Arc<str>>>,
}

/// The read side of a backend, and the writes that do not go through the
/// writer thread. A read sees what was committed before it (callers flush
/// the writer first).
pub(crate) trait Tables: Send + Sync {
    /// Whether workflow `id` is stored.
    fn exists(&self, id: &str) -> Result<bool, Error>;
    /// The header of `id`.
    fn header(&self, id: &str) -> Result<Header, Error>;
    /// The history of `id`, in step order, and the deadlines of its sleeps
    /// in flight. A corrupt entry is an `INTERNAL` error naming the
    /// workflow and the step.
    fn history(&self, id: &str) -> Result<Stored, Error>;
    /// Every workflow's header (or why it is unreadable) and step count,
    /// by id.
    fn list(&self) -> Result<Vec<Summary>, Error>;
    /// Removes `id` and its history; `NOT_FOUND` if it does not exist.
    fn delete(&self, id: &str) -> Result<(), Error>;
    /// Appends a signal `{topic, payload}` to the inbox of the unfinished
    /// workflow `id`, durably; returns its sequence number there.
    fn signal(&self, id: &str, message: &Value) -> Result<u64, Error>;
    /// What workflow `id` last published under `key`; `NOT_FOUND` if
    /// nothing was.
    fn query(&self, id: &str, key: &str) -> Result<Value, Error>;
    /// Asks the unfinished workflow `id` to stop, durably.
    fn cancel(&self, id: &str) -> Result<(), Error>;
    /// Whether a cancellation of `id` was asked for and not yet dropped.
    fn canceled(&self, id: &str) -> Result<bool, Error>;
    /// The past runs of `id` (ended by `workflow.continue_as_new`), first
    /// run first: each one's header and history.
    fn runs(&self, id: &str) -> Result<Vec<(Header, Vec<Entry>)>, Error>;
    /// The child workflows of `id`, in id order, with their parent-close
    /// policies.
    fn children(&self, id: &str) -> Result<Vec<(String, ParentClose)>, Error>;
    /// The signals waiting in the inbox of `id`, oldest first.
    fn inbox(&self, id: &str) -> Result<Vec<(u64, Value)>, Error>;

    /// The unfinished workflows whose lease no process holds (their
    /// process died), oldest first: none in a store one process opens.
    fn orphans(&self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    /// The inbox signals (`id`, seq, `{topic, payload}`) and the
    /// cancellations waiting for the workflows `ids`, for a process running
    /// them while other processes write to the same store: none in a store
    /// one process opens (others go through its spool).
    #[cfg(feature = "postgres")]
    fn waiting(&self, ids: &[String]) -> Result<Waiting, Error> {
        let _ = ids;
        Ok(Waiting::default())
    }

    /// `CONFLICT` unless workflow `id` is still running (`NOT_FOUND` if
    /// unknown).
    fn unfinished(&self, id: &str) -> Result<(), Error> {
        let header = self.header(id)?;
        if header.status != Status::Running {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("workflow {id:?} has already {}", header.status.as_str()),
            ));
        }
        Ok(())
    }
}

/// What waits in a shared store for workflows running here (see
/// `Tables::waiting`).
#[cfg(feature = "postgres")]
#[derive(Default)]
pub(crate) struct Waiting {
    /// Inbox signals: workflow id, sequence number, `{topic, payload}`.
    pub signals: Vec<(String, u64, Value)>,
    /// Workflows whose cancellation was asked for.
    pub cancels: Vec<String>,
}

/// The writer thread's side of a backend.
pub(crate) trait Committer: Send {
    /// Writes a batch of flattened ops in one durable transaction. Each op
    /// gets its own outcome (a `Create` of a taken id fails alone); an
    /// error of the whole call fails them all.
    fn commit(&mut self, batch: &[Op]) -> Result<Vec<Result<(), Error>>, Error>;
}

/// The open store: a backend's [`Tables`] (what `Db` dereferences to) and
/// the writer thread in front of its [`Committer`].
pub(crate) struct Db {
    tables: Box<dyn Tables>,
    shared: Arc<Shared>,
    writer: Option<Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Db {
    /// Stops the writer after it committed what was queued, so the file is
    /// closed (and can be opened again) when the store is dropped.
    fn drop(&mut self) {
        self.writer = None;
        // The last owner may be the writer itself (a completion it delivered
        // held the runtime): it then ends on its own once its loop sees the
        // channel closed.
        if let Some(t) = self
            .thread
            .take()
            .filter(|t| t.thread().id() != std::thread::current().id())
        {
            let _ = t.join();
        }
    }
}

impl std::ops::Deref for Db {
    type Target = dyn Tables;

    fn deref(&self) -> &Self::Target {
        &*self.tables
    }
}

impl Db {
    /// Opens (or creates) the store file `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let shared = Arc::new(Shared::default());
        let (tables, writer) = file::open(path, &shared)?;
        Self::start(Box::new(tables), Box::new(writer), shared)
    }

    /// Connects to the PostgreSQL store at `url` (see [`Postgres`]).
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str, lease_timeout: Duration) -> Result<Self, Error> {
        let shared = Arc::new(Shared::default());
        let (tables, writer) = Postgres::connect(url, lease_timeout)?;
        Self::start(Box::new(tables), Box::new(writer), shared)
    }

    /// Starts the writer thread in front of `committer`.
    fn start(
        tables: Box<dyn Tables>,
        committer: Box<dyn Committer>,
        shared: Arc<Shared>,
    ) -> Result<Self, Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = Writer {
            committer,
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("troupe-journal".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot start the journal writer: {e}"),
                )
            })?;
        Ok(Self {
            tables,
            shared,
            writer: Some(tx),
            thread: Some(thread),
        })
    }

    /// Takes the lease of workflow `id` (see [`Op::Lease`]), waiting for
    /// the writer's answer.
    pub fn lease(&self, id: &str) -> Result<(), Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Op::Lease {
            id: id.into(),
            reply: tx,
        });
        rx.recv()
            .unwrap_or_else(|_| Err(Error::internal("the journal writer has stopped")))
    }

    /// Hands `op` to the writer without waiting; if it is gone, fails the
    /// op at once.
    pub fn send(&self, op: Op) {
        // Counted before it is queued: an op a flush must wait for (one
        // whose send returned before the flush began) is then always
        // among the first `sent` ops the writer takes from the queue.
        self.shared.sent.fetch_add(1, Ordering::SeqCst);
        let stopped = match &self.writer {
            Some(w) => w.send(op).err().map(|e| e.0),
            None => Some(op),
        };
        if let Some(op) = stopped {
            op.fail(&Error::internal("the journal writer has stopped"));
        }
    }

    /// Waits until every op sent before this call is written and durable,
    /// with every history entry in the `history` table; returns at once
    /// when nothing is queued or logged.
    pub fn flush(&self) -> Result<(), Error> {
        // `done` first: if it has reached `sent` read after it, every op
        // sent before this call is done.
        let done = self.shared.done.load(Ordering::SeqCst);
        if done >= self.shared.sent.load(Ordering::SeqCst)
            && self.shared.logged.load(Ordering::SeqCst) == 0
        {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Op::Settle { reply: tx });
        rx.recv()
            .unwrap_or_else(|_| Err(Error::internal("the journal writer has stopped")))
    }

    /// How many durable transactions the writer has made.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// How long the writer's durable transactions took.
    pub fn commit_latencies(&self) -> LatencyCounts {
        self.shared.commit_time.read()
    }

    /// Queues the header of the new workflow `id`, without waiting for it:
    /// its first history entry commits with it or after it, so no script
    /// acts on a result whose workflow is not durable. `ALREADY_EXISTS` if
    /// the id is stored or queued.
    pub fn create(
        &self,
        id: Arc<str>,
        header: Vec<u8>,
        child_of: Option<(String, ParentClose)>,
    ) -> Result<(), Error> {
        let mut creating = self.shared.creating.lock();
        // The writer forgets a queued id only after its commit, so an id
        // not queued any more is in the table.
        if creating.contains(&id) || self.exists(&id)? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("workflow {id:?} already exists"),
            ));
        }
        creating.insert(Arc::clone(&id));
        self.send(Op::Create {
            id,
            header,
            child_of,
        });
        Ok(())
    }
}

/// The group-commit writer.
struct Writer {
    committer: Box<dyn Committer>,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Op>) {
        // Processes the last commit woke: most of them write again soon.
        let mut woken = 0;
        while let Ok(first) = rx.recv() {
            let (batch, received) = Self::collect(rx, first, woken);
            woken = batch
                .iter()
                .filter(|op| matches!(op, Op::Durable(_)))
                .count();
            let created: Vec<Arc<str>> = batch
                .iter()
                .filter_map(|op| match op {
                    Op::Create { id, .. } => Some(Arc::clone(id)),
                    _ => None,
                })
                .collect();
            let started = Instant::now();
            match self.committer.commit(&batch) {
                Ok(replies) => {
                    self.shared.commits.fetch_add(1, Ordering::Relaxed);
                    self.shared.commit_time.record(started.elapsed());
                    for (op, reply) in batch.into_iter().zip(replies) {
                        match (op, reply) {
                            (Op::Durable(durable), Ok(())) => {
                                durable.complete(Ok(Value::Nil));
                            }
                            (Op::Settle { reply } | Op::Lease { reply, .. }, Ok(())) => {
                                let _ = reply.send(Ok(()));
                            }
                            (op, Err(e)) => op.fail(&e),
                            (_, Ok(())) => {}
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "journal commit failed");
                    for op in batch {
                        op.fail(&e);
                    }
                }
            }
            if !created.is_empty() {
                let mut creating = self.shared.creating.lock();
                for id in &created {
                    creating.remove(id);
                }
            }
            self.shared.done.fetch_add(received, Ordering::SeqCst);
        }
    }

    /// The ops of the next commit, flattened, and how many ops were taken
    /// from the queue: `first`, whatever is queued behind it and, while
    /// fewer completions than the `woken` processes of the last commit have
    /// arrived, what comes in close behind (each within [`LINGER_GAP`], all
    /// within [`LINGER_MAX`]). Without that wait, the first process a
    /// commit woke would get a commit of its own, and the others would wait
    /// for it to end: two `fsync`s a round instead of one.
    fn collect(rx: &Receiver<Op>, first: Op, woken: usize) -> (Vec<Op>, u64) {
        let mut batch = Vec::new();
        first.flatten_into(&mut batch);
        let mut received = 1;
        let until = Instant::now() + LINGER_MAX;
        while batch.len() < MAX_BATCH {
            let next = match rx.try_recv() {
                Ok(op) => op,
                Err(_) if received >= woken => break,
                Err(_) => {
                    let left = until.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left.min(LINGER_GAP)) {
                        Ok(op) => op,
                        Err(_) => break,
                    }
                }
            };
            next.flatten_into(&mut batch);
            received += 1;
        }
        (batch, received as u64)
    }
}
