//! What a script can reach of the host: `require` through the policy,
//! module objects whose command functions return Promises, host functions,
//! `print`/`console.log`. The [`Host`] lives in the boa `Context`'s data;
//! native functions capture only an index into its tables.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use boa_engine::builtins::promise::ResolvingFunctions;
use boa_engine::object::ObjectInitializer;
use boa_engine::object::builtins::JsPromise;
use boa_engine::property::Attribute;
use boa_engine::{
    Context, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction, js_string,
};
use troupe_dispatcher::{Call, Error, Pid, Value};
use troupe_modules::{
    CallError, Class, FnCx, FunctionDef, ModuleDef, ModuleRegistry, Policy, ResultHandler, Ret,
};

use super::Output;
use super::convert::{error_object, from_js, throw, to_js};
use crate::capability::{HostFunction, commands_need_a_process};

/// A command a script started: the dispatcher call, how its result is
/// handled, and the Promise to settle with it.
pub(crate) struct Pending {
    pub call: Call,
    pub handler: ResultHandler,
    pub resolvers: ResolvingFunctions,
}

/// The host side of one JS context.
pub(crate) struct Host {
    pub pid: Pid,
    pub parent: Option<Pid>,
    pub policy: RefCell<Arc<Policy>>,
    pub modules: RefCell<Arc<ModuleRegistry>>,
    /// Modules registered on an interpreter, beside the registry's.
    pub extra: RefCell<BTreeMap<String, Arc<ModuleDef>>>,
    /// Module objects `require` made, by name.
    loaded: RefCell<HashMap<String, JsObject>>,
    /// Module functions, by the index their native function captured.
    functions: Table<FunctionDef>,
    /// Host functions, by the index their native function captured.
    host_functions: Table<HostFunction>,
    /// Whether commands can run (a process), or fail UNAVAILABLE.
    process: bool,
    /// Commands started and not yet handed to the scheduler, in order.
    pub commands: RefCell<VecDeque<Pending>>,
    output: Output,
}

impl Host {
    pub(crate) fn new(
        pid: Pid,
        parent: Option<Pid>,
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
        process: bool,
        output: Output,
    ) -> Rc<Self> {
        Rc::new(Self {
            pid,
            parent,
            policy: RefCell::new(policy),
            modules: RefCell::new(modules),
            extra: RefCell::new(BTreeMap::new()),
            loaded: RefCell::new(HashMap::new()),
            functions: Table::default(),
            host_functions: Table::default(),
            process,
            commands: RefCell::new(VecDeque::new()),
            output,
        })
    }

    /// Module `name` if the policy allows it: NOT_FOUND / PERMISSION_DENIED.
    fn resolve(&self, name: &str) -> Result<Arc<ModuleDef>, Error> {
        let policy = self.policy.borrow();
        if let Some(def) = self.extra.borrow().get(name) {
            return if policy.allows(def) {
                Ok(Arc::clone(def))
            } else {
                Err(Error::permission_denied(format!(
                    "module {name:?} (classes: {}) is not allowed by the policy",
                    def.classes()
                )))
            };
        }
        self.modules.borrow().resolve(name, &policy).map(Arc::clone)
    }

    /// Forgets the module objects made so far (after a policy change).
    pub(crate) fn forget_loaded(&self) {
        self.loaded.borrow_mut().clear();
    }
}

/// Functions native functions reach by the index they captured (a
/// native function may capture only `Copy` data).
struct Table<T>(RefCell<Vec<T>>);

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self(RefCell::new(Vec::new()))
    }
}

impl<T: Clone> Table<T> {
    /// Adds `f`; its index.
    fn push(&self, f: T) -> usize {
        let mut fns = self.0.borrow_mut();
        fns.push(f);
        fns.len() - 1
    }

    /// Function `index`; an `INTERNAL` error naming `what` when there is
    /// none.
    fn get(&self, index: usize, what: &str, ctx: &mut Context) -> JsResult<T> {
        let f = self.0.borrow().get(index).cloned();
        f.ok_or_else(|| throw(&Error::internal(format!("unknown {what}")), ctx))
    }
}

/// The host of `ctx`.
pub(crate) fn host(ctx: &Context) -> JsResult<Rc<Host>> {
    ctx.get_data::<Rc<Host>>().cloned().ok_or_else(|| {
        JsNativeError::error()
            .with_message("troupe: no host owns this JS context")
            .into()
    })
}

