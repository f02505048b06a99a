//! Spawn from each networked (and archive/Git) script source, beside the
//! source's raw client against the same server, all in one run, so the
//! ratios are the figures that count (issue 21).
//!
//! Every source serves one 2 KB script, `return 1` and a comment, under
//! `s.lua`. Each source's group measures:
//!
//! * `raw_get` — the raw client reading that script, on a current-thread
//!   tokio runtime on the bench thread where the client is async:
//!   * redis: a `GET` on a multiplexed connection of the `redis` crate;
//!   * etcd: `etcd_client::Client::get`;
//!   * postgres, sqlite: `SELECT code FROM scripts WHERE key = $1` on an
//!     open sqlx connection (the source's own query, less its version);
//!   * s3: `object_store`'s `get` + `bytes` on an `AmazonS3` to `s3s-fs`;
//!   * http: a plain `reqwest` GET of the body (the source revalidates
//!     with `If-None-Match` and gets a `304` without one);
//!   * git: `gix` reading the blob by its id (known beforehand) from the
//!     opened repository;
//!   * zip: `std::fs::read` of the archive, then the `zip` crate finding
//!     and reading the (stored) entry.
//! * `source_get` — the Troupe source's `get` of the same script.
//! * `spawn_cold` — spawn + run + exit (1 worker, batches of 100) from a
//!   runtime reading the source directly: one `get` per spawn.
//! * `spawn_cached` — the same through `CachedSource::new(source)`.
//! * `spawn_memory` — the same from a `MemorySource` (the baseline), in
//!   the same group, so each source's spawn ratios are against a baseline
//!   measured seconds apart.
//!
//! Every runtime has hot reload on (so it watches its source, as a host
//! serving changing scripts does). The servers (redis-server, etcd,
//! PostgreSQL, s3s-fs, a keep-alive HTTP/1.1 server in this process)
//! listen on 127.0.0.1 with their files in temporary directories; the
//! S3 source is built with `ObjectStoreSource::new` over an `AmazonS3`
//! with the server's credentials (`ObjectStoreSource::s3` reads them from
//! the environment).
//!
//! Run with `cargo bench --all-features --bench remote_sources`.

#[path = "../sources/tests/support/postgres.rs"]
mod postgres;
#[path = "support/servers.rs"]
mod servers;
#[path = "support/sources.rs"]
mod source_support;
#[path = "support/spawn.rs"]
mod spawn_support;

use std::any::Any;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStoreExt, PutPayload};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use troupe::{
    CachedSource, EtcdSource, GitSource, HttpSource, MemorySource, ObjectStoreSource, RedisSource,
    Source, Spawn, SqlSource, Value, ZipSource,
};

use servers::HttpServer;
use source_support::runtime;
use spawn_support::spawn_batches;

/// The key every source serves the script under.
const KEY: &str = "s.lua";
/// Where the key-value and object stores keep it.
const PREFIX: &str = "troupe/scripts/";
/// Spawns per batch (spawned, then all joined).
const BATCH: u64 = 100;
const S3_ACCESS_KEY: &str = "troupe-bench-access";
const S3_SECRET_KEY: &str = "troupe-bench-s3cret-key";
const S3_BUCKET: &str = "scripts";

/// The 2 KB script: `return 1`, padded with a comment.
fn script() -> Vec<u8> {
    let mut code = b"return 1\n".to_vec();
    while code.len() < 2048 {
        code.extend_from_slice(b"-- padding, so the script is 2 KB like a small real one\n");
    }
    code.truncate(2047);
    code.push(b'\n');
    code
}

/// A raw client's read of the script.
type RawGet = Box<dyn FnMut() -> Vec<u8>>;

/// One source under test. Fields drop in order: the clients, then what
/// keeps the server up.
struct Case {
    name: &'static str,
    raw: RawGet,
    source: Arc<dyn Source>,
    _server: Box<dyn Any>,
}

impl Case {
    fn new(name: &'static str, raw: RawGet, source: impl Source, server: impl Any) -> Self {
        Case {
            name,
            raw,
            source: Arc::new(source),
            _server: Box::new(server),
        }
    }
}

