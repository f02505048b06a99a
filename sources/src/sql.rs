use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tokio::sync::mpsc;

use crate::background::{AbortOnDrop, Background};
use crate::remote::{describe, lock, without_userinfo};
use crate::watch::differences;
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// How long a `get` or `list` may take by default, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a watch of an SQLite table looks for changes by default.
const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// First and longest wait before a broken PostgreSQL watch connects again.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// How often a quiet PostgreSQL watch checks that the server still answers
/// (a server that hangs closes no socket).
const HEALTH_CHECK: Duration = Duration::from_secs(5);
/// Idle connections kept for `get` and `list`.
const MAX_IDLE: usize = 4;
/// The longest PostgreSQL identifier (NAMEDATALEN - 1).
const MAX_IDENT: usize = 63;
/// The `LIKE … ESCAPE` character: not special in any SQL string syntax.
const LIKE_ESCAPE: char = '!';
/// The start of the notification channel and trigger function names.
const CHANNEL_PREFIX: &str = "troupe_scripts_";

/// Scripts stored in a table of an SQLite or PostgreSQL database, one row
/// per script:
///
/// ```sql
/// CREATE TABLE scripts (
///     key     TEXT PRIMARY KEY,  -- e.g. 'lib/util.lua'
///     code    BLOB NOT NULL,     -- BYTEA in PostgreSQL
///     version BIGINT NOT NULL    -- bumped by the writer on every change
/// );
/// ```
///
/// A [`Script`]'s version is the hash of its code, so rewriting the same
/// code keeps it; the `version` column is what watches compare to notice
/// a change without reading the code, so a writer must change it with
/// every write. Every `get` and `list` has a deadline (5 s by default,
/// [`timeout`](Self::timeout)), connecting included: a database that is
/// down or hangs gives [`SourceError::Unavailable`] and never blocks the
/// caller for longer.
///
/// Watching PostgreSQL uses `LISTEN troupe_scripts_<table>`: a trigger
/// ([`install_notify_trigger`](Self::install_notify_trigger)) notifies the
/// changed key, and the watch reads that key again. After a disconnect it
/// connects again (backing off from 100 ms to 2 s), listens, then lists the
/// keys with their versions and reports what differs from what it knew, so
/// a change made meanwhile is still reported. Watching SQLite polls the
/// keys and versions ([`poll_interval`](Self::poll_interval), 1 s by
/// default) when the database file changed, and reports the difference.
/// A watch started while the database is unreachable reports
/// [`Change::Resync`] once it gets in.
///
/// The source connects lazily. Errors name it `sqlite:PATH?table=T` or
/// `postgres://host:port/db?table=T`, never with the URL's password.
/// Cheap to clone.
#[derive(Clone)]
pub struct SqlSource {
    timeout: Duration,
    poll: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shared.name)
    }
}

struct Shared {
    name: String,
    backend: Backend,
    table: Table,
    statements: Arc<Statements>,
    /// Connections `get` and `list` reuse; one in use is out of the list,
    /// so a request cancelled by its deadline drops (closes) its own.
    idle: Mutex<Vec<Conn>>,
    bg: Background,
}

