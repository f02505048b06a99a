//! `process`: identity, spawning, messaging, links, monitors, exits and
//! the name registry, with the typed commands its functions yield (the
//! runtime handles them).

use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Command, Value};

use super::commands::{Target, command};
use crate::types::{Decl, Field, Signature, Type, Types};
use crate::{Args, CallError, Class, ModuleDef, Ret};

/// A message to send: where, its topic and its payload (`{to, topic,
/// payload}` in value form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The receiver.
    pub to: Target,
    /// The message's topic.
    pub topic: String,
    /// The message's payload.
    pub payload: Value,
}

/// `process.send(to, topic, payload, opts?)`: waits for room in a full
/// mailbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Send {
    /// The message.
    #[serde(flatten)]
    pub msg: Outgoing,
    /// How long to wait for room, in ms (`opts.timeout`); forever if not
    /// given. Absent from the value form when not given, as journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
}

command!(Send, PROCESS_SEND, "process.send", bool);

/// `process.try_send(to, topic, payload)`: `RATE_LIMITED` on a full
/// mailbox instead of waiting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrySend(pub Outgoing);

command!(TrySend, PROCESS_TRY_SEND, "process.try_send", bool);

/// `process.receive(topic?, timeout_ms?)`: answered with the message
/// `{from, topic, payload}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receive {
    /// Only messages of this topic, if given.
    pub topic: Option<String>,
    /// How long to wait, in ms; forever if not given.
    pub timeout_ms: Option<f64>,
}

command!(Receive, PROCESS_RECEIVE, "process.receive", Value);

/// Declares a command with one field: a process (`{pid}` in value form: a
/// pid's text or a registered name) or a registered name (`{name}`).
macro_rules! one_field {
    ($(#[$doc:meta])* $ty:ident { $field:ident: $fty:ty }, $id:ident, $name:literal, $out:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $ty {
            /// The process, or the name.
            pub $field: $fty,
        }

        command!($ty, $id, $name, $out);
    };
}

/// `process.spawn(script, opts, ...)`: answered with the child's pid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spawn {
    /// The script, relative to the caller's.
    pub script: String,
    /// The options table as the script gave it (nil or a table; the
    /// runtime reads it, as `SpawnOptions` documents).
    pub opts: Value,
    /// The child's `...`.
    pub args: Vec<Value>,
}

command!(Spawn, PROCESS_SPAWN, "process.spawn", String);

one_field!(
    /// `process.link(pid)`.
    Link { pid: Target }, PROCESS_LINK, "process.link", bool
);
one_field!(
    /// `process.unlink(pid)`.
    Unlink { pid: Target }, PROCESS_UNLINK, "process.unlink", bool
);
one_field!(
    /// `process.monitor(pid)`: answered with the monitor's ref.
    Monitor { pid: Target }, PROCESS_MONITOR, "process.monitor", i64
);
one_field!(
    /// `process.kill(pid)`: answered with whether it was alive.
    Kill { pid: Target }, PROCESS_KILL, "process.kill", bool
);
/// `process.register(name, opts?)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// The name.
    pub name: String,
    /// Claim it cluster-wide (`opts.global`); absent from the value form
    /// when false, as journaled before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub global: bool,
}

command!(Register, PROCESS_REGISTER, "process.register", bool);
one_field!(
    /// `process.unregister(name)`.
    Unregister { name: String }, PROCESS_UNREGISTER, "process.unregister", bool
);
one_field!(
    /// `process.whereis(name)`: answered with the pid's text, or nil.
    Whereis { name: String }, PROCESS_WHEREIS, "process.whereis", Option<String>
);

/// `process.demonitor(ref)`: answered with whether it was active.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Demonitor {
    /// The ref `process.monitor` gave.
    #[serde(rename = "ref")]
    pub monitor: i64,
}

command!(Demonitor, PROCESS_DEMONITOR, "process.demonitor", bool);

/// `process.trap_exits(on)`: answered with the previous setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrapExits {
    /// Whether exit signals become EXIT messages.
    pub on: bool,
}

