//! `supervisor`: Erlang-style supervisors started from scripts, with the
//! typed commands its functions yield (the runtime handles them).

use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Value};

use super::commands::{Target, command};
use crate::types::{Decl, Field, Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

/// `supervisor.start(spec)`: the spec table as the script gave it (the
/// runtime checks it); answered with the supervisor's pid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Start(pub Value);

command!(Start, SUPERVISOR_START, "supervisor.start", String);

/// `supervisor.which_children(pid)`: answered with `[{id, pid?}]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhichChildren {
    /// The supervisor (a pid or a registered name).
    pub pid: Target,
}

command!(
    WhichChildren,
    SUPERVISOR_CHILDREN,
    "supervisor.which_children",
    Value
);

/// The type manifest of `supervisor`.
fn types() -> Types {
    Types::new()
        .function(
            "start",
            Signature::new(
                "Starts a supervisor linked to the caller: it starts the children in order, linked to it, and restarts them by the strategy; more than `intensity` restarts within `period` and it terminates them all and exits with LIMIT_EXCEEDED. Returns its pid; `nil, err` (INVALID) for a bad spec.",
            )
            .param("spec", Type::named("SupervisorSpec"))
            .returns(Type::String)
            .fallible(),
        )
        .function(
            "which_children",
            Signature::new(
                "The children of a live supervisor in start order; `pid` is absent while a child is down.",
            )
            .param("sup", Type::String)
            .returns(Type::array(Type::named("ChildInfo")))
            .fallible(),
        )
        .decl(Decl::record(
            "SupervisorSpec",
            "What `supervisor.start` runs.",
            [
                Field::optional("strategy", Type::String)
                    .doc("\"one_for_one\" (default), \"one_for_all\" or \"rest_for_one\""),
                Field::optional("intensity", Type::Integer)
                    .doc("restarts allowed within `period` (default 3)"),
                Field::optional("period", Type::union([Type::Number, Type::String]))
                    .doc("ms or \"5s\" (default 5 s)"),
                Field::optional("children", Type::array(Type::named("ChildSpec")))
                    .doc("started in order"),
            ],
        ))
        .decl(Decl::record(
            "ChildSpec",
            "One supervised child; also takes the spawn options `entry`, `mailbox`, `allow`, `timeout`.",
            [
                Field::new("id", Type::String).doc("unique within the supervisor"),
                Field::new("script", Type::String).doc("relative to the calling script"),
                Field::optional("args", Type::array(Type::Any)).doc("the child's `...`"),
                Field::optional("restart", Type::String).doc(
                    "\"permanent\" (default), \"transient\" (only after an abnormal exit) or \"temporary\" (never)",
                ),
                Field::optional("entry", Type::String),
                Field::optional("mailbox", Type::Integer),
                Field::optional("allow", Type::union([Type::String, Type::array(Type::String)])),
                Field::optional("timeout", Type::union([Type::Number, Type::String])),
            ],
        ))
        .decl(Decl::record(
            "ChildInfo",
            "A child as `which_children` lists it.",
            [
                Field::new("id", Type::String),
                Field::optional("pid", Type::String).doc("absent while the child is down"),
            ],
        ))
}

/// `supervisor`: Erlang-style supervisors started from scripts. The spec
/// is checked by the runtime, which runs the supervisor.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("supervisor")
        .describe("Supervisors: restart child processes by a strategy")
        .class(Class::Process)
        .types(types())
        .command("start", |_cx, mut args| {
            let spec = args.take(0);
            if !matches!(spec, Value::Map(_)) {
                return Err(args.error(0, "table (supervisor spec)").into());
            }
            Ok(Ret::Call(Call::typed(Start(spec))))
        })
        .command("which_children", |_cx, args| {
            let pid = Target::parse(args.string(0)?)?;
            Ok(Ret::Call(Call::typed(WhichChildren { pid })))
        })
}
