//! The embedded store (redb): tables, the group-commit writer thread, and
//! the read side (`list`, `history`, `delete`).
//!
//! Tables, all keyed by workflow id:
//!
//! | table | key | value |
//! |---|---|---|
//! | `workflows` | id | [`Header`] |
//! | `history` | (id, step) | [`Entry`], steps counted from 1 |
//! | `timers` | (id, step) | deadline of a sleep in flight, ms since the epoch |
//! | `inbox` | (id, seq) | a signal not yet received: `{topic, payload}` |
//!
//! Every write of a running workflow — its header, each history entry,
//! timer and marker, its end record — goes through one writer thread: it
//! takes whatever records are queued, writes them in one transaction, makes
//! it durable with one `fsync`, then wakes every process whose record it
//! holds. Many concurrent workflows therefore share each commit, and no
//! worker thread ever waits for an `fsync`: only a process waiting for its
//! own command's record is parked until that record is durable. Readers
//! call [`Db::flush`] first, which waits only if something is queued, so
//! they see every record sent before them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use troupe_dispatcher::{Completer, Error, ErrorKind, Value};

use crate::Summary;
use crate::record::{Entry, Header, Status, decode, encode};

pub(crate) const WORKFLOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("workflows");
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
pub(crate) const TIMERS: TableDefinition<(&str, u64), u64> = TableDefinition::new("timers");
pub(crate) const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");

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

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A failure of the embedded database, as scripts and hosts see it.
pub(crate) fn db_error(path: &Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    let kind = match &e {
        redb::Error::DatabaseAlreadyOpen => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    let what = match &e {
        redb::Error::DatabaseAlreadyOpen => {
            "is in use by another troupe process (one process at a time may open a store)"
                .to_owned()
        }
        other => format!("failed: {other}"),
    };
    Error::new(kind, format!("workflow store {} {what}", path.display()))
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
    /// A new workflow's header ([`Db::create`] checked that its id is free).
    Create { id: Arc<str>, header: Vec<u8> },
    /// A history entry; the process waits on `durable`.
    Append {
        id: Arc<str>,
        step: u64,
        entry: Vec<u8>,
        clear_timer: bool,
        /// The inbox signal this entry received, removed with it.
        consume: Option<u64>,
        durable: Completer,
    },
    /// A history entry nobody waits for (a `workflow.version` marker):
    /// every later record of the workflow commits with it or after it.
    Mark {
        id: Arc<str>,
        step: u64,
        entry: Vec<u8>,
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
}

impl Op {
    fn fail(self, e: &Error) {
        match self {
            Op::Append { durable, .. } => durable.complete(Err(e.clone())),
            Op::Create { id, .. } | Op::Finish { id, .. } => {
                tracing::error!(workflow = %id, error = %e, "cannot journal the workflow's header or end");
            }
            Op::Timer { .. } | Op::Mark { .. } => {}
        }
    }
}

/// What the writer and its senders share: how far the writer got, for
/// [`Db::flush`], and the ids whose header is queued but not yet written,
/// for [`Db::create`].
#[derive(Default)]
struct Shared {
    /// Ops handed to the writer.
    sent: AtomicU64,
    /// Ops the writer has finished (written or failed), and whether it stopped.
    done: Mutex<Progress>,
    /// Signalled when `done` moves.
    moved: Condvar,
    /// New workflows whose header is queued.
    creating: Mutex<HashSet<Arc<str>>>,
}

#[derive(Default)]
struct Progress {
    ops: u64,
    stopped: bool,
}

/// Marks the writer stopped when its thread ends, even by a panic, so no
/// [`Db::flush`] waits for it forever.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.done.lock().stopped = true;
        self.0.moved.notify_all();
    }
}

/// The open database and its writer.
pub(crate) struct Db {
    pub path: PathBuf,
    pub db: Arc<Database>,
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

impl Db {
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        let db = Database::create(path).map_err(|e| db_error(path, e))?;
        let txn = db.begin_write().map_err(|e| db_error(path, e))?;
        txn.open_table(WORKFLOWS).map_err(|e| db_error(path, e))?;
        txn.open_table(HISTORY).map_err(|e| db_error(path, e))?;
        txn.open_table(TIMERS).map_err(|e| db_error(path, e))?;
        txn.open_table(INBOX).map_err(|e| db_error(path, e))?;
        txn.commit().map_err(|e| db_error(path, e))?;
        let db = Arc::new(db);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = Writer {
            path: path.to_owned(),
            db: Arc::clone(&db),
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
            path: path.to_owned(),
            db,
            shared,
            writer: Some(tx),
            thread: Some(thread),
        })
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

    /// Waits until every op sent before this call is written and durable;
    /// returns at once when nothing is queued.
    pub fn flush(&self) -> Result<(), Error> {
        let target = self.shared.sent.load(Ordering::SeqCst);
        let mut done = self.shared.done.lock();
        while done.ops < target {
            if done.stopped {
                return Err(Error::internal("the journal writer has stopped"));
            }
            self.shared.moved.wait(&mut done);
        }
        Ok(())
    }

