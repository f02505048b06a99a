;; The polyglot job in WebAssembly text: sums the numbers it is given and
;; greets. A MessagePack entry (docs/wasm-abi.md): the arguments arrive as a
;; MessagePack array; this small guest reads only arrays of up to 15 small
;; integers (0..127) and fails INVALID on anything else.
;; Run: troupe run examples/polyglot/job.wat 1 2 3   (needs the `wasm` feature)
(module
  (import "troupe" "fail" (func $fail (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  ;; {greeting = "hello from wasm", sum = <int64 follows>}
  (data (i32.const 16) "\82\a8greeting\afhello from wasm\a3sum\d3")
  ;; {kind = "INVALID", message = "only small integers"}
  (data (i32.const 64) "\82\a4kind\a7INVALID\a7message\b3only small integers")
  (func $invalid (call $fail (i32.const 64) (i32.const 42)))
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $b i32) (local $sum i64)
    (local.set $b (i32.load8_u (local.get $ptr)))
    (if (i32.ne (i32.and (local.get $b) (i32.const 0xf0)) (i32.const 0x90))
      (then (call $invalid)))
    (local.set $n (i32.and (local.get $b) (i32.const 0x0f)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $b (i32.load8_u (i32.add (local.get $ptr) (i32.add (local.get $i) (i32.const 1)))))
        (if (i32.gt_u (local.get $b) (i32.const 0x7f)) (then (call $invalid)))
        (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (local.get $b))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; The result at 512: the 31-byte prefix, then the sum as a big-endian i64.
    (memory.copy (i32.const 512) (i32.const 16) (i32.const 31))
    (local.set $i (i32.const 0))
    (block $written
      (loop $byte
        (br_if $written (i32.ge_u (local.get $i) (i32.const 8)))
        (i64.store8 (i32.add (i32.const 543) (local.get $i))
          (i64.shr_u (local.get $sum)
            (i64.extend_i32_u (i32.sub (i32.const 56) (i32.mul (local.get $i) (i32.const 8))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    ;; ptr 512 | len 39 << 32
    (i64.const 0x0000002700000200)))