/// Where the table lives, with the connection settings of the URL.
#[derive(Clone)]
enum Backend {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$c` bound to the driver's connection, whichever it is.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

/// A checked table name and the names derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    /// As given, in lower case (`schema.table` or `table`).
    name: String,
    /// Quoted for SQL (`"schema"."table"`).
    sql: String,
    /// The PostgreSQL notification channel (`troupe_scripts_schema_table`).
    channel: String,
}

/// The statements a source runs, made once from its checked table name;
/// every value is a bound parameter.
struct Statements {
    script: Arc<str>,
    version: Arc<str>,
    keys: Arc<str>,
    versions: Arc<str>,
}

/// Why a request to the database failed.
enum Failure {
    Timeout,
    Sql(sqlx::Error),
    Stopped,
}

impl SqlSource {
    /// A source over `table` (`name` or `schema.name`: letters, digits and
    /// `_`, not starting with a digit; case-insensitive like an unquoted
    /// SQL name) in the database at `url`: `sqlite:///path/to.db` (an
    /// existing file), or `postgres://user[:password]@host:port/db`
    /// (`?sslmode=…` and the other libpq parameters sqlx knows apply).
    /// Does not connect yet; fails only on a malformed URL or table name.
    pub fn connect(url: &str, table: &str) -> Result<Self, SourceError> {
        let invalid = |what: String| {
            SourceError::unavailable(format!("{}?table={table}", without_userinfo(url)), what)
        };
        let table = Table::parse(table).map_err(invalid)?;
        let (backend, name) = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| invalid(format!("invalid SQLite URL: {}", describe(&e))))?
                .disable_statement_logging();
            let name = format!(
                "sqlite:{}?table={}",
                options.get_filename().display(),
                table.name
            );
            (Backend::Sqlite(options), name)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url)
                .map_err(|e| invalid(format!("invalid PostgreSQL URL: {}", describe(&e))))?
                .disable_statement_logging();
            if options.get_application_name().is_none() {
                options = options.application_name("troupe");
            }
            let host = match options.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => options.get_host().to_owned(),
            };
            let db = options
                .get_database()
                .unwrap_or(options.get_username())
                .to_owned();
            let name = format!(
                "postgres://{host}:{}/{db}?table={}",
                options.get_port(),
                table.name
            );
            (Backend::Postgres(options), name)
        } else {
            return Err(invalid(
                "not an SQL URL (sqlite:… or postgres://…)".to_owned(),
            ));
        };
        let statements = Arc::new(Statements::new(&table, &backend));
        let bg = Background::start("troupe-sql-source").map_err(|e| {
            SourceError::unavailable(name.clone(), format!("cannot start its IO thread: {e}"))
        })?;
        Ok(Self {
            timeout: DEFAULT_TIMEOUT,
            poll: DEFAULT_POLL,
            shared: Arc::new(Shared {
                name,
                backend,
                table,
                statements,
                idle: Mutex::new(Vec::new()),
                bg,
            }),
        })
    }

    /// How long one `get` or `list` may take, connecting included (default
    /// 5 s); past it the call returns [`SourceError::Unavailable`]. Also
    /// bounds each request of a watch.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a watch of an SQLite table checks for changes (default
    /// 1 s). PostgreSQL watches are notified instead.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    /// The PostgreSQL notification channel watches listen on:
    /// `troupe_scripts_` and the table name (`.` as `_`), cut to 63 bytes
    /// with a hash of the rest if longer.
    pub fn channel(&self) -> &str {
        &self.shared.table.channel
    }

    /// Creates (or replaces) the PostgreSQL trigger that notifies watches
    /// of every change of the table: after each `INSERT`, `UPDATE` and
    /// `DELETE` it calls `pg_notify(channel, key)` (an `UPDATE` that
    /// renames a key notifies both), after a `TRUNCATE` `pg_notify(channel,
    /// '')` (the watch lists the table again). Its function is
    /// `troupe_scripts_notify_<table>` in the table's schema. Needs the
    /// right to create functions and triggers on the table; SQLite tables
    /// are polled, so there it is [`SourceError::Unsupported`].
    pub fn install_notify_trigger(&self) -> Result<(), SourceError> {
        let Backend::Postgres(options) = &self.shared.backend else {
            return Err(SourceError::Unsupported {
                source_name: self.name(),
                operation: "notify triggers",
            });
        };
        let options = options.clone();
        let statements = self.shared.table.trigger_statements();
        let timeout = self.timeout;
        let result = self.shared.bg.block(async move {
            within(timeout, async {
                let mut conn = options.connect().await?;
                let mut tx = conn.begin().await?;
                for statement in statements {
                    sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            })
            .await
        });
        match result {
            Some(Ok(())) => Ok(()),
            Some(Err(reason)) => Err(SourceError::unavailable(self.name(), reason)),
            None => Err(self.unavailable(Failure::Stopped)),
        }
    }

    /// Runs `op` on an idle connection (or a new one) within the deadline,
    /// on the source's IO thread. A connection that broke is dropped, and
    /// if it was an idle one (the server restarted since), `op` runs again
    /// on the next.
    fn request(&self, op: Op) -> Result<Reply, Failure> {
        let shared = Arc::clone(&self.shared);
        let timeout = self.timeout;
        self.shared
            .bg
            .block(async move {
                let outcome = tokio::time::timeout(timeout, async {
                    loop {
                        let idle = lock(&shared.idle).pop();
                        let (mut conn, reused) = match idle {
                            Some(conn) => (conn, true),
                            None => (shared.backend.connect().await?, false),
                        };
                        match conn.run(&shared.statements, &op).await {
                            Err(e) if is_broken(&e) => {
                                if !reused {
                                    return Err(e);
                                }
                            }
                            result => {
                                let mut idle = lock(&shared.idle);
                                if idle.len() < MAX_IDLE {
                                    idle.push(conn);
                                }
                                return result;
                            }
                        }
                    }
                })
                .await;
                outcome.map_err(|_| Failure::Timeout)?.map_err(Failure::Sql)
            })
            .unwrap_or(Err(Failure::Stopped))
    }

    fn unavailable(&self, failure: Failure) -> SourceError {
        let reason = match failure {
            Failure::Timeout => return SourceError::timed_out(self.name(), self.timeout),
            Failure::Sql(e) => describe(&e),
            Failure::Stopped => "its IO thread stopped".to_owned(),
        };
        SourceError::unavailable(self.name(), reason)
    }
}

