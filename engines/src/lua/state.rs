//! Preparing Lua states: the sandboxed base every process environment is
//! built from, the per-state module cache, and the per-process context that
//! Rust callbacks (module functions, `require`, the instruction hook) read.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::c_void;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use mlua::chunk::ChunkMode;
use mlua::{Function, LightUserData, Lua, LuaOptions, MultiValue, StdLib, Table};
use troupe_dispatcher::{Call, Error, ErrorKind, Pid, Value};
use troupe_modules::{
    Args, CallError, FnCx, FunctionDef, ModuleDef, ModuleRegistry, Policy, ResultHandler, Ret,
    TypeKey,
};
use troupe_runtime::StepCx;
use troupe_sources::{Script, Source};

use super::convert::{StackArgs, error_to_lua, to_lua, to_value};
use super::object::{self, LuaObject};
use super::pool::{self, Mains};
use super::{Pool, error, eval};

static SENT_TAG: u8 = 0;
static OK_TAG: u8 = 0;
static PREEMPT_TAG: u8 = 0;
static IMPORT_TAG: u8 = 0;

fn tag(t: &'static u8) -> LightUserData {
    LightUserData(std::ptr::from_ref(t).cast_mut().cast::<c_void>())
}

/// The sentinel a command function yields (the command itself waits in
/// [`ProcCtx::pending`]).
pub(crate) fn sent() -> LightUserData {
    tag(&SENT_TAG)
}

/// Marks the values that follow as a module function's results.
pub(crate) fn ok_tag() -> LightUserData {
    tag(&OK_TAG)
}

/// A nested eval run was preempted: the caller should yield too.
pub(crate) fn preempt_tag() -> LightUserData {
    tag(&PREEMPT_TAG)
}

/// `require` of an eval import: the chunk follows, for the prelude to run.
fn import_tag() -> LightUserData {
    tag(&IMPORT_TAG)
}

/// Whether `v` is the command sentinel.
pub(crate) fn is_sent(v: &mlua::Value) -> bool {
    matches!(v, mlua::Value::LightUserData(l) if *l == sent())
}

/// What the prelude gave us, kept per state.
pub(crate) struct Prelude {
    pub new_env: Function,
    /// Makes a lightweight process's environment (see `lightweight.rs`).
    pub new_light_env: Function,
    /// The function of every process thread (`xpcall`), whose first two
    /// arguments are the script's main function (or `run_entry`) and
    /// `handler` below.
    pub body: Function,
    /// Runs the chunk, then its entry function with the spawn arguments
    /// (packed in a table, so that its frame is not a vararg one).
    pub run_entry: Function,
    pub handler: Function,
    wrap_fn: Function,
    pub readonly: Function,
    modules: HashMap<String, Table>,
    /// Method functions of userdata types, built on first use.
    methods: HashMap<(TypeKey, String), Function>,
    eval_runner: Table,
    pub program_methods: Table,
    /// Adds `workflow.side_effect(fn)` and `workflow.retry(opts, fn)`,
    /// which take script functions, around the module's command steps.
    workflow_module: Function,
    /// The real `math.randomseed`, for the pool's reset.
    pub reseed: Function,
}

/// Modules the Lua engine implements itself; the registry holds their
/// declarations (name, classes) so the policy decides as for any other.
pub(crate) fn native_modules() -> Vec<ModuleDef> {
    vec![eval::declaration()]
}

