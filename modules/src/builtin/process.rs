use troupe_dispatcher::{Call, CommandId, Value};

use super::commands::{Outgoing, Receive, Send, Target, TrySend};
use super::{ids, map};
use crate::types::{Decl, Field, Signature, Type, Types};
use crate::{Args, CallError, Class, ModuleDef, Ret};

/// The type manifest of `process`.
fn types() -> Types {
    Types::new()
        .function(
            "pid",
            Signature::new("The calling process's pid.").returns(Type::String),
        )
        .function(
            "parent",
            Signature::new("The pid of the process that spawned this one; nil for one the host spawned.")
                .returns(Type::optional(Type::String)),
        )
        .function(
            "spawn",
            Signature::new(
                "Spawns a script (a path relative to the calling script) as a new process with the further arguments as its `...`; returns its pid. The child's policy is at most the caller's.",
            )
            .param("script", Type::String)
            .optional("opts", Type::named("SpawnOptions"))
            .variadic(Type::Any)
            .returns(Type::String)
            .fallible(),
        )
        .function(
            "send",
            Signature::new(
                "Sends a message (to a pid or a registered name). While the receiver's mailbox is full the caller waits until it takes a message; `nil, err` with TIMEOUT after `opts.timeout`, NOT_FOUND when the process is gone or ends first. Where the caller cannot yield (a `table.sort` comparator) a full mailbox is RATE_LIMITED.",
            )
            .param("to", Type::String)
            .param("topic", Type::String)
            .optional("payload", Type::Any)
            .optional("opts", Type::named("SendOptions"))
            .returns(Type::Boolean)
            .fallible(),
        )
        .function(
            "try_send",
            Signature::new(
                "Sends a message without waiting: `nil, err` with RATE_LIMITED (retryable) when the mailbox is full, NOT_FOUND when the process is gone.",
            )
            .param("to", Type::String)
            .param("topic", Type::String)
            .optional("payload", Type::Any)
            .returns(Type::Boolean)
            .fallible(),
        )
        .function(
            "receive",
            Signature::new(
                "Waits for the next message (on `topic` only, if given); `nil, err` with TIMEOUT after `timeout_ms`.",
            )
            .optional("topic", Type::String)
            .optional("timeout_ms", Type::Number)
            .returns(Type::named("Message"))
            .fallible(),
        )
        .function(
            "link",
            Signature::new(
                "Links the caller and a process (pid or registered name): when one ends abnormally, the other ends too, unless it traps exits (then it gets an EXIT message). `nil, err` (NOT_FOUND, \"noproc\") for a dead process.",
            )
            .param("pid", Type::String)
            .returns(Type::Boolean)
            .fallible(),
        )
        .function(
            "unlink",
            Signature::new("Removes a link.")
                .param("pid", Type::String)
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "monitor",
            Signature::new(
                "Watches a process (pid or registered name): when it ends, the caller gets one DOWN message with payload `{pid, reason, ref}`. Returns the ref.",
            )
            .param("pid", Type::String)
            .returns(Type::Integer)
            .fallible(),
        )
        .function(
            "demonitor",
            Signature::new("Cancels a monitor; returns whether it was active.")
                .param("ref", Type::Integer)
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "trap_exits",
            Signature::new(
                "Turns exit signals from linked processes into EXIT messages (payload `{pid, reason}`); returns the previous setting.",
            )
            .param("on", Type::Boolean)
            .returns(Type::Boolean)
            .fallible(),
        )
        .function(
            "kill",
            Signature::new(
                "Ends a process (pid or registered name) with reason \"killed\", which cannot be trapped; returns whether it was alive.",
            )
            .param("pid", Type::String)
            .returns(Type::Boolean)
            .fallible(),
        )
        .function(
            "register",
            Signature::new(
                "Names the caller; `nil, err` with ALREADY_EXISTS if the name is taken or the caller has a name.",
            )
            .param("name", Type::String)
            .returns(Type::Boolean)
            .fallible(),
        )
        .function(
            "unregister",
            Signature::new("Frees the caller's own name.")
                .param("name", Type::String)
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "whereis",
            Signature::new("The pid registered under a name, or nil.")
                .param("name", Type::String)
                .returns(Type::optional(Type::String)),
        )
        .function(
            "exit",
            Signature::new(
                "Ends the calling process: with nil or \"normal\" as a success, with any other reason (an error object or a value) as a failure.",
            )
                .optional("reason", Type::Any),
        )
        .decl(Decl::record(
            "SpawnOptions",
            "Options of `process.spawn`.",
            [
                Field::optional("entry", Type::String)
                    .doc("a function to call (from the chunk's returned table or its globals) with the arguments"),
                Field::optional("link", Type::Boolean)
                    .doc("link the child to the caller before it starts"),
                Field::optional("mailbox", Type::Integer).doc("mailbox capacity in messages"),
                Field::optional("allow", Type::union([Type::String, Type::array(Type::String)]))
                    .doc("module classes the child may use (within the caller's)"),
                Field::optional("timeout", Type::union([Type::Number, Type::String]))
                    .doc("wall-clock limit (ms or \"1.5s\")"),
            ],
        ))
        .decl(Decl::record(
            "SendOptions",
            "Options of `process.send`.",
            [Field::optional("timeout", Type::union([Type::Number, Type::String]))
                .doc("how long to wait for room in a full mailbox (ms or \"1.5s\"); forever if nil")],
        ))
        .decl(Decl::record(
            "Message",
            "A received message.",
            [
                Field::optional("from", Type::String).doc("the sender's pid (nil if the host sent it)"),
                Field::new("topic", Type::String),
                Field::new("payload", Type::Any),
            ],
        ))
}

