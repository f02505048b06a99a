//! Watchers: every engine with a loader reloads a watched script in the
//! background when its source changes it, keeps the old version when the
//! new one does not load, and stops reloading once unwatched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use troupe_dispatcher::{ErrorKind, Value};
use troupe_engines::{EngineFactory, ScriptEngine};
use troupe_sources::{ChangeSink, MemorySource, Script, Source, SourceError, WatchGuard};

/// A memory source that counts its reads.
struct Counting {
    inner: MemorySource,
    reads: AtomicUsize,
}

impl Source for Counting {
    fn name(&self) -> String {
        "counting".into()
    }
    fn get(&self, key: &str) -> Result<Script, SourceError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.inner.list(prefix)
    }
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        self.inner.subscribe(prefix, sink)
    }
}

/// The key and the script returning `n`, per engine.
fn version(lang: &str, n: u8) -> (&'static str, String) {
    match lang {
        "lua" => ("job.lua", format!("return {n}")),
        "js" => ("job.js", format!("{n}")),
        "python" => ("job.py", format!("result = {n}")),
        "starlark" => ("job.star", format!("{n}")),
        "cel" => ("job.cel", format!("{n}")),
        "expr" => ("job.expr", format!("{n}")),
        "evalexpr" => ("job.evalexpr", format!("{n}")),
        "tcl" => ("job.tcl", format!("return {n}")),
        // `n` as MessagePack (a positive fixint) at address 16.
        _ => (
            "job.wat",
            format!(
                r#"(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (data (i32.const 16) "\{n:02x}")
  (func (export "run") (param i32 i32) (result i64) (i64.const 0x0000000100000010)))"#
            ),
        ),
    }
}

/// Waits up to 10 s for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_engine_with_a_loader_reloads_watched_scripts_in_the_background() {
    let mut checked = Vec::new();
    for lang in [
        "lua", "js", "python", "starlark", "cel", "expr", "evalexpr", "wasm", "tcl",
    ] {
        let Ok(mut e) = EngineFactory::builtin().create(lang) else {
            continue;
        };
        e.init().unwrap();
        let (key, one) = version(lang, 1);
        let src = Arc::new(Counting {
            inner: MemorySource::new().with(key, one),
            reads: AtomicUsize::new(0),
        });
        e.as_loader().unwrap().bind_source(src.clone());
        e.as_loader().unwrap().load(key).unwrap();
        e.as_watcher().unwrap().watch(key).unwrap();
        let run = |e: &mut Box<dyn ScriptEngine>| e.as_executor().unwrap().execute(key).unwrap();
        assert_eq!(run(&mut e), Value::Int(1), "{lang}");

        // The change is read without any call on the instance.
        let reads = src.reads.load(Ordering::SeqCst);
        src.inner.insert(key, version(lang, 2).1).unwrap();
        wait_for(&format!("{lang} to read the change"), || {
            src.reads.load(Ordering::SeqCst) > reads
        });
        wait_for(&format!("{lang} to run version 2"), || {
            run(&mut e) == Value::Int(2)
        });

        // A version that does not load leaves the old one running.
        let reads = src.reads.load(Ordering::SeqCst);
        src.inner.insert(key, "((( not a script {").unwrap();
        wait_for(&format!("{lang} to read the broken version"), || {
            src.reads.load(Ordering::SeqCst) > reads
        });
        wait_for(&format!("{lang} to report the broken version"), || {
            assert_eq!(run(&mut e), Value::Int(2), "{lang}");
            e.last_error()
                .is_some_and(|err| err.kind() == ErrorKind::Invalid)
        });

        // Unwatched: changes are no longer read.
        e.as_watcher().unwrap().unwatch(key).unwrap();
        let reads = src.reads.load(Ordering::SeqCst);
        src.inner.insert(key, version(lang, 3).1).unwrap();
        thread::sleep(Duration::from_millis(100));
        assert_eq!(src.reads.load(Ordering::SeqCst), reads, "{lang}");
        assert_eq!(run(&mut e), Value::Int(2), "{lang}");
        checked.push(lang);
    }
    assert!(checked.contains(&"lua"), "{checked:?}");
}