/// What a `get` or `list` asks of a connection.
enum Op {
    Script(String),
    Keys(String),
}

enum Reply {
    Script(Option<(Vec<u8>, i64)>),
    Keys(Vec<String>),
}

impl Source for SqlSource {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let row = match self.request(Op::Script(key.to_owned())) {
            Ok(Reply::Script(row)) => row,
            Ok(Reply::Keys(_)) => None,
            Err(Failure::Sql(e)) if is_decode(&e) => {
                return Err(SourceError::BadContent {
                    key: key.to_owned(),
                    source_name: self.name(),
                    reason: describe(&e),
                });
            }
            Err(f) => return Err(self.unavailable(f)),
        };
        let (code, _version) = row.ok_or_else(|| SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        })?;
        Ok(Script::from_content(key, code))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let keys = match self.request(Op::Keys(like_prefix(prefix))) {
            Ok(Reply::Keys(keys)) => keys,
            Ok(Reply::Script(_)) => Vec::new(),
            Err(f) => return Err(self.unavailable(f)),
        };
        // SQLite's LIKE ignores ASCII case: the prefix decides. Sorted
        // here, by bytes, whatever the database's collation.
        let mut keys: Vec<String> = keys
            .into_iter()
            .filter(|k| k.starts_with(prefix) && validate_key(k).is_ok())
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let shared = &self.shared;
        let watcher = Watcher {
            name: self.name(),
            backend: shared.backend.clone(),
            statements: Arc::clone(&shared.statements),
            channel: shared.table.channel.clone(),
            table: shared.table.sql.clone(),
            checked_trigger: false,
            prefix: prefix.to_owned(),
            timeout: self.timeout,
            poll: self.poll,
            known: None,
            resync_on_connect: false,
            sink,
        };
        // Listen (or open the file) and take the first snapshot now, so
        // every change made after this call is reported. If the database
        // is unreachable, the watch starts once it is back and reports a
        // resync, since changes may have been missed meanwhile.
        let (mut watcher, first) = shared
            .bg
            .block(async move {
                let mut watcher = watcher;
                let first = watcher.connect().await;
                (watcher, first)
            })
            .ok_or_else(|| self.unavailable(Failure::Stopped))?;
        let first = first
            .inspect_err(|e| {
                tracing::warn!(source = %self.name(), error = %e, "sql watch starts once the database answers");
            })
            .ok();
        watcher.resync_on_connect = first.is_none();
        let task = shared.bg.spawn(watcher.run(first));
        Ok(WatchGuard::new((AbortOnDrop(task), Arc::clone(shared))))
    }
}

