//! The embedded store (redb): tables, the group-commit writer thread, and
//! the read side (`list`, `history`, `delete`).
//!
//! Tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `workflows` | id | [`Header`] |
//! | `history` | (id, first step) | a [`Chunk`]: the [`Entry`]s of consecutive steps, counted from 1 |
//! | `log` | commit order | (id, first step, [`Chunk`]): chunks not yet moved to `history` |
//! | `timers` | (id, step) | deadline of a sleep in flight, ms since the epoch |
//! | `inbox` | (id, seq) | a signal not yet received: `{topic, payload}` |
//! | `cancels` | id | when a cancellation was asked for (until the workflow ends or continues as new) |
//! | `runs` | (id, run) | the [`Header`] of a past run (ended by `workflow.continue_as_new`) |
//! | `run_history` | (id, run, first step) | a [`Chunk`] of a past run |
//! | `children` | (parent id, child id) | the child's parent-close policy (`workflow.start_child`) |
//!
//! A workflow's history entries are stored one row per commit: the
//! entries it buffered between two commit points are one [`Chunk`], keyed
//! by its first step (a store of journal format 1 has one entry per row,
//! which reads alike). A small chunk (less than [`LOG_BYTES`]) is first
//! appended to `log`, keyed in commit order, so a commit of small chunks
//! of many workflows writes a few pages at the end of one tree instead of
//! a page of `history` per workflow (a copy-on-write B-tree rewrites every
//! page it touches). Every [`SETTLE_ROWS`] rows or [`SETTLE_BYTES`], and
//! whenever a reader asks ([`Db::flush`]), a commit moves the log into
//! `history`, where each workflow's chunks are together. A larger chunk
//! goes to `history` at once: its page is worth rewriting, and copying
//! it twice is not.
//!
//! Every write of a running workflow — its header, each history entry,
//! timer and marker, its end record — goes through one writer thread: it
//! takes whatever records are queued (a workflow's buffered records come as
//! one [`Op::Batch`]), writes them in one transaction, makes it durable with
//! one `fsync`, then wakes every process waiting for its records. Many
//! concurrent workflows therefore share each commit, and no worker thread
//! ever waits for an `fsync`: only a process waiting for its own commit is
//! parked until it is durable. Readers call [`Db::flush`] first, which
//! waits only if something is queued, so they see every record sent before
//! them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use troupe_dispatcher::{Completer, Error, ErrorKind, Value};
use troupe_modules::builtin::workflow::ParentClose;
use troupe_runtime::{Latencies, LatencyCounts};

use crate::Summary;
use crate::record::{Chunk, Entry, Header, Status, decode, decode_entries, encode, entry_count};

pub(crate) const WORKFLOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("workflows");
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
pub(crate) const TIMERS: TableDefinition<(&str, u64), u64> = TableDefinition::new("timers");
pub(crate) const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");
pub(crate) const LOG: TableDefinition<u64, (&str, u64, &[u8])> = TableDefinition::new("log");
pub(crate) const RUNS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("runs");
pub(crate) const RUN_HISTORY: TableDefinition<(&str, u32, u64), &[u8]> =
    TableDefinition::new("run_history");
/// Cancellations asked for: id → when, ms since the epoch.
pub(crate) const CANCELS: TableDefinition<&str, u64> = TableDefinition::new("cancels");
/// Child workflows: `(parent, child)` → the child's parent-close policy.
pub(crate) const CHILDREN: TableDefinition<(&str, &str), &str> = TableDefinition::new("children");
/// What workflows published for queries: `(id, key)` → the value.
pub(crate) const PUBLISHED: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("published");

/// Moves every `log` row into `history`.
fn settle_log(
    log: &mut redb::Table<'_, u64, (&str, u64, &[u8])>,
    history: &mut redb::Table<'_, (&str, u64), &[u8]>,
) -> Result<(), redb::Error> {
    for row in log.iter()? {
        let (_, v) = row?;
        let (id, first, chunk) = v.value();
        history.insert((id, first), chunk)?;
    }
    log.retain(|_, _| false)?;
    Ok(())
}

