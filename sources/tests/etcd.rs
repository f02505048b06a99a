//! `EtcdSource` against a real etcd server (Debian's `etcd-server`), started
//! on 127.0.0.1 with free ports and a temporary data directory.
#![cfg(feature = "etcd")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use troupe_sources::{Change, EtcdSource, Source, SourceError};

const PREFIX: &str = "troupe/scripts/";

/// An etcd process, killed when dropped.
struct Etcd {
    dir: tempfile::TempDir,
    /// The port the source under test uses.
    client_port: u16,
    /// A second client port for writers, so etcd can run while the
    /// source's port is closed.
    admin_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Etcd {
    /// Starts etcd on free ports. A port another test took between the
    /// probe and etcd's bind makes etcd exit (while that port may answer
    /// as another test's etcd); then it is tried again on new ports.
    fn start() -> Self {
        for _ in 0..5 {
            let mut etcd = Etcd {
                dir: tempfile::tempdir().expect("temp dir"),
                client_port: free_port(),
                admin_port: free_port(),
                peer_port: free_port(),
                child: None,
            };
            if etcd.launch(true) {
                return etcd;
            }
        }
        panic!("etcd did not start in five tries");
    }

    /// Its name, its own among the tests' etcds.
    fn name(&self) -> String {
        format!("troupe-test-{}", self.admin_port)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn admin_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// Starts etcd listening on the admin port, and on the source's port if
    /// `source_port`; false if it exited (a port was taken).
    fn launch(&mut self, source_port: bool) -> bool {
        let client = if source_port {
            format!("{},{}", self.endpoint(), self.admin_endpoint())
        } else {
            self.admin_endpoint()
        };
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("log file");
        let name = self.name();
        let child = Command::new("etcd")
            .arg(format!("--name={name}"))
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={}", self.admin_endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={name}={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd is installed (.ci/run installs Debian's etcd-server)");
        self.child = Some(child);
        self.wait_ready()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Waits until this etcd answers as itself on the admin port (its
    /// member list names it) and the source can list; false if it exited.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let src = EtcdSource::connect(&[self.admin_endpoint()], PREFIX).expect("client");
        while !(self.answers_as_itself() && src.list("").is_ok()) {
            let child = self.child.as_mut().expect("launched");
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return false;
            }
            assert!(Instant::now() < deadline, "etcd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Whether the etcd on the admin port is this one.
    fn answers_as_itself(&self) -> bool {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        let name = self.name();
        rt.block_on(async {
            let ask = async {
                let mut client =
                    etcd_client::Client::connect([self.admin_endpoint()], None).await?;
                client.member_list().await
            };
            match tokio::time::timeout(Duration::from_secs(2), ask).await {
                Ok(Ok(list)) => list.members().iter().any(|m| m.name() == name),
                _ => false,
            }
        })
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self, source_port: bool) {
        self.stop();
        assert!(self.launch(source_port), "etcd did not start again");
    }

    /// Sends `signal` (`STOP`, `CONT`) to etcd.
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

impl Drop for Etcd {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (SIGSTOP) process too.
        self.stop();
    }
}

/// Writes to etcd with a plain client, as an operator would.
struct Writer {
    rt: tokio::runtime::Runtime,
    client: etcd_client::Client,
}

impl Writer {
    fn new(etcd: &Etcd) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt
            .block_on(etcd_client::Client::connect([etcd.admin_endpoint()], None))
            .expect("connect");
        Writer { rt, client }
    }

    fn put(&mut self, key: &str, code: &str) {
        self.rt
            .block_on(self.client.put(format!("{PREFIX}{key}"), code, None))
            .expect("put");
    }

    fn delete(&mut self, key: &str) {
        self.rt
            .block_on(self.client.delete(format!("{PREFIX}{key}"), None))
            .expect("delete");
    }
}

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn get_list_and_watch_puts_and_deletes() {
    let etcd = Etcd::start();
    let mut w = Writer::new(&etcd);
    w.put("main.lua", "return 1");
    w.put("lib/util.lua", "return {}");
    w.rt.block_on(w.client.put("elsewhere/x.lua", "not ours", None))
        .expect("put");

    let src = EtcdSource::connect(&[etcd.endpoint()], PREFIX).unwrap();
    let v1 = src.get("main.lua").unwrap();
    assert_eq!(&*v1.code, b"return 1");
    assert_eq!(src.list("").unwrap(), vec!["lib/util.lua", "main.lua"]);
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert!(matches!(
        src.get("missing.lua"),
        Err(SourceError::NotFound { .. })
    ));
    assert!(matches!(
        src.get("../x.lua"),
        Err(SourceError::InvalidKey { .. })
    ));

    let watch = src.watch("").unwrap();
    w.put("main.lua", "return 2");
    assert_eq!(
        watch.recv_timeout(WAIT),
        Some(Change::Updated {
            key: "main.lua".into()
        })
    );
    let v2 = src.get("main.lua").unwrap();
    assert_eq!(&*v2.code, b"return 2");
    assert_ne!(v2.version, v1.version);

    w.delete("lib/util.lua");
    assert_eq!(
        watch.recv_timeout(WAIT),
        Some(Change::Removed {
            key: "lib/util.lua".into()
        })
    );
    assert!(matches!(
        src.get("lib/util.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

#[test]
fn watch_resumes_after_a_restart_without_losing_the_update_made_meanwhile() {
    let mut etcd = Etcd::start();
    let mut w = Writer::new(&etcd);
    w.put("job.lua", "return 'v1'");
    let src = EtcdSource::connect(&[etcd.endpoint()], PREFIX).unwrap();
    let watch = src.watch("").unwrap();
    w.put("job.lua", "return 'v2'");
    assert_eq!(
        watch.recv_timeout(WAIT),
        Some(Change::Updated {
            key: "job.lua".into()
        })
    );

    // etcd restarts with the source's port closed: the watch is cut off
    // while these writes happen, so only resuming from the last delivered
    // revision can report them once the port is back.
    etcd.restart(false);
    let mut w = Writer::new(&etcd);
    w.put("job.lua", "return 'v3'");
    w.put("other.lua", "return 0");
    etcd.restart(true);
    assert_eq!(
        watch.recv_timeout(WAIT),
        Some(Change::Updated {
            key: "job.lua".into()
        })
    );
    assert_eq!(
        watch.recv_timeout(WAIT),
        Some(Change::Updated {
            key: "other.lua".into()
        })
    );
    assert_eq!(&*src.get("job.lua").unwrap().code, b"return 'v3'");
}

#[test]
fn a_server_that_is_down_is_unavailable_and_named() {
    let mut etcd = Etcd::start();
    let mut w = Writer::new(&etcd);
    w.put("a.lua", "return 1");
    let src = EtcdSource::connect(&[etcd.endpoint()], PREFIX)
        .unwrap()
        .timeout(Duration::from_secs(2));
    assert!(src.get("a.lua").is_ok());
    etcd.stop();
    for err in [src.get("a.lua").unwrap_err(), src.list("").unwrap_err()] {
        assert!(err.is_retryable(), "{err}");
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert!(
            err.to_string().contains(&etcd.endpoint()),
            "names the source: {err}"
        );
    }
}

#[test]
fn a_hanging_server_gives_timed_out_within_the_deadline() {
    let etcd = Etcd::start();
    let mut w = Writer::new(&etcd);
    w.put("a.lua", "return 1");
    let src = EtcdSource::connect(&[etcd.endpoint()], PREFIX)
        .unwrap()
        .timeout(Duration::from_millis(500));
    assert!(src.get("a.lua").is_ok());

    etcd.signal("STOP");
    let name = format!("etcd:{}/{PREFIX}", etcd.endpoint());
    // Twice: the second time after the first has given up.
    for _ in 0..2 {
        // On a thread, so a call that never returns fails the test.
        let (tx, rx) = std::sync::mpsc::channel();
        let asked = src.clone();
        std::thread::spawn(move || {
            let _ = tx.send([asked.get("a.lua").map(|_| ()), asked.list("").map(|_| ())]);
        });
        let answers = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("get and list return within 10 s");
        for err in answers.into_iter().map(Result::unwrap_err) {
            assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
            assert!(err.is_retryable(), "{err}");
            assert!(err.to_string().contains("no answer within 500ms"), "{err}");
            assert_eq!(err.source_name(), Some(name.as_str()));
        }
    }

    etcd.signal("CONT");
    let deadline = Instant::now() + WAIT;
    loop {
        match src.get("a.lua") {
            Ok(script) => break assert_eq!(&*script.code, b"return 1"),
            Err(e) => assert!(Instant::now() < deadline, "never recovered: {e}"),
        }
    }
}