/// Per-process context, stored in the state's app data while the process
/// owns the state.
pub(crate) struct ProcCtx {
    pub pid: Pid,
    pub parent: Option<Pid>,
    /// The script's key in the source (eval imports resolve against it).
    pub key: String,
    pub source: Arc<dyn Source>,
    pub pool: Arc<Pool>,
    pub policy: Arc<Policy>,
    pub modules: Arc<ModuleRegistry>,
    /// The process's global environment.
    pub env: Table,
    pub loaded: Table,
    /// An eval run's imports (boxed: a process has none).
    pub imports: Option<Box<Imports>>,
    /// How many `eval_runner` levels this state runs below a process.
    pub eval_depth: u8,
    /// The policy lets the process use `math.random` (the pool reseeds
    /// the generator after it).
    pub random: bool,
    /// The state's memory limit in bytes (absolute), if any.
    pub memory_limit: Option<usize>,
    /// The command a module function stored before yielding the sentinel,
    /// and what turns its result into the script's return values.
    pub pending: Option<(Call, ResultHandler)>,
    /// The instruction hook asked for a yield that has not reached the
    /// scheduler yet.
    pub preempting: bool,
    /// The hook asked one of the script's own coroutines to yield: the
    /// prelude's relay takes this to pass the preemption up (the process's
    /// thread can be preempted itself before it does, which clears
    /// [`ProcCtx::preempting`] but not this).
    pub nested_preempt: bool,
    /// The process's own thread (its `lua_State` address).
    pub main_thread: usize,
    pub instructions: u64,
    pub max_instructions: Option<u64>,
    pub slice: u64,
    /// Preempted by the watchdog (no instruction limit): the process
    /// thread runs without a hook; coroutines get [`ProcCtx::hook_fn`]
    /// every `slice` instructions.
    pub timed: bool,
    /// The state's hook procedure, for the coroutines of a timed process.
    pub hook_fn: Option<mlua::ffi::lua_Hook>,
    pub deadline: Option<Instant>,
    pub timeout_ms: u128,
    /// Set when a limit is exceeded: the next yield fails the process
    /// (boxed: it rarely is).
    pub terminate: Option<Box<Error>>,
}

impl ProcCtx {
    /// A context no process owns: what a shared state holds between the
    /// steps of its processes, swapped with theirs (a step then moves no
    /// context in or out of the state's app data, which would box it). It
    /// allows nothing.
    pub(crate) fn inert(lua: &Lua, pool: &Arc<Pool>) -> mlua::Result<Self> {
        Ok(Self {
            pid: Pid::new(0, 0),
            parent: None,
            key: String::new(),
            source: Arc::new(troupe_sources::MemorySource::default()),
            pool: Arc::clone(pool),
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::default()),
            env: lua.create_table()?,
            loaded: lua.create_table()?,
            imports: None,
            eval_depth: 0,
            random: false,
            memory_limit: None,
            pending: None,
            preempting: false,
            nested_preempt: false,
            main_thread: 0,
            instructions: 0,
            max_instructions: None,
            slice: 0,
            timed: false,
            hook_fn: None,
            deadline: None,
            timeout_ms: 0,
            terminate: None,
        })
    }
}

/// The scripts an eval run may `require` by name.
pub(crate) struct Imports {
    /// Not loaded yet, by module name.
    pub pending: HashMap<String, Script>,
    /// Being loaded (a second `require` is a cycle).
    pub loading: HashSet<String>,
}

impl Imports {
    /// `pending` as the imports of a context; `None` when there are none.
    pub fn boxed(pending: HashMap<String, Script>) -> Option<Box<Self>> {
        (!pending.is_empty()).then(|| {
            Box::new(Self {
                pending,
                loading: HashSet::new(),
            })
        })
    }

    /// The import `name` to load now, marked as loading.
    fn start(&mut self, name: &str) -> Option<Script> {
        let script = self.pending.remove(name)?;
        self.loading.insert(name.to_owned());
        Some(script)
    }
}

impl ProcCtx {
    /// Counts `n` more instructions and checks the instruction and
    /// wall-clock limits: once one is exceeded, [`ProcCtx::terminate`] holds
    /// the error that fails the process at its next yield.
    pub fn charge(&mut self, n: u64) {
        self.instructions = self.instructions.saturating_add(n);
        if self.terminate.is_some() {
            return;
        }
        if let Some(max) = self.max_instructions.filter(|max| self.instructions > *max) {
            self.terminate = Some(Box::new(Error::new(
                ErrorKind::LimitExceeded,
                format!("instruction limit of {max} exceeded"),
            )));
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.terminate = Some(Box::new(Error::new(
                ErrorKind::Timeout,
                format!(
                    "process exceeded its wall-clock limit of {} ms",
                    self.timeout_ms
                ),
            )));
        }
    }
}

