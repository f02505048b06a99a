//! The TCL engine: `.tcl` files run by molt, an embeddable TCL interpreter
//! in Rust, vendored with a meter and a sandboxed command set (see
//! `vendor/molt/PATCHED.md`).
//!
//! As a process, a `.tcl` script runs to completion in its first step and
//! its value is the process's result: the value of its last command (or of
//! `return`), or, with an entry proc, what that proc returns when called
//! with the spawn arguments. The script sees `args` (the spawn arguments as
//! a list) and, for every map argument, each entry as a variable of its
//! own. TCL values are strings: a result that reads as an integer is an
//! `Int`, one that reads as a float a `Float`, anything else a `String`.
//!
//! The sandbox: molt's interpreter commands only. There is no `exec`,
//! `open`, `socket`, `source`, `exit`, `time` or `env`; `puts` writes to
//! stdout. `package require NAME` loads a Troupe module the policy allows
//! and makes each of its functions the command `NAME::FUNCTION`; module
//! commands (which wait) fail `UNAVAILABLE`, as a TCL script cannot wait.
//!
//! Limits, through molt's meter (charged before every command and every
//! loop iteration): `max_instructions` counts commands and iterations,
//! `max_memory` the bytes the run's thread holds (it needs
//! [`CountingAllocator`] as the program's allocator, as Python does;
//! `string repeat` is charged before it builds its result), both
//! `LIMIT_EXCEEDED`; `timeout` is `TIMEOUT` and a cancelled handle
//! `CANCELED`. Once a limit trips, every later command fails, so `catch`
//! cannot hold a script past it. Calls nest at most 1,000 deep and parsing
//! at most 1,000 levels; a run gets a 64 MiB stack for both.
//!
//! As an interpreter ([`TclInterpreter`]) it loads and executes scripts,
//! keeps globals and procs between runs (each run is a fresh molt
//! interpreter that gets them back), registers host functions as commands
//! and calls procs by name.

mod convert;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use molt::{ContextID, Interp, MoltResult};
use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_modules::{CallError, FnCx, FunctionDef, ModuleRegistry, Policy, Ret};
use troupe_runtime::{Engine, Limits, Process, ProcessInit, Program};
use troupe_sources::Script;

use crate::alloc;
pub use crate::alloc::CountingAllocator;
use crate::cancel::CancelSlot;
use crate::capability::{Functions, Globals, HostFunction, Modules, commands_need_a_process};
use crate::deterministic::{OneShot, downcast, interpreter, text, variables};
use crate::shell::Shell;
use convert::{from_tcl, to_error, to_tcl};

/// The engine's name.
const KIND: &str = "tcl";

/// How deep procs may call each other (molt's evaluation levels).
const RECURSION_LIMIT: usize = 1000;

/// The stack a run gets: molt's evaluator recurses per call level, its
/// parsers per nesting level (1,000 of each fit with room to spare).
const STACK: usize = 64 << 20;

/// Meter charges between two looks at the clock and the cancellation
/// handle.
const CHECK_EVERY: u64 = 1024;

/// A loaded script: its key and text (molt parses when it evaluates).
#[derive(Clone)]
pub(crate) struct Compiled {
    key: String,
    code: Arc<str>,
}

/// Checks that `script` is UTF-8 and complete (braces, brackets and quotes
/// close): `INVALID` otherwise.
fn compile(script: &Script) -> Result<Compiled, Error> {
    let code = text(KIND, script)?;
    let complete = stacker::maybe_grow(STACK / 2, STACK, || Interp::empty().complete(code));
    if !complete {
        return Err(Error::invalid(format!(
            "syntax error: {}: missing close-brace, close-bracket or quote",
            script.key
        ))
        .with_details(Value::from(script.key.as_str())));
    }
    Ok(Compiled {
        key: script.key.clone(),
        code: Arc::from(code),
    })
}

/// The meter's state during one run.
struct Meter {
    used: u64,
    max_instructions: Option<u64>,
    deadline: Option<(Instant, u128)>,
    cancel: Option<CancelSlot>,
    /// This thread's bytes when the run started, and how many more it may
    /// hold.
    memory: Option<(isize, usize)>,
    /// The limit that stopped the run: every later charge fails with it.
    tripped: Option<Error>,
}