impl Backend {
    async fn connect(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Backend::Sqlite(options) => Conn::Sqlite(options.connect().await?),
            Backend::Postgres(options) => Conn::Postgres(options.connect().await?),
        })
    }
}

impl Conn {
    async fn run(&mut self, statements: &Statements, op: &Op) -> Result<Reply, sqlx::Error> {
        match op {
            Op::Script(key) => self.script(statements, key).await.map(Reply::Script),
            Op::Keys(pattern) => self.keys(statements, pattern).await.map(Reply::Keys),
        }
    }

    /// The code and version of `key`'s row.
    async fn script(
        &mut self,
        statements: &Statements,
        key: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, sqlx::Error> {
        let sql = AssertSqlSafe(Arc::clone(&statements.script));
        on_conn!(self, c => sqlx::query_as(sql).bind(key).fetch_optional(c).await)
    }

    /// The version of `key`'s row.
    async fn version(
        &mut self,
        statements: &Statements,
        key: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let sql = AssertSqlSafe(Arc::clone(&statements.version));
        on_conn!(self, c => sqlx::query_scalar(sql).bind(key).fetch_optional(c).await)
    }

    /// The keys matching the `LIKE` pattern.
    async fn keys(
        &mut self,
        statements: &Statements,
        pattern: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let sql = AssertSqlSafe(Arc::clone(&statements.keys));
        on_conn!(self, c => sqlx::query_scalar(sql).bind(pattern).fetch_all(c).await)
    }

    /// The keys matching the `LIKE` pattern, with their versions.
    async fn versions(
        &mut self,
        statements: &Statements,
        pattern: &str,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let sql = AssertSqlSafe(Arc::clone(&statements.versions));
        on_conn!(self, c => sqlx::query_as(sql).bind(pattern).fetch_all(c).await)
    }

    /// SQLite's `PRAGMA data_version`: changes when another connection
    /// commits. `None` for PostgreSQL.
    async fn data_version(&mut self) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(c)
                .await
                .map(Some),
            Conn::Postgres(_) => Ok(None),
        }
    }

    /// True if the PostgreSQL table (quoted name) has the trigger
    /// [`SqlSource::install_notify_trigger`] makes.
    async fn has_trigger(&mut self, table: &str) -> Result<bool, sqlx::Error> {
        match self {
            Conn::Postgres(c) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_trigger \
                 WHERE tgrelid = to_regclass($1) AND tgname = 'troupe_scripts_notify')",
                )
                .bind(table)
                .fetch_one(c)
                .await
            }
            Conn::Sqlite(_) => Ok(false),
        }
    }

    async fn ping(&mut self) -> Result<(), sqlx::Error> {
        on_conn!(self, c => c.ping().await)
    }
}

impl Statements {
    fn new(table: &Table, backend: &Backend) -> Self {
        let p = match backend {
            Backend::Sqlite(_) => "?1",
            Backend::Postgres(_) => "$1",
        };
        let t = &table.sql;
        let like = format!("\"key\" LIKE {p} ESCAPE '{LIKE_ESCAPE}'");
        let version = "CAST(\"version\" AS BIGINT)";
        Self {
            script: format!("SELECT \"code\", {version} FROM {t} WHERE \"key\" = {p}").into(),
            version: format!("SELECT {version} FROM {t} WHERE \"key\" = {p}").into(),
            keys: format!("SELECT \"key\" FROM {t} WHERE {like}").into(),
            versions: format!("SELECT \"key\", {version} FROM {t} WHERE {like}").into(),
        }
    }
}