/// The host's answers to boa: source that `eval` or `new Function` is
/// about to compile is held to the parser's bounds, as a script's is.
struct Hooks;

impl boa_engine::context::HostHooks for Hooks {
    fn ensure_can_compile_strings(
        &self,
        _realm: boa_engine::realm::Realm,
        parameters: &[JsString],
        body: &JsString,
        _direct: bool,
        ctx: &mut Context,
    ) -> JsResult<()> {
        let mut src: String = parameters
            .iter()
            .map(|p| p.to_std_string_escaped() + ",")
            .collect();
        src.push_str(&body.to_std_string_escaped());
        crate::nesting::check("js", "<eval>", &src, super::run::BOUNDS).map_err(|e| throw(&e, ctx))
    }
}

/// A context with the sandbox's globals: `require`, `print`,
/// `console.log`, and (unless the policy allows nondeterminism) no
/// `Math.random`, `Date`, `WeakRef` or `FinalizationRegistry`.
pub(crate) fn new_context(host: Rc<Host>) -> Result<Context, Error> {
    let mut ctx = Context::builder()
        .host_hooks(Rc::new(Hooks))
        .build()
        .map_err(|e| Error::internal(format!("JS context setup: {e}")))?;
    let nondeterministic = host
        .policy
        .borrow()
        .classes()
        .contains(Class::Nondeterministic);
    ctx.insert_data(host);
    let internal = |e: boa_engine::JsError| Error::internal(format!("JS context setup: {e}"));
    ctx.register_global_callable(
        js_string!("require"),
        1,
        NativeFunction::from_fn_ptr(require),
    )
    .map_err(internal)?;
    ctx.register_global_callable(js_string!("print"), 0, NativeFunction::from_fn_ptr(print))
        .map_err(internal)?;
    let console = ObjectInitializer::new(&mut ctx)
        .function(NativeFunction::from_fn_ptr(print), js_string!("log"), 0)
        .build();
    ctx.register_global_property(js_string!("console"), console, Attribute::all())
        .map_err(internal)?;
    if !nondeterministic {
        ctx.eval(boa_engine::Source::from_bytes(
            "delete Math.random; delete globalThis.Date; \
             delete globalThis.WeakRef; delete globalThis.FinalizationRegistry;",
        ))
        .map_err(internal)?;
    }
    Ok(ctx)
}

/// Sets global `name` to `value` (writable, configurable).
pub(crate) fn set_global(ctx: &mut Context, name: &str, value: &Value) -> Result<(), Error> {
    let v = to_js(value, ctx).map_err(|e| Error::invalid(e.to_string()))?;
    ctx.global_object()
        .set(JsString::from(name), v, true, ctx)
        .map(|_| ())
        .map_err(|e| Error::invalid(e.to_string()))
}

fn print(_this: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let mut parts = Vec::with_capacity(args.len());
    for a in args {
        parts.push(a.to_string(ctx)?.to_std_string_escaped());
    }
    (host(ctx)?.output)(&parts.join(" "));
    Ok(JsValue::undefined())
}

/// `require(name)`: the single place scripts meet the policy.
fn require(_this: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let host = host(ctx)?;
    let Some(name) = args.first().and_then(JsValue::as_string) else {
        return Err(throw(
            &Error::invalid("require: argument #1 expected string"),
            ctx,
        ));
    };
    let name = name.to_std_string_escaped();
    if let Some(obj) = host.loaded.borrow().get(&name) {
        return Ok(obj.clone().into());
    }
    let def = host.resolve(&name).map_err(|e| throw(&e, ctx))?;
    let mut init = ObjectInitializer::new(ctx);
    for f in def.functions() {
        let index = host.functions.push(f.clone());
        let native = NativeFunction::from_copy_closure_with_captures(call_module_fn, index);
        init.function(native.clone(), JsString::from(f.name()), 0);
        // `process.self()` as the issue writes it, beside `process.pid()`.
        if def.name() == "process" && f.name() == "pid" {
            init.function(native, js_string!("self"), 0);
        }
    }
    let obj = init.build();
    for (k, v) in def.constants() {
        let v = to_js(v, ctx)?;
        obj.set(JsString::from(k.as_str()), v, true, ctx)?;
    }
    obj.set_integrity_level(boa_engine::object::IntegrityLevel::Frozen, ctx)?;
    host.loaded.borrow_mut().insert(name, obj.clone());
    Ok(obj.into())
}

