//! Running code in a context: scripts (`.js`, completion value) and
//! modules (`.mjs`, default export), limits, and what a finished run
//! yields.

use std::num::NonZeroU64;
use std::path::Path;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use boa_engine::builtins::promise::PromiseState;
use boa_engine::{Context, JsResult, JsValue, Module, Script, Source, js_string};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_runtime::Limits;

use crate::nesting;

use super::convert::{from_js, from_js_error};

/// Loop iterations per function call when no instruction limit is set, so
/// an endless loop still ends (`LIMIT_EXCEEDED`) instead of holding a JS
/// thread forever.
pub(crate) const DEFAULT_LOOP_LIMIT: u64 = 100_000_000;

/// Bytes a loop iteration is assumed to allocate when `max_memory` is set
/// (boa has no heap accounting; see the module docs).
pub(crate) const BYTES_PER_ITERATION: usize = 1024;

/// Applies `limits` to `ctx`: boa counts loop iterations per call frame,
/// so `max_instructions` caps the iterations any one function (or the
/// script body) runs, and `max_memory` caps them at one per
/// [`BYTES_PER_ITERATION`]. Recursion and stack depth keep boa's limits.
pub(crate) fn apply_limits(ctx: &mut Context, limits: &Limits) {
    let by_instructions = limits
        .max_instructions
        .map_or(DEFAULT_LOOP_LIMIT, NonZeroU64::get);
    let by_memory = limits
        .max_memory
        .map_or(u64::MAX, |m| (m.get() / BYTES_PER_ITERATION) as u64);
    ctx.runtime_limits_mut()
        .set_loop_iteration_limit(by_instructions.min(by_memory).max(1));
}

/// What a run waits for to finish.
pub(crate) enum Main {
    /// A script's completion value (awaited when it is a Promise).
    Value(JsValue),
    /// A module's evaluation; its `default` export is the result.
    Module(Module, boa_engine::object::builtins::JsPromise),
}

/// How a run stands after its jobs ran.
pub(crate) enum Outcome {
    Done(Value),
    Failed(Error),
    /// A Promise is still pending.
    Waiting,
}

/// Whether `key` names a module (`.mjs`) rather than a script.
pub(crate) fn is_module(key: &str) -> bool {
    key.ends_with(".mjs")
}

/// A syntax error in `key` as `INVALID` naming `key`.
pub(crate) fn syntax_error(key: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("syntax error: {key}: {e}")).with_details(Value::from(key))
}

/// A parsed script or module.
#[derive(Clone)]
pub(crate) enum Parsed {
    Script(Script),
    Module(Module),
}

/// What a script's source may make boa's parser recurse over: it
/// recurses per bracket level, about 16 KiB of stack each (1,000 levels
/// overflow a JS thread's 16 MiB); its operator chains are loops.
pub(crate) const BOUNDS: nesting::Bounds = nesting::Bounds {
    nesting: nesting::MAX_NESTING,
    chain: None,
};

/// Parses `code` (named `key`) as a module (`.mjs`) or a script, in the
/// realm of `ctx`; a syntax error is `INVALID`.
pub(crate) fn parse(key: &str, code: &[u8], ctx: &mut Context) -> Result<Parsed, Error> {
    nesting::check("js", key, &String::from_utf8_lossy(code), BOUNDS)?;
    let src = Source::from_bytes(code).with_path(Path::new(key));
    if is_module(key) {
        Module::parse(src, None, ctx).map(Parsed::Module)
    } else {
        Script::parse(src, None, ctx).map(Parsed::Script)
    }
    .map_err(|e| syntax_error(key, e))
}

/// Checks `code` for syntax errors in a fresh context (parsing declares
/// the script's top-level names in the realm it parses in).
pub(crate) fn check_syntax(key: &str, code: &[u8]) -> Result<(), Error> {
    parse(key, code, &mut Context::default()).map(drop)
}

/// boa's "clock cycles" a script runs between two checks of its stop
/// condition (tens of microseconds).
const SLICE_BUDGET: u32 = 10_000;

