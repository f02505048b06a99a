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
        "memory_bomb" => "l = []\nwhile True:\n    l.append(\"x\" * 1024 + str(len(l)))",
        "send_receive" => "import process\nresult = process.receive()[\"payload\"]",
        "sleep" => "import time\ntime.sleep(10)\nresult = \"slept\"",
        _ => return None,
    })
}
