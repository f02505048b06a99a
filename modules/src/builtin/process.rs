use troupe_dispatcher::{Call, Value};

use super::ids;
use crate::{Class, ModuleDef, Ret};

fn map(entries: Vec<(&str, Value)>) -> Value {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// `process`: identity, spawning and messaging.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("process")
        .describe("Processes: identity, spawn, send, receive, exit")
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
}
