//! One sandboxed RustPython interpreter on the current thread: its host
//! context (a thread-local [`Host`]), the import hook, the trace hook that
//! counts and preempts, module and host function calls, and conversions
//! between Python objects and [`Value`]s.
//!
//! Every interpreter lives on a thread of its own (RustPython's
//! interpreter is `!Send`), so the host context is a thread-local and the
//! native functions scripts call are plain functions that find it there.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use rustpython_vm::builtins::{
    PyBaseExceptionRef, PyByteArray, PyBytes, PyCode, PyDict, PyFloat, PyInt, PyList, PyStr,
    PyStrRef, PyTuple, PyTupleRef, PyTypeRef,
};
use rustpython_vm::compiler::{self, CodeObject, CompileOpts, Mode};
use rustpython_vm::function::FuncArgs;
use rustpython_vm::scope::Scope;
use rustpython_vm::{AsObject, Interpreter, PyObjectRef, PyRef, PyResult, VirtualMachine};
use troupe_dispatcher::{Call, Error, ErrorKind, Pid, Value};
use troupe_modules::{CallError, FnCx, ModuleRegistry, Policy, Ret};
use troupe_runtime::{Limits, Resume};

use crate::HostFunction;
use crate::alloc;
use crate::cancel::CancelSlot;
use crate::nesting;

/// Where `print` writes lines.
pub(crate) type Output = Arc<dyn Fn(&str) + Send + Sync>;

/// Nesting deeper than this is refused when converting values.
const MAX_DEPTH: usize = 100;

/// Python defined in every interpreter before scripts run: the error types
/// and the factory of module function wrappers.
const PRELUDE: &str = r#"
class TroupeError(Exception):
    def __init__(self, kind, message="", retryable=False, details=None):
        super().__init__(kind + ": " + message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.details = details

class TroupeImportError(TroupeError, ImportError):
    pass

def _guard(f, check):
    def guarded(source, *args, **kwargs):
        if isinstance(source, str):
            check(source)
        return f(source, *args, **kwargs)
    guarded.__name__ = f.__name__
    return guarded

def _wrap(call, module, name):
    def f(*args):
        return call(module, name, args)
    f.__name__ = name
    f.__qualname__ = module + "." + name
    return f
"#;

/// Builtins scripts do not get: host input and files, the debugger, the
/// interactive helpers.
const REMOVED_BUILTINS: &[&str] = &["open", "input", "breakpoint", "help", "exit", "quit"];

/// Frame attributes that would let a script switch its own tracing (and so
/// the instruction count and preemption) off.
const HIDDEN_FRAME_ATTRS: &[&str] = &["f_trace", "f_trace_lines", "f_trace_opcodes"];

/// What a process's interpreter thread tells the scheduler worker.
#[derive(Debug)]
pub(crate) enum Event {
    /// Waits for the command's result.
    Yield(Call),
    /// The slice ended; waits for [`Resume::Continue`].
    Preempted,
    /// The script finished with this result.
    Done(Value),
    /// The script failed.
    Failed(Error),
}

/// The channels between an interpreter thread and its process handle.
pub(crate) struct Link {
    pub events: Sender<Event>,
    pub resumes: Receiver<Resume>,
}

/// The unwinding payload that ends a script: a limit was hit or the process
/// handle went away. Python code cannot catch it.
struct Terminated;

/// Trace events (lines, calls) between two checks of the cancellation
/// handle: a few hundred microseconds of Python.
const CANCEL_CHECK_EVENTS: u64 = 1024;

/// The host side of the interpreter on this thread.
pub(crate) struct Host {
    pub pid: Pid,
    pub parent: Option<Pid>,
    pub policy: Arc<Policy>,
    pub modules: Arc<ModuleRegistry>,
    /// Present for a process: commands go to the scheduler through it.
    pub link: Option<Link>,
    /// Host functions registered on an embedded interpreter.
    pub functions: HashMap<String, HostFunction>,
    pub output: Output,
    pub limits: Limits,
    /// Trace events (lines and calls) counted so far in this execution.
    pub used: u64,
    /// The count at which the current slice ends.
    pub slice_end: u64,
    /// This thread's live bytes when the run started (see [`alloc`]).
    pub memory_base: isize,
    pub deadline: Option<Instant>,
    /// The embedded interpreter's cancellation handle, checked every
    /// [`CANCEL_CHECK_EVENTS`] trace events.
    pub cancel: CancelSlot,
    /// Why the script was terminated, once it was.
    pub terminate: Option<Error>,
    /// Objects made by the prelude and the setup, per interpreter.
    pub objs: Option<Objs>,
    /// Modules imported so far (by name).
    pub loaded: HashMap<String, PyObjectRef>,
}

/// Python objects the host keeps for one interpreter.
#[derive(Clone)]
pub(crate) struct Objs {
    error: PyTypeRef,
    import_error: PyTypeRef,
    wrap: PyObjectRef,
    call: PyObjectRef,
    host: PyObjectRef,
    trace: PyObjectRef,
}

impl Host {
    /// A host context with a deny-all policy and no modules.
    pub(crate) fn new(output: Output) -> Self {
        Self {
            pid: Pid::new(0, 0),
            parent: None,
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::new()),
            link: None,
            functions: HashMap::new(),
            output,
            limits: Limits::default(),
            used: 0,
            slice_end: 0,
            memory_base: 0,
            deadline: None,
            cancel: CancelSlot::default(),
            terminate: None,
            objs: None,
            loaded: HashMap::new(),
        }
    }

    /// Starts the budget of one execution (or one process).
    pub(crate) fn start_budget(&mut self) {
        self.used = 0;
        self.slice_end = self.limits.slice_instructions.get();
        self.memory_base = alloc::held();
        self.deadline = self.limits.deadline(Instant::now());
        self.terminate = None;
    }
}

