use troupe_dispatcher::{Call, CommandId, Value};

use super::ids;
use crate::{Class, ModuleDef, Ret};

fn map(entries: Vec<(&str, Value)>) -> Value {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// A command taking one string argument (a pid, a name) as `{field}`.
fn one_string(def: ModuleDef, name: &str, id: CommandId, field: &'static str) -> ModuleDef {
    def.command(name, move |_cx, args| {
        let v = args.string(0)?;
        Ok(Ret::Call(Call::new(id, map(vec![(field, Value::from(v))]))))
    })
}

/// `process`: identity, spawning, messaging, links, monitors, exits and
/// the name registry.
pub(super) fn module() -> ModuleDef {
    let def = ModuleDef::new("process")
        .describe("Processes: identity, spawn, send, receive, links, monitors, exits, names")
        .class(Class::Process)
        .function("pid", |cx, _args| {
            Ok(Ret::Value(Value::from(cx.pid.to_string())))
        })
        .function("parent", |cx, _args| {
            Ok(Ret::Value(
                cx.parent.map_or(Value::Nil, |p| Value::from(p.to_string())),
            ))
        })
        .command("spawn", |_cx, mut args| {
            let script = args.string(0)?;
            let opts = args.take(1);
            if !matches!(opts, Value::Nil | Value::Map(_)) && opts != Value::Array(Vec::new()) {
                return Err(args.error(1, "table of options or nil").into());
            }
            let rest = Value::Array(args.rest(2));
            Ok(Ret::Call(Call::new(
                ids::PROCESS_SPAWN,
                map(vec![
                    ("script", Value::from(script)),
                    ("opts", opts),
                    ("args", rest),
                ]),
            )))
        })
        .command("send", |_cx, mut args| {
            let to = args.string(0)?;
            let topic = args.string(1)?;
            let payload = args.take(2);
            Ok(Ret::Call(Call::new(
                ids::PROCESS_SEND,
                map(vec![
                    ("to", Value::from(to)),
                    ("topic", Value::from(topic)),
                    ("payload", payload),
                ]),
            )))
        })
        .command("receive", |_cx, args| {
            let topic = args.opt_string(0)?;
            let timeout = args.opt_number(1)?;
            if timeout.is_some_and(|t| t.is_nan() || t < 0.0) {
                return Err(args.error(1, "non-negative timeout in ms").into());
            }
            Ok(Ret::Call(Call::new(
                ids::PROCESS_RECEIVE,
                map(vec![
                    ("topic", Value::from(topic)),
                    ("timeout_ms", Value::from(timeout)),
                ]),
            )))
        })
        .command("exit", |_cx, mut args| {
            let reason = args.take(0);
            Ok(Ret::Call(Call::new(
                ids::PROCESS_EXIT,
                map(vec![("reason", reason)]),
            )))
        })
        .command("demonitor", |_cx, args| {
            let r = args.int(0)?;
            Ok(Ret::Call(Call::new(
                ids::PROCESS_DEMONITOR,
                map(vec![("ref", Value::Int(r))]),
            )))
        })
        .command("trap_exits", |_cx, args| {
            let on = args.boolean(0)?;
            Ok(Ret::Call(Call::new(
                ids::PROCESS_TRAP_EXITS,
                map(vec![("on", Value::Bool(on))]),
            )))
        });
    [
        ("link", ids::PROCESS_LINK, "pid"),
        ("unlink", ids::PROCESS_UNLINK, "pid"),
        ("monitor", ids::PROCESS_MONITOR, "pid"),
        ("kill", ids::PROCESS_KILL, "pid"),
        ("register", ids::PROCESS_REGISTER, "name"),
        ("unregister", ids::PROCESS_UNREGISTER, "name"),
        ("whereis", ids::PROCESS_WHEREIS, "name"),
    ]
    .into_iter()
    .fold(def, |def, (name, id, field)| {
        one_string(def, name, id, field)
    })
}
