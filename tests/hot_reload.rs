//! Hot reload through the host API: a changed script serves new spawns,
//! running processes keep the code they started with, an edit that does not
//! compile keeps the previous version, opted-in services restart on the new
//! version, and a source that is down is `UNAVAILABLE`.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use troupe::{
    CachedSource, Change, ChildSpec, Class, ErrorKind, FileSource, HttpSource, LuaEngine,
    MemorySource, Policy, Runtime, Source, Spawn, Strategy, Supervisor, Value,
};

/// Returns its version; with a truthy argument it first waits for `go`.
fn worker(version: &str) -> String {
    format!(
        r#"
local process = require("process")
local wait = ...
if wait then process.receive("go") end
return "{version}"
"#
    )
}

const BROKEN: &str = "return 'v3"; // unfinished string: a syntax error

fn runtime(source: impl Source, hot_reload: bool) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(source)
        .hot_reload(hot_reload)
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

fn run(rt: &Runtime, key: &str) -> Value {
    rt.spawn(Spawn::script(key))
        .and_then(|h| h.join_blocking())
        .expect("runs")
}

/// Saves like an editor does: write a temporary file, rename it over.
fn save(dir: &Path, name: &str, code: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, code).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn file_edits_serve_new_spawns_while_running_processes_keep_their_code() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "worker.lua", &worker("v1"));
    let scripts =
        CachedSource::new(FileSource::new(dir.path()).debounce(Duration::from_millis(10)));
    let watch = scripts.watch("").unwrap();
    let rt = runtime(scripts, true);
    // Waits until the cache has dropped worker.lua after an edit.
    let edited = || loop {
        match watch.recv_timeout(Duration::from_secs(30)) {
            Some(Change::Updated { key }) if key == "worker.lua" => break,
            Some(_) => {}
            None => panic!("no change reported for worker.lua"),
        }
    };

    let old = rt.spawn(Spawn::script("worker.lua").args([true])).unwrap();
    assert_eq!(run(&rt, "worker.lua"), Value::from("v1"));

    save(dir.path(), "worker.lua", &worker("v2"));
    edited();
    assert_eq!(
        run(&rt, "worker.lua"),
        Value::from("v2"),
        "new spawns get new code"
    );

    save(dir.path(), "worker.lua", BROKEN);
    edited();
    assert_eq!(
        run(&rt, "worker.lua"),
        Value::from("v2"),
        "an edit that does not compile keeps the previous version"
    );

    old.try_send("go", ()).unwrap();
    assert_eq!(
        old.join_blocking().unwrap(),
        Value::from("v1"),
        "a process started before the edits still runs the code it started with"
    );

    save(dir.path(), "worker.lua", &worker("v4"));
    edited();
    assert_eq!(
        run(&rt, "worker.lua"),
        Value::from("v4"),
        "a fixed edit is served"
    );
    rt.shutdown();
}

#[test]
fn memory_changes_reach_the_next_spawn_and_code_given_directly_is_not_kept() {
    let src = MemorySource::new().with("worker.lua", worker("v1"));
    let rt = runtime(src.clone(), false);
    let old = rt.spawn(Spawn::script("worker.lua").args([true])).unwrap();
    src.insert("worker.lua", worker("v2")).unwrap();
    assert_eq!(run(&rt, "worker.lua"), Value::from("v2"));
    src.insert("worker.lua", BROKEN).unwrap();
    assert_eq!(run(&rt, "worker.lua"), Value::from("v2"));
    old.try_send("go", ()).unwrap();
    assert_eq!(old.join_blocking().unwrap(), Value::from("v1"));

    // Code handed over directly is what the host asked for: no fallback.
    let err = rt
        .spawn_code(Spawn::script("worker.lua"), BROKEN)
        .err()
        .expect("a syntax error");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    rt.shutdown();
}

/// Registers as `svc`, tells the host its version, then serves `ask`.
fn service(version: &str) -> String {
    format!(
        r#"
local process = require("process")
local tag = ...
process.send("host", "up", {{version = "{version}", tag = tag}})
while true do
  local m = process.receive("ask")
  process.send(m.from, "answer", "{version}")
end
"#
    )
}

#[test]
fn opted_in_services_restart_on_the_new_version_and_others_keep_running() {
    let src = MemorySource::new().with("svc.lua", service("v1"));
    let rt = runtime(src.clone(), true);
    let inbox = rt.mailbox();
    inbox.register("host").unwrap();
    let up = || {
        rt.io().block_on(async {
            let m = tokio::time::timeout(Duration::from_secs(30), inbox.recv_topic("up"))
                .await
                .expect("a service reported up");
            let field = |k: &str| m.payload.get(k).and_then(Value::as_str).unwrap().to_owned();
            (field("tag"), field("version"))
        })
    };
    let _sup = rt
        .supervise(
            Supervisor::new(Strategy::OneForOne).child(ChildSpec::new(
                "svc",
                Spawn::script("svc.lua")
                    .args(["supervised"])
                    .restart_on_change(true),
            )),
        )
        .unwrap();
    assert_eq!(up(), ("supervised".into(), "v1".into()));
    let plain = rt.spawn(Spawn::script("svc.lua").args(["plain"])).unwrap();
    assert_eq!(up(), ("plain".into(), "v1".into()));

    src.insert("svc.lua", service("v2")).unwrap();
    assert_eq!(
        up(),
        ("supervised".into(), "v2".into()),
        "the supervisor restarted the opted-in service on the new code"
    );

    inbox.try_send(plain.pid(), "ask", ()).unwrap();
    let answer = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), inbox.recv_topic("answer"))
            .await
            .expect("the plain process answers")
    });
    assert_eq!(answer.payload, Value::from("v1"), "not opted in: untouched");
    rt.shutdown();
}

#[test]
fn a_source_that_is_down_is_unavailable_naming_it() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let src = HttpSource::new(&format!("http://127.0.0.1:{port}/scripts/")).unwrap();
    let rt = runtime(src, false);
    let err = rt.spawn(Spawn::script("main.lua")).err().expect("fails");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    let source = err
        .details()
        .and_then(|d| d.get("source"))
        .and_then(Value::as_str);
    assert!(
        source.is_some_and(|s| s.contains(&format!("127.0.0.1:{port}"))),
        "{err} {:?}",
        err.details()
    );
    rt.shutdown();
}

/// The `troupe` binary, killed when dropped.
struct Troupe(std::process::Child);

impl Drop for Troupe {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of a child's output stream, read on a thread.
struct Lines(std::sync::mpsc::Receiver<String>);

fn lines(stream: impl std::io::Read + Send + 'static) -> Lines {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Lines(rx)
}

impl Lines {
    /// The next line that contains `needle`, skipping others.
    fn until(&self, needle: &str) -> String {
        loop {
            let line = self
                .0
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The next line.
    fn next(&self) -> String {
        self.until("")
    }
}

#[test]
fn troupe_run_watch_reruns_on_every_change() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "main.lua", "return 'v1'");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .arg(dir.path().join("main.lua"))
        .arg("--watch")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the troupe binary starts");
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let _child = Troupe(child);

    assert_eq!(out.next(), "\"v1\"");
    save(dir.path(), "main.lua", "return 'v2'");
    assert_eq!(out.next(), "\"v2\"");
    save(dir.path(), "main.lua", BROKEN);
    err.until("does not compile");
    assert_eq!(out.next(), "\"v2\"", "the last good version runs");
    save(dir.path(), "main.lua", "error('boom')");
    assert!(err.until("boom").starts_with("INTERNAL:"));
}