/// A command taking one string argument (a pid, a name) as `{field}`.
fn one_string(def: ModuleDef, name: &str, id: CommandId, field: &'static str) -> ModuleDef {
    def.command(name, move |_cx, args| {
        let v = args.string(0)?;
        Ok(Ret::Call(Call::new(id, map(vec![(field, Value::from(v))]))))
    })
}

/// The destination, topic and payload of a send.
fn outgoing(args: &mut Args) -> Result<Outgoing, CallError> {
    let to = Target::parse(args.string(0)?)?;
    let topic = args.string(1)?;
    let payload = args.take(2);
    Ok(Outgoing { to, topic, payload })
}

/// A send's `opts.timeout` in ms: a number of ms or a duration text.
fn send_timeout(args: &Args) -> Result<Option<f64>, CallError> {
    let timeout = match args.get(3) {
        Value::Nil => return Ok(None),
        Value::Map(m) => m.get("timeout"),
        Value::Array(a) if a.is_empty() => None,
        _ => return Err(args.error(3, "table of options or nil").into()),
    };
    match timeout {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => super::parse_duration_ms(v)
            .map(Some)
            .map_err(|e| CallError::Raise(args.error(3, e.message().to_owned()).into_error())),
    }
}

/// `process`: identity, spawning, messaging, links, monitors, exits and
/// the name registry.
pub(super) fn module() -> ModuleDef {
    let def = ModuleDef::new("process")
        .describe("Processes: identity, spawn, send, receive, links, monitors, exits, names")
        .class(Class::Process)
        .types(types())
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
            let timeout_ms = send_timeout(&args)?;
            let msg = outgoing(&mut args)?;
            Ok(Ret::Call(Call::typed(Send { msg, timeout_ms })))
        })
        .command("try_send", |_cx, mut args| {
            Ok(Ret::Call(Call::typed(TrySend(outgoing(&mut args)?))))
        })
        .command("receive", |_cx, args| {
            let topic = args.opt_string(0)?;
            let timeout_ms = args.opt_number(1)?;
            if timeout_ms.is_some_and(|t| t.is_nan() || t < 0.0) {
                return Err(args.error(1, "non-negative timeout in ms").into());
            }
            Ok(Ret::Call(Call::typed(Receive { topic, timeout_ms })))
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