/// Rows the `log` table collects before a commit moves them to `history`.
const SETTLE_ROWS: u64 = 8192;

/// Bytes the `log` table collects before a commit moves them to `history`.
const SETTLE_BYTES: usize = 1 << 20;

/// The size from which a chunk goes to `history` without the `log`: about
/// a page.
const LOG_BYTES: usize = 2048;

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
struct Shared {
    /// Ops handed to the writer.
    sent: AtomicU64,
    /// Ops the writer has finished (written or failed).
    done: AtomicU64,
    /// Rows in the `log` table, not yet moved to `history`.
    logged: AtomicU64,
    /// Durable transactions the writer has made.
    commits: AtomicU64,
    /// How long they took, from the transaction's start to its `fsync`'s
    /// end.
    commit_time: Latencies,
    /// New workflows whose header is queued.
    creating: Mutex<HashSet<Arc<str>>>,
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
        guarded(path, || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
            }
            // A new store is made valid under a temporary name and linked
            // into place, so a kill while it is created never leaves a file
            // without redb's header behind; an empty file (such a leftover
            // from an older build) is made anew.
            if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
                create_new(path)?;
            }
            let db = Database::create(path).map_err(|e| db_error(path, e))?;
            let txn = db.begin_write().map_err(|e| db_error(path, e))?;
            txn.open_table(WORKFLOWS).map_err(|e| db_error(path, e))?;
            txn.open_table(HISTORY).map_err(|e| db_error(path, e))?;
            txn.open_table(TIMERS).map_err(|e| db_error(path, e))?;
            txn.open_table(INBOX).map_err(|e| db_error(path, e))?;
            txn.open_table(PUBLISHED).map_err(|e| db_error(path, e))?;
            txn.open_table(RUNS).map_err(|e| db_error(path, e))?;
            txn.open_table(RUN_HISTORY).map_err(|e| db_error(path, e))?;
            txn.open_table(CANCELS).map_err(|e| db_error(path, e))?;
            txn.open_table(CHILDREN).map_err(|e| db_error(path, e))?;
            let (next_log, logged) = {
                let log = txn.open_table(LOG).map_err(|e| db_error(path, e))?;
                let last = log.last().map_err(|e| db_error(path, e))?;
                let next = last.map_or(0, |(k, _)| k.value() + 1);
                (next, log.len().map_err(|e| db_error(path, e))?)
            };
            txn.commit().map_err(|e| db_error(path, e))?;
            let db = Arc::new(db);
            let shared = Arc::new(Shared {
                logged: AtomicU64::new(logged),
                ..Shared::default()
            });
            let (tx, rx) = crossbeam_channel::unbounded();
            let writer = Writer {
                path: path.to_owned(),
                db: Arc::clone(&db),
                shared: Arc::clone(&shared),
                next_log,
                log_bytes: 0,
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

    fn exists(&self, id: &str) -> Result<bool, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
            Ok(table.get(id).map_err(|e| self.err(e))?.is_some())
        })
    }

    fn err(&self, e: impl Into<redb::Error>) -> Error {
        db_error(&self.path, e)
    }

    /// The header of `id`.
    pub fn header(&self, id: &str) -> Result<Header, Error> {
        guarded(&self.path, || {
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
        })
    }

    /// The history of `id`, in step order, and the deadlines of its sleeps
    /// in flight. A corrupt entry is an `INTERNAL` error naming the
    /// workflow and the step.
    pub fn history(&self, id: &str) -> Result<Stored, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(HISTORY).map_err(|e| self.err(e))?;
            let mut entries = Vec::new();
            for row in table
                .range((id, 1)..=(id, u64::MAX))
                .map_err(|e| self.err(e))?
            {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let first = k.value().1;
                if first != entries.len() as u64 + 1 {
                    return Err(Error::internal(format!(
                        "workflow {id:?}: its history is missing step {}",
                        entries.len() + 1
                    )));
                }
                entries.extend(decode_entries(v.value()).map_err(|e| {
                    Error::internal(format!(
                        "workflow {id:?}: journal entries from step {first} are unreadable: {e}"
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
        })
    }

    /// Every workflow's header (or why it is unreadable) and step count.
    pub fn list(&self) -> Result<Vec<Summary>, Error> {
        guarded(&self.path, || {
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
                // A row whose length does not read counts as one step (it
                // holds one at least); `check` says what is wrong with it.
                let mut steps = 0;
                for row in history
                    .range((id.as_str(), 1)..=(id.as_str(), u64::MAX))
                    .map_err(|e| self.err(e))?
                {
                    let (_, v) = row.map_err(|e| self.err(e))?;
                    steps += entry_count(v.value()).unwrap_or(1);
                }
                out.push(Summary { id, header, steps });
            }
            Ok(out)
        })
    }

    /// Removes `id` and its history; `NOT_FOUND` if it does not exist.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        guarded(&self.path, || {
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
                let mut published = txn.open_table(PUBLISHED).map_err(|e| self.err(e))?;
                published
                    .retain(|(owner, _), _| owner != id)
                    .map_err(|e| self.err(e))?;
                let mut cancels = txn.open_table(CANCELS).map_err(|e| self.err(e))?;
                cancels.remove(id).map_err(|e| self.err(e))?;
                let mut children = txn.open_table(CHILDREN).map_err(|e| self.err(e))?;
                children
                    .retain(|(parent, child), _| parent != id && child != id)
                    .map_err(|e| self.err(e))?;
                let mut runs = txn.open_table(RUNS).map_err(|e| self.err(e))?;
                runs.retain_in((id, 0)..=(id, u32::MAX), |_, _| false)
                    .map_err(|e| self.err(e))?;
                let mut run_history = txn.open_table(RUN_HISTORY).map_err(|e| self.err(e))?;
                run_history
                    .retain_in((id, 0, 0)..=(id, u32::MAX, u64::MAX), |_, _| false)
                    .map_err(|e| self.err(e))?;
            }
            txn.commit().map_err(|e| self.err(e))
        })
    }

    /// Appends a signal `{topic, payload}` to the inbox of the unfinished
    /// workflow `id`, durably; returns its sequence number there.
    pub fn signal(&self, id: &str, message: &Value) -> Result<u64, Error> {
        guarded(&self.path, || {
            self.unfinished(id)?;
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
        })
    }

    /// What workflow `id` last published under `key`; `NOT_FOUND` if
    /// nothing was.
    pub fn query(&self, id: &str, key: &str) -> Result<Value, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let published = txn.open_table(PUBLISHED).map_err(|e| self.err(e))?;
            let bytes = published
                .get((id, key))
                .map_err(|e| self.err(e))?
                .ok_or_else(|| {
                    Error::not_found(format!("workflow {id:?} published nothing under {key:?}"))
                })?;
            decode(bytes.value()).map_err(|e| {
                Error::internal(format!(
                    "workflow {id:?}: the value published under {key:?} is unreadable: {e}"
                ))
            })
        })
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

    /// Asks the unfinished workflow `id` to stop, durably.
    pub fn cancel(&self, id: &str) -> Result<(), Error> {
        guarded(&self.path, || {
            self.unfinished(id)?;
            let txn = self.db.begin_write().map_err(|e| self.err(e))?;
            {
                let mut cancels = txn.open_table(CANCELS).map_err(|e| self.err(e))?;
                cancels.insert(id, now_ms()).map_err(|e| self.err(e))?;
            }
            txn.commit().map_err(|e| self.err(e))
        })
    }

    /// Whether a cancellation of `id` was asked for and not yet dropped.
    pub fn canceled(&self, id: &str) -> Result<bool, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let cancels = txn.open_table(CANCELS).map_err(|e| self.err(e))?;
            Ok(cancels.get(id).map_err(|e| self.err(e))?.is_some())
        })
    }

    /// The past runs of `id` (ended by `workflow.continue_as_new`), first
    /// run first: each one's header and history.
    pub fn runs(&self, id: &str) -> Result<Vec<(Header, Vec<Entry>)>, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let runs = txn.open_table(RUNS).map_err(|e| self.err(e))?;
            let history = txn.open_table(RUN_HISTORY).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for row in runs
                .range((id, 0)..=(id, u32::MAX))
                .map_err(|e| self.err(e))?
            {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let run = k.value().1;
                let header: Header = decode(v.value()).map_err(|e| {
                    Error::internal(format!(
                        "workflow {id:?}: the header of run {run} is unreadable: {e}"
                    ))
                })?;
                let mut entries = Vec::new();
                for row in history
                    .range((id, run, 0)..=(id, run, u64::MAX))
                    .map_err(|e| self.err(e))?
                {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    entries.extend(decode_entries(v.value()).map_err(|e| {
                        Error::internal(format!(
                            "workflow {id:?}: run {run}, entries from step {} are unreadable: {e}",
                            k.value().2
                        ))
                    })?);
                }
                out.push((header, entries));
            }
            Ok(out)
        })
    }

    /// The child workflows of `id`, in id order, with their parent-close
    /// policies.
    pub fn children(&self, id: &str) -> Result<Vec<(String, ParentClose)>, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(CHILDREN).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for row in table.range((id, "")..).map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let (parent, child) = k.value();
                if parent != id {
                    break;
                }
                let close = ParentClose::parse(v.value()).ok_or_else(|| {
                    Error::internal(format!(
                        "workflow {id:?}: child {child:?} has an unknown parent-close policy {:?}",
                        v.value()
                    ))
                })?;
                out.push((child.to_owned(), close));
            }
            Ok(out)
        })
    }

    /// The signals waiting in the inbox of `id`, oldest first.
    pub fn inbox(&self, id: &str) -> Result<Vec<(u64, Value)>, Error> {
        guarded(&self.path, || {
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
        })
    }
}

