//! `troupe workflow --store postgres://…` end to end (feature `postgres`),
//! against a PostgreSQL cluster of the test's own (Debian's `postgresql`,
//! see `sources/tests/support/postgres.rs`): real `troupe` processes
//! sharing one store, one of them SIGKILLed while it runs 100 workflows,
//! and the reads (`list`, `show`, `query`) from other shells meanwhile.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::{DEADLINE, Run};
use support_http::{counts, logging_server};

#[path = "../sources/tests/support/postgres.rs"]
mod postgres;
mod support;
#[path = "support/http.rs"]
mod support_http;

/// Child workflows the killed process runs.
const KIDS: usize = 100;

/// A directory with the scripts and captured output, and the store's URL.
struct Scene {
    dir: tempfile::TempDir,
    url: String,
}

impl Scene {
    fn new(pg: &postgres::Postgres) -> Self {
        pg.create_database("journal");
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            url: pg.url("journal"),
        }
    }

    /// The files `tag`'s stdout and stderr go to.
    fn captures(&self, tag: &str) -> [PathBuf; 2] {
        ["out", "err"].map(|ext| self.dir.path().join(format!("{tag}.{ext}")))
    }

    /// Starts `troupe ARGS…` in the scene's directory.
    fn start_raw(&self, tag: &str, args: &[&str]) -> Child {
        let [out, err] = self.captures(tag);
        support::start(self.dir.path(), args, &out, &err)
    }

    /// Starts `troupe workflow ARGS… --store URL`.
    fn start(&self, tag: &str, args: &[&str]) -> Child {
        let args: Vec<&str> = ["workflow"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--store", &self.url, "--lease-timeout", "1s"])
            .collect();
        self.start_raw(tag, &args)
    }

    /// Waits for a started run to end.
    fn finish(&self, tag: &str, child: Child) -> Run {
        let [out, err] = self.captures(tag);
        support::finish(tag, child, &out, &err)
    }

    fn run(&self, tag: &str, args: &[&str]) -> Run {
        let child = self.start(tag, args);
        self.finish(tag, child)
    }

    /// `troupe workflow ARGS… --json` from another shell, as JSON.
    fn json(&self, tag: &str, args: &[&str]) -> Json {
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let run = self.run(tag, &args);
        assert_eq!(run.code, Some(0), "{run:?}");
        serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
    }

    /// `list --json`: each workflow's status and steps, by id.
    fn list(&self) -> Vec<(String, String, u64)> {
        let listed = self.json("list", &["list"]);
        listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|w| {
                (
                    w["id"].as_str().unwrap_or_default().to_owned(),
                    w["status"].as_str().unwrap_or_default().to_owned(),
                    w["steps"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits until `list` satisfies `cond`.
    fn wait_list(&self, what: &str, cond: impl Fn(&[(String, String, u64)]) -> bool) {
        let started = Instant::now();
        loop {
            if cond(&self.list()) {
                return;
            }
            assert!(started.elapsed() < DEADLINE, "never: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const PARENT: &str = r#"
local workflow = require("workflow")
local base, n = ...
local kids = {}
for i = 1, n do
  kids[i] = workflow.start_child("kid-" .. i, "kid.lua", { base, i })
end
local total = 0
for _, kid in ipairs(kids) do total = total + workflow.await(kid) end
return total
"#;

/// A child: one charge, a long durable sleep (the kill comes in it), and
/// a second charge.
const KID: &str = r#"
local http, time, workflow = require("http"), require("time"), require("workflow")
local base, i = ...
http.get(base .. "/start/" .. i)
workflow.publish("stage", "sleeping")
time.sleep(8000)
http.get(base .. "/end/" .. i)
return i
"#;

#[test]
fn a_sigkilled_process_running_100_workflows_is_taken_over_and_each_finishes_once() {
    let pg = postgres::Postgres::start();
    let s = Scene::new(&pg);
    let (base, hits) = logging_server();
    for (name, code) in [("parent.lua", PARENT), ("kid.lua", KID)] {
        std::fs::write(s.dir.path().join(name), code).expect("write script");
    }

    // The survivor first: it finds nothing to run (or to take over) yet.
    let survivor = s.start("survivor", &["serve"]);
    let kids = KIDS.to_string();
    let doomed = s.start(
        "doomed",
        &[
            "run",
            "batch",
            "parent.lua",
            &base,
            &kids,
            "--allow-module",
            "http",
        ],
    );
    // Every child has made its first charge durable and sleeps.
    s.wait_list("every child sleeps", |rows| {
        let sleeping = rows
            .iter()
            .filter(|(id, status, steps)| {
                id.starts_with("kid-") && status == "running" && *steps >= 1
            })
            .count();
        sleeping == KIDS
    });
    let query = s.run("query", &["query", "kid-1", "stage"]);
    assert_eq!(query.stdout.trim(), "\"sleeping\"", "{query:?}");

    let mut doomed = doomed;
    doomed.kill().expect("SIGKILL troupe");
    let status = doomed.wait().expect("reap troupe");
    assert_eq!(status.code(), None, "killed by a signal, not exited");
    let at_kill = counts(&hits);
    assert!(
        at_kill.keys().all(|p| p.contains("/start/")),
        "a child woke before the kill (the sleep is too short for this machine): {at_kill:?}"
    );

    // The survivor takes the parent and the children over and ends them.
    s.wait_list("every workflow completes", |rows| {
        rows.len() == KIDS + 1 && rows.iter().all(|(_, status, _)| status == "completed")
    });
    let batch = s.json("show", &["show", "batch"]);
    assert_eq!(batch["status"], "completed");
    let want = (1..=KIDS as u64).sum::<u64>();
    assert_eq!(batch["result"]["ok"], want);

    // Exactly once: the charge before the kill was not made again, and the
    // one after it was made once, by the survivor.
    let done = counts(&hits);
    for i in 1..=KIDS {
        for stage in ["start", "end"] {
            let path = format!("/{stage}/{i}");
            assert_eq!(done.get(&path), Some(&1), "{path}: {done:?}");
        }
    }
    assert_eq!(done.len(), 2 * KIDS, "{done:?}");

    let mut survivor = survivor;
    assert!(
        survivor.try_wait().expect("poll troupe").is_none(),
        "the survivor serves on"
    );
    survivor.kill().expect("stop the survivor");
    let _ = survivor.wait();
}

#[test]
fn without_a_database_the_store_is_unavailable_and_a_bad_url_invalid() {
    let pg = postgres::Postgres::start();
    let s = Scene::new(&pg);
    drop(pg);
    let run = s.run("list", &["list"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.starts_with("UNAVAILABLE: "), "{run:?}");
    assert!(
        !s.dir.path().join(".troupe").exists(),
        "no file store is made"
    );
    let bad = s.start_raw(
        "bad",
        &["workflow", "list", "--store", "mysql://localhost/x"],
    );
    let bad = s.finish("bad", bad);
    assert!(bad.stderr.starts_with("INVALID: "), "{bad:?}");
}
