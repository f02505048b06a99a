//! The PostgreSQL store (feature `postgres`): the same records as a store
//! file, in tables several troupe processes share, each workflow run by the
//! one process holding its **lease**.
//!
//! | table | key | value |
//! |---|---|---|
//! | `troupe_workflow_workflows` | id | `lease` (a number of its own), `running`, the [`Header`] |
//! | `troupe_workflow_history` | (id, first step) | a [`Chunk`](crate::record::Chunk) and its step count |
//! | `troupe_workflow_timers` | (id, step) | deadline of a sleep in flight |
//! | `troupe_workflow_inbox` | (id, seq) | a signal not yet received |
//! | `troupe_workflow_cancels` | id | when a cancellation was asked for |
//! | `troupe_workflow_runs` | (id, run) | the [`Header`] of a past run |
//! | `troupe_workflow_run_history` | (id, run, first step) | a chunk of a past run |
//! | `troupe_workflow_children` | (parent, child) | the parent-close policy |
//! | `troupe_workflow_published` | (id, key) | what the workflow published |
//!
//! **Leases.** A lease is a session-level PostgreSQL advisory lock on the
//! workflow's `lease` number, held by the writer's connection — the one
//! connection every record of this process goes through. Creating a
//! workflow takes it in the transaction that inserts the workflow; a
//! resume takes it (`pg_try_advisory_lock`) before reading the history, or
//! fails with `UNAVAILABLE`; it is given up after the workflow's last
//! records commit. The writer writes records only for workflows whose
//! lease it holds, so a process that lost its session (and with it its
//! leases, which another process may have taken since) cannot write into a
//! history it no longer owns: its writes fail, and so its workflows here.
//! When a process dies, the server ends its session and frees its leases:
//! at once if the process was killed (its socket closes), within about the
//! lease timeout if its host or the network went away (the session's TCP
//! keepalives and `tcp_user_timeout` are set from it). Other processes
//! then find the workflow unfinished with no lease held (`pg_locks`) and
//! resume it.
//!
//! sqlx is async: the store runs its own small tokio runtime. The writer
//! thread blocks on it; reads are spawned on it and waited for through a
//! channel, so they work from any thread, a tokio worker included.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::builtin::workflow::ParentClose;

use super::{
    Committer, Op, Stored, Tables, Waiting, continue_as_new, deleted_while_running, finish, now_ms,
    now_ns, read_chunk, read_close, read_header, read_published, read_run, read_run_chunk,
    read_signal, unknown,
};
use crate::Summary;
use crate::record::{Entry, Header, encode, entry_count};

/// How soon, by default, another process takes over the workflows of one
/// that died (see `WorkflowStore::with_lease_timeout`).
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest lease timeout.
pub(crate) const MIN_LEASE_TIMEOUT: Duration = Duration::from_millis(100);

/// Read connections kept.
const READERS: u32 = 4;

/// The tables, created if missing, under a lock (of a key pair no lease
/// uses) so that processes starting together do not race.
const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7411, 0);
CREATE TABLE IF NOT EXISTS troupe_workflow_workflows (
    id text PRIMARY KEY,
    lease bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    running boolean NOT NULL,
    header bytea NOT NULL);
CREATE TABLE IF NOT EXISTS troupe_workflow_history (
    id text, first bigint, steps bigint NOT NULL, chunk bytea NOT NULL,
    PRIMARY KEY (id, first));
CREATE TABLE IF NOT EXISTS troupe_workflow_timers (
    id text, step bigint, deadline bigint NOT NULL, PRIMARY KEY (id, step));
CREATE TABLE IF NOT EXISTS troupe_workflow_inbox (
    id text, seq bigint, message bytea NOT NULL, PRIMARY KEY (id, seq));
CREATE TABLE IF NOT EXISTS troupe_workflow_cancels (id text PRIMARY KEY, at bigint NOT NULL);
CREATE TABLE IF NOT EXISTS troupe_workflow_runs (
    id text, run integer, header bytea NOT NULL, PRIMARY KEY (id, run));
CREATE TABLE IF NOT EXISTS troupe_workflow_run_history (
    id text, run integer, first bigint, chunk bytea NOT NULL, PRIMARY KEY (id, run, first));
CREATE TABLE IF NOT EXISTS troupe_workflow_children (
    parent text, child text, close text NOT NULL, PRIMARY KEY (parent, child));
