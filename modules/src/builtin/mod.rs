//! The modules every runtime offers: `errors`, `json`, `base64`, `hash`,
//! `log`, `expr`, `text` (pure), `rand`, `uuid`, `workflow` (their commands'
//! handlers travel with their definitions; a workflow's journal answers
//! `workflow`'s first), and `time`, `process`, `supervisor` (commands
//! handled by the runtime). Each module's typed commands are declared in
//! its file, beside the functions that yield them.

pub mod commands;
mod encoding;
mod errors;
pub mod expr;
mod log;
pub mod process;
pub mod random;
pub mod supervisor;
mod text;
pub mod time;
pub mod workflow;

pub use time::{duration_from_ms, parse_duration_ms};

use troupe_dispatcher::Value;

use crate::ModuleDef;

/// A command's arguments: a map of `entries`.
fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

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
    /// `process.send(to, topic, payload, opts?)`: `{to, topic, payload,
    /// timeout_ms?}`; waits while the mailbox is full.
    pub const PROCESS_SEND: CommandId = CommandId(11);
    /// `process.receive(topic?, timeout_ms?)`: `{topic, timeout_ms}`.
    pub const PROCESS_RECEIVE: CommandId = CommandId(12);
    /// `process.exit(reason?)`: `{reason}`.
    pub const PROCESS_EXIT: CommandId = CommandId(13);
    /// `process.link(pid)`: `{pid}` (a pid or a registered name).
    pub const PROCESS_LINK: CommandId = CommandId(14);
    /// `process.unlink(pid)`: `{pid}`.
    pub const PROCESS_UNLINK: CommandId = CommandId(15);
    /// `process.monitor(pid)` → ref: `{pid}`.
    pub const PROCESS_MONITOR: CommandId = CommandId(16);
    /// `process.demonitor(ref)` → bool: `{ref}`.
    pub const PROCESS_DEMONITOR: CommandId = CommandId(17);
    /// `process.trap_exits(on)` → previous setting: `{on}`.
    pub const PROCESS_TRAP_EXITS: CommandId = CommandId(18);
    /// `process.kill(pid)` → bool (whether it was alive): `{pid}`.
    pub const PROCESS_KILL: CommandId = CommandId(19);
    /// `process.register(name)`: `{name}`.
    pub const PROCESS_REGISTER: CommandId = CommandId(20);
    /// `process.unregister(name)`: `{name}`.
    pub const PROCESS_UNREGISTER: CommandId = CommandId(21);
    /// `process.whereis(name)` → pid or nil: `{name}`.
    pub const PROCESS_WHEREIS: CommandId = CommandId(22);
    /// `process.try_send(to, topic, payload)`: `{to, topic, payload}`;
    /// `RATE_LIMITED` at once when the mailbox is full.
    pub const PROCESS_TRY_SEND: CommandId = CommandId(23);
    /// `supervisor.start(spec)` → pid: the spec table as given.
    pub const SUPERVISOR_START: CommandId = CommandId(50);
    /// `supervisor.which_children(pid)` → `[{id, pid?}]`: `{pid}`.
    pub const SUPERVISOR_CHILDREN: CommandId = CommandId(51);
    /// `rand.int(a, b)`: `{lo, hi}`.
    pub const RAND_INT: CommandId = CommandId(60);
    /// `rand.float()`.
    pub const RAND_FLOAT: CommandId = CommandId(61);
    /// `rand.choice(list)`: the list.
    pub const RAND_CHOICE: CommandId = CommandId(62);
    /// `uuid.v4()`.
    pub const UUID_V4: CommandId = CommandId(63);
    /// `uuid.v7()`.
    pub const UUID_V7: CommandId = CommandId(64);
    /// `workflow.id()`.
    pub const WORKFLOW_ID: CommandId = CommandId(70);
    /// `workflow.version(change_id, min, max)`: `{change_id, min, max}`.
    pub const WORKFLOW_VERSION: CommandId = CommandId(71);
    /// The start of `workflow.side_effect(fn)`: answers `{done, value}`.
    pub const WORKFLOW_SIDE_EFFECT_BEGIN: CommandId = CommandId(72);
    /// The value of `workflow.side_effect(fn)`: `{value}` or `{error}`.
    pub const WORKFLOW_SIDE_EFFECT: CommandId = CommandId(73);
    /// `workflow.signal(id, topic, payload)`: `{id, topic, payload}`,
    /// answered by the runtime (it needs the workflow store).
    pub const WORKFLOW_SIGNAL: CommandId = CommandId(74);
    /// `workflow.publish(key, value)`: `{key, value}`.
    pub const WORKFLOW_PUBLISH: CommandId = CommandId(75);
    /// `workflow.continue_as_new(...)`: `{args}`.
    pub const WORKFLOW_CONTINUE_AS_NEW: CommandId = CommandId(76);
    /// `workflow.start_child(id, script, args, opts)`: `{id, script, args,
    /// opts}`, answered by the runtime with the child's id.
    pub const WORKFLOW_START_CHILD: CommandId = CommandId(77);
    /// `workflow.await(child, timeout?)`: `{id, timeout_ms?}`, answered by
    /// the runtime with the child's result.
    pub const WORKFLOW_AWAIT: CommandId = CommandId(78);
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
        supervisor::module(),
        expr::module(),
        random::rand_module(),
        random::uuid_module(),
        text::module(),
        workflow::module(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in ships a type manifest that describes exactly its
    /// functions, with the parameter types their code reads, so `troupe
    /// types` and `troupe docs` are true to the code.
    #[test]
    fn every_builtin_manifest_matches_its_code() {
        let problems: Vec<String> = all().iter().flat_map(crate::types::check).collect();
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