/// Why a run must stop now (a deadline, a cancellation), checked between
/// the slices of a script.
pub(crate) type Stop<'a> = &'a dyn Fn() -> Result<(), Error>;

/// Evaluates `script` in slices of [`SLICE_BUDGET`] (boa's async budget),
/// checking `stop` between them. A stop abandons the evaluation midway:
/// `ctx` still holds its frames, so its owner must not run it again.
pub(crate) fn evaluate_sliced(
    script: &Script,
    ctx: &mut Context,
    stop: Stop<'_>,
) -> Result<JsResult<JsValue>, Error> {
    let mut run = pin!(script.evaluate_async_with_budget(ctx, SLICE_BUDGET));
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(result) = run.as_mut().poll(&mut cx) {
            return Ok(result);
        }
        stop()?;
    }
}

/// Starts a parsed script (evaluates it; with `stop`, in slices checking
/// it between them) or module (loads, links and evaluates it, in one go).
pub(crate) fn start(
    parsed: &Parsed,
    key: &str,
    ctx: &mut Context,
    stop: Option<Stop<'_>>,
) -> Result<Main, Error> {
    match parsed {
        Parsed::Module(module) => Ok(Main::Module(module.clone(), module.load_link_evaluate(ctx))),
        Parsed::Script(script) => match stop {
            Some(stop) => evaluate_sliced(script, ctx, stop)?,
            None => script.evaluate(ctx),
        }
        .map(Main::Value)
        .map_err(|e| from_js_error(e, key, ctx)),
    }
}

/// Calls `entry` (a global function of a script, an export of a module)
/// with `args`, once `main` finished loading.
pub(crate) fn call_entry(
    main: &Main,
    entry: &str,
    args: &[Value],
    key: &str,
    ctx: &mut Context,
) -> Result<Main, Error> {
    let holder = match main {
        Main::Value(_) => ctx.global_object(),
        Main::Module(m, _) => m.namespace(ctx),
    };
    let f = holder
        .get(boa_engine::JsString::from(entry), ctx)
        .map_err(|e| from_js_error(e, key, ctx))?;
    let Some(f) = f.as_callable() else {
        return Err(Error::not_found(format!(
            "{key}: no function {entry:?} to call"
        )));
    };
    let mut js_args = Vec::with_capacity(args.len());
    for a in args {
        js_args.push(super::convert::to_js(a, ctx).map_err(|e| from_js_error(e, key, ctx))?);
    }
    f.call(&JsValue::undefined(), &js_args, ctx)
        .map(Main::Value)
        .map_err(|e| from_js_error(e, key, ctx))
}

/// Runs the promise jobs and reports how `main` stands. A finished module
/// turns into its `default` export (itself awaited when a Promise).
pub(crate) fn poll(main: &mut Main, key: &str, ctx: &mut Context) -> Outcome {
    if let Err(e) = ctx.run_jobs() {
        return Outcome::Failed(from_js_error(e, key, ctx));
    }
    loop {
        let settled = match main {
            Main::Value(v) => match v.as_promise() {
                None => return convert_result(v, ctx),
                Some(p) => p.state(),
            },
            Main::Module(_, p) => p.state(),
        };
        let value = match settled {
            PromiseState::Pending => return Outcome::Waiting,
            PromiseState::Rejected(reason) => {
                let e = boa_engine::JsError::from_opaque(reason);
                return Outcome::Failed(from_js_error(e, key, ctx));
            }
            PromiseState::Fulfilled(v) => v,
        };
        match main {
            Main::Value(_) => return convert_result(&value, ctx),
            Main::Module(m, _) => {
                let default = m.namespace(ctx).get(js_string!("default"), ctx);
                match default {
                    Ok(v) => *main = Main::Value(v),
                    Err(e) => return Outcome::Failed(from_js_error(e, key, ctx)),
                }
            }
        }
    }
}

fn convert_result(v: &JsValue, ctx: &mut Context) -> Outcome {
    match from_js(v, ctx) {
        Ok(v) => Outcome::Done(v),
        Err(e) => Outcome::Failed(Error::new(
            ErrorKind::Invalid,
            format!("script result: {}", e.message()),
        )),
    }
}