CREATE TABLE IF NOT EXISTS troupe_workflow_published (
    id text, key text, value bytea NOT NULL, PRIMARY KEY (id, key));
COMMIT;
";

/// `url` without its password, for messages and `WorkflowStore::path`;
/// `INVALID` if it is no PostgreSQL URL.
pub(crate) fn redacted(url: &str) -> Result<String, Error> {
    let options = options(url)?;
    let mut shown = format!(
        "postgres://{}@{}:{}",
        options.get_username(),
        options.get_host(),
        options.get_port()
    );
    if let Some(db) = options.get_database() {
        shown.push('/');
        shown.push_str(db);
    }
    Ok(shown)
}

fn options(url: &str) -> Result<PgConnectOptions, Error> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::invalid(format!(
            "a PostgreSQL workflow store is a postgres:// URL, not {:?}",
            url.split_once("://").map_or(url, |(scheme, _)| scheme)
        )));
    }
    PgConnectOptions::from_str(url)
        .map_err(|e| Error::invalid(format!("bad PostgreSQL store URL: {e}")))
}

/// The store's tokio runtime, and how its errors read.
struct Io {
    rt: tokio::runtime::Runtime,
    /// The URL without its password.
    shown: String,
}

impl Io {
    /// A failure of the database: `UNAVAILABLE` if it could not be reached
    /// (or the connection broke), `INTERNAL` otherwise.
    fn error(&self, e: &sqlx::Error) -> Error {
        let kind = if broken(e) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Internal
        };
        Error::new(kind, format!("workflow store {} failed: {e}", self.shown))
    }
}

/// Whether `e` means the connection is gone (and with it its leases),
/// rather than that a statement failed: an IO or protocol failure, or the
/// server ending the session (SQLSTATE class 08, connection exception, and
/// 57P, the server shutting down or terminating it).
fn broken(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => false,
        _ => true,
    }
}

/// `UNAVAILABLE`: another process holds the lease of `id`.
fn leased_elsewhere(id: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("workflow {id:?} is run by another troupe process (it holds the workflow's lease)"),
    )
}

/// Connecting to a PostgreSQL store.
pub(crate) struct Postgres;

impl Postgres {
    /// Connects the writer to `url` (creating the tables if missing) and
    /// sets up the read connections, opened as reads need them.
    /// `UNAVAILABLE` if the database cannot be reached.
    pub(crate) fn connect(
        url: &str,
        lease_timeout: Duration,
    ) -> Result<(PgTables, PgWriter), Error> {
        let options = options(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("troupe-journal-pg")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot start the PostgreSQL store's runtime: {e}"),
                )
            })?;
        let io = Arc::new(Io {
            rt,
            shown: redacted(url)?,
        });
        let mut writer = PgWriter {
            io: Arc::clone(&io),
            options: options.clone(),
            lease_timeout,
            conn: None,
            leased: HashMap::new(),
        };
        let conn = io.rt.block_on(writer.connect())?;
        writer.conn = Some(conn);
        let pool = {
            let _entered = io.rt.enter();
            PgPoolOptions::new()
                .max_connections(READERS)
                .connect_lazy_with(options)
        };
        Ok((PgTables { io, pool }, writer))
    }
}

/// The read side of a PostgreSQL store, and its writes that do not go
/// through the writer (signals, cancellations, deletes).
pub(crate) struct PgTables {
    io: Arc<Io>,
    pool: PgPool,
}

impl PgTables {
    /// Runs `f` on the store's runtime with a handle on the read
    /// connections, and waits for its outcome.
    fn run<T, F>(&self, f: impl FnOnce(PgPool) -> F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let work = f(self.pool.clone());
        self.io.rt.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv()
            .map_err(|_| Error::internal("the PostgreSQL store's runtime has stopped"))?
            .map_err(|e| self.io.error(&e))
    }

