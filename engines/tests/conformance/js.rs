//! JavaScript scripts for the conformance cases (see `conformance.rs`). A
//! script's result is its completion value, awaited when it is a Promise.

/// The script for conformance case `name`.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => r#""hello""#,
        "args_to_result" => "args[0] + args[1]",
        "value_roundtrip" => "args[0]",
        "runtime_error" => "let x = 1;\nthrow new Error(\"boom\");",
        "unknown_module" => r#"require("no_such_module")"#,
        "denied_module" => r#"require("json")"#,
        "infinite_loop" => "while (true) {}",
        "memory_bomb" => "const t = []; while (true) { t.push('x'.repeat(1024) + t.length); }",
        "send_receive" => r#"require("process").receive().then((m) => m.payload)"#,
        "sleep" => r#"require("time").sleep(10).then(() => "slept")"#,
        _ => return None,
    })
}
