//! A history recorded by an earlier build still replays: `fixtures/
//! history_v1.redb` is the store `troupe workflow run fixture-v1
//! history_v1.lua 7` wrote (journal format 1), with one step of each kind of
//! journaled command (time, rand, uuid, spawn, send, receive, side effect,
//! version). Replaying it runs nothing live, so it passes only if this build
//! reads those records and its commands match them argument for argument.

use std::path::Path;

use troupe_dispatcher::{ErrorKind, Value};
use troupe_engines::lua::LuaEngine;
use troupe_runtime::Runtime;
use troupe_sources::MemorySource;
use troupe_workflow::{Status, WorkflowStore};

const ID: &str = "fixture-v1";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Replays the fixture's workflow with `script` served under the key the
/// history recorded (the absolute path it was run from).
fn replay(script: &str) -> (Result<Value, troupe_dispatcher::Error>, Option<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflows.redb");
    std::fs::copy(fixture("history_v1.redb"), &path).unwrap();
    let store = WorkflowStore::open(&path).unwrap();
    let header = store.header(ID).unwrap();
    assert_eq!(header.status, Status::Completed);
    let recorded = header.result.and_then(Result::ok);
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with(&header.key, script))
        .engine(LuaEngine::new())
        .journal_store(store)
        .build()
        .unwrap();
    let result = rt.replay(ID).unwrap().join_blocking();
    rt.shutdown();
    (result, recorded)
}

fn script() -> String {
    std::fs::read_to_string(fixture("history_v1.lua")).unwrap()
}

#[test]
fn a_history_recorded_by_an_earlier_build_replays_to_its_result() {
    let (result, recorded) = replay(&script());
    let recorded = recorded.expect("the fixture recorded a result");
    assert_eq!(result.unwrap(), recorded);
    assert_eq!(recorded.get("n"), Some(&Value::Int(7)));
    assert_eq!(recorded.get("echo_is_sender"), Some(&Value::Bool(true)));
}

#[test]
fn the_fixture_replay_compares_arguments() {
    let changed = script().replace("rand.int(1, 1000)", "rand.int(1, 999)");
    let err = replay(&changed).0.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Nondeterminism, "{err}");
    assert!(err.message().contains("rand.int"), "{err}");
}