command!(TrapExits, PROCESS_TRAP_EXITS, "process.trap_exits", bool);

/// `process.exit(reason?)`: ends the caller (never answered).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    /// Nil or `"normal"` for a success; anything else is a failure.
    pub reason: Value,
}

command!(Exit, PROCESS_EXIT, "process.exit", ());

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
                "Names the caller; `nil, err` with ALREADY_EXISTS if the name is taken or the caller has a name. With `opts.global` the name is claimed cluster-wide (UNAVAILABLE outside a cluster).",
            )
            .param("name", Type::String)
            .optional("opts", Type::named("RegisterOptions"))
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
            "Options of `process.spawn`; any other key is INVALID.",
            [
                Field::optional("entry", Type::String)
                    .doc("a function to call (from the chunk's returned table or its globals) with the arguments"),
                Field::optional("link", Type::Boolean)
                    .doc("link the child to the caller before it starts"),
                Field::optional("mailbox", Type::Integer)
                    .doc("mailbox capacity in messages (1 to 16777216)"),
                Field::optional("lightweight", Type::Boolean)
                    .doc("run as a coroutine in a shared Lua state instead of a state of its own"),
                Field::optional("restart_on_change", Type::Boolean)
                    .doc("stop the child when its script changes, for its supervisor to restart it"),
                Field::optional("allow", Type::union([Type::String, Type::array(Type::String)]))
                    .doc("module classes the child may use (within the caller's)"),
                Field::optional("timeout", Type::union([Type::Number, Type::String]))
                    .doc("wall-clock limit (ms or \"1.5s\")"),
                Field::optional("node", Type::String)
                    .doc("start the child on this node of the cluster, from its source, under at most that node's own policy; answered once it is made there (UNAVAILABLE if the node is not a live member)"),
            ],
        ))
        .decl(Decl::record(
            "RegisterOptions",
            "Options of `process.register`.",
            [Field::optional("global", Type::Boolean)
                .doc("claim the name in the whole cluster (through etcd), not only on this node")],
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

/// A function yielding the command `C` made from its one string argument.
fn one_string<C: Command + Clone>(
    def: ModuleDef,
    name: &str,
    make: fn(String) -> Result<C, CallError>,
) -> ModuleDef {
    def.command(name, move |_cx, args| {
        Ok(Ret::Call(Call::typed(make(args.string(0)?)?)))
    })
}

/// A process named by a script: a pid's text or a registered name.
fn target(text: String) -> Result<Target, CallError> {
    Ok(Target::parse(text)?)
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
            let opts = args.get(1);
            if !matches!(opts, Value::Nil | Value::Map(_)) && *opts != Value::Array(Vec::new()) {
                return Err(args.error(1, "table of options or nil").into());
            }
            let opts = args.take(1);
            let args = args.rest(2);
            Ok(Ret::Call(Call::typed(Spawn { script, opts, args })))
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
            Ok(Ret::Call(Call::typed(Exit { reason })))
        })
        .command("demonitor", |_cx, args| {
            let monitor = args.int(0)?;
            Ok(Ret::Call(Call::typed(Demonitor { monitor })))
        })
        .command("trap_exits", |_cx, args| {
            let on = args.boolean(0)?;
            Ok(Ret::Call(Call::typed(TrapExits { on })))
        });
    let def = one_string(def, "link", |t| Ok(Link { pid: target(t)? }));
    let def = one_string(def, "unlink", |t| Ok(Unlink { pid: target(t)? }));
    let def = one_string(def, "monitor", |t| Ok(Monitor { pid: target(t)? }));
    let def = one_string(def, "kill", |t| Ok(Kill { pid: target(t)? }));
    let def = def.command("register", |_cx, args| {
        let name = args.string(0)?;
        let global = match args.get(1) {
            Value::Nil => false,
            Value::Map(m) => match m.get("global") {
                None | Some(Value::Nil) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(args.error(1, "{global = boolean}").into()),
            },
            Value::Array(a) if a.is_empty() => false,
            _ => return Err(args.error(1, "table of options or nil").into()),
        };
        Ok(Ret::Call(Call::typed(Register { name, global })))
    });
    let def = one_string(def, "unregister", |name| Ok(Unregister { name }));
    one_string(def, "whereis", |name| Ok(Whereis { name }))
}

