//! The servers the remote-source benches read from (included with
//! `#[path = "support/servers.rs"]`): each listens on 127.0.0.1 only, keeps
//! its files in a temporary directory, answers before its launcher returns
//! and is killed when dropped. PostgreSQL comes from the source tests' own
//! launcher (`sources/tests/support/postgres.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A server process with its temporary directory, killed when dropped.
pub struct Server {
    child: Child,
    /// The port it serves on.
    pub port: u16,
    /// Its files (removed once it is gone: declared after `child`).
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// True if the server on `port` answers `request` with a reply holding
/// `expect`.
fn answers(port: u16, request: &[u8], expect: &[u8]) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(request).is_err() {
        return false;
    }
    let (mut reply, mut chunk) = (Vec::new(), [0; 512]);
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        reply.extend_from_slice(&chunk[..n]);
        if reply.windows(expect.len()).any(|w| w == expect) {
            return true;
        }
    }
    false
}

/// Starts `program` with `args(port, dir)`, waiting until it answers
/// `request` with `expect` on `port`.
fn launch(
    program: &str,
    args: impl FnOnce(u16, &Path) -> Vec<String>,
    request: &[u8],
    expect: &[u8],
) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = Command::new(program)
        .args(args(port, dir.path()))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs (.ci/setup installs it): {e}"));
    let server = Server { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(port, request, expect) {
        assert!(Instant::now() < deadline, "{program} did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// The arguments as `String`s.
fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// `redis-server`, without persistence.
pub fn redis() -> Server {
    let args = |port: u16, dir: &Path| {
        owned(&[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ])
    };
    launch("redis-server", args, b"PING\r\n", b"+PONG")
}

/// A single-member `etcd` cluster.
pub fn etcd() -> Server {
    let peer = format!("http://127.0.0.1:{}", free_port());
    let args = |port: u16, dir: &Path| {
        let client = format!("http://127.0.0.1:{port}");
        vec![
            "--name=bench".to_owned(),
            format!("--data-dir={}", dir.join("data").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=bench={peer}"),
        ]
    };
    launch("etcd", args, b"GET /health HTTP/1.0\r\n\r\n", b"true")
}

/// `s3s-fs` serving its directory (a bucket is a subdirectory) to the
/// holder of `access_key` and `secret_key`.
pub fn s3s_fs(access_key: &str, secret_key: &str) -> Server {
    let args = |port: u16, dir: &Path| {
        owned(&[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            access_key,
            "--secret-key",
            secret_key,
            &dir.display().to_string(),
        ])
    };
    launch("s3s-fs", args, b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.")
}

/// The ETag [`HttpServer`] sends.
const ETAG: &str = "\"v1\"";

/// An HTTP/1.1 server in this process, as a static file server answers:
/// one body under one path with an ETag, `304 Not Modified` to a matching
/// `If-None-Match`, `404` elsewhere, connections kept alive. Stops
/// accepting when dropped.
pub struct HttpServer {
    /// The port it serves on.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    /// Serves `body` under `path` (e.g. `/scripts/a.lua`).
    pub fn start(path: &str, body: &[u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let site: Arc<(String, Vec<u8>)> = Arc::new((path.to_owned(), body.to_vec()));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let site = Arc::clone(&site);
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(stream, &site.0, &site.1));
                }
            }
        });
        HttpServer { port, stop }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop, which sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers the requests of one connection until the client closes it.
fn serve(stream: TcpStream, path: &str, body: &[u8]) {
    let _ = stream.set_nodelay(true);
    let Ok(read) = stream.try_clone() else {
        return;
    };
    let (mut reader, mut out) = (BufReader::new(read), stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let found = line.split_whitespace().nth(1) == Some(path);
        let mut fresh = false;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("if-none-match")
            {
                fresh = value.trim() == ETAG;
            }
        }
        let (status, body) = match (found, fresh) {
            (false, _) => ("404 Not Found", &[][..]),
            (true, true) => ("304 Not Modified", &[][..]),
            (true, false) => ("200 OK", body),
        };
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nETag: {ETAG}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend_from_slice(body);
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}
