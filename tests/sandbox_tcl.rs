//! The sandbox holds for TCL: an adversarial corpus of escape attempts
//! (`tests/sandbox/tcl/*.tcl`, one attempt per file, its first line naming
//! the expected outcome), each run as a process under the attacker's limits
//! and policy, with a probe after each that must find the runtime as it
//! was.
#![cfg(feature = "tcl")]

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::Path;
use std::time::Duration;

use troupe::{Class, FileSource, Limits, ModuleDef, Policy, Ret, Runtime, Spawn, Value};
use troupe_engines::tcl::{CountingAllocator, TclEngine};

/// Lets `max_memory` hold for TCL processes.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// A host module the attacker's policy leaves out (class io).
fn vault() -> ModuleDef {
    ModuleDef::new("vault")
        .describe("A host secret")
        .class(Class::Io)
        .function("secret", |_cx, _args| {
            Ok(Ret::Value(Value::from("hunter2")))
        })
}

#[test]
fn every_tcl_escape_attempt_in_the_corpus_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/tcl");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tcl"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let rt = Runtime::builder()
        .workers(1)
        .source(FileSource::new(&dir))
        .engine(TclEngine::new())
        .module(vault())
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
    for path in &cases {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let code = std::fs::read_to_string(path).expect("readable case");
        let expected = code
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: KIND`"))
            .trim()
            .to_owned();
        let outcome = rt
            .spawn(Spawn::script(name).limits(limits))
            .expect("attacker spawns")
            .join_blocking();
        let got = match &outcome {
            Ok(v) => format!("ESCAPED with {}", v.to_json()),
            Err(e) => e.kind().as_str().to_owned(),
        };
        if got != expected {
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
