//! `HttpSource` against a real HTTP server on 127.0.0.1 that serves
//! scripts with ETags, answers `If-None-Match` with `304`, and can be
//! stopped and started again on the same port.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use troupe_sources::{Change, HttpSource, Source, SourceError, Watch};

/// A loose bound for events; none is expected to take long.
const WAIT: Duration = Duration::from_secs(30);
/// The poll interval of the watches under test.
const POLL: Duration = Duration::from_millis(50);

/// Path → (etag, body) served (an empty ETag sends none); and the status
/// of every request answered.
#[derive(Default)]
struct Site {
    files: Mutex<HashMap<String, (String, String)>>,
    log: Mutex<Vec<(String, u16)>>,
}

impl Site {
    fn put(&self, path: &str, etag: &str, body: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_owned(), (etag.to_owned(), body.to_owned()));
    }

    fn remove(&self, path: &str) {
        self.files.lock().unwrap().remove(path);
    }

    /// The requests answered since the last call.
    fn statuses(&self) -> Vec<(String, u16)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// How many requests for `path` were answered with `status` (since the
    /// last [`statuses`](Self::statuses)).
    fn count(&self, path: &str, status: u16) -> usize {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(p, s)| p == path && *s == status)
            .count()
    }

    /// Answers one request.
    fn answer(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(clone) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(clone);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let mut if_none_match = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("if-none-match")
            {
                if_none_match = Some(value.trim().to_owned());
            }
        }
        let file = self.files.lock().unwrap().get(&path).cloned();
        let (status, head, body) = match file {
            _ if path.starts_with("/scripts/broken") => (500, String::new(), String::new()),
            None => (404, String::new(), String::new()),
            Some((etag, body)) if etag.is_empty() => (200, String::new(), body),
            Some((etag, _)) if if_none_match.as_deref() == Some(etag.as_str()) => {
                (304, format!("ETag: {etag}\r\n"), String::new())
            }
            Some((etag, body)) => (200, format!("ETag: {etag}\r\n"), body),
        };
        self.log.lock().unwrap().push((path, status));
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// Serves a [`Site`] on a fixed 127.0.0.1 port; [`stop`](Self::stop)
/// closes the port (connections are refused) until
/// [`resume`](Self::resume). Stopped when dropped.
struct Server {
    addr: SocketAddr,
    site: Arc<Site>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Server {
    fn start(site: Arc<Site>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut server = Server {
            addr: listener.local_addr().unwrap(),
            site,
            running: None,
        };
        server.run(listener);
        server
    }

    /// The base URL of the scripts.
    fn base(&self) -> String {
        format!("http://{}/scripts/", self.addr)
    }

    fn run(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let site = Arc::clone(&self.site);
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    site.answer(stream);
                }
            }
        });
        self.running = Some((stop, thread));
    }

    fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which then drops the listener.
            let _ = TcpStream::connect(self.addr);
            let _ = thread.join();
        }
    }

    fn resume(&mut self) {
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) => assert!(Instant::now() < deadline, "cannot listen again: {e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.run(listener);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn updated(key: &str) -> Change {
    Change::Updated { key: key.into() }
}

fn removed(key: &str) -> Change {
    Change::Removed { key: key.into() }
}

/// Waits (loosely) until `cond` holds.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The next `n` changes, sorted.
fn next_changes(watch: &Watch, n: usize) -> Vec<Change> {
    let mut got: Vec<Change> = (0..n)
        .map(|i| {
            watch
                .recv_timeout(WAIT)
                .unwrap_or_else(|| panic!("change {i} of {n} did not come"))
        })
        .collect();
    got.sort();
    got
}

#[test]
fn revalidates_with_etags_and_maps_statuses() {
    let site = Arc::new(Site::default());
    site.put("/scripts/lib/a.lua", "\"v1\"", "return 1");
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base()).unwrap();

    let first = src.get("lib/a.lua").unwrap();
    assert_eq!(&*first.code, b"return 1");
    let again = src.get("lib/a.lua").unwrap();
    assert_eq!(again, first, "a 304 serves the copy it revalidated");
    assert_eq!(
        site.statuses(),
        vec![
            ("/scripts/lib/a.lua".to_owned(), 200),
            ("/scripts/lib/a.lua".to_owned(), 304)
        ]
    );

    site.put("/scripts/lib/a.lua", "\"v2\"", "return 2");
    let changed = src.get("lib/a.lua").unwrap();
    assert_eq!(&*changed.code, b"return 2");
    assert_ne!(changed.version, first.version);
    assert_eq!(
        site.statuses(),
        vec![("/scripts/lib/a.lua".to_owned(), 200)]
    );

    assert!(matches!(
        src.get("missing.lua"),
        Err(SourceError::NotFound { .. })
    ));
    let err = src.get("broken.lua").unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("500"),
        "{err}"
    );
}