/// Creates an empty, valid store at `path` (absent or empty): written
/// under a temporary name, then hard-linked into place, which fails if
/// another process got there first (its store is then used).
fn create_new(path: &Path) -> Result<(), Error> {
    let tmp = path.with_extension(format!("new-{}", std::process::id()));
    let made = Database::create(&tmp)
        .map_err(redb::Error::from)
        .and_then(|db| {
            let txn = db.begin_write()?;
            txn.open_table(WORKFLOWS)?;
            txn.commit()?;
            Ok(())
        })
        .map_err(|e| db_error(&tmp, e));
    let placed = made.and_then(|()| {
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(path);
        }
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot create {}: {e}", path.display()),
            )),
        }
    });
    let _ = std::fs::remove_file(&tmp);
    placed
}

/// Runs `f`, turning a panic inside it (redb panics on some corrupt
/// files) into an `INTERNAL` error naming the store, so a corrupt store
/// fails the one call (and every op of a commit gets its error) instead of
/// the thread, and no waiter is left hanging.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        Err(Error::internal(format!(
            "workflow store {} is corrupt: {why}",
            path.display()
        )))
    })
}

/// Why `workflow.continue_as_new` could not be written.
enum Continued {
    Db(redb::Error),
    Record(Error),
}

impl<E: Into<redb::Error>> From<E> for Continued {
    fn from(e: E) -> Self {
        Continued::Db(e.into())
    }
}

