//! Preparing Lua states: the sandboxed base every process environment is
//! built from, the per-state module cache, and the per-process context that
//! Rust callbacks (module functions, `require`, the instruction hook) read.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;
use std::time::Instant;

use mlua::{Function, LightUserData, Lua, LuaOptions, MultiValue, StdLib, Table};
use troupe_dispatcher::{Call, Error, ErrorKind, Pid, Value};
use troupe_modules::{CallError, FnCx, FunctionDef, ModuleDef, ModuleRegistry, Policy, Ret};

use super::convert::{error_to_lua, to_lua, to_value};
use super::error;

static SENT_TAG: u8 = 0;
static OK_TAG: u8 = 0;

/// The sentinel a command function yields (the command itself waits in
/// [`ProcCtx::pending`]).
fn sent() -> LightUserData {
    LightUserData(&raw const SENT_TAG as *mut c_void)
}

fn ok_tag() -> LightUserData {
    LightUserData(&raw const OK_TAG as *mut c_void)
}

/// Whether `v` is the command sentinel.
pub(crate) fn is_sent(v: &mlua::Value) -> bool {
    matches!(v, mlua::Value::LightUserData(l) if *l == sent())
}

/// What the prelude gave us, kept per state.
pub(crate) struct Prelude {
    pub new_env: Function,
    pub body: Function,
    wrap_fn: Function,
    readonly: Function,
    modules: HashMap<String, Table>,
}

/// Per-process context, stored in the state's app data while the process
/// owns the state.
pub(crate) struct ProcCtx {
    pub pid: Pid,
    pub parent: Option<Pid>,
    pub policy: Arc<Policy>,
    pub modules: Arc<ModuleRegistry>,
    pub loaded: Table,
    /// The command a module function stored before yielding the sentinel.
    pub pending: Option<Call>,
    /// The instruction hook asked for a yield that has not reached the
    /// scheduler yet.
    pub preempting: bool,
    pub instructions: u64,
    pub max_instructions: Option<u64>,
    pub slice: u64,
    pub deadline: Option<Instant>,
    pub timeout_ms: u128,
    /// Set when a limit is exceeded: the next yield fails the process.
    pub terminate: Option<Error>,
}

/// Raises `e` to the script (through the prelude's `finish`).
fn raise(lua: &Lua, e: Error) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![error_to_lua(lua, e)?]))
}

fn ok_values(lua: &Lua, values: &[Value]) -> mlua::Result<MultiValue> {
    let mut out = Vec::with_capacity(values.len() + 1);
    out.push(mlua::Value::LightUserData(ok_tag()));
    for v in values {
        out.push(to_lua(lua, v)?);
    }
    Ok(MultiValue::from_vec(out))
}

fn no_ctx() -> mlua::Error {
    mlua::Error::runtime("troupe: no process owns this Lua state")
}

/// Calls a module function with the current process's context.
fn call_function(lua: &Lua, def: &FunctionDef, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut values = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        match to_value(a) {
            Ok(v) => values.push(v),
            Err(e) => {
                let msg = format!("{}: argument #{}: {}", def.qualified(), i + 1, e.message());
                return raise(lua, Error::invalid(msg));
            }
        }
    }
    let result = {
        let ctx = lua.app_data_ref::<ProcCtx>().ok_or_else(no_ctx)?;
        let cx = FnCx {
            pid: ctx.pid,
            parent: ctx.parent,
            policy: &ctx.policy,
        };
        def.call(&cx, values)
    };
    match result {
        Ok(Ret::Value(v)) => ok_values(lua, std::slice::from_ref(&v)),
        Ok(Ret::Values(vs)) => ok_values(lua, &vs),
        Ok(Ret::Error(e)) => Ok(MultiValue::from_vec(vec![
            mlua::Value::LightUserData(ok_tag()),
            error_to_lua(lua, e)?,
        ])),
        Ok(Ret::Call(call)) => {
            lua.app_data_mut::<ProcCtx>().ok_or_else(no_ctx)?.pending = Some(call);
            Ok(MultiValue::from_vec(vec![mlua::Value::LightUserData(
                sent(),
            )]))
        }
        Err(CallError::Fail(e)) => Ok(MultiValue::from_vec(vec![
            mlua::Value::LightUserData(ok_tag()),
            mlua::Value::Nil,
            error_to_lua(lua, e)?,
        ])),
        Err(CallError::Raise(e)) => raise(lua, e),
    }
}