    /// The header bytes of `id`, if it exists.
    fn header_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, Error> {
        let id = id.to_owned();
        self.run(|pool| async move {
            sqlx::query_scalar("SELECT header FROM troupe_workflow_workflows WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
        })
    }
}

/// A `u64` as PostgreSQL's `bigint` (steps, sequence numbers and times stay
/// far below `i64::MAX`).
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `bigint` read back.
fn unbig(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Tables for PgTables {
    fn exists(&self, id: &str) -> Result<bool, Error> {
        Ok(self.header_bytes(id)?.is_some())
    }

    fn header(&self, id: &str) -> Result<Header, Error> {
        let bytes = self.header_bytes(id)?.ok_or_else(|| unknown(id))?;
        read_header(id, &bytes)
    }

    fn history(&self, id: &str) -> Result<Stored, Error> {
        let key = id.to_owned();
        let (chunks, timers) = self.run(|pool| async move {
            let mut conn = pool.begin().await?;
            let chunks: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT first, chunk FROM troupe_workflow_history WHERE id = $1 ORDER BY first",
            )
            .bind(&key)
            .fetch_all(&mut *conn)
            .await?;
            let timers: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT step, deadline FROM troupe_workflow_timers WHERE id = $1 ORDER BY step",
            )
            .bind(&key)
            .fetch_all(&mut *conn)
            .await?;
            conn.commit().await?;
            Ok((chunks, timers))
        })?;
        let mut entries = Vec::new();
        for (first, chunk) in chunks {
            read_chunk(id, &mut entries, unbig(first), &chunk)?;
        }
        let deadlines = timers
            .into_iter()
            .map(|(step, at)| (unbig(step), unbig(at)))
            .collect();
        Ok(Stored { entries, deadlines })
    }

    fn list(&self) -> Result<Vec<Summary>, Error> {
        let rows: Vec<(String, Vec<u8>, i64)> = self.run(|pool| async move {
            sqlx::query_as(
                "SELECT w.id, w.header, COALESCE(SUM(h.steps), 0)::bigint
                 FROM troupe_workflow_workflows w
                 LEFT JOIN troupe_workflow_history h ON h.id = w.id
                 GROUP BY w.id, w.header ORDER BY w.id COLLATE \"C\"",
            )
            .fetch_all(&pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, header, steps)| Summary {
                header: read_header(&id, &header),
                id,
                steps: unbig(steps),
            })
            .collect())
    }

