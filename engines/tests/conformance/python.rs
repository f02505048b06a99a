//! Python scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => r#"result = "hello""#,
        "args_to_result" => "def main(a, b):\n    return a + b",
        "value_roundtrip" => "result = args[0] if args else None",
        "runtime_error" => "x = 1\nraise RuntimeError(\"boom\")",
        "unknown_module" => "import no_such_module",
        "denied_module" => "import json",
        "infinite_loop" => "while True:\n    pass",
        // RustPython has no allocation hook: `max_memory` is not enforced
        // by the Python engine (see engines/src/python/mod.rs).
        "memory_bomb" => return None,
        "send_receive" => "import process\nresult = process.receive()[\"payload\"]",
        "sleep" => "import time\ntime.sleep(10)\nresult = \"slept\"",
        _ => return None,
    })
}