/// The read-only metatable of module `def` in this state, built on first use.
fn module_metatable(lua: &Lua, def: &ModuleDef) -> mlua::Result<Table> {
    if let Some(mt) = lua
        .app_data_ref::<Prelude>()
        .and_then(|p| p.modules.get(def.name()).cloned())
    {
        return Ok(mt);
    }
    let (wrap_fn, readonly) = {
        let p = lua.app_data_ref::<Prelude>().ok_or_else(no_ctx)?;
        (p.wrap_fn.clone(), p.readonly.clone())
    };
    let inner = lua.create_table()?;
    for f in def.functions() {
        let f2 = f.clone();
        let raw =
            lua.create_function(move |lua, args: MultiValue| call_function(lua, &f2, args))?;
        inner.raw_set(f.name(), wrap_fn.call::<Function>(raw)?)?;
    }
    for (name, v) in def.constants() {
        inner.raw_set(name.as_str(), to_lua(lua, v)?)?;
    }
    let mt: Table = readonly.call((def.name(), inner))?;
    if let Some(mut p) = lua.app_data_mut::<Prelude>() {
        p.modules.insert(def.name().to_owned(), mt.clone());
    }
    Ok(mt)
}

/// `require(name)`: the single place scripts meet the policy.
fn require(lua: &Lua, name: mlua::Value) -> mlua::Result<MultiValue> {
    let Some(name) = name
        .as_string()
        .and_then(|s| s.to_str().ok().map(|s| s.to_owned()))
    else {
        return raise(lua, Error::invalid("require: argument #1 expected string"));
    };
    let (loaded, resolved) = {
        let ctx = lua.app_data_ref::<ProcCtx>().ok_or_else(no_ctx)?;
        (
            ctx.loaded.clone(),
            ctx.modules.resolve(&name, &ctx.policy).map(Arc::clone),
        )
    };
    let cached: mlua::Value = loaded.raw_get(name.as_str())?;
    if !cached.is_nil() {
        return Ok(MultiValue::from_vec(vec![
            mlua::Value::LightUserData(ok_tag()),
            cached,
        ]));
    }
    let def = match resolved {
        Ok(d) => d,
        Err(e) => return raise(lua, e),
    };
    let proxy = lua.create_table()?;
    proxy.set_metatable(Some(module_metatable(lua, &def)?))?;
    loaded.raw_set(name.as_str(), &proxy)?;
    Ok(MultiValue::from_vec(vec![
        mlua::Value::LightUserData(ok_tag()),
        mlua::Value::Table(proxy),
    ]))
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
    r.raw_set(
        "preempting",
        lua.create_function(|lua, ()| {
            Ok(lua.app_data_ref::<ProcCtx>().is_some_and(|c| c.preempting))
        })?,
    )?;
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
        "require",
        lua.create_function(|lua, name: mlua::Value| require(lua, name))?,
    )?;
    let prelude: Table = lua
        .load(include_str!("prelude.lua"))
        .set_name("=troupe.prelude")
        .call(r)?;
    lua.set_app_data(Prelude {
        new_env: prelude.get("new_env")?,
        body: prelude.get("body")?,
        wrap_fn: prelude.get("wrap_fn")?,
        readonly: prelude.get("readonly")?,
        modules: HashMap::new(),
    });
    Ok(lua)
}
