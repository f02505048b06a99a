//! The Starlark engine: `.star` files run by the `starlark` crate
//! (starlark-rust) in its extended dialect (top-level `for`/`if`, type
//! annotations; no `load`: Starlark scripts here import nothing).
//!
//! As a process, a `.star` script runs to completion in its first step and
//! its value is the process's result: the value of the last expression
//! statement, or, with an entry function, what that function returns when
//! called with the spawn arguments. The script sees `args` (the spawn
//! arguments as a list) and, for every map argument, each entry as a
//! variable of its own. `print` goes to the log (`tracing`, target
//! `troupe::starlark`).
//!
//! Limits: `max_instructions` counts Starlark ticks (checked every 1,000
//! ticks), `max_memory` bounds the script's heap (checked at the same
//! points), both `LIMIT_EXCEEDED`; `timeout` is `TIMEOUT`; a call stack
//! deeper than 50 frames (runaway recursion) is `LIMIT_EXCEEDED`. The
//! evaluator cannot pause, so a script holds its worker until it ends or a
//! limit stops it: give long scripts a limit. A single huge allocation
//! (`"x" * (1 << 40)`) happens before any check can see it.
//!
//! As an interpreter ([`StarlarkInterpreter`]) it loads and executes
//! scripts, keeps globals (a script's top-level definitions stay visible to
//! later scripts), registers host functions as Starlark functions and calls
//! script functions by name.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use allocative::Allocative;
use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::{Arguments, Evaluator};
use starlark::syntax::{AstModule, Dialect};
use starlark::values::bytes::StarlarkBytes;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::tuple::TupleRef;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkPagablePanic, StarlarkValue, ValueLike,
    starlark_value,
};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_runtime::{Engine, Limits, Process, ProcessInit, Program};
use troupe_sources::Script;

use crate::cancel::CancelSlot;
use crate::capability::{Functions, Globals as GlobalsCap, HostFunction};
use crate::deterministic::{OneShot, downcast, interpreter, text, variables};
use crate::nesting;
use crate::shell::Shell;

/// The engine's name.
const KIND: &str = "starlark";

/// Ticks between two limit checks (starlark-rust's own period).
const TICKS_PER_CHECK: u64 = 1000;

/// The built-ins every script sees: the Starlark standard library.
static GLOBALS: LazyLock<Globals> = LazyLock::new(Globals::standard);

/// The dialect scripts are parsed in.
fn dialect() -> Dialect {
    Dialect {
        enable_load: false,
        ..Dialect::Extended
    }
}

/// A parsed `.star` script.
#[derive(Clone)]
struct Compiled {
    key: String,
    ast: AstModule,
}

/// What a script's source may make the parser recurse over: the parser
/// and the evaluator recurse along an operator chain (`1+1+…` of 10,000
/// terms overflows an 8 MiB stack).
const BOUNDS: nesting::Bounds = nesting::Bounds {
    nesting: nesting::MAX_NESTING,
    chain: Some(2_000),
};

/// Parses a script. A syntax error is `INVALID` naming `key:line:column`
/// (also in the details as `line`, `column`).
fn compile(script: &Script) -> Result<Compiled, Error> {
    let src = text(KIND, script)?;
    nesting::check(KIND, &script.key, src, BOUNDS)?;
    AstModule::parse(&script.key, src.to_owned(), &dialect())
        .map(|ast| Compiled {
            key: script.key.clone(),
            ast,
        })
        .map_err(|e| to_error(&script.key, e, None))
}

/// Why a limit check stopped a run.
type Verdict = Cell<Option<Error>>;

/// A starlark error as a Troupe error: a host function's error keeps its
/// kind, a tripped limit is the limit's error, a stack overflow is
/// `LIMIT_EXCEEDED`, a syntax error `INVALID`, anything else (`fail()`, a
/// type error, a missing name) `INTERNAL`; the message names
/// `key:line:column` where starlark knows it.
fn to_error(key: &str, e: starlark::Error, verdict: Option<&Verdict>) -> Error {
    if let Some(limit) = verdict.and_then(Cell::take) {
        return limit;
    }
    let kind = match e.kind() {
        starlark::ErrorKind::Native(inner) | starlark::ErrorKind::Other(inner) => {
            if let Some(host) = inner.downcast_ref::<Error>() {
                return host.clone();
            }
            ErrorKind::Internal
        }
        starlark::ErrorKind::StackOverflow(_) => ErrorKind::LimitExceeded,
        starlark::ErrorKind::Parser(_) => ErrorKind::Invalid,
        _ => ErrorKind::Internal,
    };
    let message = e.without_diagnostic().to_string();
    match e.span() {
        Some(span) => {
            let pos = span.resolve_span().begin;
            let (line, column) = (pos.line + 1, pos.column + 1);
            Error::new(
                kind,
                format!("{}:{line}:{column}: {message}", span.filename()),
            )
            .with_details(
                [
                    ("line".to_owned(), Value::Int(line as i64)),
                    ("column".to_owned(), Value::Int(column as i64)),
                ]
                .into_iter()
                .collect(),
            )
        }
        None => Error::new(kind, format!("{key}: {message}")),
    }
}

