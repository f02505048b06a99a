//! The store data of a guest and the `troupe` host functions it imports.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use parking_lot::Mutex;
use troupe_dispatcher::{Call, Error, ErrorKind, Pid, Value};
use troupe_modules::{CallError, FnCx, ModuleRegistry, Policy, Ret};
use troupe_runtime::ProcessInit;
use wasmtime::{Caller, Linker, ResourceLimiter};

use super::abi::{self, Status};
use crate::capability::{HostFunction, commands_need_a_process};

/// Most table elements a guest may grow a table to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The import namespace of the host functions.
pub(crate) const NAMESPACE: &str = "troupe";

/// The module name under which guests `call` registered host functions.
pub(crate) const HOST_MODULE: &str = "host";

/// Where a host function leaves the command it waits for, and where the
/// step that yielded it puts the scheduler's reply.
#[derive(Default)]
pub(crate) struct Exchange {
    pub pending: Option<Call>,
    pub reply: Option<Result<Value, Error>>,
}

/// What host functions need to know about the guest's caller. Shared by
/// reference so a waiting host function does not borrow the store.
pub(crate) struct Ctx {
    pub pid: Pid,
    pub parent: Option<Pid>,
    /// The script's key, for errors and logs.
    pub key: String,
    pub policy: Arc<Policy>,
    pub modules: Arc<ModuleRegistry>,
    /// Functions the embedder registered, callable as module [`HOST_MODULE`].
    pub functions: HashMap<String, HostFunction>,
    /// `None` in an embedded instance: commands need a process.
    pub exchange: Option<Arc<Mutex<Exchange>>>,
}

impl Ctx {
    /// The context of a process started with `init`.
    pub(crate) fn for_process(init: &ProcessInit, key: &str) -> Self {
        Self {
            pid: init.pid,
            parent: init.parent,
            key: key.to_owned(),
            policy: Arc::clone(&init.policy),
            modules: Arc::clone(&init.modules),
            functions: HashMap::new(),
            exchange: Some(Arc::new(Mutex::new(Exchange::default()))),
        }
    }
}

/// Enforces the memory limit and remembers that it was hit.
pub(crate) struct Limiter {
    pub max_memory: Option<usize>,
    pub exceeded: bool,
}

