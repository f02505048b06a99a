//! The sandbox holds for TCL: an adversarial corpus of escape attempts
//! (`tests/sandbox/tcl/*.tcl`, one attempt per file, its first line naming
//! the expected outcome), each run as a process under the attacker's limits
//! and policy, with a probe after each that must find the runtime as it
//! was.
#![cfg(feature = "tcl")]

mod corpus;

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::Path;
use std::time::Duration;

use troupe::{Limits, Policy, Runtime, Spawn, Value};
use troupe_engines::tcl::{CountingAllocator, TclEngine};

/// Lets `max_memory` hold for TCL processes.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn every_tcl_escape_attempt_in_the_corpus_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/tcl");
    let cases = corpus::attempts(&dir, "tcl", "#");
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let rt = Runtime::builder()
        .workers(1)
        .engine(TclEngine::new())
        .module(corpus::vault())
        .default_policy(Policy::plugin())
        .build()
        .expect("runtime builds");
    // A TCL command does more than a Lua instruction: 2M of them end well
    // inside the time limit, even in a debug build.
    let limits = Limits {
        max_instructions: NonZeroU64::new(2_000_000),
        max_memory: NonZeroUsize::new(16 << 20),
        timeout: Some(Duration::from_secs(30)),
        ..Limits::default()
    };
    let mut failures = Vec::new();
    for corpus::Attempt {
        name,
        code,
        expected,
    } in &cases
    {
        let name = name.as_str();
        let outcome = rt
            .spawn_code(Spawn::script(name).limits(limits), code)
            .expect("attacker spawns")
            .join_blocking();
        let got = match &outcome {
            Ok(v) => format!("ESCAPED with {}", v.to_json()),
            Err(e) => e.kind().as_str().to_owned(),
        };
        if got != *expected {
            failures.push(format!(
                "{name}: expected {expected}, got {got} ({outcome:?})"
            ));
        }
        let probe = rt
            .spawn_code(Spawn::script("probe.tcl"), "expr {6 * 7}")
            .and_then(|h| h.join_blocking());
        if probe != Ok(Value::Int(42)) {
            failures.push(format!("{name}: the next process was affected: {probe:?}"));
        }
    }
    rt.shutdown();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
