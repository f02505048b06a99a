//! The modules every runtime offers: `errors`, `json`, `base64`, `hash`,
//! `log` (pure), and `time`, `process` (commands handled by the runtime).

mod encoding;
mod errors;
mod log;
mod process;
mod time;

pub use time::parse_duration_ms;

use crate::ModuleDef;

/// Command ids of the built-in modules (below 1024, reserved for Troupe).
pub mod ids {
    use troupe_dispatcher::CommandId;

    /// `time.now()`: wall-clock milliseconds since the Unix epoch.
    pub const TIME_NOW: CommandId = CommandId(1);
    /// `time.sleep(ms)`: `{ms}`.
    pub const TIME_SLEEP: CommandId = CommandId(2);
    /// `time.monotonic()`: milliseconds since the runtime started.
    pub const TIME_MONOTONIC: CommandId = CommandId(3);
    /// `process.spawn(script, opts, ...)`: `{script, opts, args}`.
    pub const PROCESS_SPAWN: CommandId = CommandId(10);
    /// `process.send(to, topic, payload)`: `{to, topic, payload}`.
    pub const PROCESS_SEND: CommandId = CommandId(11);
    /// `process.receive(topic?, timeout_ms?)`: `{topic, timeout_ms}`.
    pub const PROCESS_RECEIVE: CommandId = CommandId(12);
    /// `process.exit(reason?)`: `{reason}`.
    pub const PROCESS_EXIT: CommandId = CommandId(13);
}

/// Every built-in module definition.
pub fn all() -> Vec<ModuleDef> {
    vec![
        errors::module(),
        encoding::json(),
        encoding::base64(),
        encoding::hash(),
        log::module(),
        time::module(),
        process::module(),
    ]
}
