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
//! Every write of a running workflow goes through one writer thread: it
//! takes whatever records are queued, writes them in one transaction, makes
//! it durable with one `fsync`, then wakes every process whose record it
//! holds. Many concurrent workflows therefore share each commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
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

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
    /// A new workflow's header; fails with `ALREADY_EXISTS` if the id is taken.
    Create {
        id: Arc<str>,
        header: Vec<u8>,
        reply: Sender<Result<(), Error>>,
    },
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
    /// Nothing: answered once everything queued before it is durable.
    Flush { reply: Sender<Result<(), Error>> },
    /// The workflow ended.
    Finish {
        id: Arc<str>,
        result: Result<Value, Error>,
        reply: Sender<Result<(), Error>>,
    },
}

impl Op {
    fn fail(self, e: &Error) {
        match self {
            Op::Create { reply, .. } | Op::Finish { reply, .. } | Op::Flush { reply } => {
                let _ = reply.send(Err(e.clone()));
            }
            Op::Append { durable, .. } => durable.complete(Err(e.clone())),
            Op::Timer { .. } | Op::Mark { .. } => {}
        }
    }
}

/// The open database and its writer.
pub(crate) struct Db {
    pub path: PathBuf,
    pub db: Arc<Database>,
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
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = Writer {
            path: path.to_owned(),
            db: Arc::clone(&db),
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
            writer: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands `op` to the writer; if it is gone, fails the op at once.
    pub fn send(&self, op: Op) {
        let stopped = match &self.writer {
            Some(w) => w.send(op).err().map(|e| e.0),
            None => Some(op),
        };
        if let Some(op) = stopped {
            op.fail(&Error::internal("the journal writer has stopped"));
        }
    }

    /// Sends `op`, built around a reply channel, and waits for the reply.
    pub fn call(&self, op: impl FnOnce(Sender<Result<(), Error>>) -> Op) -> Result<(), Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(op(tx));
        rx.recv()
            .unwrap_or_else(|_| Err(Error::internal("the journal writer has stopped")))
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
    /// workflow `id`, durably.
    pub fn signal(&self, id: &str, message: &Value) -> Result<(), Error> {
        let header = self.header(id)?;
        if header.status != Status::Running {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("workflow {id:?} has already {}", header.status.as_str()),
            ));
        }
        let bytes = encode(message)?;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut inbox = txn.open_table(INBOX).map_err(|e| self.err(e))?;
            let seq = inbox
                .range((id, 0)..=(id, u64::MAX))
                .map_err(|e| self.err(e))?
                .next_back()
                .transpose()
                .map_err(|e| self.err(e))?
                .map_or(0, |(k, _)| k.value().1 + 1);
            inbox
                .insert((id, seq), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
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
}

impl Writer {
    fn run(&self, rx: &Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            match self.commit(&mut batch) {
                Ok(replies) => {
                    for (op, reply) in batch.into_iter().zip(replies) {
                        match op {
                            Op::Append { durable, .. } => durable.complete(Ok(Value::Nil)),
                            Op::Create { reply: tx, .. }
                            | Op::Finish { reply: tx, .. }
                            | Op::Flush { reply: tx } => {
                                let _ = tx.send(reply);
                            }
                            Op::Timer { .. } | Op::Mark { .. } => {}
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
        }
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
                    Op::Flush { .. } => Ok(()),
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