impl Table {
    /// Checks `name` (`table` or `schema.table`, each part a plain SQL
    /// identifier) and derives the quoted name and the channel.
    fn parse(name: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("invalid table name {name:?}: {why}"));
        let lower = name.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('.').collect();
        if parts.len() > 2 {
            return bad("at most one `.` (schema.table)");
        }
        for part in &parts {
            let mut chars = part.chars();
            match chars.next() {
                None => return bad("an empty name"),
                Some(c) if c.is_ascii_digit() => return bad("a name starts with a digit"),
                _ => {}
            }
            if !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad("only ASCII letters, digits and `_` are allowed");
            }
            if part.len() > MAX_IDENT {
                return bad("a name is longer than 63 bytes");
            }
        }
        let sql = parts
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(".");
        let channel = identifier(&format!("{CHANNEL_PREFIX}{}", parts.join("_")));
        Ok(Self {
            name: lower.clone(),
            sql,
            channel,
        })
    }

    /// The statements [`SqlSource::install_notify_trigger`] runs.
    fn trigger_statements(&self) -> Vec<String> {
        let (schema, table) = match self.name.split_once('.') {
            Some((schema, table)) => (Some(schema), table),
            None => (None, self.name.as_str()),
        };
        let function = identifier(&format!("troupe_scripts_notify_{table}"));
        let function = match schema {
            Some(schema) => format!("\"{schema}\".\"{function}\""),
            None => format!("\"{function}\""),
        };
        let (t, ch) = (&self.sql, &self.channel);
        vec![
            format!(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $troupe$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('{ch}', '');
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('{ch}', OLD.key);
  ELSE
    PERFORM pg_notify('{ch}', NEW.key);
    IF TG_OP = 'UPDATE' AND OLD.key IS DISTINCT FROM NEW.key THEN
      PERFORM pg_notify('{ch}', OLD.key);
    END IF;
  END IF;
  RETURN NULL;
END
$troupe$"
            ),
            format!("DROP TRIGGER IF EXISTS troupe_scripts_notify ON {t}"),
            format!(
                "CREATE TRIGGER troupe_scripts_notify AFTER INSERT OR UPDATE OR DELETE ON {t} \
                 FOR EACH ROW EXECUTE FUNCTION {function}()"
            ),
            format!("DROP TRIGGER IF EXISTS troupe_scripts_notify_truncate ON {t}"),
            format!(
                "CREATE TRIGGER troupe_scripts_notify_truncate AFTER TRUNCATE ON {t} \
                 FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            ),
        ]
    }
}

/// `name` if it fits a PostgreSQL identifier, else its start and a hash of
/// the whole, 63 bytes in all (`name` is ASCII).
fn identifier(name: &str) -> String {
    if name.len() <= MAX_IDENT {
        return name.to_owned();
    }
    let hash = format!("_{:016x}", crate::content_hash(name.as_bytes()));
    format!("{}{hash}", &name[..MAX_IDENT - hash.len()])
}

/// The `LIKE` pattern of the keys starting with `prefix`.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A live PostgreSQL watch: a connection for reading rows, and the
/// notifications of a listener running in its own task (so waiting for
/// them is never cancelled half-way through a message).
struct Session {
    conn: Conn,
    notifications: Option<Notifications>,
    /// SQLite's `data_version` at the last snapshot.
    data_version: Option<i64>,
}

struct Notifications {
    rx: mpsc::UnboundedReceiver<Result<String, String>>,
    _task: AbortOnDrop<()>,
}

/// The task behind a subscription: delivers changes, and after a
/// disconnect connects again and reports what changed meanwhile by
/// comparing the rows' versions with those it knew.
struct Watcher {
    name: String,
    backend: Backend,
    statements: Arc<Statements>,
    channel: String,
    /// The table's quoted name, to look for its trigger.
    table: String,
    /// The trigger was looked for (and its absence reported).
    checked_trigger: bool,
    /// The key prefix watched.
    prefix: String,
    timeout: Duration,
    poll: Duration,
    /// The watched keys and their versions as last seen. `None` before the
    /// first snapshot.
    known: Option<BTreeMap<String, i64>>,
    /// Report a resync on connecting: the watch started disconnected.
    resync_on_connect: bool,
    sink: ChangeSink,
}