impl Meter {
    fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        if let Some(e) = &self.tripped {
            return Err(e.clone());
        }
        self.used = self.used.saturating_add(1);
        let verdict = self.verdict(bytes);
        if let Err(e) = &verdict {
            self.tripped = Some(e.clone());
        }
        verdict
    }

    fn verdict(&self, bytes: usize) -> Result<(), Error> {
        if let Some(max) = self.max_instructions.filter(|max| self.used > *max) {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!("instruction limit of {max} exceeded"),
            ));
        }
        if let Some((base, max)) = self.memory {
            let held = usize::try_from(alloc::held().saturating_sub(base)).unwrap_or(0);
            if held.saturating_add(bytes) > max {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!("memory limit of {max} bytes exceeded"),
                ));
            }
        }
        if self.used.is_multiple_of(CHECK_EVERY) || bytes > 0 {
            if let Some((at, ms)) = self.deadline
                && Instant::now() >= at
            {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("wall-clock limit of {ms} ms exceeded"),
                ));
            }
            if let Some(cancel) = &self.cancel {
                cancel.check()?;
            }
        }
        Ok(())
    }
}

/// A global variable of an interpreter between runs.
#[derive(Clone, Debug)]
enum Var {
    /// Set by the host and not changed since: read back as it was set.
    Host(Value),
    /// A scalar a script set.
    Scalar(String),
    /// An array a script set: its keys and values, alternating.
    Array(Vec<String>),
}

/// A proc a script defined: name, argument spec (a TCL list) and body.
type ProcDef = (String, String, String);

/// What one run sees and how it is limited.
struct Run<'a> {
    key: &'a str,
    code: &'a str,
    limits: &'a Limits,
    /// `max_memory`, or the runtime's ceiling for the process.
    max_memory: Option<usize>,
    cancel: Option<CancelSlot>,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    pid: Pid,
    parent: Option<Pid>,
    functions: &'a BTreeMap<String, HostFunction>,
}

/// What an interpreter keeps between runs.
#[derive(Default)]
struct Kept {
    vars: BTreeMap<String, Var>,
    procs: Vec<ProcDef>,
}

