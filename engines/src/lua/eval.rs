//! `eval_runner`: runs Lua source given at run time in a fresh sandboxed
//! state of its own, under a policy that is at most the caller's and limits
//! that are at most what the caller has left.
//!
//! The nested run is a [`LuaProcess`] stepped by the caller: its commands
//! (`time.sleep`, …) and preemptions travel up through the caller's own
//! coroutine to the scheduler, and the answers come back down, so an
//! evaluated script never holds a worker and its instructions are charged
//! to the caller. Every option is checked against the caller's action rules
//! (`eval.compile`, `eval.run`, `eval.module`, `eval.import`, `eval.class`).

use std::collections::{BTreeMap, HashMap};
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields};
use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_modules::builtin::{duration_from_ms, ids, parse_duration_ms};
use troupe_modules::types::{Decl, Field, Signature, Type, Types};
use troupe_modules::{Class, ClassSet, ModuleDef, ModuleRegistry, Policy, Ret, Yielded};
use troupe_runtime::{Limits, Process, ProcessInit, Resume, Step, StepCx};
use troupe_sources::{Script, Source, SourceError, resolve_relative};

use super::convert::{error_to_lua, to_value};
use super::process::LuaProcess;
use super::state::{Prelude, ProcCtx, no_ctx, ok_tag, ok_values, preempt_tag, raise, sent};
use super::{Chunk, EvalExtras, Pool, compile_bytecode, launch};

/// The module's name.
pub(crate) const MODULE: &str = "eval_runner";

/// How deep evaluations may nest (an eval running an eval …).
const MAX_DEPTH: u8 = 4;

/// The classes an evaluation gets without `allow_classes` (each only if
/// the caller has it too).
const DEFAULT_CLASSES: [Class; 4] = [
    Class::Deterministic,
    Class::Encoding,
    Class::Time,
    Class::Nondeterministic,
];

/// The chunk name evaluated code runs under (`eval:3: …` in errors).
const CHUNK_NAME: &str = "eval";

/// The registry entry: the policy decides on `eval_runner` like on any
/// module; the functions come from the Lua engine.
pub(crate) fn declaration() -> ModuleDef {
    ModuleDef::new(MODULE)
        .describe(
            "Runs Lua source in a fresh sandboxed state: run{...}, compile(source, method?, opts?)",
        )
        .with_classes(&[Class::Deterministic, Class::Security])
        .types(types())
}

/// The `eval_runner` manifest.
fn types() -> Types {
    let strings = || Type::array(Type::String);
    let option_fields = || {
        [
            Field::optional("modules", strings())
                .doc("the modules `require` may load (each checked as `eval.module`)"),
            Field::optional("imports", Type::table(Type::String, Type::String))
                .doc("module name → script path in the runtime's source (`eval.import`)"),
            Field::optional("context", Type::Any).doc("visible as the global `ctx`"),
            Field::optional("allow_classes", strings())
                .doc("classes added to deterministic, encoding, time, nondeterministic; only ones the caller has (`eval.class`)"),
            Field::optional("custom_modules", Type::table(Type::String, Type::Any))
                .doc("read-only data tables by name: globals of the run, and what `require` returns"),
            Field::optional("limits", Type::named("Limits"))
                .doc("at most the caller's remaining limits"),
        ]
    };
    let mut run = Decl::record(
        "RunOptions",
        "Options of `eval_runner.run`.",
        [
            Field::new("source", Type::String).doc("Lua source"),
            Field::optional("method", Type::String)
                .doc("call this function of the table the chunk returns, with `args`"),
            Field::optional("args", Type::array(Type::Any))
                .doc("the chunk's `...` (and the global `input` when there is one)"),
        ],
    );
    for f in option_fields() {
        run = run.field(f);
    }
    Types::new()
        .function(
            "run",
            Signature::new(
                "Runs Lua source in a fresh sandboxed state; `nil, err` with PERMISSION_DENIED, INVALID (syntax, options) or the evaluated code's own error.",
            )
            .param("opts", Type::named("RunOptions"))
            .returns(Type::Any)
            .fallible(),
        )
        .function(
            "compile",
            Signature::new("Compiles Lua source once (`eval.compile`), to run many times.")
                .param("source", Type::String)
                .optional("method", Type::String)
                .optional("opts", Type::named("CompileOptions"))
                .returns(Type::named("Program"))
                .fallible(),
        )
        .decl(run)
        .decl(Decl::record(
            "CompileOptions",
            "Options of `eval_runner.compile`.",
            option_fields(),
        ))
        .decl(Decl::record("Limits", "Limits of one evaluation.", [
            Field::optional("max_instructions", Type::Integer),
            Field::optional("max_memory", Type::Integer).doc("bytes"),
            Field::optional("timeout", Type::union([Type::Number, Type::String]))
                .doc("milliseconds, or text such as \"1.5s\""),
        ]))
        .decl(
            Decl::interface("Program", "Compiled Lua source.").method(
                "run",
                Signature::new("Runs the program in a fresh state (`eval.run`).")
                    .optional("args", Type::array(Type::Any))
                    .returns(Type::Any)
                    .fallible(),
            ),
        )
}

