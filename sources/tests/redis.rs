//! `RedisSource` against a real Redis server (Debian's `redis-server`),
//! started on a free 127.0.0.1 port with its files in a temporary
//! directory. The tests write through a Unix socket of their own, so the
//! server can run with its TCP port (the source's way in) closed.
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use troupe_sources::{Change, RedisSource, Source, SourceError};

const PREFIX: &str = "troupe/scripts/";
/// A loose bound for events and recoveries; none is expected to take long.
const WAIT: Duration = Duration::from_secs(30);

/// A redis-server process, killed when dropped.
struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    /// Extra server arguments (kept across restarts).
    args: Vec<String>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Redis {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(args: &[&str]) -> Self {
        let mut redis = Redis {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        redis.launch(true);
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Starts redis-server, listening on its TCP port only if `tcp`, and
    /// loading the data the last [`stop`](Self::stop) saved.
    fn launch(&mut self, tcp: bool) {
        let port = if tcp { self.port } else { 0 };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--dbfilename", "dump.rdb"])
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "700"])
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/setup installs Debian's redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.try_admin().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_admin(&self) -> redis::RedisResult<redis::Connection> {
        let password = self
            .args
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.args.get(i + 1));
        let mut url = format!("redis+unix://{}", self.socket().display());
        if let Some(password) = password {
            url.push_str(&format!("?pass={password}"));
        }
        let mut conn = redis::Client::open(url)?.get_connection()?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        Ok(conn)
    }

    /// A plain client on the Unix socket, as an operator would use.
    fn admin(&self) -> redis::Connection {
        self.try_admin().expect("admin connection")
    }

    fn set(&self, key: &str, code: &str) {
        redis::cmd("SET")
            .arg(format!("{PREFIX}{key}"))
            .arg(code)
            .query::<()>(&mut self.admin())
            .expect("SET");
    }

    fn del(&self, key: &str) {
        redis::cmd("DEL")
            .arg(format!("{PREFIX}{key}"))
            .query::<()>(&mut self.admin())
            .expect("DEL");
    }

    fn publish_change(&self, key: &str) {
        redis::cmd("PUBLISH")
            .arg(format!("{PREFIX}__changes"))
            .arg(key)
            .query::<()>(&mut self.admin())
            .expect("PUBLISH");
    }

    /// Saves the data (to load it on the next launch) and kills the server.
    fn stop(&mut self) {
        if let Ok(mut conn) = self.try_admin() {
            let _ = redis::cmd("SAVE").query::<()>(&mut conn);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self, tcp: bool) {
        self.stop();
        self.launch(tcp);
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends a stopped (SIGSTOP) process too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn updated(key: &str) -> Change {
    Change::Updated { key: key.into() }
}

fn removed(key: &str) -> Change {
    Change::Removed { key: key.into() }
}

#[test]
fn get_list_and_not_found() {
    let redis = Redis::start();
    redis.set("main.lua", "return 1");
    redis.set("lib/util.lua", "return {}");
    let mut admin = redis.admin();
    for (cmd, key) in [
        ("SET", "elsewhere/x.lua"),
        // Not strings, or not valid keys: never listed.
        ("HSET", "troupe/scripts/hash.lua"),
        ("SET", "troupe/scripts/a//b.lua"),
        // The prefix's `*` is no wildcard.
        ("SET", "we*ird/b.lua"),
        ("SET", "weXird/a.lua"),
    ] {
        let mut c = redis::cmd(cmd);
        c.arg(key);
        if cmd == "HSET" {
            c.arg("field");
        }
        c.arg("v").query::<()>(&mut admin).expect(cmd);
    }

    let src = RedisSource::new(&redis.url(), PREFIX).unwrap();
    let v1 = src.get("main.lua").unwrap();
    assert_eq!(&*v1.code, b"return 1");
    assert_eq!(v1.key, "main.lua");
    assert_eq!(src.get("main.lua").unwrap().version, v1.version);
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/util.lua", "main.lua"],
        "sorted, string keys under the prefix only"
    );
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert!(src.list("nothing/").unwrap().is_empty());
    match src.get("missing.lua") {
        Err(SourceError::NotFound { key, source_name }) => {
            assert_eq!(key, "missing.lua");
            assert_eq!(source_name, format!("{}/{PREFIX}", redis.url()));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(
        matches!(src.get("hash.lua"), Err(SourceError::BadContent { .. })),
        "a hash is no script"
    );

    redis.set("main.lua", "return 2");
    let v2 = src.get("main.lua").unwrap();
    assert_eq!(&*v2.code, b"return 2");
    assert_ne!(v2.version, v1.version);

    let weird = RedisSource::new(&redis.url(), "we*ird/").unwrap();
    assert_eq!(weird.list("").unwrap(), vec!["b.lua"]);
}

#[test]
fn invalid_keys_are_refused_before_asking_the_server() {
    // Nothing listens on this port: an answer can only come from the
    // key check.
    let src = RedisSource::new(&format!("redis://127.0.0.1:{}", free_port()), PREFIX).unwrap();
    for key in [
        "",
        "../x.lua",
        "/etc/passwd",
        "a//b.lua",
        "a\\b.lua",
        "./a.lua",
    ] {
        assert!(
            matches!(src.get(key), Err(SourceError::InvalidKey { .. })),
            "{key:?}"
        );
    }
}

#[test]
fn watch_sees_a_set_and_a_del() {
    let redis = Redis::start();
    redis.set("main.lua", "return 1");
    redis.set("lib/a.lua", "return 1");
    let src = RedisSource::new(&redis.url(), PREFIX).unwrap();
    let all = src.watch("").unwrap();
    let lib = src.watch("lib/").unwrap();

    redis.set("main.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("main.lua")));
    redis::cmd("SET")
        .arg("elsewhere/x.lua")
        .arg("not ours")
        .query::<()>(&mut redis.admin())
        .unwrap();
    redis.del("main.lua");
    assert_eq!(all.recv_timeout(WAIT), Some(removed("main.lua")));
    redis.set("lib/b.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    // The `lib/` watch saw only what is under `lib/`.
    assert_eq!(lib.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    assert_eq!(lib.try_recv(), None);
    assert!(matches!(
        src.get("main.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

#[test]
fn watch_resubscribes_after_a_restart_and_reports_what_changed_meanwhile() {
    let mut redis = Redis::start();
    redis.set("job.lua", "return 'v1'");
    redis.set("gone.lua", "return 0");
    let src = RedisSource::new(&redis.url(), PREFIX).unwrap();
    let watch = src.watch("").unwrap();
    redis.set("job.lua", "return 'v2'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("job.lua")));

    // The server restarts with the source's TCP port closed: the watch is
    // cut off while these writes happen, so only the comparison it makes
    // once it is back in can report them. (The restarted server has also
    // forgotten its keyspace notification settings.)
    redis.restart(false);
    redis.set("job.lua", "return 'v3'");
    redis.del("gone.lua");
    redis.set("new.lua", "return 'new'");
    redis.restart(true);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match watch.recv_timeout(WAIT) {
            Some(change) => seen.push(change),
            None => panic!("only {seen:?} reported after the restart"),
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![updated("job.lua"), updated("new.lua"), removed("gone.lua")]
    );

    // Subscribed again: a change now is an event of the new subscription.
    redis.set("job.lua", "return 'v4'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("job.lua")));
    // `get` reconnects on its own after the restart.
    assert_eq!(&*src.get("job.lua").unwrap().code, b"return 'v4'");
}

#[test]
fn a_server_refusing_config_is_watched_through_the_changes_channel() {
    let redis = Redis::start_with(&["--rename-command", "CONFIG", ""]);
    redis.set("a.lua", "return 1");
    let src = RedisSource::new(&redis.url(), PREFIX).unwrap();
    let watch = src.watch("").unwrap();
    redis.set("a.lua", "return 2");
    redis.publish_change("a.lua");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("a.lua")));
    redis.del("a.lua");
    redis.publish_change("a.lua");
    assert_eq!(watch.recv_timeout(WAIT), Some(removed("a.lua")));
    redis.publish_change("");
    assert_eq!(watch.recv_timeout(WAIT), Some(Change::Resync));
}

#[test]
fn a_server_that_is_down_is_unavailable_and_named_without_the_password() {
    let mut redis = Redis::start_with(&["--requirepass", "s3cret-pw"]);
    redis.set("a.lua", "return 1");
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}", redis.port);
    let src = RedisSource::new(&url, PREFIX)
        .unwrap()
        .timeout(Duration::from_secs(5));
    let name = format!("redis://127.0.0.1:{}/{PREFIX}", redis.port);
    assert_eq!(src.name(), name);
    assert!(src.get("a.lua").is_ok());

    redis.stop();
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
    redis.launch(true);
    assert_eq!(watch.recv_timeout(WAIT), Some(Change::Resync));
    redis.set("a.lua", "return 2");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("a.lua")));
}

#[test]
fn a_hanging_server_gives_timed_out_within_the_deadline() {
    let redis = Redis::start();
    redis.set("a.lua", "return 1");
    let src = RedisSource::new(&redis.url(), PREFIX)
        .unwrap()
        .timeout(Duration::from_millis(500));
    assert!(src.get("a.lua").is_ok());

    redis.signal("STOP");
    // Once on the open connection, once while connecting anew.
    for _ in 0..2 {
        let started = Instant::now();
        let err = src.get("a.lua").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "it returned");
        assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("no answer within 500ms"), "{err}");
        assert_eq!(
            err.source_name(),
            Some(format!("{}/{PREFIX}", redis.url()).as_str())
        );
    }
    let started = Instant::now();
    assert!(matches!(src.list(""), Err(SourceError::TimedOut { .. })));
    assert!(started.elapsed() < Duration::from_secs(10));

    redis.signal("CONT");
    let deadline = Instant::now() + WAIT;
    loop {
        match src.get("a.lua") {
            Ok(script) => break assert_eq!(&*script.code, b"return 1"),
            Err(e) => assert!(Instant::now() < deadline, "never recovered: {e}"),
        }
    }
}