impl Run<'_> {
    /// Runs the code in a fresh interpreter that gets `kept` back first
    /// (and, with `entry`, calls that proc with `args` afterwards); updates
    /// `kept` with what the run left.
    fn eval(&self, kept: &mut Kept, entry: Option<(&str, &[Value])>) -> Result<Value, Error> {
        stacker::maybe_grow(STACK / 2, STACK, || self.eval_here(kept, entry))
    }

    fn eval_here(&self, kept: &mut Kept, entry: Option<(&str, &[Value])>) -> Result<Value, Error> {
        let memory = match self.max_memory {
            Some(_) if !alloc::active() => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "max_memory for TCL needs troupe_engines::tcl::CountingAllocator \
                     as the program's global allocator",
                ));
            }
            Some(max) => Some((alloc::held(), max)),
            None => None,
        };
        let meter = Rc::new(RefCell::new(Meter {
            used: 0,
            max_instructions: self.limits.max_instructions.map(|m| m.get()),
            deadline: self
                .limits
                .timeout
                .and_then(|t| Some((Instant::now().checked_add(t)?, t.as_millis()))),
            cancel: self.cancel.clone(),
            memory,
            tripped: None,
        }));
        if let Some(cancel) = &self.cancel {
            cancel.check()?;
        }
        let mut interp = self.interpreter(kept)?;
        let charged = Rc::clone(&meter);
        interp.set_meter(Some(Box::new(move |bytes| {
            charged
                .borrow_mut()
                .charge(bytes)
                .map_err(|e| convert::exception(&e))
        })));
        let mut result = interp.eval(self.code);
        if let (Ok(_), Some((name, args))) = (&result, entry) {
            let mut call = vec![molt::Value::from(name)];
            call.extend(args.iter().map(to_tcl));
            result = interp.eval_value(&molt::Value::from(call));
        }
        interp.set_meter(None);
        if let Some(e) = meter.borrow_mut().tripped.take() {
            return Err(e);
        }
        let value = result.map_err(|e| to_error(self.key, self.code, &e))?;
        keep(&interp, kept);
        Ok(from_tcl(&value))
    }

    /// A sandboxed interpreter with Troupe's commands, `kept`'s procs and
    /// globals, and the host functions.
    fn interpreter(&self, kept: &Kept) -> Result<Interp, Error> {
        let mut interp = Interp::sandboxed();
        interp.set_recursion_limit(RECURSION_LIMIT);
        interp.add_command("puts", puts);
        let loader = interp.save_context(Loader {
            policy: Arc::clone(&self.policy),
            modules: Arc::clone(&self.modules),
            pid: self.pid,
            parent: self.parent,
        });
        interp.add_context_command("package", package, loader);
        for (name, f) in self.functions {
            let id = interp.save_context(Arc::clone(f));
            interp.add_context_command(name, call_host, id);
        }
        let internal = |e: molt::Exception| Error::internal(format!("tcl: {}", e.value()));
        for (name, args, body) in &kept.procs {
            let define = ["proc", name.as_str(), args.as_str(), body.as_str()]
                .map(molt::Value::from)
                .to_vec();
            interp
                .eval_value(&molt::Value::from(define))
                .map_err(internal)?;
        }
        for (name, var) in &kept.vars {
            match var {
                Var::Host(v) => interp.set_scalar(name, to_tcl(v)),
                Var::Scalar(s) => interp.set_scalar(name, molt::Value::from(s.as_str())),
                Var::Array(kv) => {
                    let kv: Vec<_> = kv.iter().map(|s| molt::Value::from(s.as_str())).collect();
                    interp.array_set(name, &kv).map(drop)
                }
            }
            .map_err(internal)?;
        }
        Ok(interp)
    }
}

/// Records in `kept` the procs and global variables `interp` holds.
fn keep(interp: &Interp, kept: &mut Kept) {
    let mut vars = BTreeMap::new();
    for name in interp.vars_in_global_scope() {
        let name = name.as_str();
        if name == "errorInfo" || name == "errorCode" {
            continue;
        }
        let var = if interp.array_exists(name) {
            Var::Array(
                interp
                    .array_get(name)
                    .iter()
                    .map(|v| v.as_str().to_owned())
                    .collect(),
            )
        } else if let Ok(v) = interp.scalar(name) {
            match kept.vars.get(name) {
                Some(Var::Host(h)) if to_tcl(h).as_str() == v.as_str() => Var::Host(h.clone()),
                _ => Var::Scalar(v.as_str().to_owned()),
            }
        } else {
            continue;
        };
        vars.insert(name.to_owned(), var);
    }
    kept.vars = vars;
    kept.procs = interp
        .proc_names()
        .iter()
        .filter_map(|name| {
            let name = name.as_str();
            let body = interp.proc_body(name).ok()?;
            let args = interp.proc_args(name).ok()?;
            let spec: Vec<molt::Value> = args
                .as_list()
                .ok()?
                .iter()
                .map(|arg| match interp.proc_default(name, arg.as_str()) {
                    Ok(Some(default)) => molt::Value::from(vec![arg.clone(), default]),
                    _ => arg.clone(),
                })
                .collect();
            Some((
                name.to_owned(),
                molt::Value::from(spec).as_str().to_owned(),
                body.as_str().to_owned(),
            ))
        })
        .collect();
}

/// `puts ?stdout? string`: a line on stdout.
fn puts(_interp: &mut Interp, _: ContextID, argv: &[molt::Value]) -> MoltResult {
    match argv {
        [_, text] => println!("{}", text.as_str()),
        [_, channel, text] if channel.as_str() == "stdout" => println!("{}", text.as_str()),
        [_, channel, _] => {
            return invalid(format!(
                "puts: can not find channel named {:?}",
                channel.as_str()
            ));
        }
        _ => return invalid("wrong # args: should be \"puts ?stdout? string\"".into()),
    }
    Ok(molt::Value::empty())
}

