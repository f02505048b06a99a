//! TCL scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`; `None` where TCL (as Troupe
/// runs it) cannot express the case.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => "return hello",
        "args_to_result" => "expr {[lindex $args 0] + [lindex $args 1]}",
        // Not expressible: TCL values are strings, so nil, booleans, bytes,
        // lists and maps come back as text (numbers and strings do round
        // trip; an interpreter's globals the script did not touch read back
        // exactly, see engines/tests/tcl.rs).
        "value_roundtrip" => return None,
        "runtime_error" => "set x 1\nerror boom",
        "unknown_module" => "package require no_such_module",
        "denied_module" => "package require json",
        "infinite_loop" => "while 1 {}",
        "memory_bomb" => "set l {}\nwhile 1 { lappend l [string repeat x 1024] }",
        // Not expressible: a TCL script runs to completion and cannot
        // receive or wait.
        "send_receive" | "sleep" => return None,
        _ => return None,
    })
}
