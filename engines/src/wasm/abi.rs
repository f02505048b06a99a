//! The guest ABI (see `docs/wasm-abi.md`): MessagePack values in linear
//! memory, buffers from the guest's `alloc`, and the two calling
//! conventions of exported functions.

use troupe_dispatcher::{Error, Value};
use wasmtime::{AsContextMut, Caller, Extern, Func, Instance, Memory, TypedFunc, Val, ValType};

use super::host::Host;

/// The export a process calls when its spawn names no entry.
pub(crate) const DEFAULT_ENTRY: &str = "run";
/// The guest's linear memory export.
const MEMORY: &str = "memory";
/// The guest's allocator export: `(func (param i32) (result i32))`.
const ALLOC: &str = "alloc";

/// What a host function returns: whether the buffer written to `out` holds
/// the result or a structured error.
#[derive(Clone, Copy)]
#[repr(i32)]
pub(crate) enum Status {
    Ok = 0,
    Error = 1,
}

/// A guest's misuse of the ABI: traps the guest with an `INVALID` error.
fn misuse(msg: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(Error::invalid(msg.into()))
}

/// The memory and allocator a guest exports.
struct Exports {
    memory: Memory,
    alloc: Option<TypedFunc<i32, i32>>,
}

fn caller_exports(caller: &mut Caller<'_, Host>) -> wasmtime::Result<Exports> {
    let memory = match caller.get_export(MEMORY) {
        Some(Extern::Memory(m)) => m,
        _ => {
            return Err(misuse(
                "the guest must export its linear memory as \"memory\"",
            ));
        }
    };
    let alloc = match caller.get_export(ALLOC) {
        Some(Extern::Func(f)) => Some(f.typed::<i32, i32>(&*caller).map_err(|_| {
            misuse("the guest's \"alloc\" must be (func (param i32) (result i32))")
        })?),
        _ => None,
    };
    Ok(Exports { memory, alloc })
}

fn instance_exports(
    store: &mut impl AsContextMut<Data = Host>,
    instance: &Instance,
) -> wasmtime::Result<Exports> {
    let memory = instance
        .get_memory(&mut *store, MEMORY)
        .ok_or_else(|| misuse("the guest must export its linear memory as \"memory\""))?;
    let alloc = match instance.get_func(&mut *store, ALLOC) {
        Some(f) => Some(f.typed::<i32, i32>(&*store).map_err(|_| {
            misuse("the guest's \"alloc\" must be (func (param i32) (result i32))")
        })?),
        None => None,
    };
    Ok(Exports { memory, alloc })
}

/// Bytes `[ptr, ptr + len)` of the guest's memory; out of bounds traps.
fn read_bytes(
    store: &mut impl AsContextMut<Data = Host>,
    memory: Memory,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(&*store)
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            misuse(format!(
                "buffer {start}+{len} is outside the guest's memory"
            ))
        })
}

/// Copies `bytes` into a buffer from the guest's `alloc`; returns its
/// address.
async fn write_bytes(
    store: &mut impl AsContextMut<Data = Host>,
    exports: &Exports,
    bytes: &[u8],
) -> wasmtime::Result<u32> {
    let alloc = exports
        .alloc
        .as_ref()
        .ok_or_else(|| misuse("the guest must export \"alloc\" to receive values"))?;
    let len = i32::try_from(bytes.len()).map_err(|_| misuse("value too large for the guest"))?;
    let ptr = alloc.call_async(&mut *store, len).await? as u32;
    exports
        .memory
        .write(&mut *store, ptr as usize, bytes)
        .map_err(|_| {
            misuse(format!(
                "\"alloc\" returned {ptr}, outside the guest's memory"
            ))
        })?;
    Ok(ptr)
}