fn call_module_fn(
    _this: &JsValue,
    args: &[JsValue],
    index: &usize,
    ctx: &mut Context,
) -> JsResult<JsValue> {
    let host = host(ctx)?;
    let def = host.functions.get(*index, "module function", ctx)?;
    let values = values_of(args, def.qualified(), ctx)?;
    let result = {
        let policy = host.policy.borrow();
        let cx = FnCx {
            pid: host.pid,
            parent: host.parent,
            policy: &policy,
        };
        def.call(&cx, values)
    };
    let (call, handler) = match result {
        Ok(Ret::Call(call)) => (call, ResultHandler::default()),
        Ok(Ret::Yield(y)) => y.into_parts(),
        other => return settle_sync(other, ctx),
    };
    if !host.process {
        return Err(throw(&commands_need_a_process(), ctx));
    }
    let (promise, resolvers) = JsPromise::new_pending(ctx);
    host.commands.borrow_mut().push_back(Pending {
        call,
        handler,
        resolvers,
    });
    Ok(promise.into())
}

/// The arguments of a call to `function` as values; one without a neutral
/// form throws `INVALID` naming it.
fn values_of(args: &[JsValue], function: &str, ctx: &mut Context) -> JsResult<Vec<Value>> {
    let mut values = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        match from_js(a, ctx) {
            Ok(v) => values.push(v),
            Err(e) => {
                let msg = format!("{function}: argument #{}: {}", i + 1, e.message());
                return Err(throw(&Error::invalid(msg), ctx));
            }
        }
    }
    Ok(values)
}

/// A module function's immediate result: a value, or a thrown error.
fn settle_sync(result: Result<Ret, CallError>, ctx: &mut Context) -> JsResult<JsValue> {
    match result {
        Ok(Ret::Value(v)) => to_js(&v, ctx),
        Ok(Ret::Values(vs)) => to_js(&Value::Array(vs), ctx),
        Ok(Ret::Error(e)) => Ok(error_object(&e, ctx)),
        Ok(Ret::Object(_)) => Err(throw(
            &Error::new(
                troupe_dispatcher::ErrorKind::Unavailable,
                "userdata objects are not supported by the js engine",
            ),
            ctx,
        )),
        Ok(Ret::Call(_) | Ret::Yield(_)) => Err(throw(
            &Error::internal("a command's result handling returned another command"),
            ctx,
        )),
        Err(CallError::Fail(e) | CallError::Raise(e)) => Err(throw(&e, ctx)),
    }
}

/// Settles a command's Promise with the dispatcher's `result`.
pub(crate) fn settle(pending: Pending, result: Result<Value, Error>, ctx: &mut Context) {
    let Pending {
        handler, resolvers, ..
    } = pending;
    match settle_sync(handler.finish(result), ctx) {
        Ok(v) => {
            let _ = resolvers.resolve.call(&JsValue::undefined(), &[v], ctx);
        }
        Err(e) => {
            let reason = e.into_opaque(ctx).unwrap_or_default();
            let _ = resolvers.reject.call(&JsValue::undefined(), &[reason], ctx);
        }
    }
}

/// Makes `f` the global function `name`.
pub(crate) fn register_host_function(
    ctx: &mut Context,
    name: &str,
    f: HostFunction,
) -> Result<(), Error> {
    let host = host(ctx).map_err(|e| Error::internal(e.to_string()))?;
    let index = host.host_functions.push(f);
    let native = NativeFunction::from_copy_closure_with_captures(call_host_fn, index);
    ctx.register_global_builtin_callable(JsString::from(name), 0, native)
        .map_err(|e| Error::invalid(e.to_string()))
}

fn call_host_fn(
    _this: &JsValue,
    args: &[JsValue],
    index: &usize,
    ctx: &mut Context,
) -> JsResult<JsValue> {
    let f = host(ctx)?
        .host_functions
        .get(*index, "host function", ctx)?;
    match f(values_of(args, "host function", ctx)?) {
        Ok(v) => to_js(&v, ctx),
        Err(e) => Err(throw(&e, ctx)),
    }
}
