//! `workflow`: `id()`, `version(change_id, min, max)`, `side_effect(fn)`,
//! `retry(opts, fn)`, `signal(id, topic, payload)`, `start_child(id,
//! script, args, opts)` and `await(child, timeout)` (answered by the
//! runtime, which holds the workflow store), `publish(key, value)`. Every function
//! is a command: in a workflow process the journal answers it (see the
//! `troupe-workflow` crate); the handlers here answer it anywhere else,
//! trivially, so a workflow script also runs as a plain process (`troupe
//! run`): `id()` is nil, `version` returns `max`, `side_effect(fn)` returns
//! `fn()`, `retry` retries without a journal, `publish` is `INVALID`.
//!
//! `side_effect` and `retry` take a script function, which no command can
//! carry: the engine wraps them (the Lua prelude's `workflow_module`). The
//! Rust functions are their steps: `side_effect("begin")`,
//! `side_effect("end", value)`, `side_effect("fail", err)` and
//! `retry(ms)` (the durable backoff sleep between attempts).

use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Error, ErrorKind, Value};

use super::commands::{command, unit_command};
use super::map;
use super::time::Sleep;
use crate::types::{Decl, Field, Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

unit_command!(
    /// `workflow.id()`: the workflow's id (nil outside a workflow).
    Id, WORKFLOW_ID, "workflow.id", Value
);

/// `workflow.version(change_id, min, max)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// Names the change.
    pub change_id: String,
    /// The oldest version the script still supports.
    pub min: i64,
    /// The current version (what a new run records).
    pub max: i64,
}

command!(Version, WORKFLOW_VERSION, "workflow.version", i64);

/// `workflow.publish(key, value)`: a value the workflow's state query
/// shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

command!(Publish, WORKFLOW_PUBLISH, "workflow.publish", ());

/// `workflow.continue_as_new(...)`: ends the workflow's run and starts its
/// script again, with these arguments and a fresh history, under the same
/// id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContinueAsNew {
    /// The new run's arguments.
    pub args: Vec<Value>,
}

command!(
    ContinueAsNew,
    WORKFLOW_CONTINUE_AS_NEW,
    "workflow.continue_as_new",
    ()
);

unit_command!(
    /// The start of `workflow.side_effect(fn)`: answered `{done, value}`.
    SideEffectBegin,
    WORKFLOW_SIDE_EFFECT_BEGIN,
    "workflow.side_effect.begin",
    Value
);

/// The outcome of `workflow.side_effect(fn)`: `{value}` or `{error}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideEffect {
    /// What `fn` returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// What `fn` failed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

command!(
    SideEffect,
    WORKFLOW_SIDE_EFFECT,
    "workflow.side_effect",
    Value
);

/// `workflow.signal(id, topic, payload)`: a message to a workflow's
/// durable inbox (answered by the runtime, which holds the store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The workflow's id.
    pub id: String,
    /// The message's topic.
    pub topic: String,
    /// The message's payload.
    pub payload: Value,
}

command!(Signal, WORKFLOW_SIGNAL, "workflow.signal", bool);

/// What happens to a child workflow when its parent ends (returns,
/// fails, is cancelled or continues as new): Temporal's parent-close
/// policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentClose {
    /// The child is ended at once, its outcome a `CANCELED` error (the
    /// default).
    #[default]
    Terminate,
    /// The child runs on to its own end.
    Abandon,
    /// The child is cancelled: its script gets `CANCELED` from its next
    /// command, and its cleanup code runs.
    RequestCancel,
}

impl ParentClose {
    /// Every policy, as scripts name them.
    pub const NAMES: [&str; 3] = ["terminate", "abandon", "request_cancel"];

    /// The policy named `name` (`"terminate"`, `"abandon"`,
    /// `"request_cancel"`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "terminate" => Some(Self::Terminate),
            "abandon" => Some(Self::Abandon),
            "request_cancel" => Some(Self::RequestCancel),
            _ => None,
        }
    }

    /// The policy's name, as scripts give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminate => "terminate",
            Self::Abandon => "abandon",
            Self::RequestCancel => "request_cancel",
        }
    }
}

/// `workflow.start_child(id, script, args, opts)`: starts the child
/// workflow `id` (answered by the runtime with `id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartChild {
    /// The child's workflow id.
    pub id: String,
    /// Its script, relative to the parent's.
    pub script: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// The options table as the script gave it (nil or a table of
    /// [`CHILD_OPTIONS`]).
    pub opts: Value,
}

