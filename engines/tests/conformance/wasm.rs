//! WebAssembly (WAT) guests for the conformance cases (see `conformance.rs`
//! and `docs/wasm-abi.md`).

/// Every `troupe` import, a memory and a bump allocator; the guest's body
/// and the closing parenthesis follow.
macro_rules! prelude {
    () => {
        r#"(module
  (import "troupe" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "troupe" "receive" (func $receive (param i32 i32 i64 i32) (result i32)))
  (import "troupe" "sleep" (func $sleep (param i64 i32) (result i32)))
  (import "troupe" "fail" (func $fail (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  ;; Ends the process with the error in the result slot at 0.
  (func $fail_slot (call $fail (i32.load (i32.const 0)) (i32.load (i32.const 4))))
"#
    };
}

/// A guest that calls `module.function` with no arguments and fails with
/// the error it gets (a module name of `$mlen` bytes at 16, the function's
/// at 48).
macro_rules! call_and_fail {
    ($module:literal, $function:literal, $mlen:literal, $flen:literal) => {
        concat!(
            prelude!(),
            r#"(data (i32.const 16) ""#,
            $module,
            r#"")
  (data (i32.const 48) ""#,
            $function,
            r#"")
  (func (export "run") (param i32 i32) (result i64)
    (if (call $call (i32.const 16) (i32.const "#,
            $mlen,
            r#") (i32.const 48) (i32.const "#,
            $flen,
            r#") (i32.const 0) (i32.const 0) (i32.const 0))
      (then (call $fail_slot)))
    (i64.load (i32.const 0))))"#
        )
    };
}

/// The guest for conformance case `name`.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        // "hello" as MessagePack at 16, returned packed (ptr | len << 32).
        "hello" => concat!(
            prelude!(),
            r#"(data (i32.const 16) "\a5hello")
  (func (export "run") (param i32 i32) (result i64)
    (i64.const 0x0000000600000010)))"#
        ),
        // A numeric entry.
        "args_to_result" => {
            r#"(module (func (export "run") (param i64 i64) (result i64)
                 (i64.add (local.get 0) (local.get 1))))"#
        }
        // The arguments arrive as a one-element MessagePack array: skip the
        // array's one-byte header and return the element's bytes.
        "value_roundtrip" => concat!(
            prelude!(),
            r#"(func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.extend_i32_u (i32.add (local.get $ptr) (i32.const 1)))
            (i64.shl (i64.extend_i32_u (i32.sub (local.get $len) (i32.const 1))) (i64.const 32)))))"#
        ),
        // Not expressible: WebAssembly has no source lines. A guest can fail
        // with "boom" (`fail`), and a trap carries the function and byte
        // offset (tested in engines/tests/wasm.rs), but no "line 2".
        "runtime_error" => return None,
        "unknown_module" => call_and_fail!("no_such_module", "x", "14", "1"),
        "denied_module" => call_and_fail!("json", "encode", "4", "6"),
        "infinite_loop" => r#"(module (func (export "run") (loop (br 0))))"#,
        "memory_bomb" => {
            r#"(module (memory 1)
                 (func (export "run") (loop (drop (memory.grow (i32.const 16))) (br 0))))"#
        }
        // Receives the next message and extracts its payload with
        // `expr.eval("m.payload", {m = message})`: the arguments are the
        // MessagePack prefix at 16 followed by the message's bytes.
        "send_receive" => concat!(
            prelude!(),
            r#"(data (i32.const 16) "\92\a9m.payload\81\a1m")
  (data (i32.const 48) "expr")
  (data (i32.const 56) "eval")
  (func (export "run") (param i32 i32) (result i64)
    (local $msg i32) (local $len i32) (local $args i32)
    (if (call $receive (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 0))
      (then (call $fail_slot)))
    (local.set $msg (i32.load (i32.const 0)))
    (local.set $len (i32.load (i32.const 4)))
    (local.set $args (call $alloc (i32.add (local.get $len) (i32.const 14))))
    (memory.copy (local.get $args) (i32.const 16) (i32.const 14))
    (memory.copy (i32.add (local.get $args) (i32.const 14)) (local.get $msg) (local.get $len))
    (if (call $call (i32.const 48) (i32.const 4) (i32.const 56) (i32.const 4)
                    (local.get $args) (i32.add (local.get $len) (i32.const 14)) (i32.const 0))
      (then (call $fail_slot)))
    (i64.load (i32.const 0))))"#
        ),
        "sleep" => concat!(
            prelude!(),
            r#"(data (i32.const 16) "\a5slept")
  (func (export "run") (param i32 i32) (result i64)
    (if (call $sleep (i64.const 10) (i32.const 0))
      (then (call $fail_slot)))
    (i64.const 0x0000000600000010)))"#
        ),
        _ => return None,
    })
}