impl Watcher {
    async fn run(mut self, first: Option<Session>) {
        let mut session = first;
        let mut backoff = BACKOFF.0;
        loop {
            let current = match session.take() {
                Some(s) => s,
                None => match self.connect().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(source = %self.name, error = %e, "sql watch cannot connect; retrying");
                        tokio::time::sleep(self.retry_wait(backoff)).await;
                        backoff = (backoff * 2).min(BACKOFF.1);
                        continue;
                    }
                },
            };
            backoff = BACKOFF.0;
            let reason = self.serve(current).await;
            tracing::warn!(source = %self.name, error = %reason, "sql watch interrupted; connecting again");
            tokio::time::sleep(self.retry_wait(backoff)).await;
        }
    }

    /// How long to wait before connecting again: the backoff for
    /// PostgreSQL, the poll interval for SQLite.
    fn retry_wait(&self, backoff: Duration) -> Duration {
        match self.backend {
            Backend::Sqlite(_) => self.poll,
            Backend::Postgres(_) => backoff,
        }
    }

    /// Connects (and listens, for PostgreSQL), then reports what changed
    /// since the last snapshot.
    async fn connect(&mut self) -> Result<Session, String> {
        let t = self.timeout;
        let mut conn = within(t, self.backend.connect()).await?;
        let notifications = match &self.backend {
            Backend::Postgres(options) => Some(within(t, listen(options, &self.channel)).await?),
            Backend::Sqlite(_) => None,
        };
        if notifications.is_some() && !self.checked_trigger {
            let found = within(t, conn.has_trigger(&self.table)).await?;
            self.checked_trigger = true;
            if !found {
                tracing::warn!(
                    source = %self.name,
                    channel = %self.channel,
                    "the table has no troupe_scripts_notify trigger (SqlSource::install_notify_trigger): unless another trigger notifies the channel, changes are seen only after a reconnect"
                );
            }
        }
        // Listening first, listing second: a change in between is reported
        // twice at worst, never lost.
        let data_version = within(t, conn.data_version()).await?;
        let now = self.snapshot(&mut conn).await?;
        self.report_differences(now);
        Ok(Session {
            conn,
            notifications,
            data_version,
        })
    }

    /// The watched keys and their versions.
    async fn snapshot(&self, conn: &mut Conn) -> Result<BTreeMap<String, i64>, String> {
        let rows = within(
            self.timeout,
            conn.versions(&self.statements, &like_prefix(&self.prefix)),
        )
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(k, _)| k.starts_with(&self.prefix) && validate_key(k).is_ok())
            .collect())
    }

    /// Reports the keys that differ between what was known and `now`, and
    /// remembers `now`.
    fn report_differences(&mut self, now: BTreeMap<String, i64>) {
        match self.known.take() {
            None => {
                if std::mem::take(&mut self.resync_on_connect) {
                    self.sink.send(Change::Resync);
                }
            }
            Some(old) => {
                for change in differences(&old, &now, |a, b| a != b) {
                    self.sink.send(change);
                }
            }
        }
        self.known = Some(now);
    }

    /// Delivers changes until the session breaks; returns why it did.
    async fn serve(&mut self, mut session: Session) -> String {
        match session.notifications.take() {
            Some(notifications) => self.serve_notifications(session, notifications).await,
            None => self.serve_polling(session).await,
        }
    }

    /// SQLite: every poll interval, if the database changed, compares a
    /// fresh snapshot with what was known.
    async fn serve_polling(&mut self, mut session: Session) -> String {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let data_version = match within(self.timeout, session.conn.data_version()).await {
                Ok(v) => v,
                Err(e) => return e,
            };
            if data_version.is_some() && data_version == session.data_version {
                continue;
            }
            match self.snapshot(&mut session.conn).await {
                Ok(now) => {
                    session.data_version = data_version;
                    self.report_differences(now);
                }
                Err(e) => return e,
            }
        }
    }

    /// PostgreSQL: reads each notified key again; checks a quiet
    /// connection every few seconds.
    async fn serve_notifications(
        &mut self,
        mut session: Session,
        mut notifications: Notifications,
    ) -> String {
        let mut health = tokio::time::interval(HEALTH_CHECK);
        health.tick().await;
        loop {
            tokio::select! {
                note = notifications.rx.recv() => {
                    let key = match note {
                        Some(Ok(key)) => key,
                        Some(Err(e)) => return e,
                        None => return "the listener stopped".to_owned(),
                    };
                    if let Err(e) = self.handle(&key, &mut session.conn).await {
                        return e;
                    }
                }
                _ = health.tick() => {
                    if let Err(e) = within(self.timeout, session.conn.ping()).await {
                        return format!("no answer to a ping: {e}");
                    }
                }
            }
        }
    }

    /// Delivers the change a notification of `key` reports.
    async fn handle(&mut self, key: &str, conn: &mut Conn) -> Result<(), String> {
        if key.is_empty() {
            // "Anything may have changed" (a TRUNCATE): compare.
            let now = self.snapshot(conn).await?;
            self.report_differences(now);
            return Ok(());
        }
        if !key.starts_with(&self.prefix) || validate_key(key).is_err() {
            return Ok(());
        }
        let version = within(self.timeout, conn.version(&self.statements, key)).await?;
        let key = key.to_owned();
        if let Some(known) = &mut self.known {
            match version {
                Some(v) => known.insert(key.clone(), v),
                None => known.remove(&key),
            };
        }
        self.sink.send(match version {
            Some(_) => Change::Updated { key },
            None => Change::Removed { key },
        });
        Ok(())
    }
}