/// Raises `e` to the script (through the prelude's `finish`).
pub(crate) fn raise(lua: &Lua, e: Error) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![error_to_lua(lua, e)?]))
}

pub(crate) fn ok_values(lua: &Lua, values: &[Value]) -> mlua::Result<MultiValue> {
    let mut out = Vec::with_capacity(values.len() + 1);
    out.push(mlua::Value::LightUserData(ok_tag()));
    for v in values {
        out.push(to_lua(lua, v)?);
    }
    Ok(MultiValue::from_vec(out))
}

pub(crate) fn no_ctx() -> mlua::Error {
    mlua::Error::runtime("troupe: no process owns this Lua state")
}

/// Converts script arguments for a module function or method named
/// `qualified`. Userdata objects are passed as objects when `objects` is
/// set; otherwise, like any value without a neutral form, they are `INVALID`.
pub(crate) fn args_from_lua<'a>(
    qualified: &Arc<str>,
    objects: bool,
    args: impl Iterator<Item = &'a mlua::Value>,
) -> Result<Args, Error> {
    let mut values = Vec::new();
    let mut objs = Vec::new();
    for (i, a) in args.enumerate() {
        if objects && let Some(obj) = object::from_lua(a) {
            values.push(Value::Nil);
            objs.push((i, obj));
            continue;
        }
        match to_value(a) {
            Ok(v) => values.push(v),
            Err(e) => {
                let msg = format!("{qualified}: argument #{}: {}", i + 1, e.message());
                return Err(Error::invalid(msg));
            }
        }
    }
    Ok(objs
        .into_iter()
        .fold(Args::new(Arc::clone(qualified), values), |a, (i, o)| {
            a.with_object(i, o)
        }))
}

/// Runs `f` with the current process's [`FnCx`].
pub(crate) fn with_cx<R>(lua: &Lua, f: impl FnOnce(&FnCx<'_>) -> R) -> mlua::Result<R> {
    let ctx = lua.app_data_ref::<ProcCtx>().ok_or_else(no_ctx)?;
    let cx = FnCx {
        pid: ctx.pid,
        parent: ctx.parent,
        policy: &ctx.policy,
    };
    Ok(f(&cx))
}

/// What a module function's result looks like to the prelude: `OK` and the
/// values, the sentinel (the command waits in [`ProcCtx::pending`]), or an
/// error object to raise. `can_yield` is false for a command's result
/// handling, which must not yield again.
pub(crate) fn ret_to_lua(
    lua: &Lua,
    result: Result<Ret, CallError>,
    can_yield: bool,
) -> mlua::Result<MultiValue> {
    let pending = match result {
        Ok(Ret::Value(v)) => return ok_values(lua, std::slice::from_ref(&v)),
        Ok(Ret::Values(vs)) => return ok_values(lua, &vs),
        Ok(Ret::Error(e)) => {
            return Ok(MultiValue::from_vec(vec![
                mlua::Value::LightUserData(ok_tag()),
                error_to_lua(lua, e)?,
            ]));
        }
        Ok(Ret::Object(o)) => {
            return Ok(MultiValue::from_vec(vec![
                mlua::Value::LightUserData(ok_tag()),
                mlua::Value::UserData(lua.create_userdata(LuaObject(o))?),
            ]));
        }
        Err(CallError::Fail(e)) => {
            return Ok(MultiValue::from_vec(vec![
                mlua::Value::LightUserData(ok_tag()),
                mlua::Value::Nil,
                error_to_lua(lua, e)?,
            ]));
        }
        Err(CallError::Raise(e)) => return raise(lua, e),
        Ok(Ret::Call(call)) => (call, ResultHandler::default()),
        Ok(Ret::Yield(y)) => y.into_parts(),
    };
    if !can_yield {
        return raise(
            lua,
            Error::internal("a command's result handling returned another command"),
        );
    }
    let (call, handler) = pending;
    // SAFETY: `lua.state()` is the live state of the thread calling this
    // module function; `lua_isyieldable` only reads it.
    let can_wait = unsafe { mlua::ffi::lua_isyieldable(lua.state()) } != 0;
    let call = match call_immediate(call, can_wait) {
        Ok(result) => return ret_to_lua(lua, handler.finish(result), false),
        Err(call) => call,
    };
    lua.app_data_mut::<ProcCtx>().ok_or_else(no_ctx)?.pending = Some((call, handler));
    Ok(MultiValue::from_vec(vec![mlua::Value::LightUserData(
        sent(),
    )]))
}

thread_local! {
    /// The context of the step this thread runs (see [`stepping`]); null
    /// outside of one.
    static STEPPING: Cell<*const StepCx<'static>> = const { Cell::new(std::ptr::null()) };
}

/// Runs `resume` (one resume of a process's coroutine) with `cx` as the
/// context its module functions answer immediate commands with
/// ([`StepCx::call_immediate`]). Every resume of a process goes through
/// here, a nested one (an `eval` run) with its own context, so a module
/// function always sees the step of the state that called it.
pub(crate) fn stepping<R>(cx: &StepCx<'_>, resume: impl FnOnce() -> R) -> R {
    struct Restore(*const StepCx<'static>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STEPPING.set(self.0);
        }
    }
    let _restore = Restore(STEPPING.replace(std::ptr::from_ref(cx).cast()));
    resume()
}