thread_local! {
    static HOST: RefCell<Option<Host>> = const { RefCell::new(None) };
}

/// Installs the host context of this thread.
pub(crate) fn install(host: Host) {
    HOST.with(|h| *h.borrow_mut() = Some(host));
}

/// Drops this thread's host context (and the Python objects it keeps)
/// while the thread's other thread-locals, RustPython's among them, live.
pub(crate) fn uninstall() {
    let host = HOST.with(|h| h.borrow_mut().take());
    drop(host);
}

/// Runs `f` on this thread's host context.
pub(crate) fn with_host<R>(f: impl FnOnce(&mut Host) -> R) -> Option<R> {
    HOST.with(|h| h.borrow_mut().as_mut().map(f))
}

/// Ends the script: nothing in Python can catch this.
fn terminate(error: Error) -> ! {
    with_host(|h| {
        if h.terminate.is_none() {
            h.terminate = Some(error);
        }
    });
    panic::resume_unwind(Box::new(Terminated))
}

/// Runs `f`, turning a termination (limit, vanished handle) into its error
/// and a panic inside RustPython into `INTERNAL`. After an `Err` the
/// interpreter must be dropped: its frames unwound without Python's
/// bookkeeping.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) if payload.is::<Terminated>() => Err(with_host(|h| h.terminate.take())
            .flatten()
            .unwrap_or_else(|| Error::new(ErrorKind::Canceled, "the process ended"))),
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(Error::internal(format!(
                "the Python interpreter failed: {text}"
            )))
        }
    }
}

/// What a script's source may make the compiler recurse over: it
/// recurses along an operator chain (`1+1+…` of 30,000 terms overflows
/// an interpreter thread's 16 MiB stack).
const BOUNDS: nesting::Bounds = nesting::Bounds {
    nesting: nesting::MAX_NESTING,
    chain: Some(5_000),
};