/// Listens on `channel` with a connection of its own, forwarding each
/// notification's payload; an `Err` ends the stream (the connection broke).
async fn listen(options: &PgConnectOptions, channel: &str) -> Result<Notifications, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.ignore_pool_close_event(true);
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let item = match listener.try_recv().await {
                Ok(Some(n)) => Ok(n.payload().to_owned()),
                Ok(None) => Err("the listening connection closed".to_owned()),
                Err(e) => Err(describe(&e)),
            };
            let end = item.is_err();
            if tx.send(item).is_err() || end {
                return;
            }
        }
    });
    Ok(Notifications {
        rx,
        _task: AbortOnDrop(task),
    })
}

/// True if `e` leaves the connection unusable: an IO or protocol failure,
/// or the server ending the session (SQLSTATE class 08 or 57).
fn is_broken(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        _ => false,
    }
}

/// True if `e` is about a value that could not be read as the column's
/// expected type.
fn is_decode(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))
}

/// `fut` within `timeout`, any failure as one line.
async fn within<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        let t = Table::parse("Scripts").unwrap();
        assert_eq!(t.name, "scripts");
        assert_eq!(t.sql, "\"scripts\"");
        assert_eq!(t.channel, "troupe_scripts_scripts");
        let t = Table::parse("app.scripts_2").unwrap();
        assert_eq!(t.sql, "\"app\".\"scripts_2\"");
        assert_eq!(t.channel, "troupe_scripts_app_scripts_2");
        for bad in [
            "",
            "a.b.c",
            ".a",
            "a.",
            "1abc",
            "a b",
            "a;drop table x",
            "a\"b",
            "a-b",
            "é",
            &"x".repeat(64),
        ] {
            assert!(Table::parse(bad).is_err(), "{bad:?}");
        }
        let long = Table::parse(&format!("{}.{}", "s".repeat(63), "t".repeat(63))).unwrap();
        assert_eq!(long.channel.len(), 63);
        assert!(long.channel.starts_with("troupe_scripts_sss"));
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_prefix(""), "%");
        assert_eq!(like_prefix("lib/"), "lib/%");
        assert_eq!(like_prefix("a_b%c!d"), "a!_b!%c!!d%");
    }

    #[test]
    fn urls_are_named_without_credentials() {
        let src = SqlSource::connect("postgres://u:s3cret@127.0.0.1:5499/app", "scripts").unwrap();
        assert_eq!(src.name(), "postgres://127.0.0.1:5499/app?table=scripts");
        assert!(!format!("{src:?}").contains("s3cret"));
        let src = SqlSource::connect("sqlite:///srv/t.db", "s.t").unwrap();
        assert_eq!(src.name(), "sqlite:/srv/t.db?table=s.t");
        let err = SqlSource::connect("postgres://u:s3cret@h:notaport/db", "t").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = SqlSource::connect("mysql://h/db", "t").unwrap_err();
        assert!(err.to_string().contains("not an SQL URL"), "{err}");
    }
}