    /// Queues the header of the new workflow `id`, without waiting for it:
    /// its first history entry commits with it or after it, so no script
    /// acts on a result whose workflow is not durable. `ALREADY_EXISTS` if
    /// the id is stored or queued.
    pub fn create(&self, id: Arc<str>, header: Vec<u8>) -> Result<(), Error> {
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
        self.send(Op::Create { id, header });
        Ok(())
    }

    fn exists(&self, id: &str) -> Result<bool, Error> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
        Ok(table.get(id).map_err(|e| self.err(e))?.is_some())
    }

    fn err(&self, e: impl Into<redb::Error>) -> Error {
        db_error(&self.path, e)
    }

    /// The header of `id`.
    pub fn header(&self, id: &str) -> Result<Header, Error> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
        let bytes = table
            .get(id)
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::not_found(format!("workflow {id:?} does not exist")))?;
        decode(bytes.value()).map_err(|e| {
            Error::internal(format!(
                "workflow {id:?}: its header record is unreadable: {e}"
            ))
        })
    }

    /// The history of `id`, in step order, and the deadlines of its sleeps
    /// in flight. A corrupt entry is an `INTERNAL` error naming the
    /// workflow and the step.
    pub fn history(&self, id: &str) -> Result<Stored, Error> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(HISTORY).map_err(|e| self.err(e))?;
        let mut entries = Vec::new();
        for row in table
            .range((id, 1)..=(id, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let step = k.value().1;
            if step != entries.len() as u64 + 1 {
                return Err(Error::internal(format!(
                    "workflow {id:?}: its history is missing step {}",
                    entries.len() + 1
                )));
            }
            entries.push(decode(v.value()).map_err(|e| {
                Error::internal(format!(
                    "workflow {id:?}: journal entry of step {step} is unreadable: {e}"
                ))
            })?);
        }
        let timers = txn.open_table(TIMERS).map_err(|e| self.err(e))?;
        let mut deadlines = Vec::new();
        for row in timers
            .range((id, 1)..=(id, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            let (k, v) = row.map_err(|e| self.err(e))?;
            deadlines.push((k.value().1, v.value()));
        }
        Ok(Stored { entries, deadlines })
    }

    /// Every workflow's header (or why it is unreadable) and step count.
    pub fn list(&self) -> Result<Vec<Summary>, Error> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
        let history = txn.open_table(HISTORY).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let id = k.value().to_owned();
            let header = decode::<Header>(v.value()).map_err(|e| {
                Error::internal(format!(
                    "workflow {id:?}: its header record is unreadable: {e}"
                ))
            });
            let steps = history
                .range((id.as_str(), 1)..=(id.as_str(), u64::MAX))
                .map_err(|e| self.err(e))?
                .count() as u64;
            out.push(Summary { id, header, steps });
        }
        Ok(out)
    }

    /// Removes `id` and its history; `NOT_FOUND` if it does not exist.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
            if table.remove(id).map_err(|e| self.err(e))?.is_none() {
                return Err(Error::not_found(format!("workflow {id:?} does not exist")));
            }
            let mut history = txn.open_table(HISTORY).map_err(|e| self.err(e))?;
            history
                .retain_in((id, 1)..=(id, u64::MAX), |_, _| false)
                .map_err(|e| self.err(e))?;
            let mut timers = txn.open_table(TIMERS).map_err(|e| self.err(e))?;
            timers
                .retain_in((id, 1)..=(id, u64::MAX), |_, _| false)
                .map_err(|e| self.err(e))?;
            let mut inbox = txn.open_table(INBOX).map_err(|e| self.err(e))?;
            inbox
                .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Appends a signal `{topic, payload}` to the inbox of the unfinished
    /// workflow `id`, durably; returns its sequence number there.
    pub fn signal(&self, id: &str, message: &Value) -> Result<u64, Error> {
        let header = self.header(id)?;
        if header.status != Status::Running {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("workflow {id:?} has already {}", header.status.as_str()),
            ));
        }
        let bytes = encode(message)?;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let seq = {
            let mut inbox = txn.open_table(INBOX).map_err(|e| self.err(e))?;
            let seq = inbox
                .range((id, 0)..=(id, u64::MAX))
                .map_err(|e| self.err(e))?
                .next_back()
                .transpose()
                .map_err(|e| self.err(e))?
                .map_or(0, |(k, _)| k.value().1 + 1)
                // Never the number of a signal just received: its removal
                // may still be queued behind this write.
                .max(now_ns());
            inbox
                .insert((id, seq), bytes.as_slice())
                .map_err(|e| self.err(e))?;
            seq
        };
        txn.commit().map_err(|e| self.err(e))?;
        Ok(seq)
    }

    /// The signals waiting in the inbox of `id`, oldest first.
    pub fn inbox(&self, id: &str) -> Result<Vec<(u64, Value)>, Error> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let inbox = txn.open_table(INBOX).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in inbox
            .range((id, 0)..=(id, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let seq = k.value().1;
            let message = decode(v.value()).map_err(|e| {
                Error::internal(format!(
                    "workflow {id:?}: inbox signal {seq} is unreadable: {e}"
                ))
            })?;
            out.push((seq, message));
        }
        Ok(out)
    }
}