/// Answers `call` through the current step's context if its command is
/// immediate; gives it back otherwise (or outside of a step).
fn call_immediate(call: Call, can_wait: bool) -> Result<Result<Value, Error>, Call> {
    let cx = STEPPING.get();
    if cx.is_null() {
        return Err(call);
    }
    // SAFETY: `stepping` stores a context that outlives the resume it runs
    // and restores the previous pointer when the resume returns or
    // unwinds, so a non-null pointer read on this thread is a live context.
    unsafe { &*cx }.call_immediate(call, can_wait)
}

/// The prelude-protocol values that resume a script after its command
/// completed: the handler's result through the command's result handling.
pub(crate) fn resume_values(
    lua: &Lua,
    handler: &ResultHandler,
    result: Result<Value, Error>,
) -> mlua::Result<MultiValue> {
    ret_to_lua(lua, handler.finish(result), false)
}

/// Calls a module function with the current process's context.
fn call_function(lua: &Lua, def: &FunctionDef, args: StackArgs) -> mlua::Result<MultiValue> {
    let args = match args {
        StackArgs::Plain(values) => Ok(Args::new(Arc::clone(def.qualified()), values)),
        StackArgs::Lua(args) => args_from_lua(def.qualified(), def.takes_objects(), args.iter()),
    };
    let args = match args {
        Ok(a) => a,
        Err(e) => return raise(lua, e),
    };
    let result = with_cx(lua, |cx| def.call_with(cx, args))?;
    ret_to_lua(lua, result, true)
}

/// The prelude's wrapper that turns the `OK`/sentinel/error protocol into
/// returns, yields and raises.
pub(crate) fn wrap(lua: &Lua, raw: Function) -> mlua::Result<Function> {
    let wrap_fn = lua
        .app_data_ref::<Prelude>()
        .ok_or_else(no_ctx)?
        .wrap_fn
        .clone();
    wrap_fn.call(raw)
}

/// The cached method function `name` of userdata type `key`, built by
/// `make` on first use in this state.
pub(crate) fn cached_method(
    lua: &Lua,
    key: &TypeKey,
    name: &str,
    make: impl FnOnce() -> mlua::Result<Function>,
) -> mlua::Result<Function> {
    let cache_key = (key.clone(), name.to_owned());
    if let Some(f) = lua
        .app_data_ref::<Prelude>()
        .and_then(|p| p.methods.get(&cache_key).cloned())
    {
        return Ok(f);
    }
    let f = make()?;
    if let Some(mut p) = lua.app_data_mut::<Prelude>() {
        p.methods.insert(cache_key, f.clone());
    }
    Ok(f)
}

