//! End-to-end tests of `troupe workflow`: real subprocesses killed with
//! SIGKILL mid-workflow and resumed from the store they left behind.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::{DEADLINE, Run};
use support_http::{counts, logging_server};

mod support;
#[path = "support/http.rs"]
mod support_http;

/// A directory with scripts, a store (`data/`) and captured output.
struct Scene {
    dir: tempfile::TempDir,
}

impl Run {
    fn json(&self) -> Json {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

impl Scene {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn script(&self, name: &str, code: &str) {
        std::fs::write(self.path(name), code).expect("write script");
    }

    /// Starts `troupe workflow ARGS… --data data`, stdout and stderr into
    /// files named after `tag`.
    fn start(&self, tag: &str, args: &[&str]) -> Child {
        let args: Vec<&str> = ["workflow"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--data", "data"])
            .collect();
        let (out, err) = self.captures(tag);
        support::start(self.dir.path(), &args, &out, &err)
    }

    fn captures(&self, tag: &str) -> (PathBuf, PathBuf) {
        (
            self.path(&format!("{tag}.out")),
            self.path(&format!("{tag}.err")),
        )
    }

    fn output(&self, tag: &str) -> String {
        std::fs::read_to_string(self.captures(tag).0).unwrap_or_default()
    }

    /// Waits for a started run to end.
    fn finish(&self, tag: &str, child: Child) -> Run {
        let (out, err) = self.captures(tag);
        support::finish(tag, child, &out, &err)
    }

    fn run(&self, tag: &str, args: &[&str]) -> Run {
        let child = self.start(tag, args);
        self.finish(tag, child)
    }

    /// Waits until the run's stdout has `n` lines containing `needle`.
    fn wait_for(&self, tag: &str, needle: &str, n: usize) {
        let started = Instant::now();
        while self.output(tag).matches(needle).count() < n {
            assert!(started.elapsed() < DEADLINE, "no {needle:?} from {tag}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILLs a running troupe.
    fn kill(&self, mut child: Child) {
        child.kill().expect("SIGKILL troupe");
        let status = child.wait().expect("reap troupe");
        assert_eq!(status.code(), None, "killed by a signal, not exited");
    }

    fn show(&self, id: &str) -> Json {
        self.run(&format!("show-{id}"), &["show", id, "--json"])
            .json()
    }
}

/// The commands of a `show --json` history, in order.
fn commands(show: &Json) -> Vec<String> {
    let history = show["history"].as_array().expect("a history");
    for (i, step) in history.iter().enumerate() {
        assert_eq!(step["step"], i + 1, "steps numbered once each, in order");
    }
    history
        .iter()
        .map(|s| s["command"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The example workflow: `n` sleeps of 200 ms, printing `step i` after each.
fn steps_example() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflow_steps.lua");
    std::fs::read_to_string(path).expect("examples/workflow_steps.lua")
}

#[test]
fn a_killed_workflow_resumes_to_the_result_of_an_uninterrupted_run() {
    let s = Scene::new();
    s.script("steps.lua", &steps_example());
    let whole = s.run("whole", &["run", "whole", "steps.lua", "6"]).json();
    assert_eq!(whole["squares"], serde_json::json!([1, 4, 9, 16, 25, 36]));
    assert_eq!(whole["ok"], true);

    let child = s.start("cut", &["run", "cut", "steps.lua", "6"]);
    s.wait_for("cut", "step 2", 1);
    s.kill(child);
    let before = s.show("cut");
    assert_eq!(before["status"], "running");
    let done_before = commands(&before).len();
    assert!(done_before < 8, "killed mid-workflow: {before}");

    let resumed = s.run("resume", &["resume", "cut"]).json();
    assert_eq!(resumed, whole);
    let after = s.show("cut");
    assert_eq!(after["status"], "completed");
    assert_eq!(after["result"]["ok"], whole);
    assert_eq!(commands(&after), commands(&s.show("whole")));
    assert_eq!(commands(&after).len(), 8);

    let list = s.run("list", &["list", "--json"]).json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cut", "whole"]);
    let checked = s.run("check", &["check", "--json"]).json();
    assert_eq!(checked[0]["id"], "cut");
    assert_eq!(
        checked[0]["steps"],
        after["history"].as_array().unwrap().len()
    );
    let resume_again = s.run("again", &["resume", "cut"]);
    assert_eq!(resume_again.code, Some(1));
    assert!(
        resume_again.stderr.starts_with("CONFLICT: "),
        "{resume_again:?}"
    );
    let replayed = s.run("replay", &["replay", "cut"]).json();
    assert_eq!(replayed, whole);
    assert_eq!(s.run("delete", &["delete", "cut"]).code, Some(0));
    let gone = s.run("gone", &["show", "cut"]);
    assert!(gone.stderr.starts_with("NOT_FOUND: "), "{gone:?}");
}

#[test]
fn effects_done_before_a_kill_are_not_repeated_by_the_resume() {
    const N: usize = 5;
    let (base, hits) = logging_server();
    let s = Scene::new();
    // One charge per step; a pause after the second gives the test time to
    // kill the run between two charges, never during one (a charge in
    // flight at the kill would run again: effects are at least once).
    s.script(
        "charges.lua",
        r#"
        local http, time = require("http"), require("time")
        local base, n = ...
        local receipts = {}
        for i = 1, n do
          receipts[i] = http.get(base .. "/charge/" .. i).body
          print("charged " .. i)
          if i == 2 then time.sleep(3000) end
        end
        return receipts
        "#,
    );
    let run = |tag: &str, id: &str| -> Vec<String> {
        vec![
            "run".into(),
            id.into(),
            "charges.lua".into(),
            format!("{base}/{tag}"),
            N.to_string(),
            "--allow-module".into(),
            "http".into(),
        ]
    };
    let args = run("whole", "whole");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let whole = s.run("whole", &args).json();

    let args = run("cut", "cut");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = s.start("cut", &args);
    s.wait_for("cut", "charged 2", 1);
    s.kill(child);
    assert_eq!(
        counts(&hits)
            .keys()
            .filter(|p| p.starts_with("/cut"))
            .count(),
        2
    );
    // Resuming needs no flag: the workflow keeps the policy it started with.
    let resumed = s.run("resume", &["resume", "cut"]).json();

    let paid = |tag: &str| -> Json {
        (1..=N)
            .map(|i| Json::from(format!("paid /{tag}/charge/{i}")))
            .collect()
    };
    assert_eq!(whole, paid("whole"));
    assert_eq!(
        resumed,
        paid("cut"),
        "the same result as an uninterrupted run"
    );
    let counts = counts(&hits);
    assert_eq!(counts.len(), 2 * N, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "no charge repeated: {counts:?}"
    );
    let steps = commands(&s.show("cut"));
    assert_eq!(steps, commands(&s.show("whole")), "every step once");
    let mut expected = vec!["http.request"; N];
    expected.insert(2, "time.sleep");
    assert_eq!(steps, expected);
}

/// A workflow mixing local commands (two `rand.int`s a step), an effect
/// built from them (an HTTP request) and waits (a sleep every 25 steps, a
/// `receive` polling for `stop` every step).
const MIXED_STEPS: &str = r#"
local http, rand, time, process = require("http"), require("rand"), require("time"), require("process")
local base = ...
local total, i = 0, 0
while true do
  i = i + 1
  local a, b = rand.int(1, 1000000), rand.int(1, 1000000)
  total = total + a + b
  http.get(string.format("%s/e/%d/%d/%d/%d", base, i, a, b, total))
  if i % 25 == 0 then time.sleep(1) end
  if process.receive("stop", 0) then return {steps = i, total = total} end
end
"#;

/// A small deterministic generator for the kill moments (seeded from the
/// clock, printed, so a failure can be replayed).
struct Moments(u64);

impl Moments {
    /// The next moment, 0 ..= `max_ms` milliseconds.
    fn next_ms(&mut self, max_ms: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % (max_ms + 1)
    }
}

#[test]
fn two_hundred_kills_at_random_moments_leave_a_history_consistent_with_what_the_outside_saw() {
    const KILLS: usize = 200;
    let (base, log) = logging_server();
    let s = Scene::new();
    s.script("mixed.lua", MIXED_STEPS);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    println!("kill moments seeded with {seed}");
    let mut moments = Moments(seed);
    let first = [
        "run",
        "w",
        "mixed.lua",
        base.as_str(),
        "--allow-module",
        "http",
    ];
    let mut created = false;
    for round in 0..KILLS {
        let tag = format!("round-{round}");
        let mut child = if created {
            s.start(&tag, &["resume", "w"])
        } else {
            s.start(&tag, &first)
        };
        std::thread::sleep(Duration::from_millis(moments.next_ms(60)));
        if child.try_wait().expect("poll troupe").is_some() {
            // Only a resume of a workflow the last kill cut off before it
            // was stored ends by itself.
            let run = s.finish(&tag, child);
            assert!(run.stderr.starts_with("NOT_FOUND: "), "{run:?}");
            created = false;
            continue;
        }
        s.kill(child);
        created = created || s.run("probe", &["show", "w"]).code == Some(0);
    }
    let sent = s.run("stop", &["signal", "w", "stop", "true"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    let result = s.run("end", &["resume", "w"]).json();

    // What the history says the script did: each step's two random
    // numbers, then the request built from them.
    let show = s.show("w");
    let history = show["history"].as_array().expect("a history");
    let mut rands = Vec::new();
    let mut effects = Vec::new();
    let mut total = 0;
    for entry in history {
        match entry["command"].as_str() {
            Some("rand.int") => {
                let n = entry["result"]["ok"].as_i64().expect("an int");
                rands.push(n);
                total += n;
            }
            Some("http.request") => {
                let url = entry["args"]["url"].as_str().expect("a url");
                let path = url.strip_prefix(base.as_str()).expect("our server");
                // The script acted on the results the history holds.
                let [a, b] = rands[rands.len() - 2..] else {
                    panic!("two draws before {path}")
                };
                let i = effects.len() + 1;
                assert_eq!(path, format!("/e/{i}/{a}/{b}/{total}"), "seed {seed}");
                effects.push(path.to_owned());
            }
            _ => {}
        }
    }
    assert!(effects.len() > 1, "the workflow made progress: {effects:?}");
    assert_eq!(result["steps"], effects.len(), "seed {seed}");
    assert_eq!(result["total"], total, "seed {seed}");
    // The outside saw exactly the history's effects, in order; an effect in
    // flight at a kill may have been seen once more (at least once).
    let mut seen = log.lock().unwrap().clone();
    seen.dedup();
    if let Some(at) = (0..seen.len().max(effects.len())).find(|&i| seen.get(i) != effects.get(i)) {
        let around = |v: &[String]| v[at.saturating_sub(2)..(at + 3).min(v.len())].to_vec();
        panic!(
            "seed {seed}: the outside saw {:?} where the history has {:?} (at effect {})",
            around(&seen),
            around(&effects),
            at + 1
        );
    }
}

#[test]
fn show_lists_the_runs_of_a_workflow_that_continued_as_new() {
    let s = Scene::new();
    s.script(
        "chain.lua",
        r#"
local workflow, rand = require("workflow"), require("rand")
local n = ... or 1
rand.int(1, 6)
if n < 3 then workflow.continue_as_new(n + 1) end
return n
"#,
    );
    assert_eq!(s.run("run", &["run", "c", "chain.lua"]).json(), 3);
    let show = s.show("c");
    assert_eq!(
        (show["run"].as_u64(), show["status"].as_str()),
        (Some(3), Some("completed"))
    );
    assert_eq!(commands(&show), ["rand.int"]);
    let past = show["past_runs"].as_array().expect("past runs");
    let runs: Vec<_> = past
        .iter()
        .map(|r| (r["run"].as_u64(), r["status"].as_str(), r["steps"].as_u64()))
        .collect();
    assert_eq!(
        runs,
        [
            (Some(1), Some("continued"), Some(1)),
            (Some(2), Some("continued"), Some(1))
        ]
    );
    let first = s.run("run1", &["show", "c", "--run", "1", "--json"]).json();
    assert_eq!(first["args"], serde_json::json!([]));
    assert_eq!(commands(&first), ["rand.int"]);
    let second = s.run("run2", &["show", "c", "--run", "2", "--json"]).json();
    assert_eq!(second["args"], serde_json::json!([2]));
    let text = s.run("text", &["show", "c"]);
    assert!(text.stdout.contains("run      3 of 3"), "{text:?}");
    assert!(text.stdout.contains("past runs"), "{text:?}");
    let missing = s.run("missing", &["show", "c", "--run", "7"]);
    assert!(missing.stderr.starts_with("NOT_FOUND: "), "{missing:?}");
}

#[test]
fn a_running_workflow_is_cancelled_from_another_shell() {
    let s = Scene::new();
    s.script(
        "cancel.lua",
        r#"
local process, time, errors = require("process"), require("time"), require("errors")
time.sleep(1)
print("waiting")
local m, err = process.receive("approve")
if err and err:kind() == errors.CANCELED then return "cancelled" end
return "approved"
"#,
    );
    let child = s.start("run", &["run", "w", "cancel.lua"]);
    s.wait_for("run", "waiting", 1);
    // The run holds the store: the cancellation goes through the spool.
    let sent = s.run("cancel", &["cancel", "w"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    assert!(sent.stdout.contains("spooled"), "{sent:?}");
    assert_eq!(s.finish("run", child).json(), "cancelled");
    let late = s.run("late", &["cancel", "w"]);
    assert!(late.stderr.starts_with("CONFLICT: "), "{late:?}");
}

#[test]
fn a_durable_sleep_waits_only_for_what_is_left_after_a_restart() {
    const SLEEP_MS: u64 = 8_000;
    let s = Scene::new();
    s.script(
        "nap.lua",
        &format!(
            r#"
            local time = require("time")
            local t0 = time.now()
            print("sleeping")
            time.sleep({SLEEP_MS})
            return time.now() - t0
            "#
        ),
    );
    let child = s.start("nap", &["run", "nap", "nap.lua"]);
    s.wait_for("nap", "sleeping", 1);
    std::thread::sleep(Duration::from_millis(SLEEP_MS / 2));
    s.kill(child);

    let started = Instant::now();
    let total = s.run("resume", &["resume", "nap"]).json();
    let waited = started.elapsed();
    // The whole sleep happened (across both processes)…
    assert!(total.as_f64().unwrap() >= SLEEP_MS as f64, "{total}");
    // …but the resumed process did not sleep all of it again.
    assert!(
        waited < Duration::from_millis(SLEEP_MS - 1_000),
        "resume waited {waited:?}"
    );
}

#[test]
fn a_reordered_script_fails_to_resume_with_nondeterminism() {
    let s = Scene::new();
    let v1 = r#"
        local time = require("time")
        local t = time.now()
        time.sleep(10)
        print("ready")
        time.sleep(60000)
        return t
    "#;
    s.script("w.lua", v1);
    let child = s.start("run", &["run", "w", "w.lua"]);
    s.wait_for("run", "ready", 1);
    s.kill(child);

    s.script(
        "w.lua",
        &v1.replace(
            "local t = time.now()\n        time.sleep(10)",
            "time.sleep(10)\n        local t = time.now()",
        ),
    );
    let run = s.run("resume", &["resume", "w"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = run.stderr.trim();
    assert!(
        line.starts_with("NONDETERMINISM: workflow \"w\" step 1:"),
        "{line}"
    );
    assert!(
        line.contains("time.sleep") && line.contains("time.now"),
        "{line}"
    );
    assert_eq!(s.show("w")["status"], "running");
}

/// A workflow that waits for an `approve` signal.
// `time.sleep` first: a wait commits what is buffered before it starts, the
// workflow's header with it, so a kill after "waiting" always leaves a
// workflow to resume.
const WAIT_FOR_APPROVAL: &str = r#"
local process = require("process")
require("time").sleep(1)
print("waiting")
local m = process.receive("approve")
return { approved_by = m.payload.who }
"#;

#[test]
fn a_signal_sent_from_the_cli_reaches_a_killed_workflow_on_resume() {
    let s = Scene::new();
    s.script("wait.lua", WAIT_FOR_APPROVAL);
    let child = s.start("wait", &["run", "w", "wait.lua"]);
    s.wait_for("wait", "waiting", 1);
    s.kill(child);
    let sent = s.run("signal", &["signal", "w", "approve", r#"{"who":"ada"}"#]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    let resumed = s.run("resume", &["resume", "w"]).json();
    assert_eq!(resumed, serde_json::json!({"approved_by": "ada"}));
    assert_eq!(commands(&s.show("w")), ["time.sleep", "process.receive"]);
    let late = s.run("late", &["signal", "w", "approve", "1"]);
    assert!(late.stderr.starts_with("CONFLICT: "), "{late:?}");
}

#[test]
fn a_workflows_published_state_is_queried_from_the_cli_and_survives_a_kill() {
    let s = Scene::new();
    s.script(
        "stage.lua",
        r#"
local process, workflow, time = require("process"), require("workflow"), require("time")
workflow.publish("stage", {name = "approval", attempt = 1})
time.sleep(1) -- a durable step: the publish reaches the disk before it
print("waiting")
local m = process.receive("approve")
workflow.publish("stage", "approved by " .. m.payload.who)
return m.payload.who
"#,
    );
    let child = s.start("stage", &["run", "w", "stage.lua"]);
    s.wait_for("stage", "waiting", 1);
    s.kill(child);
    let stage = s.run("query", &["query", "w", "stage"]).json();
    assert_eq!(stage, serde_json::json!({"name": "approval", "attempt": 1}));
    let none = s.run("none", &["query", "w", "nope"]);
    assert!(none.stderr.starts_with("NOT_FOUND: "), "{none:?}");
    assert_eq!(none.stderr.lines().count(), 1, "{none:?}");
    let sent = s.run("signal", &["signal", "w", "approve", r#"{"who":"ada"}"#]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    // The resume replays the first publish without writing it again, then
    // publishes live.
    assert_eq!(s.run("resume", &["resume", "w"]).json(), "ada");
    let stage = s.run("query2", &["query", "w", "stage"]).json();
    assert_eq!(stage, "approved by ada");
    // Publishing is not a step of the history.
    assert_eq!(commands(&s.show("w")), ["time.sleep", "process.receive"]);
}

#[test]
fn a_signal_from_another_process_reaches_a_running_workflow_through_the_spool() {
    let s = Scene::new();
    s.script("wait.lua", WAIT_FOR_APPROVAL);
    let child = s.start("wait", &["run", "w", "wait.lua"]);
    s.wait_for("wait", "waiting", 1);
    // The running troupe holds the store file: this one spools the signal.
    let sent = s.run("signal", &["signal", "w", "approve", r#"{"who":"ada"}"#]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    assert!(sent.stdout.contains("spooled"), "{sent:?}");
    let run = s.finish("wait", child);
    assert_eq!(run.json(), serde_json::json!({"approved_by": "ada"}));
    assert_eq!(commands(&s.show("w")), ["time.sleep", "process.receive"]);
    let spool = std::fs::read_dir(s.path("data/workflows.redb.signals"))
        .expect("the spool directory")
        .count();
    assert_eq!(spool, 0, "a delivered signal leaves the spool");
}

#[test]
fn show_list_check_and_query_work_while_another_process_holds_the_store() {
    let s = Scene::new();
    s.script("wait.lua", WAIT_FOR_APPROVAL);
    let child = s.start("wait", &["run", "w", "wait.lua"]);
    s.wait_for("wait", "waiting", 1);
    // The running troupe holds the store file: these ask it, through the
    // socket beside the store.
    assert!(s.path("data/workflows.redb.sock").exists());
    let shown = s.show("w");
    assert_eq!(shown["status"], "running");
    assert_eq!(commands(&shown), ["time.sleep"]);
    let listed = s.run("list", &["list"]);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let row = listed.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("w ") && row.contains("running"),
        "{listed:?}"
    );
    let checked = s.run("check", &["check", "--json"]).json();
    assert_eq!(checked[0]["id"], "w", "{checked}");
    let missing = s.run("missing", &["show", "nope"]);
    assert!(missing.stderr.starts_with("NOT_FOUND: "), "{missing:?}");
    assert_eq!(missing.stderr.lines().count(), 1, "{missing:?}");
    let sent = s.run("signal", &["signal", "w", "approve", r#"{"who":"ada"}"#]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    assert_eq!(s.finish("wait", child).json()["approved_by"], "ada");
    assert!(
        !s.path("data/workflows.redb.sock").exists(),
        "the socket goes with the run"
    );
    assert_eq!(s.show("w")["status"], "completed");
}

#[test]
fn workflow_usage_errors_are_one_line() {
    let s = Scene::new();
    let run = s.run("missing", &["resume", "nope"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr.trim(),
        "NOT_FOUND: workflow \"nope\" does not exist"
    );
    let run = s.run("nofile", &["run", "x", "absent.lua"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.starts_with("NOT_FOUND: "), "{run:?}");
}

#[test]
fn reading_a_store_that_does_not_exist_is_not_found_and_creates_nothing() {
    let s = Scene::new();
    for (tag, args) in [
        ("list", &["list"][..]),
        ("show", &["show", "w"][..]),
        ("query", &["query", "w", "k"][..]),
    ] {
        let run = s.run(tag, args);
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(
            run.stderr.starts_with("NOT_FOUND: no workflow store at "),
            "{run:?}"
        );
    }
    assert!(!s.path("data").exists(), "a read created the store");
    // Once a workflow has run, text output ends its last line.
    s.script("one.lua", "return 1");
    s.run("run", &["run", "w", "one.lua"]);
    for (tag, args) in [("list2", &["list"][..]), ("show2", &["show", "w"][..])] {
        let run = s.run(tag, args);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.stdout.ends_with('\n'), "{run:?}");
    }
}

#[test]
fn children_killed_mid_sleep_with_their_parent_finish_once_after_a_resume() {
    let (base, hits) = logging_server();
    let s = Scene::new();
    s.script(
        "parent.lua",
        r#"
local workflow, http = require("workflow"), require("http")
local base = ...
local kids = {}
for i = 1, 3 do kids[i] = workflow.start_child("kid-" .. i, "kid.lua", { base, i }) end
local sum = 0
for i = 1, 3 do sum = sum + assert(workflow.await(kids[i])) end
http.get(base .. "/parent/" .. sum)
return sum
"#,
    );
    s.script(
        "kid.lua",
        r#"
local http, time = require("http"), require("time")
local base, i = ...
http.get(base .. "/kid/" .. i .. "/in")
print("kid sleeping")
time.sleep(1500)
http.get(base .. "/kid/" .. i .. "/out")
return i * 10
"#,
    );
    let args = ["run", "fam", "parent.lua", &base, "--allow-module", "http"];
    let child = s.start("run", &args);
    s.wait_for("run", "kid sleeping", 3);
    s.kill(child);
    let before = counts(&hits);
    assert_eq!(before.len(), 3, "only the kids' first effects: {before:?}");
    let killed = s.show("fam");
    assert_eq!(killed["status"], "running");
    let statuses: Vec<&str> = killed["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["running"; 3]);

    assert_eq!(s.run("resume", &["resume", "fam"]).json(), 60);
    let counts = counts(&hits);
    let expected: Vec<String> = (1..=3)
        .flat_map(|i| [format!("/kid/{i}/in"), format!("/kid/{i}/out")])
        .chain(["/parent/60".to_owned()])
        .collect();
    let mut paths: Vec<&String> = counts.keys().collect();
    paths.sort();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(paths, want, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "each once: {counts:?}");

    let show = s.show("fam");
    assert_eq!(
        commands(&show),
        [
            "workflow.start_child",
            "workflow.start_child",
            "workflow.start_child",
            "workflow.await",
            "workflow.await",
            "workflow.await",
            "http.request"
        ]
    );
    let children = show["children"].as_array().expect("children");
    let rows: Vec<(&str, &str, &str)> = children
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["parent_close"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("kid-1", "completed", "terminate"),
            ("kid-2", "completed", "terminate"),
            ("kid-3", "completed", "terminate")
        ]
    );
    assert_eq!(s.show("kid-2")["parent"], "fam");
    let text = s.run("text", &["show", "fam"]);
    assert!(text.stdout.contains("children:"), "{text:?}");
    assert!(text.stdout.contains("kid-3"), "{text:?}");
}