    fn delete(&self, id: &str) -> Result<(), Error> {
        let key = id.to_owned();
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let lease: Option<i64> = sqlx::query_scalar(
                "SELECT lease FROM troupe_workflow_workflows WHERE id = $1 FOR UPDATE",
            )
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(lease) = lease else {
                return Ok(Err(unknown(&key)));
            };
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(lease)
                .fetch_one(&mut *tx)
                .await?;
            if !free {
                return Ok(Err(Error::new(
                    ErrorKind::Conflict,
                    format!("workflow {key:?} is running in another troupe process"),
                )));
            }
            for sql in [
                "DELETE FROM troupe_workflow_workflows WHERE id = $1",
                "DELETE FROM troupe_workflow_history WHERE id = $1",
                "DELETE FROM troupe_workflow_timers WHERE id = $1",
                "DELETE FROM troupe_workflow_inbox WHERE id = $1",
                "DELETE FROM troupe_workflow_published WHERE id = $1",
                "DELETE FROM troupe_workflow_cancels WHERE id = $1",
                "DELETE FROM troupe_workflow_children WHERE parent = $1 OR child = $1",
                "DELETE FROM troupe_workflow_runs WHERE id = $1",
                "DELETE FROM troupe_workflow_run_history WHERE id = $1",
            ] {
                sqlx::query(sql).bind(&key).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Ok(()))
        })?
    }

    fn signal(&self, id: &str, message: &Value) -> Result<u64, Error> {
        self.unfinished(id)?;
        let bytes = encode(message)?;
        let key = id.to_owned();
        // Never the number of a signal just received: its removal may still
        // be queued behind this write.
        let floor = big(now_ns());
        let seq: i64 = self.run(|pool| async move {
            sqlx::query_scalar(
                "INSERT INTO troupe_workflow_inbox (id, seq, message)
                 SELECT $1, GREATEST(COALESCE(MAX(seq) + 1, 0), $2), $3
                 FROM troupe_workflow_inbox WHERE id = $1
                 RETURNING seq",
            )
            .bind(key)
            .bind(floor)
            .bind(bytes)
            .fetch_one(&pool)
            .await
        })?;
        Ok(unbig(seq))
    }

    fn query(&self, id: &str, key: &str) -> Result<Value, Error> {
        let (owner, name) = (id.to_owned(), key.to_owned());
        let bytes: Option<Vec<u8>> = self.run(|pool| async move {
            sqlx::query_scalar(
                "SELECT value FROM troupe_workflow_published WHERE id = $1 AND key = $2",
            )
            .bind(owner)
            .bind(name)
            .fetch_optional(&pool)
            .await
        })?;
        read_published(id, key, bytes.as_deref())
    }

    fn cancel(&self, id: &str) -> Result<(), Error> {
        self.unfinished(id)?;
        let key = id.to_owned();
        let at = big(now_ms());
        self.run(|pool| async move {
            sqlx::query(
                "INSERT INTO troupe_workflow_cancels (id, at) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at",
            )
            .bind(key)
            .bind(at)
            .execute(&pool)
            .await
        })?;
        Ok(())
    }

    fn canceled(&self, id: &str) -> Result<bool, Error> {
        let key = id.to_owned();
        let row: Option<i64> = self.run(|pool| async move {
            sqlx::query_scalar("SELECT at FROM troupe_workflow_cancels WHERE id = $1")
                .bind(key)
                .fetch_optional(&pool)
                .await
        })?;
        Ok(row.is_some())
    }

    fn runs(&self, id: &str) -> Result<Vec<(Header, Vec<Entry>)>, Error> {
        let key = id.to_owned();
        let (runs, chunks) = self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let runs: Vec<(i32, Vec<u8>)> = sqlx::query_as(
                "SELECT run, header FROM troupe_workflow_runs WHERE id = $1 ORDER BY run",
            )
            .bind(&key)
            .fetch_all(&mut *tx)
            .await?;
            let chunks: Vec<(i32, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT run, first, chunk FROM troupe_workflow_run_history
                 WHERE id = $1 ORDER BY run, first",
            )
            .bind(&key)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok((runs, chunks))
        })?;
        let mut out = Vec::with_capacity(runs.len());
        for (run, header) in runs {
            let run = u32::try_from(run).unwrap_or(0);
            let header = read_run(id, run, &header)?;
            let mut entries = Vec::new();
            for (_, first, chunk) in chunks
                .iter()
                .filter(|(r, _, _)| u32::try_from(*r).is_ok_and(|r| r == run))
            {
                read_run_chunk(id, run, &mut entries, unbig(*first), chunk)?;
            }
            out.push((header, entries));
        }
        Ok(out)
    }

    fn children(&self, id: &str) -> Result<Vec<(String, ParentClose)>, Error> {
        let key = id.to_owned();
        let rows: Vec<(String, String)> = self.run(|pool| async move {
            sqlx::query_as(
                "SELECT child, close FROM troupe_workflow_children
                 WHERE parent = $1 ORDER BY child COLLATE \"C\"",
            )
            .bind(key)
            .fetch_all(&pool)
            .await
        })?;
        rows.into_iter()
            .map(|(child, close)| Ok((read_close(id, &child, &close)?, child)))
            .map(|r| r.map(|(close, child)| (child, close)))
            .collect()
    }

    fn inbox(&self, id: &str) -> Result<Vec<(u64, Value)>, Error> {
        let key = id.to_owned();
        let rows: Vec<(i64, Vec<u8>)> = self.run(|pool| async move {
            sqlx::query_as(
                "SELECT seq, message FROM troupe_workflow_inbox WHERE id = $1 ORDER BY seq",
            )
            .bind(key)
            .fetch_all(&pool)
            .await
        })?;
        rows.into_iter()
            .map(|(seq, bytes)| {
                let seq = unbig(seq);
                Ok((seq, read_signal(id, seq, &bytes)?))
            })
            .collect()
    }

    fn waiting(&self, ids: &[String]) -> Result<Waiting, Error> {
        let keys = ids.to_vec();
        let (signals, cancels) = self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let signals: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT id, seq, message FROM troupe_workflow_inbox
                 WHERE id = ANY($1) ORDER BY id, seq",
            )
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
            let cancels: Vec<String> =
                sqlx::query_scalar("SELECT id FROM troupe_workflow_cancels WHERE id = ANY($1)")
                    .bind(&keys)
                    .fetch_all(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok((signals, cancels))
        })?;
        let signals = signals
            .into_iter()
            .map(|(id, seq, bytes)| {
                let seq = unbig(seq);
                let message = read_signal(&id, seq, &bytes)?;
                Ok((id, seq, message))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Waiting { signals, cancels })
    }

    fn orphans(&self) -> Result<Vec<String>, Error> {
        self.run(|pool| async move {
            sqlx::query_scalar(
                "SELECT w.id FROM troupe_workflow_workflows w
                 WHERE w.running AND NOT EXISTS (
                     SELECT 1 FROM pg_locks l
                     WHERE l.locktype = 'advisory' AND l.objsubid = 1
                       AND l.database = (SELECT oid FROM pg_database
                                         WHERE datname = current_database())
                       AND l.classid::bigint = (w.lease >> 32)
                       AND l.objid::bigint = (w.lease & 4294967295))
                 ORDER BY w.lease",
            )
            .fetch_all(&pool)
            .await
        })
    }
}

