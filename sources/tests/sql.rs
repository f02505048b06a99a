//! `SqlSource` against real databases: an SQLite file in a temporary
//! directory (written by the tests through sqlx), and a PostgreSQL cluster
//! of its own per test (Debian's `postgresql`, see `support/postgres.rs`),
//! restarted, stopped and frozen with `SIGSTOP`.

#[path = "support/postgres.rs"]
mod postgres;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use postgres::Postgres;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use troupe_sources::{Change, Source, SourceError, SqlSource};

/// A loose bound for events and recoveries; none is expected to take long.
const WAIT: Duration = Duration::from_secs(30);
const DB: &str = "troupe";
const TABLE: &str = "scripts";

fn updated(key: &str) -> Change {
    Change::Updated { key: key.into() }
}

fn removed(key: &str) -> Change {
    Change::Removed { key: key.into() }
}

/// `n` changes from `watch`, sorted.
fn next_changes(watch: &troupe_sources::Watch, n: usize) -> Vec<Change> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match watch.recv_timeout(WAIT) {
            Some(change) => seen.push(change),
            None => panic!("only {seen:?} reported, {n} expected"),
        }
    }
    seen.sort();
    seen
}

/// The next change that is not a repeat of one in `skip` (a change made
/// while a watch reconnects may be reported twice).
fn next_other(watch: &troupe_sources::Watch, skip: &[Change]) -> Option<Change> {
    let deadline = Instant::now() + WAIT;
    while let Some(change) = watch.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if !skip.contains(&change) {
            return Some(change);
        }
    }
    None
}

// --- SQLite --------------------------------------------------------------

/// An SQLite database file in a temporary directory, written through a
/// connection of the test's own.
struct Lite {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    conn: Option<SqliteConnection>,
}

impl Lite {
    fn create() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("scripts.db"))
            .create_if_missing(true)
            .disable_statement_logging();
        let conn = rt.block_on(options.connect()).expect("create the database");
        let mut lite = Lite {
            dir,
            rt,
            conn: Some(conn),
        };
        lite.exec(
            "CREATE TABLE scripts (key TEXT PRIMARY KEY, code BLOB NOT NULL, version BIGINT NOT NULL)",
            &[],
        );
        lite
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("scripts.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    fn exec(&mut self, sql: &str, binds: &[&str]) {
        let conn = self.conn.as_mut().expect("open");
        self.rt.block_on(async {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                query = query.bind(*b);
            }
            query.execute(conn).await.expect(sql);
        });
    }

    /// Inserts `key` or replaces its code, bumping its version.
    fn put(&mut self, key: &str, code: &str) {
        self.exec(
            "INSERT INTO scripts (key, code, version) VALUES (?1, CAST(?2 AS BLOB), 1) \
             ON CONFLICT (key) DO UPDATE SET code = excluded.code, version = scripts.version + 1",
            &[key, code],
        );
    }

    fn delete(&mut self, key: &str) {
        self.exec("DELETE FROM scripts WHERE key = ?1", &[key]);
    }

    fn source(&self) -> SqlSource {
        SqlSource::connect(&self.url(), TABLE)
            .unwrap()
            .poll_interval(Duration::from_millis(100))
    }
}

#[test]
fn sqlite_get_list_and_not_found() {
    let mut lite = Lite::create();
    lite.put("main.lua", "return 1");
    lite.put("lib/util.lua", "return {}");
    lite.put("a_b/x.lua", "return 'a_b'");
    lite.put("aXb/y.lua", "return 'aXb'");
    lite.put("Lib/upper.lua", "return 'upper'");
    // Not a valid key: never listed.
    lite.put("bad//key.lua", "return 0");

    let src = lite.source();
    assert_eq!(
        src.name(),
        format!("sqlite:{}?table=scripts", lite.path().display())
    );
    let v1 = src.get("main.lua").unwrap();
    assert_eq!(&*v1.code, b"return 1");
    assert_eq!(v1.key, "main.lua");
    assert_eq!(src.get("main.lua").unwrap().version, v1.version);
    assert_eq!(
        src.list("").unwrap(),
        vec![
            "Lib/upper.lua",
            "aXb/y.lua",
            "a_b/x.lua",
            "lib/util.lua",
            "main.lua"
        ],
        "sorted by bytes, valid keys only"
    );
    // `_` is no wildcard, and the prefix's case counts.
    assert_eq!(src.list("a_b/").unwrap(), vec!["a_b/x.lua"]);
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert!(src.list("nothing/").unwrap().is_empty());
    match src.get("missing.lua") {
        Err(SourceError::NotFound { key, source_name }) => {
            assert_eq!(key, "missing.lua");
            assert_eq!(source_name, src.name());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        src.get("../x.lua"),
        Err(SourceError::InvalidKey { .. })
    ));

    lite.put("main.lua", "return 2");
    let v2 = src.get("main.lua").unwrap();
    assert_eq!(&*v2.code, b"return 2");
    assert_ne!(v2.version, v1.version);
    // The same code again: the same version, whatever the row's counter.
    lite.put("main.lua", "return 1");
    assert_eq!(src.get("main.lua").unwrap().version, v1.version);
}