/// A Troupe value on a Starlark heap.
fn to_star<'v>(heap: Heap<'v>, value: &Value) -> starlark::values::Value<'v> {
    match value {
        Value::Nil => starlark::values::Value::new_none(),
        Value::Bool(b) => starlark::values::Value::new_bool(*b),
        Value::Int(i) => heap.alloc(*i),
        Value::Float(f) => heap.alloc(*f),
        Value::String(s) => heap.alloc(s.as_str()),
        Value::Bytes(b) => heap.alloc(b.as_slice()),
        Value::Array(items) => heap.alloc(AllocList(items.iter().map(|v| to_star(heap, v)))),
        Value::Map(map) => heap.alloc(AllocDict(
            map.iter().map(|(k, v)| (k.as_str(), to_star(heap, v))),
        )),
    }
}

/// A Starlark value as a Troupe value: `None`, booleans, integers (within
/// 64 bits), floats, strings, bytes, lists and tuples (arrays) and dicts
/// with string keys (maps); anything else (a function, a big integer) is
/// `INVALID`.
fn from_star(value: starlark::values::Value) -> Result<Value, Error> {
    if let Some(bytes) = value.downcast_ref::<StarlarkBytes>() {
        return Ok(Value::Bytes(bytes.as_bytes().to_vec()));
    }
    if let Some(list) = ListRef::from_value(value) {
        return list
            .iter()
            .map(from_star)
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Some(tuple) = TupleRef::from_value(value) {
        return tuple
            .iter()
            .map(from_star)
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Some(dict) = DictRef::from_value(value) {
        let mut map = BTreeMap::new();
        for (k, v) in dict.iter() {
            let key = k.unpack_str().ok_or_else(|| {
                Error::invalid(format!("starlark: a dict key {k} is not a string"))
            })?;
            map.insert(key.to_owned(), from_star(v)?);
        }
        return Ok(Value::Map(map));
    }
    let json = value.to_json_value().map_err(|e| {
        Error::invalid(format!(
            "starlark: a {} cannot leave a script: {e}",
            value.get_type()
        ))
    })?;
    from_json(json)
}

/// A scalar as starlark exports it to JSON, as a Troupe value.
fn from_json(json: serde_json::Value) -> Result<Value, Error> {
    match json {
        serde_json::Value::Null => Ok(Value::Nil),
        serde_json::Value::Bool(b) => Ok(Value::Bool(b)),
        serde_json::Value::String(s) => Ok(Value::String(s)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Value::Int(i)),
            None if n.is_f64() => n
                .as_f64()
                .map(Value::Float)
                .ok_or_else(|| Error::invalid(format!("starlark: {n} is not a float"))),
            None => Err(Error::invalid(format!(
                "starlark: {n} does not fit 64 bits"
            ))),
        },
        other => Err(Error::invalid(format!(
            "starlark: unexpected {other} where a scalar was exported"
        ))),
    }
}

/// `print` for scripts: one log line each.
struct LogPrint;

impl starlark::PrintHandler for LogPrint {
    fn println(&self, text: &str) -> starlark::Result<()> {
        tracing::info!(target: "troupe::starlark", "{text}");
        Ok(())
    }
}

/// A host function as a Starlark value.
#[derive(ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
struct HostFn {
    name: String,
    #[allocative(skip)]
    f: HostFunction,
}

starlark::starlark_simple_value!(HostFn);

impl fmt::Debug for HostFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostFn({})", self.name)
    }
}

impl fmt::Display for HostFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<host function {}>", self.name)
    }
}

#[starlark_value(type = "host_function")]
impl<'v> StarlarkValue<'v> for HostFn {
    fn invoke(
        &self,
        _me: starlark::values::Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<starlark::values::Value<'v>> {
        let heap = eval.heap();
        args.no_named_args()?;
        let values = args
            .positions(heap)?
            .map(from_star)
            .collect::<Result<Vec<_>, _>>()
            .map_err(starlark::Error::new_native)?;
        let out = (self.f)(values).map_err(starlark::Error::new_native)?;
        Ok(to_star(heap, &out))
    }
}