/// The tables a new run touches, inside the writer's transaction.
struct RunTables<'t, 'txn> {
    workflows: &'t mut redb::Table<'txn, &'static str, &'static [u8]>,
    history: &'t mut redb::Table<'txn, (&'static str, u64), &'static [u8]>,
    timers: &'t mut redb::Table<'txn, (&'static str, u64), u64>,
    runs: &'t mut redb::Table<'txn, (&'static str, u32), &'static [u8]>,
    run_history: &'t mut redb::Table<'txn, (&'static str, u32, u64), &'static [u8]>,
}

impl RunTables<'_, '_> {
    /// Files workflow `id`'s current run and history under its run number
    /// and starts the next run with `args` and an empty history.
    fn continue_as_new(&mut self, id: &str, args: &[Value]) -> Result<(), Continued> {
        let bytes = self
            .workflows
            .get(id)?
            .map(|b| b.value().to_vec())
            .ok_or_else(|| {
                Continued::Record(Error::not_found(format!(
                    "workflow {id:?} was deleted while it ran"
                )))
            })?;
        let mut header: Header = decode(&bytes).map_err(|e| {
            Continued::Record(Error::internal(format!(
                "workflow {id:?}: its header record is unreadable: {e}"
            )))
        })?;
        let now = now_ms();
        let run = header.run;
        let past = Header {
            status: Status::Continued,
            finished_ms: Some(now),
            ..header.clone()
        };
        self.runs.insert(
            (id, run),
            encode(&past).map_err(Continued::Record)?.as_slice(),
        )?;
        let chunks: Vec<(u64, Vec<u8>)> = self
            .history
            .range((id, 1)..=(id, u64::MAX))?
            .map(|row| row.map(|(k, v)| (k.value().1, v.value().to_vec())))
            .collect::<Result<_, _>>()?;
        for (first, chunk) in &chunks {
            self.run_history
                .insert((id, run, *first), chunk.as_slice())?;
        }
        self.history
            .retain_in((id, 1)..=(id, u64::MAX), |_, _| false)?;
        self.timers
            .retain_in((id, 1)..=(id, u64::MAX), |_, _| false)?;
        header.run = run.saturating_add(1);
        header.args = args.to_vec();
        header.started_ms = now;
        header.finished_ms = None;
        header.result = None;
        header.status = Status::Running;
        let bytes = encode(&header).map_err(Continued::Record)?;
        self.workflows.insert(id, bytes.as_slice())?;
        Ok(())
    }
}

/// The group-commit writer.
struct Writer {
    path: PathBuf,
    db: Arc<Database>,
    shared: Arc<Shared>,
    /// The key of the next `log` row.
    next_log: u64,
    /// Bytes of chunks appended to `log` since it last settled (as far as
    /// this writer knows).
    log_bytes: usize,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Op>) {
        // Processes the last commit woke: most of them write again soon.
        let mut woken = 0;
        while let Ok(first) = rx.recv() {
            let (mut batch, received) = Self::collect(rx, first, woken);
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
            let path = self.path.clone();
            match guarded(&path, || self.commit(&mut batch)) {
                Ok(replies) => {
                    for (op, reply) in batch.into_iter().zip(replies) {
                        match (op, reply) {
                            (Op::Durable(durable), Ok(())) => {
                                durable.complete(Ok(Value::Nil));
                            }
                            (Op::Settle { reply }, Ok(())) => {
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

    /// Writes a batch in one durable transaction. Each op gets its own
    /// outcome (a `Create` of a taken id fails alone).
    fn commit(&mut self, batch: &mut [Op]) -> Result<Vec<Result<(), Error>>, Error> {
        let err = |e: redb::Error| db_error(&self.path, e);
        let started = Instant::now();
        let txn = self.db.begin_write().map_err(|e| err(e.into()))?;
        let mut replies = Vec::with_capacity(batch.len());
        {
            let mut workflows = txn.open_table(WORKFLOWS).map_err(|e| err(e.into()))?;
            let mut history = txn.open_table(HISTORY).map_err(|e| err(e.into()))?;
            let mut timers = txn.open_table(TIMERS).map_err(|e| err(e.into()))?;
            let mut inbox = txn.open_table(INBOX).map_err(|e| err(e.into()))?;
            let mut log = txn.open_table(LOG).map_err(|e| err(e.into()))?;
            let mut published = txn.open_table(PUBLISHED).map_err(|e| err(e.into()))?;
            let mut runs = txn.open_table(RUNS).map_err(|e| err(e.into()))?;
            let mut run_history = txn.open_table(RUN_HISTORY).map_err(|e| err(e.into()))?;
            let mut cancels = txn.open_table(CANCELS).map_err(|e| err(e.into()))?;
            let mut children = txn.open_table(CHILDREN).map_err(|e| err(e.into()))?;
            let mut logged = self.shared.logged.load(Ordering::SeqCst);
            let mut settle = false;
            for op in batch.iter() {
                let reply = match op {
                    Op::Create {
                        id,
                        header,
                        child_of,
                    } => {
                        if workflows.get(&**id).map_err(|e| err(e.into()))?.is_some() {
                            Err(Error::new(
                                ErrorKind::AlreadyExists,
                                format!("workflow {id:?} already exists"),
                            ))
                        } else {
                            workflows
                                .insert(&**id, header.as_slice())
                                .map_err(|e| err(e.into()))?;
                            if let Some((parent, close)) = child_of {
                                children
                                    .insert((parent.as_str(), &**id), close.as_str())
                                    .map_err(|e| err(e.into()))?;
                            }
                            Ok(())
                        }
                    }
                    Op::Entries {
                        id,
                        first,
                        chunk,
                        timers: ended,
                        consumed,
                    } => {
                        let bytes = chunk.bytes();
                        if bytes.len() < LOG_BYTES {
                            log.insert(self.next_log, (&**id, *first, bytes))
                                .map_err(|e| err(e.into()))?;
                            self.next_log += 1;
                            logged += 1;
                            self.log_bytes += bytes.len();
                        } else {
                            history
                                .insert((&**id, *first), bytes)
                                .map_err(|e| err(e.into()))?;
                        }
                        for step in ended {
                            timers.remove((&**id, *step)).map_err(|e| err(e.into()))?;
                        }
                        for seq in consumed {
                            inbox.remove((&**id, *seq)).map_err(|e| err(e.into()))?;
                        }
                        Ok(())
                    }
                    Op::ContinueAsNew { id, args } => {
                        // The run's whole history is in `history` first.
                        settle_log(&mut log, &mut history).map_err(err)?;
                        logged = 0;
                        let mut tables = RunTables {
                            workflows: &mut workflows,
                            history: &mut history,
                            timers: &mut timers,
                            runs: &mut runs,
                            run_history: &mut run_history,
                        };
                        tables.continue_as_new(id, args).map_err(|e| match e {
                            Continued::Db(e) => err(e),
                            Continued::Record(e) => e,
                        })?;
                        // A cancellation was delivered to the run that ended.
                        cancels.remove(&**id).map_err(|e| err(e.into()))?;
                        Ok(())
                    }
                    Op::Durable(_) => Ok(()),
                    Op::Batch { .. } => Err(Error::internal(
                        "a journal batch reached the writer unflattened",
                    )),
                    Op::Publish { id, key, value } => {
                        published
                            .insert((&**id, key.as_str()), value.as_slice())
                            .map_err(|e| err(e.into()))?;
                        Ok(())
                    }
                    Op::Settle { .. } => {
                        settle = true;
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
                                cancels.remove(&**id).map_err(|e| err(e.into()))?;
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
            if settle || logged >= SETTLE_ROWS || self.log_bytes >= SETTLE_BYTES {
                settle_log(&mut log, &mut history).map_err(err)?;
                logged = 0;
            }
            if logged == 0 {
                self.log_bytes = 0;
            }
            self.shared.logged.store(logged, Ordering::SeqCst);
        }
        txn.commit().map_err(|e| err(e.into()))?;
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        self.shared.commit_time.record(started.elapsed());
        Ok(replies)
    }
}