/// `LIMIT_EXCEEDED` for a memory limit of `max` bytes.
pub(crate) fn memory_exceeded(max: usize) -> Error {
    Error::new(
        ErrorKind::LimitExceeded,
        format!("memory limit of {max} bytes exceeded"),
    )
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.max_memory {
            Some(max) if desired > max => {
                self.exceeded = true;
                Err(wasmtime::Error::new(memory_exceeded(max)))
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of a guest's store.
pub(crate) struct Host {
    pub ctx: Arc<Ctx>,
    pub limiter: Limiter,
}

/// Runs module function `function` of `module` (or a registered host
/// function) for the guest, waiting for its command if it has one.
async fn dispatch(
    ctx: Arc<Ctx>,
    module: &str,
    function: &str,
    args: Vec<Value>,
) -> Result<Value, Error> {
    if module == HOST_MODULE
        && let Some(f) = ctx.functions.get(function)
    {
        return f(args);
    }
    let def = ctx.modules.resolve(module, &ctx.policy)?;
    let f = def
        .functions()
        .iter()
        .find(|f| f.name() == function)
        .ok_or_else(|| {
            Error::not_found(format!("module {module:?} has no function {function:?}"))
        })?;
    let cx = FnCx {
        pid: ctx.pid,
        parent: ctx.parent,
        policy: &ctx.policy,
    };
    let (call, handler) = match f.call(&cx, args) {
        Ok(Ret::Call(call)) => (call, Default::default()),
        Ok(Ret::Yield(y)) => y.into_parts(),
        other => return finished(other),
    };
    let Some(exchange) = &ctx.exchange else {
        return Err(commands_need_a_process());
    };
    exchange.lock().pending = Some(call);
    let result = poll_fn(|_| {
        exchange
            .lock()
            .reply
            .take()
            .map_or(Poll::Pending, Poll::Ready)
    })
    .await;
    match handler.finish(result) {
        Ok(Ret::Call(_) | Ret::Yield(_)) => Err(Error::internal(
            "a command's result handling returned another command",
        )),
        other => finished(other),
    }
}

/// A module function's result as the guest sees it.
fn finished(result: Result<Ret, CallError>) -> Result<Value, Error> {
    match result {
        Ok(Ret::Value(v)) => Ok(v),
        Ok(Ret::Values(vs)) => Ok(Value::Array(vs)),
        Ok(Ret::Error(e)) => Ok(e.to_value()),
        Ok(Ret::Object(_)) => Err(Error::new(
            ErrorKind::Unavailable,
            "the function returned a userdata object, which WebAssembly guests cannot hold",
        )),
        Ok(Ret::Call(_) | Ret::Yield(_)) => Err(Error::internal("unexpected command")),
        Err(CallError::Fail(e) | CallError::Raise(e)) => Err(e),
    }
}

/// Calls `module.function(args)` and writes the outcome for the guest.
async fn call_and_respond(
    caller: &mut Caller<'_, Host>,
    out: i32,
    request: Request,
) -> wasmtime::Result<i32> {
    let result = match request {
        Ok((module, function, args)) => {
            let ctx = Arc::clone(&caller.data().ctx);
            dispatch(ctx, &module, &function, args).await
        }
        Err(e) => Err(e),
    };
    let (status, value) = match result {
        Ok(v) => (Status::Ok, v),
        Err(e) => (Status::Error, e.to_value()),
    };
    abi::respond(caller, out, &value).await?;
    Ok(status as i32)
}

/// The error a guest ends with through `fail`: an error map
/// `{kind, message, retryable?, details?}` or a text (`INTERNAL`).
fn guest_error(v: &Value) -> Result<Error, Error> {
    if let Some(text) = v.as_str() {
        return Ok(Error::internal(text));
    }
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .and_then(ErrorKind::parse)
        .ok_or_else(|| {
            Error::invalid("fail: expected an error map with a known kind, or a text")
        })?;
    let message = v.get("message").and_then(Value::as_str).unwrap_or_default();
    let mut e = Error::new(kind, message);
    if let Some(r) = v.get("retryable").and_then(Value::as_bool) {
        e = e.retryable(r);
    }
    if let Some(d) = v.get("details") {
        e = e.with_details(d.clone());
    }
    Ok(e)
}

/// A call a guest asks for: module, function, arguments; or why its
/// request could not be read.
type Request = Result<(String, String, Vec<Value>), Error>;

/// Reads a call's request from the import's parameters `P`; also returns
/// the guest's `out` pointer.
type ReadRequest<P> = fn(&mut Caller<'_, Host>, P) -> wasmtime::Result<(Request, i32)>;

/// Reads what the guest passed at `(ptr, len)`: a trap, or a value or the
/// error the guest gets.
type Reader<T> = fn(&mut Caller<'_, Host>, i32, i32) -> wasmtime::Result<Result<T, Error>>;

/// Defines the async import `name`, whose parameters `P` end with the
/// guest's `out` pointer: `request` reads what the guest asks for from
/// them (and says where `out` is), the call runs like [`dispatch`] and its
/// outcome is written at `out`.
fn define_call<P>(
    linker: &mut Linker<Host>,
    name: &str,
    request: ReadRequest<P>,
) -> wasmtime::Result<()>
where
    P: wasmtime::WasmTyList + Send + 'static,
{
    linker.func_wrap_async(
        NAMESPACE,
        name,
        move |mut caller: Caller<'_, Host>, params: P| {
            Box::new(async move {
                let (request, out) = request(&mut caller, params)?;
                call_and_respond(&mut caller, out, request).await
            })
        },
    )?;
    Ok(())
}

/// Two texts and a value the guest passed as three `(ptr, len)` pairs, the
/// value read by `third`. A buffer outside the guest's memory traps; the
/// first bad one of the three is the error for the guest.
fn read_two_texts_and<T>(
    caller: &mut Caller<'_, Host>,
    [first, second, last]: [(i32, i32); 3],
    third: Reader<T>,
) -> wasmtime::Result<Result<(String, String, T), Error>> {
    let a = abi::read_str(caller, first.0, first.1)?;
    let b = abi::read_str(caller, second.0, second.1)?;
    let c = third(caller, last.0, last.1)?;
    Ok(a.and_then(|a| Ok((a, b?, c?))))
}

/// Defines the `troupe` imports in `linker`.
pub(crate) fn define(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    define_call(
        linker,
        "call",
        |caller, (mp, ml, fp, fl, ap, al, out): (i32, i32, i32, i32, i32, i32, i32)| {
            let request =
                read_two_texts_and(caller, [(mp, ml), (fp, fl), (ap, al)], abi::read_args)?;
            Ok((request, out))
        },
    )?;
    define_call(
        linker,
        "send",
        |caller, (tp, tl, sp, sl, pp, pl, out): (i32, i32, i32, i32, i32, i32, i32)| {
            let read = read_two_texts_and(caller, [(tp, tl), (sp, sl), (pp, pl)], abi::read_value)?;
            let request = read.map(|(to, topic, payload)| {
                let args = vec![Value::from(to), Value::from(topic), payload];
                ("process".to_owned(), "send".to_owned(), args)
            });
            Ok((request, out))
        },
    )?;
    define_call(
        linker,
        "receive",
        |caller, (tp, tl, timeout, out): (i32, i32, i64, i32)| {
            let request = abi::read_str(caller, tp, tl)?.map(|t| {
                let topic = if t.is_empty() {
                    Value::Nil
                } else {
                    Value::from(t)
                };
                let timeout = if timeout < 0 {
                    Value::Nil
                } else {
                    Value::Int(timeout)
                };
                (
                    "process".to_owned(),
                    "receive".to_owned(),
                    vec![topic, timeout],
                )
            });
            Ok((request, out))
        },
    )?;
    define_call(linker, "sleep", |_, (ms, out): (i64, i32)| {
        let request = Ok(("time".to_owned(), "sleep".to_owned(), vec![Value::Int(ms)]));
        Ok((request, out))
    })?;
    linker.func_wrap_async(
        NAMESPACE,
        "self",
        |mut caller: Caller<'_, Host>, (out,): (i32,)| {
            Box::new(async move {
                let pid = caller.data().ctx.pid.to_string();
                abi::respond_bytes(&mut caller, out, pid.as_bytes()).await?;
                Ok(Status::Ok as i32)
            })
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fail",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let error = abi::read_value(&mut caller, ptr, len)?
                .and_then(|v| guest_error(&v))
                .unwrap_or_else(|e| e);
            Err(wasmtime::Error::new(error))
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "log",
        |mut caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let text = abi::read_str(&mut caller, ptr, len)?
                .unwrap_or_else(|e| format!("<{}>", e.message()));
            let ctx = &caller.data().ctx;
            let (pid, key) = (ctx.pid, ctx.key.as_str());
            match level {
                i32::MIN..=0 => tracing::debug!(target: "troupe::wasm", %pid, key, "{text}"),
                1 => tracing::info!(target: "troupe::wasm", %pid, key, "{text}"),
                2 => tracing::warn!(target: "troupe::wasm", %pid, key, "{text}"),
                _ => tracing::error!(target: "troupe::wasm", %pid, key, "{text}"),
            }
            Ok(())
        },
    )?;
    Ok(())
}
