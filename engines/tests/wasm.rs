//! WebAssembly processes through the runtime: results, arguments, limits,
//! the policy at `call`, commands that wait without holding a worker, and
//! traps with their location. Guests are small WAT programs.
#![cfg(feature = "wasm")]

use std::num::{NonZeroU64, NonZeroUsize};

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::wasm::WasmEngine;
use troupe_modules::{Class, ModuleDef, Policy, Ret};
use troupe_runtime::{Limits, Runtime, Spawn};
use troupe_sources::MemorySource;

/// Every `troupe` import, a memory and a bump allocator, then `body`.
fn guest(body: &str) -> String {
    format!(
        r#"(module
  (import "troupe" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "troupe" "send" (func $send (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "troupe" "receive" (func $receive (param i32 i32 i64 i32) (result i32)))
  (import "troupe" "sleep" (func $sleep (param i64 i32) (result i32)))
  (import "troupe" "self" (func $self (param i32) (result i32)))
  (import "troupe" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  {body})"#
    )
}

/// `hello` as MessagePack (a fixstr) at address 16, returned packed.
const HELLO: &str = r#"
  (data (i32.const 16) "\a5hello")
  (data (i32.const 32) "hi from wasm")
  (func (export "run") (param i32 i32) (result i64)
    (call $log (i32.const 1) (i32.const 32) (i32.const 12))
    (i64.const 0x0000000600000010))"#;

fn runtime(files: &[(&str, &str)], workers: usize) -> Runtime {
    let src = files
        .iter()
        .fold(MemorySource::new(), |s, (k, v)| s.with(k, v));
    Runtime::builder()
        .workers(workers)
        .source(src)
        .engine(WasmEngine::new())
        .module(
            ModuleDef::new("calc")
                .class(Class::Deterministic)
                .function("add", |_cx, args| {
                    let (a, b) = (args.int(0)?, args.int(1)?);
                    Ok(Ret::Value(Value::Int(a + b)))
                }),
        )
        .module(
            ModuleDef::new("secret")
                .class(Class::Io)
                .function("get", |_cx, _args| Ok(Ret::Value(Value::from("s3cr3t")))),
        )
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

fn run_spawn(code: &str, spawn: Spawn) -> Result<Value, Error> {
    let rt = runtime(&[("main.wat", code)], 2);
    let r = rt.spawn(spawn)?.join_blocking();
    rt.shutdown();
    r
}

fn run(code: &str) -> Result<Value, Error> {
    run_spawn(code, Spawn::script("main.wat"))
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

#[test]
fn hello_returns_a_msgpack_result() {
    assert_eq!(run(&guest(HELLO)).unwrap(), Value::from("hello"));
}

#[test]
fn numeric_entries_take_and_return_numbers() {
    let code = r#"(module
      (func (export "add") (param i64 i64) (result i64)
        (i64.add (local.get 0) (local.get 1)))
      (func (export "half") (param f64) (result f64)
        (f64.div (local.get 0) (f64.const 2))))"#;
    let add = Spawn::script("main.wat").entry("add").args([2, 40]);
    assert_eq!(run_spawn(code, add).unwrap(), Value::Int(42));
    let half = Spawn::script("main.wat")
        .entry("half")
        .args([Value::Float(5.0)]);
    assert_eq!(run_spawn(code, half).unwrap(), Value::Float(2.5));
    let wrong = Spawn::script("main.wat").entry("add").args(["x", "y"]);
    assert_eq!(
        run_spawn(code, wrong).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    let missing = Spawn::script("main.wat").entry("nope");
    assert_eq!(
        run_spawn(code, missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Echoes its argument array: every value variant survives the trip.
#[test]
fn values_round_trip_through_linear_memory() {
    let echo = guest(
        r#"(func (export "run") (param i32 i32) (result i64)
            (i64.or (i64.extend_i32_u (local.get 0))
                    (i64.shl (i64.extend_i32_u (local.get 1)) (i64.const 32))))"#,
    );
    let args = vec![
        Value::Nil,
        Value::Bool(true),
        Value::Int(-7),
        Value::Float(1.5),
        Value::from("text"),
        Value::Bytes(vec![0, 1, 255]),
        Value::Array(vec![Value::Int(1), Value::from("two")]),
        [("k".to_owned(), Value::Int(3))].into_iter().collect(),
    ];
    let got = run_spawn(&echo, Spawn::script("main.wat").args(args.clone())).unwrap();
    assert_eq!(got, Value::Array(args));
}

#[test]
fn syntax_errors_are_invalid() {
    let e = run("(module (func (export \"run\") i32.bogus))").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("main.wat"), "{e}");
}

#[test]
fn an_infinite_loop_exceeds_the_instruction_limit() {
    let code = r#"(module (func (export "run") (loop (br 0))))"#;
    let spawn = Spawn::script("main.wat").limits(limits(|l| {
        l.max_instructions = NonZeroU64::new(1_000_000);
    }));
    let e = run_spawn(code, spawn).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(e.message().contains("instruction limit"), "{e}");
}

/// One worker: a guest spinning forever is preempted at each fuel slice, so
/// another process still runs to its end.
#[test]
fn a_spinning_guest_is_preempted() {
    let rt = runtime(
        &[
            (
                "spin.wat",
                r#"(module (func (export "run") (loop (br 0))))"#,
            ),
            ("hello.wat", &guest(HELLO)),
        ],
        1,
    );
    let spinner = rt.spawn(Spawn::script("spin.wat")).unwrap();
    let hello = rt.spawn(Spawn::script("hello.wat")).unwrap();
    assert_eq!(hello.join_blocking().unwrap(), Value::from("hello"));
    assert!(spinner.kill());
    rt.shutdown();
}

#[test]
fn a_memory_bomb_exceeds_the_memory_limit() {
    let code = r#"(module (memory 1)
      (func (export "run") (loop (drop (memory.grow (i32.const 1))) (br 0))))"#;
    let spawn = Spawn::script("main.wat").limits(limits(|l| {
        l.max_memory = NonZeroUsize::new(1 << 20);
    }));
    let e = run_spawn(code, spawn).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(e.message().contains("memory limit"), "{e}");
}

/// `call(module, function, args)`: a module function's result, and the
/// policy's and the registry's refusals as structured errors in the buffer.
fn call_guest(module: &str, function: &str, args_msgpack: &str, args_len: usize) -> String {
    guest(&format!(
        r#"(data (i32.const 16) "{module}")
  (data (i32.const 48) "{function}")
  (data (i32.const 80) "{args_msgpack}")
  (func (export "run") (param i32 i32) (result i64)
    (drop (call $call (i32.const 16) (i32.const {}) (i32.const 48) (i32.const {})
                      (i32.const 80) (i32.const {args_len}) (i32.const 0)))
    (i64.load (i32.const 0)))"#,
        module.len(),
        function.len()
    ))
}

#[test]
fn call_reaches_modules_through_the_policy() {
    // [20, 22] as MessagePack.
    let sum = run(&call_guest("calc", "add", r"\92\14\16", 3)).unwrap();
    assert_eq!(sum, Value::Int(42));
    let kind = |v: Value| v.get("kind").and_then(Value::as_str).map(str::to_owned);
    let denied = run(&call_guest("secret", "get", "", 0)).unwrap();
    assert_eq!(kind(denied).as_deref(), Some("PERMISSION_DENIED"));
    let unknown = run(&call_guest("nope", "get", "", 0)).unwrap();
    assert_eq!(kind(unknown).as_deref(), Some("NOT_FOUND"));
    let no_fn = run(&call_guest("calc", "mul", "", 0)).unwrap();
    assert_eq!(kind(no_fn).as_deref(), Some("NOT_FOUND"));
}

/// Sends itself a message and receives it: `self`, `send`, `receive`.
const SELF_SEND: &str = r#"
  (data (i32.const 16) "ping")
  (data (i32.const 32) "\a4pong")
  (func (export "run") (param i32 i32) (result i64)
    (drop (call $self (i32.const 0)))
    (drop (call $send (i32.load (i32.const 0)) (i32.load (i32.const 4))
                      (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 5) (i32.const 8)))
    (drop (call $receive (i32.const 16) (i32.const 4) (i64.const -1) (i32.const 0)))
    (i64.load (i32.const 0)))"#;

#[test]
fn a_guest_sends_and_receives() {
    let msg = run(&guest(SELF_SEND)).unwrap();
    assert_eq!(msg.get("topic"), Some(&Value::from("ping")));
    assert_eq!(msg.get("payload"), Some(&Value::from("pong")));
}

/// A guest waiting in `receive` or `sleep` holds no worker: with one
/// worker, another process runs to its end meanwhile.
#[test]
fn waiting_guests_do_not_hold_the_worker() {
    let receive = guest(
        r#"(func (export "run") (param i32 i32) (result i64)
            (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 0)))
            (i64.load (i32.const 0)))"#,
    );
    let sleep = |ms: u64| {
        guest(&format!(
            r#"(func (export "run") (param i32 i32) (result i64)
                (drop (call $sleep (i64.const {ms}) (i32.const 0)))
                (i64.const 0))"#
        ))
    };
    let rt = runtime(
        &[
            ("receive.wat", &receive),
            ("long.wat", &sleep(3_600_000)),
            ("short.wat", &sleep(1)),
            ("hello.wat", &guest(HELLO)),
        ],
        1,
    );
    let receiver = rt.spawn(Spawn::script("receive.wat")).unwrap();
    let sleeper = rt.spawn(Spawn::script("long.wat")).unwrap();
    let hello = rt.spawn(Spawn::script("hello.wat")).unwrap();
    assert_eq!(hello.join_blocking().unwrap(), Value::from("hello"));
    receiver.try_send("job", 7).unwrap();
    let msg = receiver.join_blocking().unwrap();
    assert_eq!(msg.get("payload"), Some(&Value::Int(7)));
    assert!(sleeper.kill());
    let short = rt.spawn(Spawn::script("short.wat")).unwrap();
    assert_eq!(short.join_blocking().unwrap(), Value::Nil);
    rt.shutdown();
}

#[test]
fn a_trap_ends_the_process_with_its_location() {
    let code = r#"(module
      (func $boom (unreachable))
      (func (export "run") (call $boom)))"#;
    let e = run(code).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    assert!(e.message().contains("unreachable"), "{e}");
    let details = e.details().expect("location details");
    assert_eq!(details.get("function"), Some(&Value::from("boom")));
    assert!(details.get("offset").and_then(Value::as_i64).is_some());
}

#[test]
fn the_polyglot_job_runs() {
    let job = include_str!("../../examples/polyglot/job.wat");
    let spawn = Spawn::script("main.wat").args([1, 2, 3]);
    let want: Value = [
        ("greeting".to_owned(), Value::from("hello from wasm")),
        ("sum".to_owned(), Value::Int(6)),
    ]
    .into_iter()
    .collect();
    assert_eq!(run_spawn(job, spawn).unwrap(), want);
    let big = Spawn::script("main.wat").args([200]);
    let e = run_spawn(job, big).unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Invalid, "only small integers")
    );
}