command!(
    StartChild,
    WORKFLOW_START_CHILD,
    "workflow.start_child",
    String
);

/// The options `workflow.start_child` takes; any other key is `INVALID`.
pub const CHILD_OPTIONS: [&str; 4] = ["parent_close", "allow", "timeout", "mailbox"];

impl StartChild {
    /// The parent-close policy its options name (default terminate).
    pub fn parent_close(&self) -> ParentClose {
        self.opts
            .get("parent_close")
            .and_then(Value::as_str)
            .and_then(ParentClose::parse)
            .unwrap_or_default()
    }
}

/// `workflow.await(child, timeout)`: the child workflow's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwaitChild {
    /// The child's workflow id.
    pub id: String,
    /// How long to wait, if not for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
}

command!(AwaitChild, WORKFLOW_AWAIT, "workflow.await", Value);

/// Checks `workflow.start_child`'s options as far as the module can:
/// a table (or nil) of [`CHILD_OPTIONS`], `parent_close` one of
/// [`ParentClose::NAMES`]. The runtime checks the others' values.
fn check_child_options(opts: &Value) -> Result<(), Error> {
    let map = match opts {
        Value::Nil => return Ok(()),
        Value::Map(m) => m,
        other => {
            return Err(Error::invalid(format!(
                "workflow.start_child: argument #4 expected table of options or nil, got {}",
                other.type_name()
            )));
        }
    };
    if let Some(k) = map.keys().find(|k| !CHILD_OPTIONS.contains(&k.as_str())) {
        return Err(Error::invalid(format!(
            "workflow.start_child: unknown option {k:?} (the options are {})",
            CHILD_OPTIONS.join(", ")
        )));
    }
    match map.get("parent_close") {
        None | Some(Value::Nil) => Ok(()),
        Some(v) if v.as_str().and_then(ParentClose::parse).is_some() => Ok(()),
        Some(v) => Err(Error::invalid(format!(
            "workflow.start_child: opts.parent_close must be one of {}, got {}",
            ParentClose::NAMES.join(", "),
            match v.as_str() {
                Some(s) => format!("{s:?}"),
                None => v.type_name().to_owned(),
            }
        ))),
    }
}

/// The version `workflow.version` returns for a history recorded before the
/// change (Temporal's `DefaultVersion`).
pub const DEFAULT_VERSION: i64 = -1;

