//! CEL scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`; `None` where CEL cannot express
/// the case.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => "'hello'",
        "args_to_result" => "args[0] + args[1]",
        "value_roundtrip" => "args[0]",
        // Not expressible: CEL reports no position for evaluation errors
        // (only the script's key), so "line 2" cannot be shown.
        "runtime_error" => return None,
        // Not expressible: CEL has no imports.
        "unknown_module" | "denied_module" => return None,
        // Not expressible: CEL has no loops (every expression terminates,
        // and its work is bounded by its length).
        "infinite_loop" | "memory_bomb" => return None,
        // Not expressible: an expression cannot receive or wait.
        "send_receive" | "sleep" => return None,
        _ => return None,
    })
}