/// The evaluated code, as text (`run`) or compiled (`compile`).
enum Code {
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

/// What the options asked for as limits.
#[derive(Default, Clone, Copy)]
struct Asked {
    max_instructions: Option<u64>,
    max_memory: Option<usize>,
    timeout: Option<Duration>,
}

/// Everything fixed before a run: the code, how to call it, its sandbox.
struct Plan {
    code: Code,
    method: Option<String>,
    policy: Arc<Policy>,
    imports: HashMap<String, Script>,
    custom: BTreeMap<String, Value>,
    context: Option<Value>,
    limits: Asked,
}

/// What an evaluation needs to know about its caller.
struct Caller {
    pid: Pid,
    parent: Option<Pid>,
    key: String,
    source: Arc<dyn Source>,
    pool: Arc<Pool>,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    depth: u8,
    slice: u64,
    instructions_left: Option<u64>,
    deadline: Option<Instant>,
    memory_left: Option<usize>,
}

fn caller(lua: &Lua) -> mlua::Result<Caller> {
    let ctx = lua.app_data_ref::<ProcCtx>().ok_or_else(no_ctx)?;
    Ok(Caller {
        pid: ctx.pid,
        parent: ctx.parent,
        key: ctx.key.clone(),
        source: Arc::clone(&ctx.source),
        pool: Arc::clone(&ctx.pool),
        policy: Arc::clone(&ctx.policy),
        modules: Arc::clone(&ctx.modules),
        depth: ctx.eval_depth,
        slice: ctx.slice,
        instructions_left: ctx
            .max_instructions
            .map(|m| m.saturating_sub(ctx.instructions)),
        deadline: ctx.deadline,
        memory_left: ctx
            .memory_limit
            .map(|m| m.saturating_sub(lua.used_memory())),
    })
}

/// `PERMISSION_DENIED` unless the caller's rules allow `action` on `resource`.
fn check(policy: &Policy, action: &str, resource: &str) -> Result<(), Error> {
    if policy.is_allowed(action, resource) {
        Ok(())
    } else {
        Err(Error::permission_denied(format!(
            "eval_runner: {action} on {resource:?} is not allowed by the policy"
        )))
    }
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("eval_runner: {msg}"))
}

/// A list option: an array (an empty table counts) of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, Error> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{what} must be a list of strings")))
            })
            .collect(),
        Value::Map(m) if m.is_empty() => Ok(Vec::new()),
        _ => Err(bad(format!("{what} must be a list of strings"))),
    }
}

/// A table option with string keys (an empty table counts).
fn table<'a>(v: &'a Value, what: &str) -> Result<&'a BTreeMap<String, Value>, Error> {
    static EMPTY: BTreeMap<String, Value> = BTreeMap::new();
    match v {
        Value::Map(m) => Ok(m),
        Value::Array(a) if a.is_empty() => Ok(&EMPTY),
        _ => Err(bad(format!("{what} must be a table with string keys"))),
    }
}

fn positive(v: &Value, what: &str) -> Result<u64, Error> {
    v.as_i64()
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(format!("limits.{what} must be a positive integer")))
}

