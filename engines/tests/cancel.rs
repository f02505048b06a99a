//! Cancellation: a token cancelled from another thread stops a busy script
//! with `CANCELED` in every engine (the ones that cannot loop stop at their
//! next host function call), and the instance serves the next call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use troupe_dispatcher::{ErrorKind, Value};
use troupe_engines::cancel::{CancellationToken, cancellable};
use troupe_engines::{EngineFactory, ScriptEngine};

/// A loop that never ends on its own, per engine that has loops.
const BUSY: &[(&str, &str)] = &[
    ("lua", "local n = 0 while true do n = n + 1 end"),
    ("js", "let n = 0; while (true) { n++; }"),
    ("python", "n = 0\nwhile True:\n    n += 1\n"),
    (
        "starlark",
        "def spin():\n    n = 0\n    for i in range(1000000):\n        for j in range(1000000):\n            n += 1\n    return n\nspin()\n",
    ),
    ("tcl", "set n 0\nwhile 1 { incr n }"),
    (
        "wasm",
        r#"(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64)
    (loop $spin (br $spin))
    (i64.const 0)))"#,
    ),
];

/// A script that ends at once, per engine.
fn quick(lang: &str) -> &'static str {
    match lang {
        "lua" => "return 1 + 1",
        "python" | "js" | "starlark" | "cel" | "expr" | "evalexpr" => "1 + 1",
        "tcl" => "expr {1 + 1}",
        _ => {
            r#"(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64) (i64.const 0)))"#
        }
    }
}

fn engine(lang: &str) -> Option<Box<dyn ScriptEngine>> {
    let mut e = EngineFactory::builtin().create(lang).ok()?;
    e.init().unwrap();
    Some(e)
}

#[test]
fn a_busy_loop_stops_with_canceled_in_every_engine_that_loops() {
    let mut ran = Vec::new();
    for (lang, code) in BUSY {
        let Some(mut e) = engine(lang) else { continue };
        let token = CancellationToken::new();
        let canceller = token.clone();
        let cancelled_at = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            canceller.cancel();
            Instant::now()
        });
        let r = cancellable(e.as_mut(), &token, |e| {
            e.as_executor()?.execute_string(code)
        });
        let returned = Instant::now();
        let cancelled_at = cancelled_at.join().unwrap();
        let err = r.expect_err(lang);
        assert_eq!(err.kind(), ErrorKind::Canceled, "{lang}: {err}");
        eprintln!(
            "{lang}: stopped {:?} after the cancel",
            returned.saturating_duration_since(cancelled_at)
        );
        // The handle is gone: the instance runs the next script.
        e.as_executor()
            .unwrap()
            .execute_string(quick(lang))
            .unwrap_or_else(|e| panic!("{lang} after a cancel: {e}"));
        ran.push(*lang);
    }
    assert!(ran.contains(&"lua"), "the default engine ran: {ran:?}");
}

#[test]
fn a_function_call_stops_with_canceled() {
    let defs = [
        ("lua", "function spin() while true do end end"),
        ("js", "function spin() { while (true) {} }"),
        ("python", "def spin():\n    while True:\n        pass\n"),
        ("tcl", "proc spin {} { while 1 {} }"),
    ];
    for (lang, code) in defs {
        let Some(mut e) = engine(lang) else { continue };
        e.as_executor().unwrap().execute_string(code).unwrap();
        let token = CancellationToken::new();
        let canceller = token.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            canceller.cancel();
        });
        let r = cancellable(e.as_mut(), &token, |e| {
            e.as_functions()?.call_function("spin", Vec::new())
        });
        t.join().unwrap();
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Canceled, "{lang}");
    }
}

/// CEL, expr and evalexpr cannot loop: a cancellation stops them at their
/// next host function call, and the call that cancelled is the last one.
#[test]
fn languages_without_loops_stop_at_the_next_host_call() {
    for lang in [
        "cel", "expr", "evalexpr", "lua", "js", "python", "starlark", "tcl",
    ] {
        let Some(mut e) = engine(lang) else { continue };
        let token = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let (seen, canceller) = (Arc::clone(&calls), token.clone());
        e.as_functions()
            .unwrap()
            .register_function(
                "tick",
                Arc::new(move |_| {
                    if seen.fetch_add(1, Ordering::SeqCst) == 1 {
                        canceller.cancel();
                    }
                    Ok(Value::Int(1))
                }),
            )
            .unwrap();
        let code = match lang {
            "lua" => "return tick() + tick() + tick() + tick()",
            "tcl" => "expr {[tick] + [tick] + [tick] + [tick]}",
            _ => "tick() + tick() + tick() + tick()",
        };
        let r = cancellable(e.as_mut(), &token, |e| {
            e.as_executor()?.execute_string(code)
        });
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Canceled, "{lang}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "{lang}: calls after the cancel"
        );
    }
}

#[test]
fn a_cancelled_handle_stops_every_call_until_it_is_removed_or_reset() {
    for lang in [
        "lua", "js", "python", "starlark", "cel", "expr", "evalexpr", "wasm", "tcl",
    ] {
        let Some(mut e) = engine(lang) else { continue };
        let token = CancellationToken::new();
        token.cancel();
        e.set_cancel(Some(token));
        for _ in 0..2 {
            let r = e.as_executor().unwrap().execute_string(quick(lang));
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Canceled, "{lang}");
        }
        e.reset().unwrap();
        e.as_executor()
            .unwrap()
            .execute_string(quick(lang))
            .unwrap_or_else(|e| panic!("{lang} after reset: {e}"));
    }
}