/// A runtime for the async raw clients, driven from the bench thread.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn redis() -> Case {
    let server = servers::redis();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let rt = current_thread();
    let client = redis::Client::open(url.as_str()).expect("redis URL");
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connect to redis");
    let key = format!("{PREFIX}{KEY}");
    rt.block_on(
        redis::cmd("SET")
            .arg(&key)
            .arg(script())
            .query_async::<()>(&mut conn),
    )
    .expect("SET");
    let raw = move || {
        rt.block_on(
            redis::cmd("GET")
                .arg(&key)
                .query_async::<Vec<u8>>(&mut conn),
        )
        .expect("GET")
    };
    let source = RedisSource::new(&url, PREFIX).expect("redis source");
    Case::new("redis", Box::new(raw), source, server)
}

fn etcd() -> Case {
    let server = servers::etcd();
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let rt = current_thread();
    let mut client = rt
        .block_on(etcd_client::Client::connect([endpoint.as_str()], None))
        .expect("connect to etcd");
    let key = format!("{PREFIX}{KEY}");
    rt.block_on(client.put(key.as_str(), script(), None))
        .expect("put");
    let raw = move || {
        let resp = rt.block_on(client.get(key.as_str(), None)).expect("get");
        resp.kvs().first().expect("the key").value().to_vec()
    };
    let source = EtcdSource::connect(&[endpoint], PREFIX).expect("etcd source");
    Case::new("etcd", Box::new(raw), source, server)
}

/// An open connection of either SQL driver.
enum SqlConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$c` bound to the connection, whichever driver's.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            SqlConn::Sqlite($c) => $body,
            SqlConn::Postgres($c) => $body,
        }
    };
}

/// The `scripts` table with the script in the database at `url`
/// (`sqlite://…` or `postgres://…`), made through the raw connection,
/// which then reads it.
fn sql(name: &'static str, url: &str, server: impl Any) -> Case {
    let rt = current_thread();
    let pg = url.starts_with("postgres");
    let mut conn = rt
        .block_on(async {
            Ok::<_, sqlx::Error>(if pg {
                SqlConn::Postgres(PgConnection::connect(url).await?)
            } else {
                let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
                SqlConn::Sqlite(options.connect().await?)
            })
        })
        .expect("connect to the database");
    let (blob, insert, select) = if pg {
        let select = "SELECT code FROM scripts WHERE key = $1";
        ("BYTEA", "INSERT INTO scripts VALUES ($1, $2, 1)", select)
    } else {
        let select = "SELECT code FROM scripts WHERE key = ?1";
        ("BLOB", "INSERT INTO scripts VALUES (?1, ?2, 1)", select)
    };
    let create = format!(
        "CREATE TABLE scripts (key TEXT PRIMARY KEY, code {blob} NOT NULL, version BIGINT NOT NULL)"
    );
    rt.block_on(async {
        on_conn!(&mut conn, c => {
            sqlx::query(AssertSqlSafe(create)).execute(&mut *c).await?;
            sqlx::query(insert).bind(KEY).bind(script()).execute(c).await.map(drop)
        })
    })
    .expect("create the table");
    let source = SqlSource::connect(url, "scripts").expect("sql source");
    if pg {
        // What a host watching PostgreSQL installs.
        source.install_notify_trigger().expect("notify trigger");
    }
    let raw = move || {
        rt.block_on(async {
            on_conn!(&mut conn, c => sqlx::query_scalar::<_, Vec<u8>>(select).bind(KEY).fetch_one(c).await)
        })
        .expect("SELECT")
    };
    Case::new(name, Box::new(raw), source, server)
}

fn postgres() -> Case {
    let server = postgres::Postgres::start();
    sql("postgres", &server.url("postgres"), server)
}

fn sqlite() -> Case {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("scripts.db").display());
    sql("sqlite", &url, dir)
}

/// A client of `s3s-fs` on `port`.
fn s3_store(port: u16) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(S3_BUCKET)
        .with_access_key_id(S3_ACCESS_KEY)
        .with_secret_access_key(S3_SECRET_KEY)
        .build()
        .expect("S3 client")
}