/// The read-only metatable of module `def` in this state, built on first use.
fn module_metatable(lua: &Lua, def: &Arc<ModuleDef>) -> mlua::Result<Table> {
    if let Some(mt) = lua
        .app_data_ref::<Prelude>()
        .and_then(|p| p.modules.get(def.name()).cloned())
    {
        return Ok(mt);
    }
    let (wrap_fn, readonly, workflow_module) = {
        let p = lua.app_data_ref::<Prelude>().ok_or_else(no_ctx)?;
        (
            p.wrap_fn.clone(),
            p.readonly.clone(),
            p.workflow_module.clone(),
        )
    };
    let inner = lua.create_table()?;
    for (i, f) in def.functions().iter().enumerate() {
        // The module and an index, not a copy of the definition (its
        // signature and names): every state makes these closures.
        let module = Arc::clone(def);
        let raw =
            lua.create_function(
                move |lua, args: StackArgs| match module.functions().get(i) {
                    Some(f) => call_function(lua, f, args),
                    None => raise(lua, Error::internal("module function out of range")),
                },
            )?;
        inner.raw_set(f.name(), wrap_fn.call::<Function>(raw)?)?;
    }
    for (name, v) in def.constants() {
        inner.raw_set(name.as_str(), to_lua(lua, v)?)?;
    }
    if def.name() == "workflow" {
        workflow_module.call::<()>(&inner)?;
    }
    let mt: Table = readonly.call((def.name(), inner))?;
    if let Some(mut p) = lua.app_data_mut::<Prelude>() {
        p.modules.insert(def.name().to_owned(), mt.clone());
    }
    Ok(mt)
}

/// What `require(name)` finds, in order: a module loaded before, an eval
/// import, a module of the registry the policy allows.
enum Found {
    Loaded(mlua::Value),
    Import(Script, Table),
    Module(Result<Arc<ModuleDef>, Error>),
}

/// `require(name)`: the single place scripts meet the policy.
fn require(lua: &Lua, name: mlua::Value) -> mlua::Result<MultiValue> {
    let Some(name) = name
        .as_string()
        .and_then(|s| s.to_str().ok().map(|s| s.to_owned()))
    else {
        return raise(lua, Error::invalid("require: argument #1 expected string"));
    };
    let found = {
        let mut ctx = lua.app_data_mut::<ProcCtx>().ok_or_else(no_ctx)?;
        let cached: mlua::Value = ctx.loaded.raw_get(name.as_str())?;
        if !cached.is_nil() {
            Found::Loaded(cached)
        } else if let Some(script) = ctx.imports.as_mut().and_then(|i| i.start(&name)) {
            Found::Import(script, ctx.env.clone())
        } else if ctx
            .imports
            .as_ref()
            .is_some_and(|i| i.loading.contains(&name))
        {
            let msg = format!("import {name:?} requires itself (a require cycle)");
            return raise(lua, Error::invalid(msg));
        } else {
            Found::Module(ctx.modules.resolve(&name, &ctx.policy).map(Arc::clone))
        }
    };
    let ok = mlua::Value::LightUserData(ok_tag());
    let def = match found {
        Found::Loaded(v) => return Ok(MultiValue::from_vec(vec![ok, v])),
        Found::Import(script, env) => {
            let chunk = lua
                .load(&*script.code)
                .set_name(format!("@{}", script.key))
                .set_mode(mlua::chunk::ChunkMode::Text)
                .set_environment(env)
                .into_function();
            return match chunk {
                Ok(f) => Ok(MultiValue::from_vec(vec![
                    mlua::Value::LightUserData(import_tag()),
                    mlua::Value::Function(f),
                ])),
                Err(e) => raise(lua, super::syntax_error(&script.key, &e)),
            };
        }
        Found::Module(Ok(d)) => d,
        Found::Module(Err(e)) => return raise(lua, e),
    };
    let mt = match lua
        .app_data_ref::<Prelude>()
        .filter(|_| def.name() == eval::MODULE)
    {
        Some(p) => p.eval_runner.clone(),
        None => module_metatable(lua, &def)?,
    };
    let proxy = lua.create_table()?;
    proxy.set_metatable(Some(mt))?;
    let ctx = lua.app_data_ref::<ProcCtx>().ok_or_else(no_ctx)?;
    ctx.loaded.raw_set(name.as_str(), &proxy)?;
    Ok(MultiValue::from_vec(vec![ok, mlua::Value::Table(proxy)]))
}