fn asked_limits(v: &Value) -> Result<Asked, Error> {
    let mut asked = Asked::default();
    for (k, v) in table(v, "limits")? {
        match k.as_str() {
            "max_instructions" => asked.max_instructions = Some(positive(v, k)?),
            "max_memory" => {
                let n = positive(v, k)?;
                asked.max_memory = Some(usize::try_from(n).unwrap_or(usize::MAX));
            }
            "timeout" => {
                let ms = parse_duration_ms(v)
                    .map_err(|e| bad(format!("limits.timeout: {}", e.message())))?;
                asked.timeout = Some(duration_from_ms(ms));
            }
            other => {
                return Err(bad(format!(
                    "unknown limit {other:?} (known: max_instructions, max_memory, timeout)"
                )));
            }
        }
    }
    Ok(asked)
}

/// The options `compile` takes (`run` takes these plus source, method, args).
const PLAN_OPTIONS: [&str; 6] = [
    "modules",
    "imports",
    "context",
    "allow_classes",
    "custom_modules",
    "limits",
];

/// Checks the options against the caller's policy and builds the plan.
fn plan(
    caller: &Caller,
    opts: &BTreeMap<String, Value>,
    code: Code,
    method: Option<String>,
) -> Result<Plan, Error> {
    let get = |k: &str| opts.get(k).filter(|v| !v.is_nil());
    let mut classes = ClassSet::of(&DEFAULT_CLASSES);
    if let Some(v) = get("allow_classes") {
        let names = match v {
            Value::String(s) => s.split(',').map(|c| c.trim().to_owned()).collect(),
            other => strings(other, "allow_classes")?,
        };
        for name in names.iter().filter(|n| !n.is_empty()) {
            let class = Class::parse(name).map_err(|e| bad(e.message()))?;
            check(&caller.policy, "eval.class", name)?;
            if !caller.policy.classes().contains(class) {
                return Err(Error::permission_denied(format!(
                    "eval_runner: class {name:?} is not allowed to the caller, so not to its evaluations"
                )));
            }
            classes = classes.with(class);
        }
    }
    let mut policy = Policy::deny_all().allow_classes(classes);
    let whitelist = get("modules").map(|v| strings(v, "modules")).transpose()?;
    if let Some(names) = &whitelist {
        policy = policy.only_modules(names.iter().cloned());
    }
    let policy = Arc::new(policy.within(&caller.policy));
    for name in whitelist.iter().flatten() {
        let def = caller
            .modules
            .get(name)
            .ok_or_else(|| bad(format!("modules names unknown module {name:?}")))?;
        check(&caller.policy, "eval.module", name)?;
        if !policy.allows(def) {
            return Err(Error::permission_denied(format!(
                "eval_runner: module {name:?} (classes: {}) is not allowed here; \
                 allow_classes can add classes the caller has",
                def.classes()
            )));
        }
    }
    let mut imports = HashMap::new();
    if let Some(v) = get("imports") {
        for (name, path) in table(v, "imports")? {
            let path = path
                .as_str()
                .ok_or_else(|| bad(format!("imports.{name} must be a script path")))?;
            let key = resolve_relative(&caller.key, path)
                .map_err(|e| bad(format!("imports.{name}: {e}")))?;
            check(&caller.policy, "eval.import", &key)?;
            let script = caller.source.get(&key).map_err(|e| match e {
                SourceError::NotFound { .. } => {
                    Error::not_found(format!("eval_runner: import {name:?}: {e}"))
                }
                other => Error::new(ErrorKind::Unavailable, other.to_string()),
            })?;
            imports.insert(name.clone(), script);
        }
    }
    let custom = match get("custom_modules") {
        Some(v) => table(v, "custom_modules")?.clone(),
        None => BTreeMap::new(),
    };
    let limits = get("limits")
        .map(asked_limits)
        .transpose()?
        .unwrap_or_default();
    Ok(Plan {
        code,
        method,
        policy,
        imports,
        custom,
        context: get("context").cloned(),
        limits,
    })
}