/// An `INVALID` TCL error saying `message`.
fn invalid(message: String) -> MoltResult {
    Err(convert::exception(&Error::invalid(message)))
}

/// What `package require` needs to load modules.
struct Loader {
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    pid: Pid,
    parent: Option<Pid>,
}

/// A module function made a command, with what its calls need.
struct ModuleFn {
    function: FunctionDef,
    policy: Arc<Policy>,
    pid: Pid,
    parent: Option<Pid>,
}

/// `package require NAME`: the module if the policy allows it, its
/// functions as the commands `NAME::FUNCTION`; the module's name as the
/// result.
fn package(interp: &mut Interp, id: ContextID, argv: &[molt::Value]) -> MoltResult {
    let [_, sub, name] = argv else {
        return invalid("wrong # args: should be \"package require name\"".into());
    };
    if sub.as_str() != "require" {
        return invalid("package: only \"package require name\" is available".into());
    }
    let name = name.as_str().to_owned();
    let loader = interp.context::<Loader>(id);
    let (policy, pid, parent) = (Arc::clone(&loader.policy), loader.pid, loader.parent);
    let def = match loader.modules.resolve(&name, &loader.policy) {
        Ok(def) => Arc::clone(def),
        Err(e) => return Err(convert::exception(&e)),
    };
    for function in def.functions() {
        let command = format!("{name}::{}", function.name());
        let fid = interp.save_context(ModuleFn {
            function: function.clone(),
            policy: Arc::clone(&policy),
            pid,
            parent,
        });
        interp.add_context_command(&command, call_module, fid);
    }
    Ok(molt::Value::from(name.as_str()))
}

/// Calls a module function with the command's arguments.
fn call_module(interp: &mut Interp, id: ContextID, argv: &[molt::Value]) -> MoltResult {
    let f = interp.context::<ModuleFn>(id);
    let args = argv.iter().skip(1).map(from_tcl).collect();
    let cx = FnCx {
        pid: f.pid,
        parent: f.parent,
        policy: &f.policy,
    };
    match f.function.call(&cx, args) {
        Ok(Ret::Value(v)) => Ok(to_tcl(&v)),
        Ok(Ret::Values(vs)) => Ok(to_tcl(&Value::Array(vs))),
        Ok(Ret::Error(e)) | Err(CallError::Fail(e) | CallError::Raise(e)) => {
            Err(convert::exception(&e))
        }
        Ok(Ret::Call(_) | Ret::Yield(_)) => Err(convert::exception(&commands_need_a_process())),
        Ok(Ret::Object(_)) => Err(convert::exception(&Error::new(
            ErrorKind::Unavailable,
            "userdata objects are not supported by the tcl engine",
        ))),
    }
}

/// Calls a host function with the command's arguments.
fn call_host(interp: &mut Interp, id: ContextID, argv: &[molt::Value]) -> MoltResult {
    let f = Arc::clone(interp.context::<HostFunction>(id));
    let args = argv.iter().skip(1).map(from_tcl).collect();
    f(args)
        .map(|v| to_tcl(&v))
        .map_err(|e| convert::exception(&e))
}

/// The TCL process engine: runs `.tcl` files (see the module docs).
#[derive(Debug, Default)]
pub struct TclEngine;

impl TclEngine {
    /// The engine.
    pub fn new() -> Self {
        Self
    }
}

impl Engine for TclEngine {
    fn name(&self) -> &str {
        KIND
    }

    fn extensions(&self) -> &[&str] {
        &["tcl"]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        Ok(Arc::new(compile(script)?))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let compiled = downcast::<Compiled>(KIND, program)?.clone();
        Ok(OneShot::boxed(move || {
            let mut kept = Kept {
                vars: variables(&init.args)
                    .into_iter()
                    .map(|(k, v)| (k, Var::Host(v)))
                    .collect(),
                procs: Vec::new(),
            };
            let functions = BTreeMap::new();
            let run = Run {
                key: &compiled.key,
                code: &compiled.code,
                limits: &init.limits,
                max_memory: init
                    .limits
                    .max_memory
                    .map(|m| m.get())
                    .or(init.memory_ceiling.map(|m| m.get())),
                cancel: None,
                policy: init.policy,
                modules: init.modules,
                pid: init.pid,
                parent: init.parent,
                functions: &functions,
            };
            let entry = init.entry.as_deref().map(|e| (e, init.args.as_slice()));
            run.eval(&mut kept, entry)
        }))
    }
}

