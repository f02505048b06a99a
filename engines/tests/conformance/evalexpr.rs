//! evalexpr scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`; `None` where evalexpr cannot
/// express the case.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => "\"hello\"",
        "args_to_result" => "args.0 + args.1",
        // Not expressible: evalexpr has no bytes and no maps (bytes arrive
        // as a tuple of integers, a map as dotted variables).
        "value_roundtrip" => return None,
        // Not expressible: evalexpr reports no position for errors.
        "runtime_error" => return None,
        // Not expressible: evalexpr has no imports.
        "unknown_module" | "denied_module" => return None,
        // Not expressible: evalexpr has no loops or recursion.
        "infinite_loop" | "memory_bomb" => return None,
        // Not expressible: an expression cannot receive or wait.
        "send_receive" | "sleep" => return None,
        _ => return None,
    })
}