fn unknown_options<'a>(opts: &'a BTreeMap<String, Value>, extra: &[&str]) -> Option<&'a String> {
    opts.keys()
        .find(|k| !PLAN_OPTIONS.contains(&k.as_str()) && !extra.contains(&k.as_str()))
}

/// What the nested run waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// The answer to the command it yielded.
    Command,
    /// Its next slice after a preemption.
    Slice,
}

/// The answer to a relayed command, left by the caller's result handling
/// for the next `eval_step`.
type Answer = Arc<Mutex<Option<Result<Value, Error>>>>;

/// A nested run in progress, held by the caller's prelude while it drives it.
struct EvalRun {
    process: Option<LuaProcess>,
    awaiting: Awaiting,
    answer: Answer,
    charged: u64,
}

impl UserData for EvalRun {}

/// A compiled evaluation: `program:run(args)`.
struct EvalProgram(Arc<Plan>);

impl UserData for EvalProgram {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type.name(), "eval_runner.Program");
        fields.add_meta_field_with(MetaMethod::Index.name(), |lua| {
            lua.app_data_ref::<Prelude>()
                .map(|p| p.program_methods.clone())
                .ok_or_else(no_ctx)
        });
    }
}

/// Starts `plan` with `args` in a fresh state, under limits no larger than
/// the caller's remaining ones.
fn start(caller: &Caller, plan: &Plan, args: Vec<Value>) -> Result<EvalRun, Error> {
    if caller.depth >= MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("eval_runner: evaluations nest at most {MAX_DEPTH} deep"),
        ));
    }
    let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let max_instructions = min(plan.limits.max_instructions, caller.instructions_left);
    if max_instructions == Some(0) {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            "eval_runner: the caller has no instructions left",
        ));
    }
    let now = Instant::now();
    let left = caller.deadline.map(|d| d.saturating_duration_since(now));
    let timeout = match (plan.limits.timeout, left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let memory = min(
        plan.limits.max_memory.map(|m| m as u64),
        caller.memory_left.map(|m| m as u64),
    );
    let limits = Limits {
        max_instructions: max_instructions.and_then(NonZeroU64::new),
        max_memory: memory
            .map(|m| usize::try_from(m).unwrap_or(usize::MAX).max(1))
            .and_then(NonZeroUsize::new),
        max_processes: None,
        timeout: timeout.map(|t| t.max(Duration::from_millis(1))),
        slice_instructions: NonZeroU64::new(caller.slice).unwrap_or(NonZeroU64::MIN),
    };
    let mut globals = BTreeMap::new();
    if let [one] = args.as_slice() {
        globals.insert("input".to_owned(), one.clone());
    }
    if let Some(c) = &plan.context {
        globals.insert("ctx".to_owned(), c.clone());
    }
    let chunk = match &plan.code {
        Code::Text(t) => Chunk::Text(t),
        Code::Binary(b) => Chunk::Binary(b),
    };
    let init = ProcessInit {
        pid: caller.pid,
        parent: caller.parent,
        key: caller.key.clone(),
        args,
        entry: plan.method.clone(),
        policy: Arc::clone(&plan.policy),
        modules: Arc::clone(&caller.modules),
        limits,
        source: Arc::clone(&caller.source),
        lightweight: false,
        memory_ceiling: None,
        journaled: false,
    };
    let extras = EvalExtras {
        globals,
        custom: plan.custom.clone(),
        imports: plan.imports.clone(),
        depth: caller.depth + 1,
        env: None,
    };
    let process = launch(&caller.pool, CHUNK_NAME, chunk, init, extras)?;
    Ok(EvalRun {
        process: Some(process),
        awaiting: Awaiting::Slice,
        answer: Answer::default(),
        charged: 0,
    })
}

/// `nil, err` through the prelude's `finish`.
fn fail(lua: &Lua, e: Error) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        mlua::Value::LightUserData(ok_tag()),
        mlua::Value::Nil,
        error_to_lua(lua, e)?,
    ]))
}