/// The writer's side of a PostgreSQL store: one connection, which holds
/// the leases of the workflows this process runs.
pub(crate) struct PgWriter {
    io: Arc<Io>,
    options: PgConnectOptions,
    lease_timeout: Duration,
    /// The session, or none after it broke (the next commit connects).
    conn: Option<PgConnection>,
    /// The workflows whose lease the session holds, with their lock keys.
    leased: HashMap<Arc<str>, i64>,
}

/// Rows of a batch written together, one statement per table.
#[derive(Default)]
struct Rows {
    /// History chunks: id, first step, step count, bytes.
    history: (Vec<String>, Vec<i64>, Vec<i64>, Vec<Vec<u8>>),
    /// Timers started: id, step, deadline.
    timers: (Vec<String>, Vec<i64>, Vec<i64>),
    /// Timers ended: id, step.
    ended: (Vec<String>, Vec<i64>),
    /// Inbox signals received: id, seq.
    consumed: (Vec<String>, Vec<i64>),
}

impl Rows {
    /// Writes the rows gathered so far.
    async fn write(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let rows = std::mem::take(self);
        if !rows.history.0.is_empty() {
            sqlx::query(
                "INSERT INTO troupe_workflow_history (id, first, steps, chunk)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bytea[])
                 ON CONFLICT (id, first) DO UPDATE
                 SET steps = EXCLUDED.steps, chunk = EXCLUDED.chunk",
            )
            .bind(rows.history.0)
            .bind(rows.history.1)
            .bind(rows.history.2)
            .bind(rows.history.3)
            .execute(&mut *conn)
            .await?;
        }
        if !rows.timers.0.is_empty() {
            sqlx::query(
                "INSERT INTO troupe_workflow_timers (id, step, deadline)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[])
                 ON CONFLICT (id, step) DO UPDATE SET deadline = EXCLUDED.deadline",
            )
            .bind(rows.timers.0)
            .bind(rows.timers.1)
            .bind(rows.timers.2)
            .execute(&mut *conn)
            .await?;
        }
        for ((ids, keys), sql) in [
            (
                rows.ended,
                "DELETE FROM troupe_workflow_timers t USING UNNEST($1::text[], $2::bigint[]) \
                 AS d(id, step) WHERE t.id = d.id AND t.step = d.step",
            ),
            (
                rows.consumed,
                "DELETE FROM troupe_workflow_inbox t USING UNNEST($1::text[], $2::bigint[]) \
                 AS d(id, seq) WHERE t.id = d.id AND t.seq = d.seq",
            ),
        ] {
            if !ids.is_empty() {
                sqlx::query(sql)
                    .bind(ids)
                    .bind(keys)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// What one op of a batch did: its own outcome, or a failure of the
/// whole transaction.
type Reply = Result<Result<(), Error>, sqlx::Error>;

impl Committer for PgWriter {
    fn commit(&mut self, batch: &[Op]) -> Result<Vec<Result<(), Error>>, Error> {
        let io = Arc::clone(&self.io);
        let outcome = io.rt.block_on(async {
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => self.connect().await?,
            };
            let outcome = self.write(&mut conn, batch).await;
            match &outcome {
                // The session is gone, and its leases with it.
                Err(e) if broken(e) => self.leased.clear(),
                _ => self.conn = Some(conn),
            }
            outcome.map_err(|e| io.error(&e))
        });
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "PostgreSQL journal commit failed");
        }
        outcome
    }
}

impl PgWriter {
    /// A new session, with keepalives that let the server end it within
    /// about the lease timeout if this host stops answering; the tables
    /// are created if missing.
    async fn connect(&self) -> Result<PgConnection, Error> {
        let fail = |e: sqlx::Error| self.io.error(&e);
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(fail)?;
        let secs = self.lease_timeout.as_secs().max(1);
        let settings = [
            ("tcp_keepalives_idle", (secs / 2).max(1).to_string()),
            ("tcp_keepalives_interval", (secs / 6).max(1).to_string()),
            ("tcp_keepalives_count", "3".to_owned()),
            (
                "tcp_user_timeout",
                self.lease_timeout.as_millis().to_string(),
            ),
        ];
        for (name, value) in settings {
            sqlx::query("SELECT set_config($1, $2, false)")
                .bind(name)
                .bind(value)
                .execute(&mut conn)
                .await
                .map_err(fail)?;
        }
        sqlx::raw_sql(SCHEMA)
            .execute(&mut conn)
            .await
            .map_err(fail)?;
        Ok(conn)
    }