/// What one run binds and how it is limited.
struct Run<'a> {
    key: &'a str,
    /// Modules whose public names the script sees, oldest first (a later
    /// module's name wins).
    scope: &'a [FrozenModule],
    vars: &'a BTreeMap<String, Value>,
    limits: &'a Limits,
    deadline: Option<Instant>,
    /// An embedded interpreter's cancellation handle.
    cancel: Option<&'a CancelSlot>,
}

/// A frozen module holding what `fill` sets.
fn frozen(fill: impl for<'v> FnOnce(&Module<'v>)) -> Result<FrozenModule, Error> {
    Module::with_temp_heap(|module| {
        fill(&module);
        module
            .freeze()
            .map_err(|e| Error::internal(format!("starlark: cannot freeze a module: {e:?}")))
    })
}

impl Run<'_> {
    /// Evaluates `ast` in a new module; `then` runs in the same evaluator
    /// afterwards with the module's value (to call an entry function).
    /// Returns the value and the frozen module (its definitions, for later
    /// runs).
    fn eval(
        &self,
        ast: AstModule,
        then: impl for<'v> FnOnce(
            &mut Evaluator<'v, '_, '_>,
            &Module<'v>,
            starlark::values::Value<'v>,
        ) -> starlark::Result<starlark::values::Value<'v>>,
    ) -> Result<(Value, FrozenModule), Error> {
        self.cancel.map_or(Ok(()), CancelSlot::check)?;
        Module::with_temp_heap(|module| {
            for earlier in self.scope {
                module.import_public_symbols(earlier);
            }
            let heap = module.heap();
            for (name, value) in self.vars {
                module.set(name, to_star(heap, value));
            }
            let verdict = Verdict::default();
            let checks = Cell::new(0u64);
            let check = || {
                checks.set(checks.get() + 1);
                let ticks = checks.get().saturating_mul(TICKS_PER_CHECK);
                let tripped = if self
                    .limits
                    .max_instructions
                    .is_some_and(|max| ticks > max.get())
                {
                    Some(Error::new(
                        ErrorKind::LimitExceeded,
                        format!("{}: instruction limit exceeded", self.key),
                    ))
                } else if self
                    .limits
                    .max_memory
                    .is_some_and(|max| heap.allocated_bytes() > max.get())
                {
                    Some(Error::new(
                        ErrorKind::LimitExceeded,
                        format!("{}: memory limit exceeded", self.key),
                    ))
                } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    Some(Error::new(
                        ErrorKind::Timeout,
                        format!("{}: time limit exceeded", self.key),
                    ))
                } else {
                    self.cancel.and_then(|c| c.check().err())
                };
                let stop = tripped.is_some();
                if stop {
                    verdict.set(tripped);
                }
                stop
            };
            let value = {
                let mut eval = Evaluator::new(&module);
                eval.set_print_handler(&LogPrint);
                eval.set_check_cancelled(Box::new(check));
                eval.eval_module(ast, &GLOBALS)
                    .and_then(|value| then(&mut eval, &module, value))
                    .map_err(|e| to_error(self.key, e, Some(&verdict)))
                    .and_then(from_star)
            }?;
            let frozen = module.freeze().map_err(|e| {
                Error::internal(format!("{}: cannot keep definitions: {e:?}", self.key))
            })?;
            Ok((value, frozen))
        })
    }
}

/// Calls the script function `name` of `module` with `args`.
fn call_in<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    module: &Module<'v>,
    name: &str,
    args: &[Value],
) -> starlark::Result<starlark::values::Value<'v>> {
    let function = module.get(name).ok_or_else(|| {
        starlark::Error::new_native(Error::new(
            ErrorKind::NotFound,
            format!("starlark: no function {name:?}"),
        ))
    })?;
    let heap = module.heap();
    let args: Vec<_> = args.iter().map(|v| to_star(heap, v)).collect();
    eval.eval_function(function, &args, &[])
}

/// The Starlark process engine: runs `.star` files (see the module docs).
#[derive(Debug, Default)]
pub struct StarlarkEngine;

impl StarlarkEngine {
    /// The engine.
    pub fn new() -> Self {
        Self
    }
}

impl Engine for StarlarkEngine {
    fn name(&self) -> &str {
        KIND
    }