/// Compiles `code` as module `key`; a syntax error is `INVALID`, a source
/// past [`BOUNDS`] `LIMIT_EXCEEDED`.
pub(crate) fn compile(key: &str, code: &str, mode: Mode) -> Result<CodeObject, Error> {
    nesting::check("python", key, code, BOUNDS)?;
    compiler::compile(code, mode, key, CompileOpts::default()).map_err(|e| {
        Error::invalid(format!("syntax error: {key}: {e}")).with_details(Value::from(key))
    })
}

/// A new sandboxed interpreter and its global scope. The host context must
/// be installed.
pub(crate) fn new_interpreter() -> Result<(Interpreter, Scope), Error> {
    let interp = Interpreter::without_stdlib(Default::default());
    let scope = interp.enter(|vm| setup(vm).map_err(|e| describe(vm, &e, "setup")))?;
    Ok((interp, scope))
}

fn setup(vm: &VirtualMachine) -> PyResult<Scope> {
    let frame_type = vm.ctx.types.frame_type;
    for attr in HIDDEN_FRAME_ATTRS {
        frame_type
            .attributes
            .write()
            .shift_remove(&vm.ctx.intern_str(*attr));
    }
    let builtins = vm.builtins.as_object();
    for name in REMOVED_BUILTINS {
        if builtins.get_attr(*name, vm).is_ok() {
            builtins.del_attr(*name, vm)?;
        }
    }
    builtins.set_attr("__import__", vm.new_function("__import__", import_hook), vm)?;
    builtins.set_attr("print", vm.new_function("print", print), vm)?;

    let prelude = vm.new_scope_with_builtins();
    let code = compile("<troupe>", PRELUDE, Mode::Exec)
        .map_err(|e| vm.new_runtime_error(e.to_string()))?;
    vm.run_code_obj(vm.ctx.new_code(code), prelude.clone())?;
    let get = |name: &str| prelude.globals.get_item(name, vm);
    let error: PyTypeRef = get("TroupeError")?
        .downcast()
        .map_err(|_| vm.new_runtime_error("TroupeError is not a type".to_owned()))?;
    let import_error: PyTypeRef = get("TroupeImportError")?
        .downcast()
        .map_err(|_| vm.new_runtime_error("TroupeImportError is not a type".to_owned()))?;
    builtins.set_attr("TroupeError", error.clone(), vm)?;
    // Source compiled at run time is held to the bounds a script's is.
    let check: PyObjectRef = vm.new_function("check_source", check_source).into();
    for name in ["eval", "exec", "compile"] {
        if let Ok(f) = builtins.get_attr(name, vm) {
            let guarded = get("_guard")?.call((f, check.clone()), vm)?;
            builtins.set_attr(name, guarded, vm)?;
        }
    }
    let trace: PyObjectRef = vm.new_function("trace", trace).into();
    let objs = Objs {
        error,
        import_error,
        wrap: get("_wrap")?,
        call: vm.new_function("call", module_call).into(),
        host: vm.new_function("host", host_call).into(),
        trace: trace.clone(),
    };
    with_host(|h| h.objs = Some(objs));
    vm.trace_func.replace(trace);
    vm.use_tracing.set(true);
    Ok(vm.new_scope_with_builtins())
}

fn objs() -> Option<Objs> {
    with_host(|h| h.objs.clone()).flatten()
}

/// `print(*args)`: the `str` of each argument, space-separated, one line.
/// `LIMIT_EXCEEDED` (raised) for source `eval`, `exec` or `compile` is
/// handed that goes past [`BOUNDS`].
fn check_source(source: PyStrRef, vm: &VirtualMachine) -> PyResult<()> {
    nesting::check("python", "<eval>", &source.to_string_lossy(), BOUNDS)
        .map_err(|e| raise(vm, e, false))
}

fn print(args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
    let mut parts = Vec::with_capacity(args.args.len());
    for a in &args.args {
        parts.push(a.str(vm)?.to_string());
    }
    let line = parts.join(" ");
    if let Some(out) = with_host(|h| h.output.clone()) {
        out(&line);
    }
    Ok(())
}