/// The group-commit writer.
struct Writer {
    path: PathBuf,
    db: Arc<Database>,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(&self, rx: &Receiver<Op>) {
        let _stopped = StopGuard(Arc::clone(&self.shared));
        // Processes the last commit woke: most of them write again soon.
        let mut woken = 0;
        while let Ok(first) = rx.recv() {
            let mut batch = Self::collect(rx, first, woken);
            woken = batch
                .iter()
                .filter(|op| matches!(op, Op::Append { .. }))
                .count();
            let n = batch.len() as u64;
            let created: Vec<Arc<str>> = batch
                .iter()
                .filter_map(|op| match op {
                    Op::Create { id, .. } => Some(Arc::clone(id)),
                    _ => None,
                })
                .collect();
            match self.commit(&mut batch) {
                Ok(replies) => {
                    for (op, reply) in batch.into_iter().zip(replies) {
                        match (op, reply) {
                            (Op::Append { durable, .. }, Ok(())) => {
                                durable.complete(Ok(Value::Nil));
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
            self.shared.done.lock().ops += n;
            self.shared.moved.notify_all();
        }
    }

    /// The ops of the next commit: `first`, whatever is queued behind it
    /// and, while fewer ops than the `woken` processes of the last commit
    /// have arrived, what comes in close behind (each within
    /// [`LINGER_GAP`], all within [`LINGER_MAX`]). Without that wait, the
    /// first process a commit woke would get a commit of its own, and the
    /// others would wait for it to end: two `fsync`s a round instead of one.
    fn collect(rx: &Receiver<Op>, first: Op, woken: usize) -> Vec<Op> {
        let mut batch = vec![first];
        let until = Instant::now() + LINGER_MAX;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) if batch.len() >= woken => break,
                Err(_) => {
                    let left = until.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left.min(LINGER_GAP)) {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
            }
        }
        batch
    }

    /// Writes a batch in one durable transaction. Each op gets its own
    /// outcome (a `Create` of a taken id fails alone).
    fn commit(&self, batch: &mut [Op]) -> Result<Vec<Result<(), Error>>, Error> {
        let err = |e: redb::Error| db_error(&self.path, e);
        let txn = self.db.begin_write().map_err(|e| err(e.into()))?;
        let mut replies = Vec::with_capacity(batch.len());
        {
            let mut workflows = txn.open_table(WORKFLOWS).map_err(|e| err(e.into()))?;
            let mut history = txn.open_table(HISTORY).map_err(|e| err(e.into()))?;
            let mut timers = txn.open_table(TIMERS).map_err(|e| err(e.into()))?;
            let mut inbox = txn.open_table(INBOX).map_err(|e| err(e.into()))?;
            for op in batch.iter() {
                let reply = match op {
                    Op::Create { id, header, .. } => {
                        if workflows.get(&**id).map_err(|e| err(e.into()))?.is_some() {
                            Err(Error::new(
                                ErrorKind::AlreadyExists,
                                format!("workflow {id:?} already exists"),
                            ))
                        } else {
                            workflows
                                .insert(&**id, header.as_slice())
                                .map_err(|e| err(e.into()))?;
                            Ok(())
                        }
                    }
                    Op::Append {
                        id,
                        step,
                        entry,
                        clear_timer,
                        consume,
                        ..
                    } => {
                        history
                            .insert((&**id, *step), entry.as_slice())
                            .map_err(|e| err(e.into()))?;
                        if *clear_timer {
                            timers.remove((&**id, *step)).map_err(|e| err(e.into()))?;
                        }
                        if let Some(seq) = consume {
                            inbox.remove((&**id, *seq)).map_err(|e| err(e.into()))?;
                        }
                        Ok(())
                    }
                    Op::Mark { id, step, entry } => {
                        history
                            .insert((&**id, *step), entry.as_slice())
                            .map_err(|e| err(e.into()))?;
                        Ok(())
                    }
                    Op::Timer { id, step, deadline } => {
                        timers
                            .insert((&**id, *step), *deadline)
                            .map_err(|e| err(e.into()))?;
                        Ok(())
                    }
                    Op::Finish { id, result, .. } => {
                        let header = workflows
                            .get(&**id)
                            .map_err(|e| err(e.into()))?
                            .map(|b| decode::<Header>(b.value()));
                        match header {
                            Some(Ok(mut h)) => {
                                h.status = if result.is_ok() {
                                    Status::Completed
                                } else {
                                    Status::Failed
                                };
                                h.finished_ms = Some(now_ms());
                                h.result = Some(result.clone());
                                let bytes = encode(&h)?;
                                workflows
                                    .insert(&**id, bytes.as_slice())
                                    .map_err(|e| err(e.into()))?;
                                Ok(())
                            }
                            Some(Err(e)) => Err(Error::internal(format!(
                                "workflow {id:?}: its header record is unreadable: {e}"
                            ))),
                            None => Err(Error::not_found(format!(
                                "workflow {id:?} was deleted while it ran"
                            ))),
                        }
                    }
                };
                replies.push(reply);
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(replies)
    }
}