    fn extensions(&self) -> &[&str] {
        &["star"]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        Ok(Arc::new(compile(script)?))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let compiled = downcast::<Compiled>(KIND, program)?.clone();
        let deadline = init.limits.deadline(Instant::now());
        Ok(OneShot::boxed(move || {
            let vars = variables(&init.args);
            let run = Run {
                key: &compiled.key,
                scope: &[],
                vars: &vars,
                limits: &init.limits,
                deadline,
                cancel: None,
            };
            let entry = init.entry;
            let args = init.args;
            run.eval(compiled.ast, |eval, module, value| match &entry {
                Some(name) => call_in(eval, module, name, &args),
                None => Ok(value),
            })
            .map(|(value, _)| value)
        }))
    }
}

/// An embeddable Starlark interpreter: `Loader`, `Executor`, `Globals`
/// (values every script sees; a script's own top-level names stay visible
/// to later scripts and to `get_global`), `Functions` (host functions
/// callable from scripts; `call_function` calls a function a script
/// defined). Limits apply to each execution as in a process; the policy has
/// nothing to act on (no `load`).
pub struct StarlarkInterpreter {
    shell: Shell<Compiled>,
    /// What globals, host functions and earlier runs defined, oldest first.
    scope: Vec<FrozenModule>,
    limits: Limits,
}

impl Default for StarlarkInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl StarlarkInterpreter {
    /// A closed interpreter; `init` opens it.
    pub fn new() -> Self {
        Self {
            shell: Shell::new(KIND),
            scope: Vec::new(),
            limits: Limits::default(),
        }
    }

    fn compile(script: &Script) -> Result<Compiled, Error> {
        compile(script)
    }

    /// Runs `ast` in a module that sees the scope (with `call`, calls the
    /// function `ast` evaluates to with those arguments); keeps what it
    /// defined.
    fn eval(&mut self, key: &str, ast: AstModule, call: Option<&[Value]>) -> Result<Value, Error> {
        let run = Run {
            key,
            scope: &self.scope,
            vars: &BTreeMap::new(),
            limits: &self.limits,
            deadline: self.limits.deadline(Instant::now()),
            cancel: Some(self.shell.cancel()),
        };
        let (value, defined) = run.eval(ast, |eval, module, value| match call {
            Some(args) => {
                let heap = module.heap();
                let args: Vec<_> = args.iter().map(|v| to_star(heap, v)).collect();
                eval.eval_function(value, &args, &[])
            }
            None => Ok(value),
        })?;
        if defined.names().next().is_some() {
            self.scope.push(defined);
        }
        Ok(value)
    }

    fn run(&mut self, compiled: &Compiled) -> Result<Value, Error> {
        self.eval(&compiled.key, compiled.ast.clone(), None)
    }
}

impl StarlarkInterpreter {
    /// Forgets globals, host functions and definitions.
    fn clear(&mut self) {
        self.scope.clear();
    }

    /// Limits for each later execution.
    fn apply_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }
}

interpreter!(StarlarkInterpreter);

impl GlobalsCap for StarlarkInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        self.shell.check()?;
        let module = frozen(|module| module.set(name, to_star(module.heap(), &value)))?;
        self.scope.push(module);
        Ok(())
    }

    /// The newest value of `name` a global or a script defined; `Nil` if
    /// none did.
    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        self.shell.check()?;
        let newest = self.scope.iter().rev().find_map(|m| m.get(name).ok());
        let r = newest.map_or(Ok(Value::Nil), |value| from_star(value.value()));
        self.shell.record(r)
    }
}

impl Functions for StarlarkInterpreter {
    /// Makes `f` the Starlark function `name` in every later execution. An
    /// error it returns fails the script with that error.
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.shell.check()?;
        let host = HostFn {
            name: name.to_owned(),
            f: self.shell.cancel().guard(f),
        };
        let module = frozen(|module| module.set(name, module.heap().alloc_simple(host)))?;
        self.scope.push(module);
        Ok(())
    }

    /// Calls `name`, a function a script (or a host registration) defined,
    /// with `args`; `NOT_FOUND` when there is none.
    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self.shell.check().and_then(|()| {
            let identifier = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !identifier {
                return Err(Error::invalid(format!(
                    "starlark: {name:?} is not a function name"
                )));
            }
            if self.scope.iter().all(|m| m.get(name).is_err()) {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("starlark: no function {name:?}"),
                ));
            }
            let ast = AstModule::parse("<call>", name.to_owned(), &dialect())
                .map_err(|e| to_error("<call>", e, None))?;
            self.eval("<call>", ast, Some(&args))
        });
        self.shell.record(r)
    }
}
