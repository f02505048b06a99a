//! Lua scripts for the conformance cases (see `conformance.rs`).

/// The script for conformance case `name`.
pub fn case(name: &str) -> Option<&'static str> {
    Some(match name {
        "hello" => r#"return "hello""#,
        "args_to_result" => "local a, b = ... return a + b",
        "value_roundtrip" => "return ...",
        "runtime_error" => "local x = 1\nerror(\"boom\")",
        "unknown_module" => r#"return require("no_such_module")"#,
        "denied_module" => r#"return require("json")"#,
        "infinite_loop" => "while true do end",
        "memory_bomb" => {
            "local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('x', 1024) .. i end"
        }
        "send_receive" => r#"return require("process").receive().payload"#,
        "sleep" => r#"require("time").sleep(10) return "slept""#,
        _ => return None,
    })
}