/// Records what an eval import's chunk returned, for later `require`s.
fn imported(lua: &Lua, (name, value): (String, mlua::Value)) -> mlua::Result<()> {
    let mut ctx = lua.app_data_mut::<ProcCtx>().ok_or_else(no_ctx)?;
    if let Some(i) = ctx.imports.as_mut() {
        i.loading.remove(&name);
    }
    ctx.loaded.raw_set(name, value)
}

/// Gives a coroutine created by a timed process the counting hook (the
/// watchdog only watches the process's own thread).
fn arm(lua: &Lua, co: mlua::Thread) -> mlua::Result<mlua::Thread> {
    if let Some(ctx) = lua.app_data_ref::<ProcCtx>()
        && ctx.timed
        && let Some(hook) = ctx.hook_fn
    {
        let count = std::os::raw::c_int::try_from(ctx.slice).unwrap_or(std::os::raw::c_int::MAX);
        // SAFETY: `co` is a live thread of this state and `hook` is the
        // state's own hook procedure.
        unsafe { mlua::ffi::lua_sethook(co.state(), Some(hook), mlua::ffi::LUA_MASKCOUNT, count) };
    }
    Ok(co)
}

/// Read-only module tables holding `custom` (eval's `custom_modules`),
/// ready for `require` and set as globals of `env` (as the reference's
/// `runner.run{source = "return sdk.version", custom_modules = {sdk = …}}`
/// reads them).
pub(crate) fn custom_modules(
    lua: &Lua,
    env: &Table,
    loaded: &Table,
    custom: &BTreeMap<String, Value>,
) -> mlua::Result<()> {
    let readonly = lua
        .app_data_ref::<Prelude>()
        .map(|p| p.readonly.clone())
        .ok_or_else(no_ctx)?;
    for (name, v) in custom {
        let inner = match to_lua(lua, v)? {
            mlua::Value::Table(t) => t,
            other => {
                let t = lua.create_table()?;
                t.raw_set("value", other)?;
                t
            }
        };
        let proxy = lua.create_table()?;
        proxy.set_metatable(Some(readonly.call::<Table>((name.as_str(), inner))?))?;
        loaded.raw_set(name.as_str(), &proxy)?;
        env.raw_set(name.as_str(), proxy)?;
    }
    Ok(())
}

/// Where `print` goes.
pub(crate) type Output = Arc<dyn Fn(&str) + Send + Sync>;