/// The `workflow` module definition.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("workflow")
        .describe("Durable workflow primitives: id, versions, side effects, retries, published state")
        .class(Class::Workflow)
        .constant("DEFAULT_VERSION", DEFAULT_VERSION)
        .types(
            Types::new()
                .function(
                    "id",
                    Signature::new("The id of the running workflow; nil outside a workflow.")
                        .returns(Type::optional(Type::String)),
                )
                .function(
                    "version",
                    Signature::new(
                        "The version of a code change: a new execution records and returns `max`; a replayed history returns the version it recorded, or DEFAULT_VERSION (-1) if it predates the change. A recorded version outside [min, max] fails with NONDETERMINISM. Outside a workflow: `max`.",
                    )
                    .param("change_id", Type::String)
                    .param("min", Type::Integer)
                    .param("max", Type::Integer)
                    .returns(Type::Integer),
                )
                .function(
                    "signal",
                    Signature::new(
                        "Sends the unfinished workflow `id` the message `{from = nil, topic, payload}`, durably, like `Runtime::signal`: a running one gets it in its mailbox, one not running on its next resume. Returns true; NOT_FOUND if unknown, CONFLICT if finished, PERMISSION_DENIED if the policy's `workflow.signal` rules deny `id`. In a workflow, the call is a journaled step.",
                    )
                    .param("id", Type::String)
                    .param("topic", Type::String)
                    .param("payload", Type::Any)
                    .returns(Type::Boolean),
                )
                .function(
                    "publish",
                    Signature::new(
                        "Publishes `value` under `key` as the workflow's queryable state: the host reads the latest with `WorkflowStore::query(id, key)`, the CLI with `troupe workflow query ID KEY`. Not a step of the history (a replay publishes again) and not waited for. INVALID outside a workflow.",
                    )
                    .param("key", Type::String)
                    .param("value", Type::Any),
                )
                .function(
                    "continue_as_new",
                    Signature::new(
                        "Ends this run of the workflow and starts its script again from the top with these arguments and an empty history, under the same id, in one commit: the way to keep a long-lived workflow under its history limit (carry the state it needs in the arguments). Does not return. The previous runs stay readable (`troupe workflow show`). INVALID outside a workflow.",
                    )
                    .variadic(Type::Any),
                )
                .function(
                    "start_child",
                    Signature::new(
                        "Starts the child workflow `id` running `script` (a path relative to this script) with `args` as its `...`, and returns its handle (the id) for `workflow.await`. A journaled step: a replay or a resume does not start it again. The child has its own history in the same store, a policy at most this workflow's, and is resumed with its parent. When the parent ends, `opts.parent_close` applies. An id that exists (not started by this step) is ALREADY_EXISTS; INVALID outside a workflow.",
                    )
                    .param("id", Type::String)
                    .param("script", Type::String)
                    .optional("args", Type::array(Type::Any))
                    .optional("opts", Type::named("ChildOptions"))
                    .returns(Type::String)
                    .fallible(),
                )
                .function(
                    "await",
                    Signature::new(
                        "Waits for the child workflow `child` (a handle from `start_child`) to end and returns its result, journaled; a child that already ended (even before a restart) answers at once. A failed child is `nil, err` with the child's error kind and a message naming the child; TIMEOUT after `timeout` (ms or \"1.5s\"), the child going on; CANCELED if this workflow is cancelled meanwhile.",
                    )
                    .param("child", Type::String)
                    .optional("timeout", Type::union([Type::Number, Type::String]))
                    .returns(Type::Any)
                    .fallible(),
                )
                .function(
                    "side_effect",
                    Signature::new(
                        "Runs `fn` once and journals its value (or error): a replay returns the journaled value without calling `fn`. Commands `fn` runs are not journaled one by one.",
                    )
                    .param("fn", Type::function(Signature::new("The side effect.").returns(Type::Any)))
                    .returns(Type::Any),
                )
                .function(
                    "retry",
                    Signature::new(
                        "Calls `fn(attempt)` until it succeeds (no error raised, no `nil, err` returned), at most `attempts` times, sleeping a durable, journaled backoff between attempts; an error whose kind is in `non_retryable` ends at once. Returns what the last attempt returned (or raises what it raised).",
                    )
                    .param(
                        "opts",
                        Type::record([
                            Field::optional("attempts", Type::Integer).doc("attempts in all (default 3)"),
                            Field::optional("backoff_ms", Type::Number).doc("first backoff (default 100)"),
                            Field::optional("multiplier", Type::Number).doc("backoff growth (default 2)"),
                            Field::optional("max_backoff_ms", Type::Number).doc("backoff cap (default 60000)"),
                            Field::optional("non_retryable", Type::array(Type::String)).doc("error kinds never retried, e.g. {\"INVALID\"}"),
                        ]),
                    )
                    .param("fn", Type::function(Signature::new("One attempt.").param("attempt", Type::Integer).returns(Type::Any)))
                    .returns(Type::Any),
                )
                .decl(Decl::record(
                    "ChildOptions",
                    "Options of `workflow.start_child`; any other key is INVALID.",
                    [
                        Field::optional("parent_close", Type::String)
                            .doc("what happens to the child when this workflow ends: \"terminate\" (default: it ends as CANCELED), \"abandon\" (it runs on) or \"request_cancel\" (it gets CANCELED at its next command and may clean up)"),
                        Field::optional("allow", Type::union([Type::String, Type::array(Type::String)]))
                            .doc("module classes the child may use (within this workflow's policy)"),
                        Field::optional("timeout", Type::union([Type::Number, Type::String]))
                            .doc("the child workflow's time limit (ms or \"1.5s\")"),
                        Field::optional("mailbox", Type::Integer)
                            .doc("mailbox capacity in messages (1 to 16777216)"),
                    ],
                )),
        )
        .command("id", |_cx, _args| Ok(Ret::Call(Call::typed(Id))))
        .command("version", |_cx, args| {
            let change_id = args.string(0)?;
            let (min, max) = (args.int(1)?, args.int(2)?);
            if min > max {
                return Err(args.error(2, "integer >= argument #2 (min)").into());
            }
            Ok(Ret::Call(Call::typed(Version { change_id, min, max })))
        })
        .command("publish", |_cx, mut args| {
            let key = args.string(0)?;
            let value = args.take(1);
            Ok(Ret::Call(Call::typed(Publish { key, value })))
        })
        .command("continue_as_new", |_cx, mut args| {
            let args = args.rest(0);
            Ok(Ret::Call(Call::typed(ContinueAsNew { args })))
        })
        .command("side_effect", |_cx, mut args| {
            let phase = args.string(0)?;
            let outcome = |value, error| Call::typed(SideEffect { value, error });
            let call = match phase.as_str() {
                "begin" => Call::typed(SideEffectBegin),
                "end" => outcome(Some(args.take(1)), None),
                "fail" => outcome(None, Some(args.take(1))),
                _ => return Err(args.error(0, "function").into()),
            };
            Ok(Ret::Call(call))
        })
        .command("signal", |cx, mut args| {
            let id = args.string(0)?;
            let topic = args.string(1)?;
            if !cx.is_allowed("workflow.signal", &id) {
                return Err(Error::permission_denied(format!(
                    "workflow.signal to workflow {id:?} is denied by the policy"
                ))
                .into());
            }
            let payload = args.take(2);
            Ok(Ret::Call(Call::typed(Signal { id, topic, payload })))
        })
        .command("start_child", |_cx, mut args| {
            let id = args.string(0)?;
            let script = args.string(1)?;
            let child_args = match args.take(2) {
                Value::Array(a) => a,
                Value::Nil => Vec::new(),
                Value::Map(m) if m.is_empty() => Vec::new(),
                _ => return Err(args.error(2, "array of arguments or nil").into()),
            };
            let opts = args.take(3);
            check_child_options(&opts)?;
            Ok(Ret::Call(Call::typed(StartChild {
                id,
                script,
                args: child_args,
                opts,
            })))
        })
        .command("await", |_cx, args| {
            let id = args.string(0)?;
            let timeout_ms = match args.get(1) {
                Value::Nil => None,
                t => Some(super::parse_duration_ms(t)?),
            };
            Ok(Ret::Call(Call::typed(AwaitChild { id, timeout_ms })))
        })
        .command("retry", |_cx, args| {
            let ms = args.number(0)?.max(0.0);
            Ok(Ret::Call(Call::typed(Sleep { ms })))
        })
        // Outside a workflow (a journal answers these first inside one).
        .handle::<Id, _>(|_, Id| Ok(Value::Nil))
        .handle::<Version, _>(|_, v| Ok(v.max))
        .immediate::<Publish, _>(|_, _| {
            Err(Error::invalid(
                "workflow.publish: this process is not a workflow (only a workflow's state can be queried)",
            ))
        })
        .immediate::<ContinueAsNew, _>(|_, _| {
            Err(Error::invalid(
                "workflow.continue_as_new: this process is not a workflow",
            ))
        })
        .handle::<SideEffectBegin, _>(|_, SideEffectBegin| Ok(side_effect_begin(None)))
        .handle::<SideEffect, _>(|_, outcome| side_effect_outcome(outcome))
}

/// The error a side effect failed with, from its journaled form.
pub fn side_effect_error(v: &Value) -> Error {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let kind = ErrorKind::parse(text("kind")).unwrap_or(ErrorKind::Internal);
    let mut e = Error::new(kind, text("message"));
    if let Some(r) = v.get("retryable").and_then(Value::as_bool) {
        e = e.retryable(r);
    }
    e
}

/// The answer to `side_effect("end"|"fail", …)`: its value, or its error.
pub fn side_effect_outcome(outcome: SideEffect) -> Result<Value, Error> {
    match outcome {
        SideEffect { error: Some(e), .. } if !e.is_nil() => Err(side_effect_error(&e)),
        SideEffect { value, .. } => Ok(value.unwrap_or_default()),
    }
}

/// What `side_effect("begin")` answers: `{done = true, value = v}` when the
/// value is known (replayed), `{done = false}` when `fn` must run.
pub fn side_effect_begin(done: Option<Value>) -> Value {
    match done {
        Some(v) => map([("done", Value::Bool(true)), ("value", v)]),
        None => map([("done", Value::Bool(false))]),
    }
}