/// An embeddable TCL interpreter: `Loader`, `Executor`, `Globals` (a
/// global the host set and no script changed reads back as it was set;
/// others as their text reads), `Functions` (host functions become
/// commands; `call_function` calls a proc), `Modules` (for `package
/// require`) and `Watcher`. Procs and globals persist between runs until
/// `reset`.
pub struct TclInterpreter {
    shell: Shell<Compiled>,
    kept: Kept,
    functions: BTreeMap<String, HostFunction>,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    limits: Limits,
}

impl Default for TclInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl TclInterpreter {
    /// A closed interpreter (deny-all policy, the built-in modules, default
    /// limits); `init` opens it.
    pub fn new() -> Self {
        Self {
            shell: Shell::new(KIND),
            kept: Kept::default(),
            functions: BTreeMap::new(),
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::with_builtins()),
            limits: Limits::default(),
        }
    }

    fn compile(script: &Script) -> Result<Compiled, Error> {
        compile(script)
    }

    /// Runs `code` (named `key`), then with `entry` calls that proc.
    fn eval(
        &mut self,
        key: &str,
        code: &str,
        entry: Option<(&str, &[Value])>,
    ) -> Result<Value, Error> {
        let run = Run {
            key,
            code,
            limits: &self.limits,
            max_memory: self.limits.max_memory.map(|m| m.get()),
            cancel: Some(self.shell.cancel().clone()),
            policy: Arc::clone(&self.policy),
            modules: Arc::clone(&self.modules),
            pid: Pid::new(0, 0),
            parent: None,
            functions: &self.functions,
        };
        run.eval(&mut self.kept, entry)
    }

    fn run(&mut self, compiled: &Compiled) -> Result<Value, Error> {
        self.eval(&compiled.key, &compiled.code, None)
    }

    /// Forgets globals, procs and host functions.
    fn clear(&mut self) {
        self.kept = Kept::default();
        self.functions.clear();
    }

    /// Limits for each later execution.
    fn apply_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The policy and modules `package require` resolves against.
    fn apply_policy(&mut self, policy: Arc<Policy>, modules: Arc<ModuleRegistry>) {
        self.policy = policy;
        self.modules = modules;
    }
}

interpreter!(TclInterpreter, modules);

impl Globals for TclInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        self.shell.check()?;
        self.kept.vars.insert(name.to_owned(), Var::Host(value));
        Ok(())
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        self.shell.check()?;
        Ok(match self.kept.vars.get(name) {
            None => Value::Nil,
            Some(Var::Host(v)) => v.clone(),
            Some(Var::Scalar(s)) => from_tcl(&molt::Value::from(s.as_str())),
            Some(Var::Array(kv)) => Value::from_iter(kv.chunks(2).filter_map(|pair| match pair {
                [k, v] => Some((k.clone(), from_tcl(&molt::Value::from(v.as_str())))),
                _ => None,
            })),
        })
    }
}

impl Functions for TclInterpreter {
    /// Makes `f` the command `name` in every later run; an error it returns
    /// is a TCL error with the error's kind as its `errorCode`.
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.shell.check()?;
        let f = self.shell.cancel().guard(f);
        self.functions.insert(name.to_owned(), f);
        Ok(())
    }

    /// Calls the proc (or host function) `name` with `args`.
    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self.shell.check().and_then(|()| {
            self.shell.cancel().check()?;
            self.eval("<call>", "", Some((name, &args)))
        });
        self.shell.record(r)
    }
}

impl Modules for TclInterpreter {
    fn register_module(&mut self, def: troupe_modules::ModuleDef) -> Result<(), Error> {
        Arc::make_mut(&mut self.modules).insert(def);
        Ok(())
    }
}
