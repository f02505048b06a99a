//! Lua scripts and arguments the Lua benches share (included with
//! `#[path = "support/lua.rs"]`).

use troupe::Value;

/// `pong.lua`: answers every message with a "pong" carrying its payload to
/// the sender, until a "stop". `troupe bench` (src/bench.rs) runs the same
/// file.
pub const PONG: &str = include_str!("pong.lua");

/// An iteration count as a script argument.
pub fn count(iters: u64) -> Value {
    Value::Int(i64::try_from(iters).expect("iteration count fits i64"))
}