    /// `Ok` if the session holds the lease of `id`, `UNAVAILABLE` if not
    /// (it lost it, or never had it).
    fn holds(&self, id: &str) -> Result<(), Error> {
        if self.leased.contains_key(id) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "workflow {id:?}: this troupe process does not hold its lease (lost with its database session?)"
                ),
            ))
        }
    }

    /// Writes `batch` in one transaction, then gives up the leases it
    /// asked to.
    async fn write(
        &mut self,
        conn: &mut PgConnection,
        batch: &[Op],
    ) -> Result<Vec<Result<(), Error>>, sqlx::Error> {
        let mut tx = conn.begin().await?;
        let mut rows = Rows::default();
        let mut replies = Vec::with_capacity(batch.len());
        let mut unlease = Vec::new();
        for op in batch {
            let reply = match op {
                Op::Entries {
                    id,
                    first,
                    chunk,
                    timers,
                    consumed,
                } => self.holds(id).map(|()| {
                    let bytes = chunk.bytes();
                    rows.history.0.push(id.to_string());
                    rows.history.1.push(big(*first));
                    rows.history.2.push(big(entry_count(bytes).unwrap_or(1)));
                    rows.history.3.push(bytes.to_vec());
                    for step in timers {
                        rows.ended.0.push(id.to_string());
                        rows.ended.1.push(big(*step));
                    }
                    for seq in consumed {
                        rows.consumed.0.push(id.to_string());
                        rows.consumed.1.push(big(*seq));
                    }
                }),
                Op::Timer { id, step, deadline } => self.holds(id).map(|()| {
                    rows.timers.0.push(id.to_string());
                    rows.timers.1.push(big(*step));
                    rows.timers.2.push(big(*deadline));
                }),
                Op::Unlease { id } => {
                    unlease.push(Arc::clone(id));
                    Ok(())
                }
                Op::Durable(_) | Op::Settle { .. } => Ok(()),
                Op::Batch { .. } => Err(Error::internal(
                    "a journal batch reached the writer unflattened",
                )),
                op => {
                    if matches!(op, Op::ContinueAsNew { .. }) {
                        // It moves the run's history: what was gathered
                        // of it goes first.
                        rows.write(&mut tx).await?;
                    }
                    self.apply(&mut tx, op).await?
                }
            };
            replies.push(reply);
        }
        rows.write(&mut tx).await?;
        tx.commit().await?;
        for id in unlease {
            if let Some(lease) = self.leased.remove(&id) {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(lease)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(replies)
    }

    /// Writes one op that is not gathered into [`Rows`].
    async fn apply(&mut self, tx: &mut PgConnection, op: &Op) -> Reply {
        match op {
            Op::Create {
                id,
                header,
                child_of,
            } => {
                let lease: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO troupe_workflow_workflows (id, running, header)
                     VALUES ($1, true, $2) ON CONFLICT (id) DO NOTHING RETURNING lease",
                )
                .bind(&**id)
                .bind(header.as_slice())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(lease) = lease else {
                    return Ok(Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("workflow {id:?} already exists"),
                    )));
                };
                // Nobody can hold the lock of a new row's number: this is
                // the first process to ask.
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(lease)
                    .execute(&mut *tx)
                    .await?;
                self.leased.insert(Arc::clone(id), lease);
                if let Some((parent, close)) = child_of {
                    sqlx::query(
                        "INSERT INTO troupe_workflow_children (parent, child, close)
                         VALUES ($1, $2, $3) ON CONFLICT (parent, child)
                         DO UPDATE SET close = EXCLUDED.close",
                    )
                    .bind(parent.as_str())
                    .bind(&**id)
                    .bind(close.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                Ok(Ok(()))
            }
            Op::Lease { id, .. } => self.lease(tx, id).await,
            Op::Publish { id, key, value } => {
                if let Err(e) = self.holds(id) {
                    return Ok(Err(e));
                }
                sqlx::query(
                    "INSERT INTO troupe_workflow_published (id, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (id, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(&**id)
                .bind(key.as_str())
                .bind(value.as_slice())
                .execute(&mut *tx)
                .await?;
                Ok(Ok(()))
            }
            Op::Finish { id, result } => {
                let Some(mut header) = self.locked_header(tx, id).await? else {
                    return Ok(Err(deleted_while_running(id)));
                };
                let header = match header.as_mut() {
                    Ok(h) => {
                        finish(h, result);
                        encode(h)
                    }
                    Err(e) => Err(e.clone()),
                };
                let bytes = match header {
                    Ok(bytes) => bytes,
                    Err(e) => return Ok(Err(e)),
                };
                sqlx::query(
                    "UPDATE troupe_workflow_workflows SET header = $2, running = false WHERE id = $1",
                )
                .bind(&**id)
                .bind(bytes)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM troupe_workflow_cancels WHERE id = $1")
                    .bind(&**id)
                    .execute(&mut *tx)
                    .await?;
                Ok(Ok(()))
            }
            Op::ContinueAsNew { id, args } => self.continue_as_new(tx, id, args).await,
            _ => Ok(Ok(())),
        }
    }

    /// The header of `id`, if the session holds its lease (else its
    /// `UNAVAILABLE`) and it exists.
    async fn locked_header(
        &self,
        tx: &mut PgConnection,
        id: &str,
    ) -> Result<Option<Result<Header, Error>>, sqlx::Error> {
        if let Err(e) = self.holds(id) {
            return Ok(Some(Err(e)));
        }
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT header FROM troupe_workflow_workflows WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(bytes.map(|b| read_header(id, &b)))
    }

    /// Takes the lease of `id` unless the session holds it already.
    async fn lease(&mut self, tx: &mut PgConnection, id: &Arc<str>) -> Reply {
        if self.leased.contains_key(id) {
            return Ok(Ok(()));
        }
        let lease: Option<i64> =
            sqlx::query_scalar("SELECT lease FROM troupe_workflow_workflows WHERE id = $1")
                .bind(&**id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(lease) = lease else {
            return Ok(Err(unknown(id)));
        };
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lease)
            .fetch_one(&mut *tx)
            .await?;
        if !got {
            return Ok(Err(leased_elsewhere(id)));
        }
        self.leased.insert(Arc::clone(id), lease);
        Ok(Ok(()))
    }

    /// Files the current run of `id` and its history as a past run and
    /// starts the next one with `args`.
    async fn continue_as_new(&self, tx: &mut PgConnection, id: &str, args: &[Value]) -> Reply {
        let mut header = match self.locked_header(tx, id).await? {
            Some(Ok(h)) => h,
            Some(Err(e)) => return Ok(Err(e)),
            None => return Ok(Err(deleted_while_running(id))),
        };
        let run = header.run;
        let past = continue_as_new(&mut header, args);
        let (past, next) = match (encode(&past), encode(&header)) {
            (Ok(p), Ok(n)) => (p, n),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        let run = i32::try_from(run).unwrap_or(i32::MAX);
        sqlx::query("INSERT INTO troupe_workflow_runs (id, run, header) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(run)
            .bind(past)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO troupe_workflow_run_history (id, run, first, chunk)
             SELECT id, $2, first, chunk FROM troupe_workflow_history WHERE id = $1",
        )
        .bind(id)
        .bind(run)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM troupe_workflow_history WHERE id = $1",
            "DELETE FROM troupe_workflow_timers WHERE id = $1",
            // A cancellation was delivered to the run that ended.
            "DELETE FROM troupe_workflow_cancels WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE troupe_workflow_workflows SET header = $2, running = true WHERE id = $1",
        )
        .bind(id)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        let shown = redacted("postgres://me:secret@db.example:5433/jobs").unwrap();
        assert_eq!(shown, "postgres://me@db.example:5433/jobs");
        let err = redacted("mysql://me@db/jobs").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(!err.message().contains("db"), "{err}");
    }
}