#[cfg(test)]
mod tests {
    use troupe_dispatcher::Pid;

    use super::*;
    use crate::builtin::ids;

    /// A typed command's value form is the map earlier builds journaled.
    #[test]
    fn value_forms_are_the_journaled_argument_maps() {
        let msg = Outgoing {
            to: Target::Pid(Pid::new(0, 2)),
            topic: "ping".into(),
            payload: Value::Int(7),
        };
        let send = Send {
            msg: msg.clone(),
            timeout_ms: None,
        };
        let old = serde_json::json!({"to": "<0.2>", "topic": "ping", "payload": 7});
        assert_eq!(
            Call::typed(send.clone()),
            Call::new(ids::PROCESS_SEND, Value::from(old.clone()))
        );
        assert_eq!(
            Call::typed(TrySend(msg)),
            Call::new(ids::PROCESS_TRY_SEND, Value::from(old.clone()))
        );
        let back: Send = Call::new(ids::PROCESS_SEND, Value::from(old))
            .into_command()
            .unwrap();
        assert_eq!(back, send);
        let waiting = Send {
            timeout_ms: Some(50.0),
            ..send
        };
        let old =
            serde_json::json!({"to": "<0.2>", "topic": "ping", "payload": 7, "timeout_ms": 50.0});
        assert_eq!(
            Call::typed(waiting),
            Call::new(ids::PROCESS_SEND, Value::from(old))
        );
        let receive = Call::typed(Receive {
            topic: Some("pong".into()),
            timeout_ms: Some(10_000.0),
        });
        let old = serde_json::json!({"topic": "pong", "timeout_ms": 10_000.0});
        assert_eq!(receive, Call::new(ids::PROCESS_RECEIVE, Value::from(old)));
        let any = Receive {
            topic: None,
            timeout_ms: None,
        };
        let old = serde_json::json!({"topic": null, "timeout_ms": null});
        assert_eq!(
            Call::typed(any),
            Call::new(ids::PROCESS_RECEIVE, Value::from(old))
        );
    }

    /// The rest of `process`'s commands keep the value forms earlier
    /// builds journaled too.
    #[test]
    fn every_command_keeps_its_journaled_value_form() {
        let same = |typed: Call, id, old: serde_json::Value| {
            assert_eq!(typed, Call::new(id, Value::from(old)));
        };
        let spawn = Spawn {
            script: "child.lua".into(),
            opts: Value::Nil,
            args: vec![Value::Int(1)],
        };
        same(
            Call::typed(spawn),
            ids::PROCESS_SPAWN,
            serde_json::json!({"script": "child.lua", "opts": null, "args": [1]}),
        );
        let pid = Target::Pid(Pid::new(0, 3));
        same(
            Call::typed(Link { pid: pid.clone() }),
            ids::PROCESS_LINK,
            serde_json::json!({"pid": "<0.3>"}),
        );
        same(
            Call::typed(Kill {
                pid: Target::Name("db".into()),
            }),
            ids::PROCESS_KILL,
            serde_json::json!({"pid": "db"}),
        );
        same(
            Call::typed(Whereis { name: "db".into() }),
            ids::PROCESS_WHEREIS,
            serde_json::json!({"name": "db"}),
        );
        same(
            Call::typed(Demonitor { monitor: 4 }),
            ids::PROCESS_DEMONITOR,
            serde_json::json!({"ref": 4}),
        );
        same(
            Call::typed(TrapExits { on: true }),
            ids::PROCESS_TRAP_EXITS,
            serde_json::json!({"on": true}),
        );
        same(
            Call::typed(Exit {
                reason: Value::from("normal"),
            }),
            ids::PROCESS_EXIT,
            serde_json::json!({"reason": "normal"}),
        );
    }
}
