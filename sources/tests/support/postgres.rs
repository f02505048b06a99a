//! A throwaway PostgreSQL cluster for tests (Debian's `postgresql`
//! package; `.ci/setup` installs it): `initdb` in a temporary directory,
//! then `postgres` on a free 127.0.0.1 port with its Unix socket in that
//! directory, trust authentication for the superuser `troupe`, no fsync
//! ([`Postgres::start_durable`]: with it, for benchmarks).
//! Killed when dropped. Needs only `std` and `tempfile`, so any test crate
//! can include it: `#[path = ".../support/postgres.rs"] mod postgres;`.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (as CI
//! does), the directory is given to the `nobody` user and every server
//! and client command runs as `nobody` (uid and gid set by
//! `std::os::unix::process::CommandExt`, supplementary groups dropped);
//! otherwise they run as the calling user.
//!
//! The binaries are taken from `TROUPE_PG_BIN` if set, else from the
//! newest `/usr/lib/postgresql/<version>/bin`, else from `PATH`.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The superuser `initdb` creates; no password (trust authentication).
pub const USER: &str = "troupe";

/// A PostgreSQL server with its own cluster, killed (and its files
/// removed) when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// The uid and gid commands run as, when the tests run as root.
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    /// Whether commits are made durable (`fsync`), as in production.
    durable: bool,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Postgres {
    /// Creates a cluster and starts its server, listening on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// [`start`](Self::start) with PostgreSQL's default durability: every
    /// commit is flushed to disk (`fsync`, `synchronous_commit`).
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = std::fs::metadata(dir.path()).expect("temp dir").uid() == 0;
        let run_as = root.then(nobody);
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let mut pg = Postgres {
            dir,
            port: free_port(),
            bin: bin_dir(),
            run_as,
            child: None,
            durable,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-U", USER, "--auth=trust", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"])
            .output()
            .expect("initdb runs (.ci/setup installs Debian's postgresql)");
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        pg.launch(true);
        pg
    }

    /// The port the server listens on (and names its socket after).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the Unix socket (and the cluster).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log (kept across restarts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A TCP URL for database `db` as [`USER`].
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// A command running `program` from the PostgreSQL binaries, as the
    /// cluster's owner, in its directory.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Starts the server on the same port and data, listening on TCP only
    /// if `tcp` (the Unix socket is always there), and waits until it
    /// accepts connections.
    pub fn launch(&mut self, tcp: bool) {
        assert!(self.child.is_none(), "already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("log file");
        let listen = if tcp { "127.0.0.1" } else { "" };
        let mut command = self.command("postgres");
        if !self.durable {
            command
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"]);
        }
        let child = command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", &format!("listen_addresses={listen}")])
            .args(["-c", "shared_buffers=16MB"])
            .args(["-c", "max_connections=40"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres runs (.ci/setup installs Debian's postgresql)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.try_psql("postgres", "SELECT 1").is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("postgres exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `sql` in database `db` with `psql` over the Unix socket (so it
    /// works while TCP is closed); its output (unaligned, tuples only).
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self
            .command("psql")
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", db])
            .args(["-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(text(&out))
        }
    }

    /// [`try_psql`](Self::try_psql), panicking on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Creates database `name`.
    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// Stops the server (fast shutdown: clients are disconnected, the data
    /// is kept) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "CONT");
            signal(child.id(), "INT");
            wait_or_kill(&mut child, Duration::from_secs(30));
        }
    }

    /// Stops the server and starts it again on the same port and data.
    pub fn restart(&mut self, tcp: bool) {
        self.stop();
        self.launch(tcp);
    }

    /// Sends `sig` (`STOP`, `CONT`, …) to the server's main process only.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        signal(pid, sig);
    }

    /// Sends `sig` to the server and all its backends (`STOP` freezes
    /// connections that are open already too).
    pub fn signal_all(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        for p in descendants(pid).into_iter().chain([pid]) {
            signal(p, sig);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            for p in descendants(pid).into_iter().chain([pid]) {
                signal(p, "CONT");
            }
            // Immediate shutdown: the backends go too.
            signal(pid, "QUIT");
            wait_or_kill(&mut child, Duration::from_secs(10));
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The processes below `pid` (PostgreSQL's backends and workers), from
/// `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = vec![pid];
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    let procs: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            Some((p, ppid.parse().ok()?))
        })
        .collect();
    while let Some(parent) = parents.pop() {
        for (p, pp) in &procs {
            if *pp == parent {
                found.push(*p);
                parents.push(*p);
            }
        }
    }
    found
}

fn wait_or_kill(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The uid and gid of `nobody` (65534 if `/etc/passwd` does not say).
fn nobody() -> (u32, u32) {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                if fields.next()? != "nobody" {
                    return None;
                }
                let uid = fields.nth(1)?.parse().ok()?;
                let gid = fields.next()?.parse().ok()?;
                Some((uid, gid))
            })
        })
        .unwrap_or((65534, 65534))
}

/// The directory of `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TROUPE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            versions
                .filter_map(|e| {
                    let e = e.ok()?;
                    let version: u32 = e.file_name().to_str()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    File::open(bin.join("initdb")).ok()?;
                    Some((version, bin))
                })
                .max()
                .map(|(_, bin)| bin)
        });
    // Else rely on PATH: an empty directory joins to the bare name.
    newest.unwrap_or_default()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
