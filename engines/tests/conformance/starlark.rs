//! Starlark scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`; `None` where Starlark (as
/// Troupe runs it) cannot express the case.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => "\"hello\"",
        "args_to_result" => "args[0] + args[1]",
        "value_roundtrip" => "args[0]",
        "runtime_error" => "x = 1\nfail(\"boom\")",
        // Not expressible: `load` is disabled (Starlark scripts import no
        // modules).
        "unknown_module" | "denied_module" => return None,
        // `range` takes 32-bit bounds: two nested loops run ~4.6e18 times.
        "infinite_loop" => {
            "for i in range(2147483647):\n    for j in range(2147483647):\n        pass"
        }
        "memory_bomb" => "l = []\nfor i in range(2147483647):\n    l.append(\"x\" * 1024 + str(i))",
        // Not expressible: a Starlark script runs to completion and cannot
        // receive or wait.
        "send_receive" | "sleep" => return None,
        _ => return None,
    })
}
