//! Long histories: `workflow.continue_as_new` ends a run and starts the
//! next one under the same id with a fresh history (surviving a restart),
//! and a run's history is capped, with `LIMIT_EXCEEDED` naming the way out.

use std::time::{Duration, Instant};

use troupe_dispatcher::{ErrorKind, Value};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, Run, Status, WorkflowStore};

mod support;

/// Draws a number, waits, and continues as new until its fourth run, which
/// returns how many runs there were and the sum of the draws; in run 2 it
/// first waits for `go`.
const CHAIN: &str = r#"
local workflow, time, rand, process = require("workflow"), require("time"), require("rand"), require("process")
local n, total = ...
n, total = n or 1, total or 0
total = total + rand.int(1, 100)
time.sleep(1)
if n == 2 then process.receive("go") end
if n < 4 then workflow.continue_as_new(n + 1, total) end
return {runs = n, total = total}
"#;

fn runtime(store: &WorkflowStore) -> Runtime {
    support::runtime(
        store,
        MemorySource::new()
            .with("chain.lua", CHAIN)
            .with("draws.lua", DRAWS),
    )
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("not an integer: {v:?}"))
}

/// The results of the `rand.int` steps of `history`.
fn draws(history: &[Entry]) -> Vec<i64> {
    history
        .iter()
        .filter(|Entry::Command { name, .. }| name == "rand.int")
        .map(|Entry::Command { result, .. }| int(result.as_ref().unwrap()))
        .collect()
}

#[test]
fn continue_as_new_starts_fresh_histories_under_the_same_id_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = WorkflowStore::open(dir.path().join("wf.redb")).unwrap();
    let rt = runtime(&store);
    rt.spawn(Spawn::workflow("c", "chain.lua")).unwrap();
    // Run 2 waits for `go`: its draw and sleep are durable (the wait
    // commits them) and run 1 is filed.
    let started = Instant::now();
    while !(store.header("c").unwrap().run == 2 && store.history("c").unwrap().len() == 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "run 2 never waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.shutdown();

    let rt = runtime(&store);
    let h = rt.resume("c").unwrap();
    h.try_send("go", Value::Nil).unwrap();
    let result = h.join_blocking().unwrap();

    let runs: Vec<Run> = store.runs("c").unwrap();
    assert_eq!(
        runs.iter().map(|r| r.header.run).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let header = store.header("c").unwrap();
    assert_eq!((header.run, header.status), (4, Status::Completed));
    let mut total = 0;
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run.header.status, Status::Continued);
        // Each run starts with the arguments the one before it passed.
        let args: Vec<i64> = run.header.args.iter().map(int).collect();
        if i > 0 {
            assert_eq!(args, [i as i64 + 1, total]);
        }
        let names: Vec<&str> = run
            .history
            .iter()
            .map(|Entry::Command { name, .. }| name.as_str())
            .collect();
        let mut expected = vec!["rand.int", "time.sleep"];
        if i == 1 {
            expected.push("process.receive");
        }
        assert_eq!(names, expected, "run {}: a history of its own", i + 1);
        total += draws(&run.history).iter().sum::<i64>();
    }
    let current = store.history("c").unwrap();
    assert_eq!(current.len(), 2, "the last run's history starts afresh");
    total += draws(&current).iter().sum::<i64>();
    assert_eq!(int(result.get("runs").unwrap()), 4);
    assert_eq!(int(result.get("total").unwrap()), total);
    rt.shutdown();
}

/// Draws `n` numbers, continuing as new every `every` draws when `every`
/// is set; returns how many it drew in all.
const DRAWS: &str = r#"
local workflow, rand = require("workflow"), require("rand")
local n, every, done = ...
done = done or 0
for i = done + 1, n do
  rand.int(1, 6)
  if every and i % every == 0 and i < n then workflow.continue_as_new(n, every, i) end
end
return n
"#;

#[test]
fn a_history_at_its_limit_fails_naming_continue_as_new_which_gets_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = WorkflowStore::open(dir.path().join("wf.redb"))
        .unwrap()
        .with_history_limit(10);
    let rt = runtime(&store);

    let err = rt
        .spawn(Spawn::workflow("capped", "draws.lua").args([Value::Int(100)]))
        .unwrap()
        .join_blocking()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.to_string().contains("continue_as_new"), "{err}");
    assert_eq!(store.history("capped").unwrap().len(), 10);
    assert_eq!(store.header("capped").unwrap().status, Status::Failed);

    let args = [Value::Int(100), Value::Int(8)];
    let done = rt
        .spawn(Spawn::workflow("chained", "draws.lua").args(args))
        .unwrap()
        .join_blocking()
        .unwrap();
    assert_eq!(done, Value::Int(100));
    let runs = store.runs("chained").unwrap();
    assert_eq!(runs.len(), 12, "100 draws, 8 a run");
    assert!(runs.iter().all(|r| r.history.len() == 8));
    assert_eq!(store.history("chained").unwrap().len(), 4);
    rt.shutdown();
}

#[test]
fn continue_as_new_outside_a_workflow_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = WorkflowStore::open(dir.path().join("wf.redb")).unwrap();
    let rt = runtime(&store);
    let code = r#"
        local none, err = require("workflow").continue_as_new(1)
        assert(none == nil)
        return tostring(err)
    "#;
    let h = rt
        .spawn_code(
            Spawn::script("plain.lua").policy(WorkflowStore::default_policy()),
            code,
        )
        .unwrap();
    let text = h.join_blocking().unwrap();
    assert!(text.as_str().unwrap().starts_with("INVALID"), "{text:?}");
    rt.shutdown();
}