#[test]
fn a_server_that_is_down_is_unavailable_and_named() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let src = HttpSource::new(&format!("http://127.0.0.1:{port}/s")).unwrap();
    let err = src.get("a.lua").unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn list_reads_the_index_sorted_by_prefix_leaving_out_bad_keys() {
    let site = Arc::new(Site::default());
    site.put(
        "/scripts/meta/keys.json",
        "\"k1\"",
        r#"["main.lua", "lib/b.lua", "lib/a.lua", "../escape.lua", "/abs.lua",
            "a//b.lua", 7, null, "lib/a.lua"]"#,
    );
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base())
        .unwrap()
        .index("meta/keys.json")
        .unwrap();

    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/a.lua", "lib/b.lua", "main.lua"]
    );
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/a.lua", "lib/b.lua"]);
    assert!(src.list("nothing/").unwrap().is_empty());
    let index = "/scripts/meta/keys.json".to_owned();
    assert_eq!(
        site.statuses(),
        vec![(index.clone(), 200), (index.clone(), 304), (index, 304)],
        "the index is revalidated with its ETag"
    );

    site.put(
        "/scripts/meta/keys.json",
        "\"k2\"",
        r#"{"not": "an array"}"#,
    );
    let err = src.list("").unwrap_err();
    assert!(matches!(err, SourceError::BadContent { .. }), "{err}");

    let broken = HttpSource::new(&server.base())
        .unwrap()
        .index("broken/index.json")
        .unwrap();
    let err = broken.list("").unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("500"),
        "{err}"
    );

    assert!(matches!(
        HttpSource::new(&server.base())
            .unwrap()
            .index("../index.json"),
        Err(SourceError::InvalidKey { .. })
    ));
}

#[test]
fn without_an_index_list_is_unsupported() {
    let site = Arc::new(Site::default());
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base()).unwrap();
    assert!(matches!(src.list(""), Err(SourceError::Unsupported { .. })));

    site.put("/scripts/index.json", "\"i1\"", r#"["a.lua"]"#);
    assert_eq!(src.list("").unwrap(), vec!["a.lua"]);

    site.remove("/scripts/index.json");
    assert!(matches!(src.list(""), Err(SourceError::Unsupported { .. })));
}

#[test]
fn watch_reports_updates_and_removals_of_served_scripts() {
    let site = Arc::new(Site::default());
    site.put("/scripts/a.lua", "\"a1\"", "return 1");
    site.put("/scripts/b.lua", "\"b1\"", "return 'b'");
    site.put("/scripts/plain.lua", "", "return 'p1'");
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base()).unwrap().poll_interval(POLL);
    for key in ["a.lua", "b.lua", "plain.lua"] {
        src.get(key).unwrap();
    }
    let watch = src.watch("").unwrap();

    // Unchanged scripts cost a 304 each poll.
    wait_until("a.lua was revalidated", || {
        site.count("/scripts/a.lua", 304) >= 2
    });
    site.put("/scripts/a.lua", "\"a2\"", "return 2");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("a.lua")));
    assert_eq!(&*src.get("a.lua").unwrap().code, b"return 2");

    site.remove("/scripts/b.lua");
    assert_eq!(watch.recv_timeout(WAIT), Some(removed("b.lua")));

    // Without an ETag, the content tells.
    site.put("/scripts/plain.lua", "", "return 'p2'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("plain.lua")));
}

#[test]
fn watch_reports_keys_added_to_and_removed_from_the_index() {
    let site = Arc::new(Site::default());
    site.put("/scripts/index.json", "\"i1\"", r#"["a.lua", "lib/b.lua"]"#);
    site.put("/scripts/a.lua", "\"a1\"", "return 1");
    site.put("/scripts/lib/b.lua", "\"b1\"", "return 'b'");
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base()).unwrap().poll_interval(POLL);
    let watch = src.watch("").unwrap();

    // A listed script, never served, is watched once the watch read it.
    wait_until("the watch read a.lua", || {
        site.count("/scripts/a.lua", 200) >= 1
    });
    site.put("/scripts/a.lua", "\"a2\"", "return 2");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("a.lua")));

    site.put("/scripts/lib/c.lua", "\"c1\"", "return 'c'");
    site.put(
        "/scripts/index.json",
        "\"i2\"",
        r#"["a.lua", "lib/b.lua", "lib/c.lua"]"#,
    );
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("lib/c.lua")));

    site.put(
        "/scripts/index.json",
        "\"i3\"",
        r#"["lib/b.lua", "lib/c.lua"]"#,
    );
    assert_eq!(watch.recv_timeout(WAIT), Some(removed("a.lua")));
    assert_eq!(src.list("").unwrap(), vec!["lib/b.lua", "lib/c.lua"]);
}