/// Reads UTF-8 text the guest passed. Bad UTF-8 is an error for the guest;
/// a buffer outside its memory traps.
pub(crate) fn read_str(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<String, Error>> {
    let memory = caller_exports(caller)?.memory;
    let bytes = read_bytes(caller, memory, ptr, len)?;
    Ok(
        String::from_utf8(bytes)
            .map_err(|_| Error::invalid("text passed to the host is not UTF-8")),
    )
}

/// Reads a MessagePack value the guest passed (`len` 0 is nil).
pub(crate) fn read_value(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<Value, Error>> {
    if len == 0 {
        return Ok(Ok(Value::Nil));
    }
    let memory = caller_exports(caller)?.memory;
    let bytes = read_bytes(caller, memory, ptr, len)?;
    Ok(Value::from_msgpack(&bytes))
}

/// Reads a MessagePack array of arguments (`len` 0 or nil: none).
pub(crate) fn read_args(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<Vec<Value>, Error>> {
    Ok(read_value(caller, ptr, len)?.and_then(|v| match v {
        Value::Nil => Ok(Vec::new()),
        Value::Array(a) => Ok(a),
        other => Err(Error::invalid(format!(
            "call arguments must be a MessagePack array, not {}",
            other.type_name()
        ))),
    }))
}

/// Writes `value` as MessagePack into a fresh guest buffer; see
/// [`respond_bytes`].
pub(crate) async fn respond(
    caller: &mut Caller<'_, Host>,
    out: i32,
    value: &Value,
) -> wasmtime::Result<()> {
    respond_bytes(caller, out, &value.to_msgpack()).await
}

/// Writes `bytes` into a fresh guest buffer and its address and length (two
/// little-endian u32, so one i64 load reads `ptr | (len << 32)`) at `out`.
pub(crate) async fn respond_bytes(
    caller: &mut Caller<'_, Host>,
    out: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let exports = caller_exports(caller)?;
    let ptr = write_bytes(caller, &exports, bytes).await?;
    let mut pair = [0u8; 8];
    pair[..4].copy_from_slice(&ptr.to_le_bytes());
    pair[4..].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    exports
        .memory
        .write(&mut *caller, out as u32 as usize, &pair)
        .map_err(|_| misuse(format!("result slot {out} is outside the guest's memory")))
}

/// How an exported function takes arguments and gives its result.
enum Convention {
    /// `(param i32 i32) (result i64)`: a MessagePack array of the arguments
    /// in, a packed `ptr | (len << 32)` MessagePack result out.
    Msgpack,
    /// Numbers in, at most one number out.
    Numeric(Vec<ValType>, Vec<ValType>),
}

fn is_number(t: &ValType) -> bool {
    matches!(t, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64)
}

fn convention(
    store: &impl AsContextMut<Data = Host>,
    name: &str,
    f: &Func,
) -> Result<Convention, Error> {
    let ty = f.ty(store);
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    if matches!(params.as_slice(), [ValType::I32, ValType::I32])
        && matches!(results.as_slice(), [ValType::I64])
    {
        return Ok(Convention::Msgpack);
    }
    if params.iter().all(is_number) && results.iter().all(is_number) {
        return Ok(Convention::Numeric(params, results));
    }
    Err(Error::invalid(format!(
        "export {name:?} has signature {ty}: only numbers, or (i32, i32) -> i64 for MessagePack, can be called"
    )))
}

/// Argument `i` as a wasm value of type `ty`.
fn to_val(i: usize, v: &Value, ty: &ValType) -> Result<Val, Error> {
    let bad = || {
        Error::invalid(format!(
            "argument #{}: expected {ty}, got {}",
            i + 1,
            v.type_name()
        ))
    };
    Ok(match (ty, v) {
        (ValType::I32, Value::Int(n)) => Val::I32(i32::try_from(*n).map_err(|_| bad())?),
        (ValType::I32, Value::Bool(b)) => Val::I32(i32::from(*b)),
        (ValType::I64, Value::Int(n)) => Val::I64(*n),
        (ValType::I64, Value::Bool(b)) => Val::I64(i64::from(*b)),
        (ValType::F32, Value::Int(n)) => Val::F32((*n as f32).to_bits()),
        (ValType::F32, Value::Float(f)) => Val::F32((*f as f32).to_bits()),
        (ValType::F64, Value::Int(n)) => Val::F64((*n as f64).to_bits()),
        (ValType::F64, Value::Float(f)) => Val::F64(f.to_bits()),
        _ => return Err(bad()),
    })
}

fn from_val(v: &Val) -> Value {
    match v {
        Val::I32(n) => Value::Int(i64::from(*n)),
        Val::I64(n) => Value::Int(*n),
        Val::F32(bits) => Value::Float(f64::from(f32::from_bits(*bits))),
        Val::F64(bits) => Value::Float(f64::from_bits(*bits)),
        _ => Value::Nil,
    }
}

/// Calls export `name` with `args` under its calling convention. Guest
/// traps and ABI misuse are the outer error; a bad call (unknown export,
/// unsupported signature, wrong arguments) the inner one.
pub(crate) async fn invoke(
    store: &mut impl AsContextMut<Data = Host>,
    instance: &Instance,
    name: &str,
    args: Vec<Value>,
) -> wasmtime::Result<Result<Value, Error>> {
    let Some(func) = instance.get_func(&mut *store, name) else {
        return Ok(Err(Error::not_found(format!(
            "the module exports no function {name:?}"
        ))));
    };
    match convention(&*store, name, &func) {
        Err(e) => Ok(Err(e)),
        Ok(Convention::Msgpack) => {
            let exports = instance_exports(store, instance)?;
            let bytes = Value::Array(args).to_msgpack();
            let ptr = write_bytes(store, &exports, &bytes).await?;
            let params = [Val::I32(ptr as i32), Val::I32(bytes.len() as i32)];
            let mut results = [Val::I64(0)];
            func.call_async(&mut *store, &params, &mut results).await?;
            let packed = results[0].unwrap_i64() as u64;
            let (ptr, len) = (packed as u32 as i32, (packed >> 32) as i32);
            if len == 0 {
                return Ok(Ok(Value::Nil));
            }
            let bytes = read_bytes(store, exports.memory, ptr, len)?;
            Ok(Value::from_msgpack(&bytes))
        }
        Ok(Convention::Numeric(params, results)) => {
            if args.len() != params.len() {
                return Ok(Err(Error::invalid(format!(
                    "{name} takes {} arguments, got {}",
                    params.len(),
                    args.len()
                ))));
            }
            let vals = match args
                .iter()
                .zip(&params)
                .enumerate()
                .map(|(i, (v, t))| to_val(i, v, t))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let mut out: Vec<Val> = results.iter().map(|_| Val::I32(0)).collect();
            func.call_async(&mut *store, &vals, &mut out).await?;
            Ok(Ok(match out.as_slice() {
                [] => Value::Nil,
                [one] => from_val(one),
                many => Value::Array(many.iter().map(from_val).collect()),
            }))
        }
    }
}