/// A new Lua state with the sandbox prelude installed.
pub(crate) fn new_state(output: &Output) -> mlua::Result<Lua> {
    let libs = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH;
    // The debug library is loaded into the state's real globals for the
    // prelude's tracebacks; scripts never see those globals.
    // SAFETY: `debug` is only reachable from the trusted prelude.
    let lua = unsafe { Lua::unsafe_new_with(libs | StdLib::DEBUG, LuaOptions::new()) };
    let r = lua.create_table()?;
    r.raw_set("SENT", sent())?;
    r.raw_set("OK", ok_tag())?;
    r.raw_set("PREEMPT", preempt_tag())?;
    r.raw_set("IMPORT", import_tag())?;
    r.raw_set(
        "preempting",
        lua.create_function(|lua, ()| {
            Ok(lua
                .app_data_mut::<ProcCtx>()
                .is_some_and(|mut c| std::mem::take(&mut c.nested_preempt)))
        })?,
    )?;
    r.raw_set(
        "terminating",
        lua.create_function(|lua, ()| {
            Ok(lua
                .app_data_ref::<ProcCtx>()
                .is_some_and(|c| c.terminate.is_some()))
        })?,
    )?;
    r.raw_set(
        "denied",
        lua.create_function(|lua, msg: String| error_to_lua(lua, Error::permission_denied(msg)))?,
    )?;
    r.raw_set("imported", lua.create_function(imported)?)?;
    r.raw_set("arm", lua.create_function(arm)?)?;
    eval::register(&lua, &r)?;
    super::patterns::register(&lua, &r)?;
    let out = Arc::clone(output);
    r.raw_set(
        "out",
        lua.create_function(move |_, line: mlua::LuaString| {
            out(&line.to_string_lossy());
            Ok(())
        })?,
    )?;
    r.raw_set(
        "is_error",
        lua.create_function(|_, v: mlua::Value| Ok(error::from_lua(&v).is_some()))?,
    )?;
    r.raw_set(
        "runtime_error",
        lua.create_function(|lua, (msg, tb): (String, String)| {
            let e = if msg.ends_with("not enough memory") {
                Error::new(ErrorKind::LimitExceeded, "memory limit exceeded")
            } else if msg.contains("stack overflow") {
                Error::new(
                    ErrorKind::LimitExceeded,
                    format!("stack limit exceeded: {msg}"),
                )
            } else {
                Error::internal(msg).with_details(
                    [("traceback".to_owned(), tb.trim().to_owned())]
                        .into_iter()
                        .collect::<Value>(),
                )
            };
            error_to_lua(lua, e)
        })?,
    )?;
    r.raw_set(
        "invalid",
        lua.create_function(|lua, msg: String| error_to_lua(lua, Error::invalid(msg)))?,
    )?;
    r.raw_set(
        "nondeterminism",
        lua.create_function(|lua, msg: String| {
            error_to_lua(lua, Error::new(ErrorKind::Nondeterminism, msg))
        })?,
    )?;
    r.raw_set(
        "require",
        lua.create_function(|lua, name: mlua::Value| require(lua, name))?,
    )?;
    // The running process's environment (the default of the shared `load`
    // of lightweight processes).
    r.raw_set(
        "env",
        lua.create_function(|lua, ()| Ok(lua.app_data_ref::<ProcCtx>().map(|c| c.env.clone())))?,
    )?;
    let reseed = lua.globals().get::<Table>("math")?.get("randomseed")?;
    let prelude: Table = prelude_chunk(&lua)?.call(r)?;
    lua.set_app_data(Prelude {
        new_env: prelude.get("new_env")?,
        new_light_env: prelude.get("new_light_env")?,
        body: prelude.get("body")?,
        run_entry: prelude.get("run_entry")?,
        handler: prelude.get("handler")?,
        wrap_fn: prelude.get("wrap_fn")?,
        readonly: prelude.get("readonly")?,
        modules: HashMap::new(),
        methods: HashMap::new(),
        eval_runner: prelude.get("eval_runner")?,
        program_methods: prelude.get("program_methods")?,
        workflow_module: prelude.get("workflow_module")?,
        reseed,
    });
    lua.set_app_data(Mains::default());
    // Running the prelude left garbage that would otherwise stay in every
    // idle state until the collector's next cycle.
    pool::collect(&lua)?;
    Ok(lua)
}

/// The prelude, compiled once per OS process without debug info: with
/// line information its functions would take about half of every state's
/// memory (and its frames in a traceback are the engine's, not the
/// script's).
static PRELUDE: OnceLock<Vec<u8>> = OnceLock::new();

/// The prelude's chunk, loaded into `lua`.
fn prelude_chunk(lua: &Lua) -> mlua::Result<Function> {
    const NAME: &str = "=troupe.prelude";
    let code = match PRELUDE.get() {
        Some(code) => code,
        None => {
            let code = lua
                .load(include_str!("prelude.lua"))
                .set_name(NAME)
                .into_function()?
                .dump(true);
            PRELUDE.get_or_init(|| code)
        }
    };
    lua.load(code.as_slice())
        .set_name(NAME)
        .set_mode(ChunkMode::Binary)
        .into_function()
}
