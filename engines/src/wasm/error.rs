//! Turning what ends a guest call (a trap, an exhausted limit, a host error)
//! into a structured [`Error`] with a kind and a location.

use std::collections::BTreeMap;

use troupe_dispatcher::{Error, ErrorKind, Value};
use wasmtime::{Trap, WasmBacktrace};

use super::host::{Host, memory_exceeded};

/// Where the guest was: `{function, offset}` of the innermost wasm frame,
/// the trap's name and the backtrace.
fn location(e: &wasmtime::Error, trap: Option<&Trap>) -> Option<Value> {
    let bt = e.downcast_ref::<WasmBacktrace>()?;
    let frame = bt.frames().first()?;
    let mut map = BTreeMap::new();
    let function = frame
        .func_name()
        .map_or_else(|| format!("func[{}]", frame.func_index()), str::to_owned);
    map.insert("function".to_owned(), Value::from(function));
    if let Some(offset) = frame.module_offset() {
        map.insert("offset".to_owned(), Value::Int(offset as i64));
    }
    if let Some(t) = trap {
        map.insert("trap".to_owned(), Value::from(format!("{t:?}")));
    }
    map.insert("backtrace".to_owned(), Value::from(bt.to_string()));
    Some(Value::Map(map))
}

/// The structured error for a failed guest call in a store holding `host`.
pub(crate) fn from_wasmtime(
    e: &wasmtime::Error,
    host: &Host,
    max_instructions: Option<u64>,
) -> Error {
    let trap = e.downcast_ref::<Trap>();
    let base = if let Some(own) = e.downcast_ref::<Error>() {
        own.clone()
    } else if host.limiter.exceeded {
        memory_exceeded(host.limiter.max_memory.unwrap_or_default())
    } else {
        match trap {
            Some(Trap::OutOfFuel) => Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "instruction limit of {} exceeded",
                    max_instructions.unwrap_or(u64::MAX)
                ),
            ),
            Some(Trap::StackOverflow) => {
                Error::new(ErrorKind::LimitExceeded, "wasm stack limit exceeded")
            }
            Some(t) => Error::internal(format!("wasm trap in {}: {t}", host.ctx.key)),
            None => Error::internal(format!("wasm failure in {}: {e:#}", host.ctx.key)),
        }
    };
    match (base.details(), location(e, trap)) {
        (None, Some(loc)) => base.with_details(loc),
        _ => base,
    }
}