/// Steps the nested run once and tells the prelude what happened: finished
/// (OK, result | OK, nil, err), a command to relay (SENT, run) or a
/// preemption to pass on (PREEMPT, run).
fn step(lua: &Lua, ud: AnyUserData, resume: Resume) -> mlua::Result<MultiValue> {
    let mut run = ud.borrow_mut::<EvalRun>()?;
    let pid = lua.app_data_ref::<ProcCtx>().ok_or_else(no_ctx)?.pid;
    let Some(process) = run.process.as_mut() else {
        return raise(lua, Error::invalid("eval_runner: this run has finished"));
    };
    let outcome = process.step(&mut StepCx::new(pid), resume);
    let used = process.instructions();
    let delta = used.saturating_sub(run.charged);
    run.charged = used;
    let mut ctx = lua.app_data_mut::<ProcCtx>().ok_or_else(no_ctx)?;
    ctx.charge(delta);
    let (tag, awaiting) = match outcome {
        Step::Yield(call) if call.id == ids::PROCESS_EXIT => {
            drop(ctx);
            run.process = None;
            return fail(
                lua,
                Error::invalid(
                    "eval_runner: process.exit cannot end the caller from evaluated code",
                ),
            );
        }
        Step::Yield(call) => {
            let answer = Arc::clone(&run.answer);
            let relay = Yielded::new(call).then(move |result| {
                *answer.lock() = Some(result);
                Ok(Ret::Values(Vec::new()))
            });
            ctx.pending = Some(relay.into_parts());
            (sent(), Awaiting::Command)
        }
        Step::Preempted => {
            ctx.preempting = true;
            // From one of the script's coroutines, the relay passes it up.
            ctx.nested_preempt = lua.current_thread().state() as usize != ctx.main_thread;
            (preempt_tag(), Awaiting::Slice)
        }
        Step::Done(v) => {
            drop(ctx);
            run.process = None;
            return ok_values(lua, std::slice::from_ref(&v));
        }
        Step::Failed(e) => {
            drop(ctx);
            run.process = None;
            return fail(lua, e);
        }
    };
    drop(ctx);
    run.awaiting = awaiting;
    drop(run);
    Ok(MultiValue::from_vec(vec![
        mlua::Value::LightUserData(tag),
        mlua::Value::UserData(ud),
    ]))
}

/// Starts a run and takes its first step.
fn begin(lua: &Lua, caller: &Caller, plan: &Plan, args: Vec<Value>) -> mlua::Result<MultiValue> {
    if caller.instructions_left == Some(0) {
        // The caller stands exactly at its limit: starting anything is one
        // instruction too many, for the caller too.
        lua.app_data_mut::<ProcCtx>().ok_or_else(no_ctx)?.charge(1);
    }
    match start(caller, plan, args) {
        Ok(run) => {
            let ud = lua.create_userdata(run)?;
            step(lua, ud, Resume::Start)
        }
        Err(e) => fail(lua, e),
    }
}

/// The `args` option: a list (an empty table counts).
fn arg_list(v: Option<&Value>) -> Result<Vec<Value>, Error> {
    match v {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(Value::Map(m)) if m.is_empty() => Ok(Vec::new()),
        Some(_) => Err(bad("args must be a list")),
    }
}

fn opt_string(v: Option<&Value>, what: &str) -> Result<Option<String>, Error> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{what} must be a string"))),
    }
}

fn options(v: &mlua::Value, what: &str) -> Result<BTreeMap<String, Value>, Error> {
    match v {
        mlua::Value::Nil => Ok(BTreeMap::new()),
        other => {
            let value = to_value(other).map_err(|e| bad(format!("{what}: {}", e.message())))?;
            table(&value, what).cloned()
        }
    }
}

/// `runner.run{source, method?, args?, ...}`.
fn eval_run(lua: &Lua, opts: mlua::Value) -> mlua::Result<MultiValue> {
    let caller = caller(lua)?;
    let prepared = (|| {
        let opts = options(&opts, "run options")?;
        if let Some(k) = unknown_options(&opts, &["source", "method", "args"]) {
            return Err(bad(format!("unknown option {k:?}")));
        }
        let source =
            opt_string(opts.get("source"), "source")?.ok_or_else(|| bad("source is required"))?;
        let method = opt_string(opts.get("method"), "method")?;
        let resource = method.as_deref().unwrap_or("");
        check(&caller.policy, "eval.compile", resource)?;
        check(&caller.policy, "eval.run", resource)?;
        let args = arg_list(opts.get("args"))?;
        let plan = plan(&caller, &opts, Code::Text(source.into_bytes()), method)?;
        Ok((plan, args))
    })();
    match prepared {
        Ok((plan, args)) => begin(lua, &caller, &plan, args),
        Err(e) => fail(lua, e),
    }
}

