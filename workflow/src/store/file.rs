//! The embedded store (redb), one file that one OS process at a time
//! opens: its tables, the writer's transaction and the read side.
//!
//! Tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `workflows` | id | [`Header`] |
//! | `history` | (id, first step) | a [`Chunk`](crate::record::Chunk): the [`Entry`]s of consecutive steps, counted from 1 |
//! | `log` | commit order | (id, first step, [`Chunk`](crate::record::Chunk)): chunks not yet moved to `history` |
//! | `timers` | (id, step) | deadline of a sleep in flight, ms since the epoch |
//! | `inbox` | (id, seq) | a signal not yet received: `{topic, payload}` |
//! | `cancels` | id | when a cancellation was asked for (until the workflow ends or continues as new) |
//! | `runs` | (id, run) | the [`Header`] of a past run (ended by `workflow.continue_as_new`) |
//! | `run_history` | (id, run, first step) | a [`Chunk`](crate::record::Chunk) of a past run |
//! | `children` | (parent id, child id) | the child's parent-close policy (`workflow.start_child`) |
//!
//! A workflow's history entries are stored one row per commit: the
//! entries it buffered between two commit points are one [`Chunk`](crate::record::Chunk), keyed
//! by its first step (a store of journal format 1 has one entry per row,
//! which reads alike). A small chunk (less than [`LOG_BYTES`]) is first
//! appended to `log`, keyed in commit order, so a commit of small chunks
//! of many workflows writes a few pages at the end of one tree instead of
//! a page of `history` per workflow (a copy-on-write B-tree rewrites every
//! page it touches). Every [`SETTLE_ROWS`] rows or [`SETTLE_BYTES`], and
//! whenever a reader asks (`Db::flush`), a commit moves the log into
//! `history`, where each workflow's chunks are together. A larger chunk
//! goes to `history` at once: its page is worth rewriting, and copying
//! it twice is not.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::builtin::workflow::ParentClose;

use super::{
    Committer, Op, Shared, Stored, Tables, continue_as_new, deleted_while_running, finish, now_ms,
    now_ns, read_chunk, read_close, read_header, read_published, read_run, read_run_chunk,
    read_signal, unknown,
};
use crate::Summary;
use crate::record::{Entry, Header, encode, entry_count};

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

/// Opens (or creates) the store file `path`: its read side, and the
/// writer's side for the journal thread, which shares `shared`.
pub(super) fn open(path: &Path, shared: &Arc<Shared>) -> Result<(FileTables, FileWriter), Error> {
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
        shared.logged.store(logged, Ordering::SeqCst);
        let db = Arc::new(db);
        let writer = FileWriter {
            path: path.to_owned(),
            db: Arc::clone(&db),
            shared: Arc::clone(shared),
            next_log,
            log_bytes: 0,
        };
        Ok((
            FileTables {
                path: path.to_owned(),
                db,
            },
            writer,
        ))
    })
}

/// The read side of a store file, and the writes that do not go through
/// the journal thread.
pub(super) struct FileTables {
    path: PathBuf,
    db: Arc<Database>,
}

impl FileTables {
    fn err(&self, e: impl Into<redb::Error>) -> Error {
        db_error(&self.path, e)
    }
}