#[test]
fn watch_reports_what_changed_while_the_server_was_down() {
    let site = Arc::new(Site::default());
    site.put("/scripts/index.json", "\"i1\"", r#"["a.lua", "b.lua"]"#);
    site.put("/scripts/a.lua", "\"a1\"", "return 1");
    site.put("/scripts/b.lua", "\"b1\"", "return 'b'");
    let mut server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base())
        .unwrap()
        .poll_interval(POLL)
        .timeout(Duration::from_secs(2));
    src.get("a.lua").unwrap();
    let watch = src.watch("").unwrap();
    wait_until("the watch read b.lua", || {
        site.count("/scripts/b.lua", 200) >= 1
    });

    server.stop();
    // Polls fail meanwhile (connections are refused).
    std::thread::sleep(POLL * 6);
    site.put("/scripts/a.lua", "\"a2\"", "return 2");
    site.remove("/scripts/b.lua");
    site.put("/scripts/c.lua", "\"c1\"", "return 'c'");
    site.put(
        "/scripts/index.json",
        "\"i2\"",
        r#"["a.lua", "b.lua", "c.lua"]"#,
    );
    assert_eq!(watch.try_recv(), None, "nothing is seen while it is down");
    server.resume();

    assert_eq!(
        next_changes(&watch, 3),
        vec![updated("a.lua"), updated("c.lua"), removed("b.lua")]
    );
}

#[test]
fn a_watch_started_while_the_server_is_down_resyncs() {
    let site = Arc::new(Site::default());
    site.put("/scripts/index.json", "\"i1\"", r#"["a.lua"]"#);
    site.put("/scripts/a.lua", "\"a1\"", "return 1");
    let mut server = Server::start(Arc::clone(&site));
    server.stop();
    let src = HttpSource::new(&server.base()).unwrap().poll_interval(POLL);
    let watch = src.watch("").unwrap();
    server.resume();
    assert_eq!(watch.recv_timeout(WAIT), Some(Change::Resync));

    site.put("/scripts/b.lua", "\"b1\"", "return 'b'");
    site.put("/scripts/index.json", "\"i2\"", r#"["a.lua", "b.lua"]"#);
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("b.lua")));
}

#[test]
fn a_poll_revalidates_at_most_max_keys_per_poll() {
    let keys = ["k1.lua", "k2.lua", "k3.lua"];
    let site = Arc::new(Site::default());
    site.put(
        "/scripts/index.json",
        "\"i1\"",
        r#"["k1.lua", "k2.lua", "k3.lua"]"#,
    );
    for key in keys {
        site.put(&format!("/scripts/{key}"), "\"1\"", "return 1");
    }
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base())
        .unwrap()
        .poll_interval(POLL)
        .max_keys_per_poll(1);
    let watch = src.watch("").unwrap();
    wait_until("the watch read every key", || {
        keys.iter()
            .all(|k| site.count(&format!("/scripts/{k}"), 200) >= 1)
    });
    for key in keys {
        site.put(&format!("/scripts/{key}"), "\"2\"", "return 2");
    }
    assert_eq!(
        next_changes(&watch, 3),
        keys.iter().map(|k| updated(k)).collect::<Vec<_>>(),
        "taking turns, every key is revalidated"
    );

    // Each poll reads the index, then at most one script.
    let log = site.statuses();
    assert_eq!(log[0].0, "/scripts/index.json");
    let mut scripts_since_index = 0;
    for (path, _) in &log {
        if path == "/scripts/index.json" {
            scripts_since_index = 0;
        } else {
            scripts_since_index += 1;
            assert!(
                scripts_since_index <= 1,
                "more than one script a poll: {log:?}"
            );
        }
    }
}

#[test]
fn a_broken_script_does_not_stall_the_watch() {
    let site = Arc::new(Site::default());
    // broken.lua always answers 500, and comes before c.lua.
    site.put(
        "/scripts/index.json",
        "\"i1\"",
        r#"["a.lua", "broken.lua", "c.lua"]"#,
    );
    site.put("/scripts/a.lua", "\"a1\"", "return 1");
    site.put("/scripts/c.lua", "\"c1\"", "return 'c'");
    let server = Server::start(Arc::clone(&site));
    let src = HttpSource::new(&server.base()).unwrap().poll_interval(POLL);
    let watch = src.watch("").unwrap();
    wait_until("the watch read c.lua", || {
        site.count("/scripts/c.lua", 200) >= 1
    });
    site.put("/scripts/c.lua", "\"c2\"", "return 'c2'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("c.lua")));
}