/// `runner.compile(source, method?, opts?)` → program.
fn eval_compile(
    lua: &Lua,
    (source, method, opts): (mlua::Value, mlua::Value, mlua::Value),
) -> mlua::Result<MultiValue> {
    let caller = caller(lua)?;
    let compiled = (|| {
        let source = match source {
            mlua::Value::String(s) => s.as_bytes().to_vec(),
            _ => return Err(bad("compile: source must be a string")),
        };
        let method = match method {
            mlua::Value::Nil => None,
            mlua::Value::String(s) => Some(s.to_string_lossy()),
            _ => return Err(bad("compile: method must be a string")),
        };
        let opts = options(&opts, "compile options")?;
        if let Some(k) = unknown_options(&opts, &[]) {
            return Err(bad(format!("unknown option {k:?}")));
        }
        check(
            &caller.policy,
            "eval.compile",
            method.as_deref().unwrap_or(""),
        )?;
        let bytecode = compile_bytecode(&caller.pool, CHUNK_NAME, &source)?;
        plan(&caller, &opts, Code::Binary(bytecode), method)
    })();
    match compiled {
        Ok(plan) => Ok(MultiValue::from_vec(vec![
            mlua::Value::LightUserData(ok_tag()),
            mlua::Value::UserData(lua.create_userdata(EvalProgram(Arc::new(plan)))?),
        ])),
        Err(e) => fail(lua, e),
    }
}

/// `program:run(args)`.
fn eval_program_run(
    lua: &Lua,
    (program, args): (mlua::Value, mlua::Value),
) -> mlua::Result<MultiValue> {
    let plan = match &program {
        mlua::Value::UserData(ud) => ud.borrow::<EvalProgram>().ok().map(|p| Arc::clone(&p.0)),
        _ => None,
    };
    let Some(plan) = plan else {
        return raise(
            lua,
            Error::invalid("eval_runner: call it as program:run(args)"),
        );
    };
    let caller = caller(lua)?;
    let args = match &args {
        mlua::Value::Nil => Ok(Vec::new()),
        other => to_value(other)
            .map_err(|e| bad(format!("args: {}", e.message())))
            .and_then(|v| arg_list(Some(&v))),
    };
    let ready = args.and_then(|a| {
        check(
            &caller.policy,
            "eval.run",
            plan.method.as_deref().unwrap_or(""),
        )
        .map(|()| a)
    });
    match ready {
        Ok(args) => begin(lua, &caller, &plan, args),
        Err(e) => fail(lua, e),
    }
}

/// `eval_step(run)`: resumes a run with the answer to its command (left
/// by the caller's result handling), or for its next slice.
fn eval_step(lua: &Lua, ud: AnyUserData) -> mlua::Result<MultiValue> {
    let resume = {
        let run = ud.borrow::<EvalRun>()?;
        match run.awaiting {
            Awaiting::Slice => Resume::Continue,
            Awaiting::Command => match run.answer.lock().take() {
                Some(result) => Resume::Return(result),
                None => {
                    return raise(
                        lua,
                        Error::internal("eval_runner: resumed without an answer"),
                    );
                }
            },
        }
    };
    step(lua, ud, resume)
}

/// Adds the functions the prelude's `eval_runner` table calls.
pub(crate) fn register(lua: &Lua, r: &Table) -> mlua::Result<()> {
    r.raw_set("eval_run", lua.create_function(eval_run)?)?;
    r.raw_set("eval_compile", lua.create_function(eval_compile)?)?;
    r.raw_set("eval_program_run", lua.create_function(eval_program_run)?)?;
    r.raw_set("eval_step", lua.create_function(eval_step)?)?;
    Ok(())
}