impl Tables for FileTables {
    fn exists(&self, id: &str) -> Result<bool, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
            Ok(table.get(id).map_err(|e| self.err(e))?.is_some())
        })
    }

    /// The header of `id`.
    fn header(&self, id: &str) -> Result<Header, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
            let bytes = table
                .get(id)
                .map_err(|e| self.err(e))?
                .ok_or_else(|| unknown(id))?;
            read_header(id, bytes.value())
        })
    }

    /// The history of `id`, in step order, and the deadlines of its sleeps
    /// in flight. A corrupt entry is an `INTERNAL` error naming the
    /// workflow and the step.
    fn history(&self, id: &str) -> Result<Stored, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(HISTORY).map_err(|e| self.err(e))?;
            let mut entries = Vec::new();
            for row in table
                .range((id, 1)..=(id, u64::MAX))
                .map_err(|e| self.err(e))?
            {
                let (k, v) = row.map_err(|e| self.err(e))?;
                read_chunk(id, &mut entries, k.value().1, v.value())?;
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
    fn list(&self) -> Result<Vec<Summary>, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
            let history = txn.open_table(HISTORY).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for row in table.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let id = k.value().to_owned();
                let header = read_header(&id, v.value());
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
    fn delete(&self, id: &str) -> Result<(), Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_write().map_err(|e| self.err(e))?;
            {
                let mut table = txn.open_table(WORKFLOWS).map_err(|e| self.err(e))?;
                if table.remove(id).map_err(|e| self.err(e))?.is_none() {
                    return Err(unknown(id));
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
    fn signal(&self, id: &str, message: &Value) -> Result<u64, Error> {
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
    fn query(&self, id: &str, key: &str) -> Result<Value, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let published = txn.open_table(PUBLISHED).map_err(|e| self.err(e))?;
            let bytes = published.get((id, key)).map_err(|e| self.err(e))?;
            read_published(id, key, bytes.as_ref().map(|b| b.value()))
        })
    }

    /// Asks the unfinished workflow `id` to stop, durably.
    fn cancel(&self, id: &str) -> Result<(), Error> {
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
    fn canceled(&self, id: &str) -> Result<bool, Error> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let cancels = txn.open_table(CANCELS).map_err(|e| self.err(e))?;
            Ok(cancels.get(id).map_err(|e| self.err(e))?.is_some())
        })
    }

    /// The past runs of `id` (ended by `workflow.continue_as_new`), first
    /// run first: each one's header and history.
    fn runs(&self, id: &str) -> Result<Vec<(Header, Vec<Entry>)>, Error> {
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
                let header = read_run(id, run, v.value())?;
                let mut entries = Vec::new();
                for row in history
                    .range((id, run, 0)..=(id, run, u64::MAX))
                    .map_err(|e| self.err(e))?
                {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    read_run_chunk(id, run, &mut entries, k.value().2, v.value())?;
                }
                out.push((header, entries));
            }
            Ok(out)
        })
    }

    /// The child workflows of `id`, in id order, with their parent-close
    /// policies.
    fn children(&self, id: &str) -> Result<Vec<(String, ParentClose)>, Error> {
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
                let close = read_close(id, child, v.value())?;
                out.push((child.to_owned(), close));
            }
            Ok(out)
        })
    }

    /// The signals waiting in the inbox of `id`, oldest first.
    fn inbox(&self, id: &str) -> Result<Vec<(u64, Value)>, Error> {
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
                let message = read_signal(id, seq, v.value())?;
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
            .ok_or_else(|| Continued::Record(deleted_while_running(id)))?;
        let mut header = read_header(id, &bytes).map_err(Continued::Record)?;
        let run = header.run;
        let past = continue_as_new(&mut header, args);
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
        let bytes = encode(&header).map_err(Continued::Record)?;
        self.workflows.insert(id, bytes.as_slice())?;
        Ok(())
    }
}

/// The writer's side of a store file: the journal thread's transactions.
pub(super) struct FileWriter {
    path: PathBuf,
    db: Arc<Database>,
    shared: Arc<Shared>,
    /// The key of the next `log` row.
    next_log: u64,
    /// Bytes of chunks appended to `log` since it last settled (as far as
    /// this writer knows).
    log_bytes: usize,
}

impl Committer for FileWriter {
    fn commit(&mut self, batch: &[Op]) -> Result<Vec<Result<(), Error>>, Error> {
        let path = self.path.clone();
        guarded(&path, || self.write(batch))
    }
}

impl FileWriter {
    /// Writes a batch in one durable transaction. Each op gets its own
    /// outcome (a `Create` of a taken id fails alone).
    fn write(&mut self, batch: &[Op]) -> Result<Vec<Result<(), Error>>, Error> {
        let err = |e: redb::Error| db_error(&self.path, e);
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
                    // One process at a time opens the file: it holds
                    // every lease.
                    Op::Durable(_) | Op::Lease { .. } | Op::Unlease { .. } => Ok(()),
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
                            .map(|b| read_header(id, b.value()));
                        match header {
                            Some(Ok(mut h)) => {
                                finish(&mut h, result);
                                cancels.remove(&**id).map_err(|e| err(e.into()))?;
                                let bytes = encode(&h)?;
                                workflows
                                    .insert(&**id, bytes.as_slice())
                                    .map_err(|e| err(e.into()))?;
                                Ok(())
                            }
                            Some(Err(e)) => Err(e),
                            None => Err(deleted_while_running(id)),
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
        Ok(replies)
    }
}