#[test]
fn sqlite_watch_sees_insert_update_and_delete_by_polling() {
    let mut lite = Lite::create();
    lite.put("main.lua", "return 1");
    lite.put("lib/a.lua", "return 1");
    let src = lite.source();
    let all = src.watch("").unwrap();
    let lib = src.watch("lib/").unwrap();

    lite.put("new.lua", "return 'new'");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("new.lua")));
    lite.put("main.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("main.lua")));
    lite.delete("main.lua");
    assert_eq!(all.recv_timeout(WAIT), Some(removed("main.lua")));
    lite.put("lib/b.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    // The `lib/` watch saw only what is under `lib/`.
    assert_eq!(lib.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    assert_eq!(lib.try_recv(), None);
    assert_eq!(all.try_recv(), None);
}

#[test]
fn sqlite_missing_file_is_unavailable_and_a_watch_resyncs_once_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.db");
    let src = SqlSource::connect(&format!("sqlite://{}", path.display()), TABLE)
        .unwrap()
        .poll_interval(Duration::from_millis(100));
    let name = format!("sqlite:{}?table=scripts", path.display());
    for err in [src.get("a.lua").unwrap_err(), src.list("").unwrap_err()] {
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert_eq!(err.source_name(), Some(name.as_str()));
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
    assert!(!path.exists(), "the source never creates the file");

    let watch = src.watch("").unwrap();
    let mut lite = Lite::create();
    lite.put("a.lua", "return 1");
    std::fs::rename(lite.path(), &path).unwrap();
    assert_eq!(watch.recv_timeout(WAIT), Some(Change::Resync));
    assert_eq!(src.list("").unwrap(), vec!["a.lua"]);
}

#[test]
fn invalid_table_names_are_refused() {
    let pg = Postgres::start();
    pg.create_database(DB);
    pg.psql(
        DB,
        "CREATE TABLE scripts (key TEXT PRIMARY KEY, code BYTEA NOT NULL, version BIGINT NOT NULL)",
    );
    pg.psql(DB, "INSERT INTO scripts VALUES ('a.lua', 'return 1', 1)");
    for table in [
        "scripts; DROP TABLE scripts",
        "scripts--",
        "\"scripts\"",
        "a.b.c",
        "1scripts",
        "",
        "scripts WHERE true",
    ] {
        for url in [pg.url(DB), "sqlite:///nonexistent.db".to_owned()] {
            match SqlSource::connect(&url, table) {
                Err(SourceError::Unavailable { reason, .. }) => {
                    assert!(reason.contains("invalid table name"), "{table:?}: {reason}")
                }
                other => panic!("{table:?} accepted: {other:?}"),
            }
        }
    }
    // Nothing reached the server; names that are fine work, in any case.
    for table in ["scripts", "SCRIPTS", "public.scripts"] {
        let src = SqlSource::connect(&pg.url(DB), table).unwrap();
        assert_eq!(&*src.get("a.lua").unwrap().code, b"return 1", "{table}");
    }
}

// --- PostgreSQL ----------------------------------------------------------

/// A cluster with database `troupe` and its `scripts` table.
fn postgres_with_table() -> Postgres {
    let pg = Postgres::start();
    pg.create_database(DB);
    pg.psql(
        DB,
        "CREATE TABLE scripts (key TEXT PRIMARY KEY, code BYTEA NOT NULL, version BIGINT NOT NULL)",
    );
    pg
}

/// `text` as an SQL string literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Inserts `key` or replaces its code, bumping its version.
fn put(pg: &Postgres, key: &str, code: &str) {
    let (key, code) = (lit(key), lit(code));
    pg.psql(
        DB,
        &format!(
            "INSERT INTO scripts VALUES ({key}, convert_to({code}, 'UTF8'), 1) \
             ON CONFLICT (key) DO UPDATE SET code = excluded.code, version = scripts.version + 1"
        ),
    );
}

fn delete(pg: &Postgres, key: &str) {
    pg.psql(DB, &format!("DELETE FROM scripts WHERE key = {}", lit(key)));
}

#[test]
fn postgres_get_list_and_not_found() {
    let pg = postgres_with_table();
    put(&pg, "main.lua", "return 1");
    put(&pg, "lib/util.lua", "return {}");
    put(&pg, "a%b/x.lua", "return 1");
    put(&pg, "aXb/y.lua", "return 1");
    put(&pg, "bad//key.lua", "return 0");

    let src = SqlSource::connect(&pg.url(DB), TABLE).unwrap();
    assert_eq!(
        src.name(),
        format!("postgres://127.0.0.1:{}/{DB}?table=scripts", pg.port())
    );
    let v1 = src.get("main.lua").unwrap();
    assert_eq!(&*v1.code, b"return 1");
    assert_eq!(v1.key, "main.lua");
    assert_eq!(
        src.list("").unwrap(),
        vec!["a%b/x.lua", "aXb/y.lua", "lib/util.lua", "main.lua"]
    );
    assert_eq!(src.list("a%").unwrap(), vec!["a%b/x.lua"]);
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert!(src.list("nothing/").unwrap().is_empty());
    match src.get("missing.lua") {
        Err(SourceError::NotFound { key, source_name }) => {
            assert_eq!(key, "missing.lua");
            assert_eq!(source_name, src.name());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    put(&pg, "main.lua", "return 2");
    let v2 = src.get("main.lua").unwrap();
    assert_eq!(&*v2.code, b"return 2");
    assert_ne!(v2.version, v1.version);

    // A table that is not there: unavailable, naming the source.
    let other = SqlSource::connect(&pg.url(DB), "other").unwrap();
    let err = other.get("main.lua").unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("other"), "{err}");
}

#[test]
fn postgres_watch_sees_insert_update_and_delete_through_notify() {
    let pg = postgres_with_table();
    put(&pg, "main.lua", "return 1");
    put(&pg, "lib/a.lua", "return 1");
    let src = SqlSource::connect(&pg.url(DB), TABLE).unwrap();
    src.install_notify_trigger().unwrap();
    // Installing again replaces it.
    src.install_notify_trigger().unwrap();
    assert_eq!(src.channel(), "troupe_scripts_scripts");
    let all = src.watch("").unwrap();
    let lib = src.watch("lib/").unwrap();

    put(&pg, "new.lua", "return 'new'");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("new.lua")));
    put(&pg, "main.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("main.lua")));
    delete(&pg, "main.lua");
    assert_eq!(all.recv_timeout(WAIT), Some(removed("main.lua")));
    put(&pg, "lib/b.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    assert_eq!(lib.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    // A rename reports both keys.
    pg.psql(
        DB,
        "UPDATE scripts SET key = 'renamed.lua', version = version + 1 WHERE key = 'new.lua'",
    );
    assert_eq!(
        next_changes(&all, 2),
        vec![updated("renamed.lua"), removed("new.lua")]
    );
    // TRUNCATE: the watch lists the table again.
    pg.psql(DB, "TRUNCATE scripts");
    assert_eq!(
        next_changes(&all, 3),
        vec![
            removed("lib/a.lua"),
            removed("lib/b.lua"),
            removed("renamed.lua")
        ]
    );
    assert_eq!(
        next_changes(&lib, 2),
        vec![removed("lib/a.lua"), removed("lib/b.lua")]
    );
    assert_eq!(lib.try_recv(), None);
}

#[test]
fn postgres_watch_reconnects_after_a_restart_and_reports_what_changed_meanwhile() {
    let mut pg = postgres_with_table();
    put(&pg, "job.lua", "return 'v1'");
    put(&pg, "gone.lua", "return 0");
    let src = SqlSource::connect(&pg.url(DB), TABLE).unwrap();
    src.install_notify_trigger().unwrap();
    let watch = src.watch("").unwrap();
    put(&pg, "job.lua", "return 'v2'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("job.lua")));

    // The server restarts with TCP closed: the watch is cut off while
    // these writes happen (through the Unix socket), so only the listing
    // it compares once it is back in can report them.
    pg.restart(false);
    put(&pg, "job.lua", "return 'v3'");
    delete(&pg, "gone.lua");
    put(&pg, "new.lua", "return 'new'");
    pg.restart(true);
    assert_eq!(
        next_changes(&watch, 3),
        vec![updated("job.lua"), updated("new.lua"), removed("gone.lua")]
    );

    // Listening again: a change now is a notification.
    put(&pg, "job.lua", "return 'v4'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("job.lua")));
    // `get` reconnects on its own after the restart.
    assert_eq!(&*src.get("job.lua").unwrap().code, b"return 'v4'");

    // A plain restart, and a change made right after it, before the watch
    // (backing off) listens again: reported by the listing or by a
    // notification, never lost.
    pg.restart(true);
    put(&pg, "early.lua", "return 'early'");
    assert_eq!(next_other(&watch, &[]), Some(updated("early.lua")));
    put(&pg, "late.lua", "return 'late'");
    assert_eq!(
        next_other(&watch, &[updated("early.lua")]),
        Some(updated("late.lua"))
    );
}

#[test]
fn postgres_down_is_unavailable_and_named_without_the_password() {
    let mut pg = postgres_with_table();
    put(&pg, "a.lua", "return 1");
    let url = format!(
        "postgres://{}:s3cret-pw@127.0.0.1:{}/{DB}",
        postgres::USER,
        pg.port()
    );
    let src = SqlSource::connect(&url, TABLE)
        .unwrap()
        .timeout(Duration::from_secs(5));
    src.install_notify_trigger().unwrap();
    let name = format!("postgres://127.0.0.1:{}/{DB}?table=scripts", pg.port());
    assert_eq!(src.name(), name);
    assert!(!format!("{src:?}").contains("s3cret"));
    assert!(src.get("a.lua").is_ok());

    pg.stop();
    for err in [src.get("a.lua").unwrap_err(), src.list("").unwrap_err()] {
        assert!(err.is_retryable(), "{err}");
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert_eq!(err.source_name(), Some(name.as_str()), "{err}");
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "no password: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    // A watch started while the server is down starts when it is back,
    // with a resync since it may have missed changes.
    let watch = src.watch("").unwrap();
    pg.launch(true);
    assert_eq!(watch.recv_timeout(WAIT), Some(Change::Resync));
    put(&pg, "a.lua", "return 2");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("a.lua")));
}

#[test]
fn postgres_frozen_gives_timed_out_within_the_deadline() {
    let pg = postgres_with_table();
    put(&pg, "a.lua", "return 1");
    let src = SqlSource::connect(&pg.url(DB), TABLE)
        .unwrap()
        .timeout(Duration::from_millis(500));
    assert!(src.get("a.lua").is_ok());

    // The server and its backends: the open connection hangs, and so
    // does connecting anew.
    pg.signal_all("STOP");
    for _ in 0..2 {
        let started = Instant::now();
        let err = src.get("a.lua").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "it returned");
        assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("no answer within 500ms"), "{err}");
        assert_eq!(err.source_name(), Some(src.name().as_str()));
    }
    let started = Instant::now();
    assert!(matches!(src.list(""), Err(SourceError::TimedOut { .. })));
    assert!(started.elapsed() < Duration::from_secs(10));

    pg.signal_all("CONT");
    let deadline = Instant::now() + WAIT;
    loop {
        match src.get("a.lua") {
            Ok(script) => break assert_eq!(&*script.code, b"return 1"),
            Err(e) => assert!(Instant::now() < deadline, "never recovered: {e}"),
        }
    }
}

#[test]
fn postgres_sslmode_from_the_url_is_kept() {
    // `sslmode=require` against a server without TLS fails rather than
    // falling back to plain text.
    let pg = postgres_with_table();
    put(&pg, "a.lua", "return 1");
    let plain = SqlSource::connect(&format!("{}?sslmode=disable", pg.url(DB)), TABLE).unwrap();
    assert!(plain.get("a.lua").is_ok());
    let tls = SqlSource::connect(&format!("{}?sslmode=require", pg.url(DB)), TABLE)
        .unwrap()
        .timeout(Duration::from_secs(5));
    let err = tls.get("a.lua").unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
}
