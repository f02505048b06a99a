//! expr-language scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`; `None` where the expr language
/// cannot express the case.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => r#""hello""#,
        "args_to_result" => "args[0] + args[1]",
        "value_roundtrip" => "args[0]",
        // A range of 2^63 elements: refused by the evaluation's memory
        // budget before anything is allocated.
        "memory_bomb" => "len(1..9223372036854775807)",
        // Not expressible: expr has no way to raise an error of its own.
        "runtime_error" => return None,
        // Not expressible: expr has no imports.
        "unknown_module" | "denied_module" => return None,
        // Not expressible: expr has no loops (its work is bounded by the
        // evaluation budget, see `memory_bomb`).
        "infinite_loop" => return None,
        // Not expressible: an expression cannot receive or wait.
        "send_receive" | "sleep" => return None,
        _ => return None,
    })
}