/// The trace hook: counts lines and calls, ends the slice (a process
/// waits for the scheduler to resume it) and enforces the limits.
fn trace(_args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    enum Next {
        Go,
        Preempt,
        Stop(Error),
    }
    let next = with_host(|h| {
        h.used += 1;
        if let Some(max) = h.limits.max_instructions
            && h.used > max.get()
        {
            return Next::Stop(Error::new(
                ErrorKind::LimitExceeded,
                format!("instruction limit of {max} exceeded"),
            ));
        }
        if let Some(max) = h.limits.max_memory {
            if !alloc::active() {
                return Next::Stop(Error::new(
                    ErrorKind::Unavailable,
                    "max_memory for Python needs troupe_engines::python::CountingAllocator \
                     as the program's global allocator",
                ));
            }
            if alloc::held().saturating_sub(h.memory_base)
                > isize::try_from(max.get()).unwrap_or(isize::MAX)
            {
                return Next::Stop(Error::new(
                    ErrorKind::LimitExceeded,
                    format!("memory limit of {max} bytes exceeded"),
                ));
            }
        }
        if h.used % CANCEL_CHECK_EVENTS == 0
            && let Err(e) = h.cancel.check()
        {
            return Next::Stop(e);
        }
        if h.used < h.slice_end {
            return Next::Go;
        }
        h.slice_end = h.used + h.limits.slice_instructions.get();
        if let Some(d) = h.deadline
            && Instant::now() >= d
        {
            let ms = h.limits.timeout.map_or(0, |t| t.as_millis());
            return Next::Stop(Error::new(
                ErrorKind::Timeout,
                format!("wall-clock limit of {ms} ms exceeded"),
            ));
        }
        if h.link.is_some() {
            Next::Preempt
        } else {
            Next::Go
        }
    })
    .unwrap_or(Next::Go);
    match next {
        Next::Go => {}
        Next::Stop(e) => terminate(e),
        Next::Preempt => match wait(Event::Preempted) {
            Resume::Continue => {}
            other => terminate(Error::internal(format!(
                "unexpected resume of a preempted script: {other:?}"
            ))),
        },
    }
    Ok(objs().map_or_else(|| vm.ctx.none(), |o| o.trace))
}

/// Hands `event` to the scheduler worker and blocks this (interpreter)
/// thread until the worker resumes the process. A vanished process handle
/// ends the script.
fn wait(event: Event) -> Resume {
    let sent = with_host(|h| {
        let link = h.link.as_ref()?;
        link.events.send(event).ok()?;
        Some(())
    })
    .flatten();
    if sent.is_none() {
        terminate(Error::new(ErrorKind::Canceled, "the process ended"));
    }
    // Take the receiver out while blocking so the host stays usable.
    let resumes = with_host(|h| h.link.take()).flatten();
    let Some(link) = resumes else {
        terminate(Error::new(ErrorKind::Canceled, "the process ended"))
    };
    let got = link.resumes.recv();
    with_host(|h| h.link = Some(link));
    match got {
        Ok(r) => r,
        Err(_) => terminate(Error::new(ErrorKind::Canceled, "the process ended")),
    }
}