fn s3() -> Case {
    let server = servers::s3s_fs(S3_ACCESS_KEY, S3_SECRET_KEY);
    std::fs::create_dir(server.dir.path().join(S3_BUCKET)).expect("bucket directory");
    let rt = current_thread();
    let store = s3_store(server.port);
    let path = object_store::path::Path::from(format!("{PREFIX}{KEY}"));
    rt.block_on(store.put(&path, PutPayload::from(script())))
        .expect("put");
    let raw = move || {
        rt.block_on(async { store.get(&path).await?.bytes().await })
            .expect("get")
            .to_vec()
    };
    let name = format!("s3://{S3_BUCKET}/{PREFIX}");
    let source =
        ObjectStoreSource::new(Arc::new(s3_store(server.port)), name, PREFIX).expect("s3 source");
    Case::new("s3", Box::new(raw), source, server)
}

fn http() -> Case {
    let server = HttpServer::start(&format!("/{PREFIX}{KEY}"), &script());
    let base = format!("http://127.0.0.1:{}/{PREFIX}", server.port);
    let url = format!("{base}{KEY}");
    let rt = current_thread();
    let client = reqwest::Client::new();
    let raw = move || {
        let get = async {
            client
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
        };
        rt.block_on(get).expect("GET").to_vec()
    };
    let source = HttpSource::new(&base).expect("http source");
    Case::new("http", Box::new(raw), source, server)
}

/// Runs `git ARGS` in `dir` without user or system configuration; its
/// output, trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@troupe.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgSign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn git_repo() -> Case {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(KEY), script()).expect("write the script");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", KEY]);
    git(dir.path(), &["commit", "-q", "-m", "script"]);
    let blob = git(dir.path(), &["rev-parse", &format!("HEAD:{KEY}")]);
    let id = gix::ObjectId::from_hex(blob.as_bytes()).expect("blob id");
    let repo = gix::open_opts(dir.path(), gix::open::Options::isolated()).expect("open");
    let raw = move || repo.find_object(id).expect("blob").detach().data;
    let source = GitSource::open(dir.path(), "main", "").expect("git source");
    Case::new("git", Box::new(raw), source, dir)
}

fn zip() -> Case {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("scripts.zip");
    let mut archive = zip::ZipWriter::new(std::fs::File::create(&path).expect("create"));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    archive.start_file(KEY, options).expect("entry");
    archive.write_all(&script()).expect("write the entry");
    archive.finish().expect("finish the archive");
    let source = ZipSource::open(&path).expect("zip source");
    let raw = move || {
        let bytes = std::fs::read(&path).expect("read the archive");
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("archive");
        let mut entry = archive.by_name(KEY).expect("entry");
        let mut code = Vec::new();
        entry.read_to_end(&mut code).expect("read the entry");
        code
    };
    Case::new("zip", Box::new(raw), source, dir)
}

/// Times spawn + run + exit of the script from a runtime over `source`.
fn spawns(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, source: impl Source) {
    let rt = runtime(source);
    let spawn = Spawn::script(KEY);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| spawn_batches(&rt, &spawn, BATCH, iters, &Value::Int(1)));
    });
    rt.shutdown();
}

fn remote_sources(c: &mut Criterion) {
    let cases: [fn() -> Case; 8] = [redis, etcd, postgres, sqlite, s3, http, git_repo, zip];
    for make in cases {
        let mut case = make();
        assert_eq!((case.raw)(), script(), "{}: raw get", case.name);
        let got = case.source.get(KEY).expect("source get");
        assert_eq!(&*got.code, &script()[..], "{}: source get", case.name);
        let mut g = c.benchmark_group(case.name);
        g.sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2));
        g.bench_function("raw_get", |b| b.iter(&mut case.raw));
        let source = &case.source;
        g.bench_function("source_get", |b| b.iter(|| source.get(KEY).expect("get")));
        spawns(&mut g, "spawn_cold", Arc::clone(source));
        spawns(
            &mut g,
            "spawn_cached",
            CachedSource::new(Arc::clone(source)),
        );
        spawns(
            &mut g,
            "spawn_memory",
            MemorySource::new().with(KEY, script()),
        );
        g.finish();
    }
}

criterion_group!(benches, remote_sources);
criterion_main!(benches);
