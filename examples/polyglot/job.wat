;; The polyglot job in WebAssembly text: the total of an order, 10% off above 10.
;; A numeric entry (see docs/wasm-abi.md): spawn it with the arguments
;; [price, qty], e.g. price = 3, qty = 4 gives 11. Needs the `wasm` feature.
(module
  (func (export "run") (param $price i64) (param $qty i64) (result i64)
    (local $total i64)
    (local.set $total (i64.mul (local.get $price) (local.get $qty)))
    (if (result i64) (i64.gt_s (local.get $total) (i64.const 10))
      (then (i64.sub (local.get $total) (i64.div_s (local.get $total) (i64.const 10))))
      (else (local.get $total)))))