/// `__import__(name, globals, locals, fromlist, level)`: Troupe modules the
/// policy allows, nothing else.
fn import_hook(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let name: PyStrRef = args
        .args
        .first()
        .cloned()
        .ok_or_else(|| vm.new_type_error("__import__ needs a module name".to_owned()))?
        .downcast()
        .map_err(|_| vm.new_type_error("module name must be a str".to_owned()))?;
    let name = name.to_string();
    let level = match args.args.get(4) {
        Some(l) => l.clone().try_into_value::<i64>(vm)?,
        None => 0,
    };
    if level != 0 {
        return Err(raise(
            vm,
            Error::not_found(format!(
                "relative import of {name:?}: scripts have no packages"
            )),
            true,
        ));
    }
    if let Some(m) = with_host(|h| h.loaded.get(&name).cloned()).flatten() {
        return Ok(m);
    }
    let found = with_host(|h| h.modules.resolve(&name, &h.policy).map(Arc::clone))
        .ok_or_else(|| vm.new_runtime_error("no host context".to_owned()))?;
    let def = found.map_err(|e| raise(vm, e, true))?;
    let objs = objs().ok_or_else(|| vm.new_runtime_error("no host context".to_owned()))?;
    let dict = vm.ctx.new_dict();
    for f in def.functions() {
        let w = objs.wrap.call(
            (
                objs.call.clone(),
                vm.ctx.new_str(def.name()),
                vm.ctx.new_str(f.name()),
            ),
            vm,
        )?;
        dict.set_item(f.name(), w, vm)?;
    }
    for (k, v) in def.constants() {
        dict.set_item(k.as_str(), to_py(vm, v), vm)?;
    }
    let module: PyObjectRef = vm.new_module(def.name(), dict, None).into();
    with_host(|h| h.loaded.insert(name, module.clone()));
    Ok(module)
}

/// What module function wrappers call: `call(module, function, args)`.
/// The policy is checked again, so calling it directly gains nothing.
fn module_call(
    module: PyStrRef,
    name: PyStrRef,
    args: PyTupleRef,
    vm: &VirtualMachine,
) -> PyResult {
    let ctx = with_host(|h| {
        h.modules
            .resolve(module.as_ref(), &h.policy)
            .map(|d| (Arc::clone(d), Arc::clone(&h.policy), h.pid, h.parent))
    })
    .ok_or_else(|| vm.new_runtime_error("no host context".to_owned()))?;
    let (def, policy, pid, parent) = ctx.map_err(|e| raise(vm, e, false))?;
    let f = def
        .functions()
        .iter()
        .find(|f| f.name() == name.to_string())
        .ok_or_else(|| {
            raise(
                vm,
                Error::not_found(format!("{module}.{name} does not exist")),
                false,
            )
        })?;
    let values = arg_values(vm, &args)?;
    let cx = FnCx {
        pid,
        parent,
        policy: &policy,
    };
    let mut result = f.call(&cx, values);
    let mut yielded = false;
    loop {
        let (call, handler) = match result {
            Ok(Ret::Call(call)) => (call, Default::default()),
            Ok(Ret::Yield(y)) => y.into_parts(),
            other => return ret_to_py(vm, other),
        };
        if yielded {
            return Err(raise(
                vm,
                Error::internal("a command's result handling returned another command"),
                false,
            ));
        }
        if with_host(|h| h.link.is_none()).unwrap_or(true) {
            return Err(raise(
                vm,
                Error::new(
                    ErrorKind::Unavailable,
                    "commands need a process (spawn the script)",
                ),
                false,
            ));
        }
        let reply = match wait(Event::Yield(call)) {
            Resume::Return(r) => r,
            other => terminate(Error::internal(format!(
                "unexpected resume of a waiting script: {other:?}"
            ))),
        };
        yielded = true;
        result = handler.finish(reply);
    }
}

/// The arguments of a call as values (a `TroupeError` if one cannot be).
fn arg_values(vm: &VirtualMachine, args: &PyTupleRef) -> Result<Vec<Value>, PyBaseExceptionRef> {
    args.as_slice()
        .iter()
        .map(|a| to_value(vm, a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| raise(vm, e, false))
}

fn ret_to_py(vm: &VirtualMachine, ret: Result<Ret, CallError>) -> PyResult {
    match ret {
        Ok(Ret::Value(v)) => Ok(to_py(vm, &v)),
        Ok(Ret::Values(vs)) => Ok(vm
            .ctx
            .new_tuple(vs.iter().map(|v| to_py(vm, v)).collect())
            .into()),
        Ok(Ret::Error(e)) => Ok(error_object(vm, e, false).into()),
        Ok(Ret::Object(_)) => Err(raise(
            vm,
            Error::new(
                ErrorKind::Unavailable,
                "module objects (userdata) are not supported by the Python engine",
            ),
            false,
        )),
        Ok(Ret::Call(_) | Ret::Yield(_)) => Err(raise(
            vm,
            Error::internal("a command where a value was expected"),
            false,
        )),
        Err(CallError::Fail(e) | CallError::Raise(e)) => Err(raise(vm, e, false)),
    }
}

/// What host function wrappers call: `host(_, name, args)` runs a function
/// registered on an embedded interpreter.
fn host_call(_: PyStrRef, name: PyStrRef, args: PyTupleRef, vm: &VirtualMachine) -> PyResult {
    let f = with_host(|h| h.functions.get(&name.to_string()).cloned())
        .flatten()
        .ok_or_else(|| {
            raise(
                vm,
                Error::not_found(format!("no host function {:?}", name.to_string())),
                false,
            )
        })?;
    let values = arg_values(vm, &args)?;
    match f(values) {
        Ok(v) => Ok(to_py(vm, &v)),
        Err(e) => Err(raise(vm, e, false)),
    }
}

/// A Python function that calls the registered host function `name`.
pub(crate) fn host_function(vm: &VirtualMachine, name: &str) -> PyResult {
    let objs = objs().ok_or_else(|| vm.new_runtime_error("no host context".to_owned()))?;
    objs.wrap.call(
        (
            objs.host.clone(),
            vm.ctx.new_str("host"),
            vm.ctx.new_str(name),
        ),
        vm,
    )
}

/// A `TroupeError` (or, for imports, `TroupeImportError`) carrying `e`.
fn error_object(vm: &VirtualMachine, e: Error, import: bool) -> PyBaseExceptionRef {
    let Some(objs) = objs() else {
        return vm.new_runtime_error(e.to_string());
    };
    let class = if import {
        objs.import_error
    } else {
        objs.error
    };
    let args = vec![
        vm.ctx.new_str(e.kind().as_str()).into(),
        vm.ctx.new_str(e.message()).into(),
        vm.ctx.new_bool(e.is_retryable()).into(),
        e.details().map_or_else(|| vm.ctx.none(), |d| to_py(vm, d)),
    ];
    match class.as_object().call(args, vm) {
        Ok(obj) => obj
            .downcast()
            .unwrap_or_else(|_| vm.new_runtime_error(e.to_string())),
        Err(exc) => exc,
    }
}

/// `e` as a Python exception to raise.
fn raise(vm: &VirtualMachine, e: Error, import: bool) -> PyBaseExceptionRef {
    error_object(vm, e, import)
}

/// A Python exception as a Troupe error: a `TroupeError` keeps its kind,
/// anything else is `INTERNAL`; the message names the script and line
/// (`key:line: Type: message`) and the details carry `{file, line}`.
pub(crate) fn describe(vm: &VirtualMachine, exc: &PyBaseExceptionRef, fallback: &str) -> Error {
    let obj = exc.as_object();
    let troupe = objs().is_some_and(|o| obj.fast_isinstance(&o.error));
    let (kind, message) = if troupe {
        let kind = obj
            .get_attr("kind", vm)
            .ok()
            .and_then(|k| k.downcast::<PyStr>().ok())
            .and_then(|k| ErrorKind::parse(k.as_ref()))
            .unwrap_or(ErrorKind::Unknown);
        let message = obj
            .get_attr("message", vm)
            .ok()
            .and_then(|m| m.str(vm).ok())
            .map(|m| m.to_string())
            .unwrap_or_default();
        (kind, message)
    } else {
        let text = obj.str(vm).map(|s| s.to_string()).unwrap_or_default();
        let class = exc.class().name().to_string();
        let message = if text.is_empty() {
            class
        } else {
            format!("{class}: {text}")
        };
        (ErrorKind::Internal, message)
    };
    let mut location = None;
    let mut tb = exc.__traceback__();
    while let Some(t) = tb {
        location = Some((
            t.frame.code.source_path().as_str().to_owned(),
            t.lineno.get(),
        ));
        tb = t.next.lock().clone();
    }
    match location {
        Some((file, line)) => {
            Error::new(kind, format!("{file}:{line}: {message}")).with_details(Value::from_iter([
                ("file".to_owned(), Value::from(file)),
                ("line".to_owned(), Value::Int(line as i64)),
            ]))
        }
        None if message.is_empty() => Error::new(kind, fallback.to_owned()),
        None => Error::new(kind, message),
    }
}

/// Runs `code` in `scope` and returns the script's result: the return value
/// of `entry(*args)` when `entry` names a function (`main` by default, if
/// the script defines one), else the global `result`.
pub(crate) fn run_main(
    vm: &VirtualMachine,
    code: PyRef<PyCode>,
    scope: &Scope,
    entry: Option<&str>,
    args: &[Value],
) -> Result<Value, Error> {
    let list: Vec<PyObjectRef> = args.iter().map(|a| to_py(vm, a)).collect();
    let step = || -> PyResult {
        scope
            .globals
            .set_item("args", vm.ctx.new_list(list.clone()).into(), vm)?;
        vm.run_code_obj(code, scope.clone())?;
        let name = entry.unwrap_or("main");
        match scope.globals.get_item_opt(name, vm)? {
            Some(f) if f.is_callable() => f.call(list.clone(), vm),
            Some(_) | None if entry.is_some() => Err(raise(
                vm,
                Error::not_found(format!("the script defines no function {name:?}")),
                false,
            )),
            _ => Ok(scope
                .globals
                .get_item_opt("result", vm)?
                .unwrap_or_else(|| vm.ctx.none())),
        }
    };
    let obj = step().map_err(|e| describe(vm, &e, "script failed"))?;
    to_value(vm, &obj).map_err(|e| Error::invalid(format!("script result: {}", e.message())))
}

/// Runs `code` (an expression or statements) in `scope`: the expression's
/// value, or the global `result` after statements.
pub(crate) fn run_embedded(
    vm: &VirtualMachine,
    key: &str,
    source: &str,
    scope: &Scope,
) -> Result<Value, Error> {
    let obj = match compile(key, source, Mode::Eval) {
        Ok(expr) => vm.run_code_obj(vm.ctx.new_code(expr), scope.clone()),
        Err(_) => {
            let code = compile(key, source, Mode::Exec)?;
            run_code(vm, vm.ctx.new_code(code), scope)
        }
    }
    .map_err(|e| describe(vm, &e, "script failed"))?;
    to_value(vm, &obj).map_err(|e| Error::invalid(format!("script result: {}", e.message())))
}

/// Runs compiled statements in `scope`; the global `result` afterwards.
pub(crate) fn run_code(vm: &VirtualMachine, code: PyRef<PyCode>, scope: &Scope) -> PyResult {
    if scope.globals.get_item_opt("result", vm)?.is_some() {
        scope.globals.del_item("result", vm)?;
    }
    vm.run_code_obj(code, scope.clone())?;
    Ok(scope
        .globals
        .get_item_opt("result", vm)?
        .unwrap_or_else(|| vm.ctx.none()))
}

/// Calls the global function `name` of `scope` with `args`.
pub(crate) fn call_global(
    vm: &VirtualMachine,
    scope: &Scope,
    name: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let f = scope
        .globals
        .get_item_opt(name, vm)
        .map_err(|e| describe(vm, &e, "lookup failed"))?
        .filter(|f| f.is_callable())
        .ok_or_else(|| Error::not_found(format!("no function {name:?}")))?;
    let args: Vec<PyObjectRef> = args.iter().map(|a| to_py(vm, a)).collect();
    let obj = f
        .call(args, vm)
        .map_err(|e| describe(vm, &e, "call failed"))?;
    to_value(vm, &obj).map_err(|e| Error::invalid(format!("{name} result: {}", e.message())))
}

/// Converts a value into a Python object. Bytes become `bytes`, arrays
/// `list`s, maps `dict`s.
pub(crate) fn to_py(vm: &VirtualMachine, v: &Value) -> PyObjectRef {
    match v {
        Value::Nil => vm.ctx.none(),
        Value::Bool(b) => vm.ctx.new_bool(*b).into(),
        Value::Int(i) => vm.ctx.new_int(*i).into(),
        Value::Float(f) => vm.ctx.new_float(*f).into(),
        Value::String(s) => vm.ctx.new_str(s.as_str()).into(),
        Value::Bytes(b) => vm.ctx.new_bytes(b.clone()).into(),
        Value::Array(a) => vm
            .ctx
            .new_list(a.iter().map(|x| to_py(vm, x)).collect())
            .into(),
        Value::Map(m) => {
            let d = vm.ctx.new_dict();
            for (k, x) in m {
                // Setting a str key in a fresh dict cannot fail.
                let _ = d.set_item(k.as_str(), to_py(vm, x), vm);
            }
            d.into()
        }
    }
}

/// Converts a Python object: `None`, `bool`, `int` (64-bit), `float`,
/// `str`, `bytes`/`bytearray`, `list`/`tuple`, `dict` with `str` keys, and
/// `TroupeError`s (as `{kind, message, retryable, details?}`). Anything
/// else is `INVALID`.
pub(crate) fn to_value(vm: &VirtualMachine, obj: &PyObjectRef) -> Result<Value, Error> {
    convert(vm, obj, 0)
}

fn convert(vm: &VirtualMachine, obj: &PyObjectRef, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(format!(
            "value nested deeper than {MAX_DEPTH} levels (is it cyclic?)"
        )));
    }
    let items = |xs: &[PyObjectRef]| {
        xs.iter()
            .map(|x| convert(vm, x, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    };
    if vm.is_none(obj) {
        return Ok(Value::Nil);
    }
    if obj.class().is(vm.ctx.types.bool_type) {
        return Ok(Value::Bool(obj.is(&vm.ctx.true_value)));
    }
    if let Some(i) = obj.downcast_ref::<PyInt>() {
        return i
            .try_to_primitive::<i64>(vm)
            .map(Value::Int)
            .map_err(|_| Error::invalid("integer does not fit in 64 bits"));
    }
    if let Some(f) = obj.downcast_ref::<PyFloat>() {
        return Ok(Value::Float(f.to_f64()));
    }
    if let Some(s) = obj.downcast_ref::<PyStr>() {
        return s
            .to_str()
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| Error::invalid("string is not valid UTF-8 (surrogates)"));
    }
    if let Some(b) = obj.downcast_ref::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Some(b) = obj.downcast_ref::<PyByteArray>() {
        return Ok(Value::Bytes(b.borrow_buf().to_vec()));
    }
    if let Some(l) = obj.downcast_ref::<PyList>() {
        let xs = l.borrow_vec().to_vec();
        return items(&xs);
    }
    if let Some(t) = obj.downcast_ref::<PyTuple>() {
        return items(t.as_slice());
    }
    if let Some(d) = obj.downcast_ref::<PyDict>() {
        let mut m = BTreeMap::new();
        for (k, x) in d.items_vec() {
            let key = k
                .downcast_ref::<PyStr>()
                .and_then(|s| s.to_str())
                .ok_or_else(|| Error::invalid("dict keys must be str"))?
                .to_owned();
            m.insert(key, convert(vm, &x, depth + 1)?);
        }
        return Ok(Value::Map(m));
    }
    if let Some(objs) = objs()
        && obj.fast_isinstance(&objs.error)
        && let Ok(exc) = obj
            .clone()
            .downcast::<rustpython_vm::builtins::PyBaseException>()
    {
        return Ok(describe(vm, &exc, "error").to_value());
    }
    Err(Error::invalid(format!(
        "cannot convert {} to a value",
        obj.class().name()
    )))
}
