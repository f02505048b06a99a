//! Values and errors across the boundary: [`Value`] ↔ `JsValue`, Troupe
//! [`Error`] ↔ JS `Error` objects with `kind`.
//!
//! Numbers: an integral JS number within ±2^53 becomes `Int`, any other
//! number `Float`; an `Int` beyond ±2^53 becomes a `BigInt` (and back).
//! `Bytes` are `Uint8Array`s, `Map`s plain objects (own enumerable string
//! keys), `Nil` is `null` (and `undefined` becomes `Nil`).

use std::collections::BTreeMap;

use boa_engine::object::builtins::{JsArray, JsUint8Array};
use boa_engine::value::JsVariant;
use boa_engine::{
    Context, JsBigInt, JsError, JsNativeError, JsObject, JsResult, JsString, JsValue, js_string,
};
use troupe_dispatcher::{Error, ErrorKind, Value};

/// Largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Deepest nesting converted (cycles end here too).
const MAX_DEPTH: usize = 64;

/// A Troupe value as a JS value.
pub(crate) fn to_js(v: &Value, ctx: &mut Context) -> JsResult<JsValue> {
    Ok(match v {
        Value::Nil => JsValue::null(),
        Value::Bool(b) => JsValue::from(*b),
        Value::Int(i) if (*i as f64).abs() < MAX_SAFE => JsValue::from(*i as f64),
        Value::Int(i) => JsValue::from(JsBigInt::from(*i)),
        Value::Float(f) => JsValue::from(*f),
        Value::String(s) => JsValue::from(JsString::from(s.as_str())),
        Value::Bytes(b) => JsUint8Array::from_iter(b.iter().copied(), ctx)?.into(),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(to_js(item, ctx)?);
            }
            JsArray::from_iter(out, ctx).into()
        }
        Value::Map(m) => {
            let obj = JsObject::with_object_proto(ctx.intrinsics());
            for (k, item) in m {
                let item = to_js(item, ctx)?;
                obj.create_data_property_or_throw(JsString::from(k.as_str()), item, ctx)?;
            }
            obj.into()
        }
    })
}

/// A JS value as a Troupe value; functions and symbols are `INVALID`.
pub(crate) fn from_js(v: &JsValue, ctx: &mut Context) -> Result<Value, Error> {
    convert(v, ctx, 0)
}

fn convert(v: &JsValue, ctx: &mut Context, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(format!(
            "value nested deeper than {MAX_DEPTH} levels (or cyclic)"
        )));
    }
    let js = |e: JsError| Error::invalid(e.to_string());
    Ok(match v.variant() {
        JsVariant::Null | JsVariant::Undefined => Value::Nil,
        JsVariant::Boolean(b) => Value::Bool(b),
        JsVariant::Integer32(i) => Value::Int(i64::from(i)),
        JsVariant::Float64(f) if f.fract() == 0.0 && f.abs() < MAX_SAFE => Value::Int(f as i64),
        JsVariant::Float64(f) => Value::Float(f),
        JsVariant::String(s) => Value::String(s.to_std_string_escaped()),
        JsVariant::BigInt(b) => {
            let text = b.to_string_radix(10);
            Value::Int(
                text.parse().map_err(|_| {
                    Error::invalid(format!("BigInt {text} does not fit in 64 bits"))
                })?,
            )
        }
        JsVariant::Symbol(_) => return Err(Error::invalid("a symbol has no neutral form")),
        JsVariant::Object(obj) => {
            if obj.is_callable() {
                return Err(Error::invalid("a function has no neutral form"));
            }
            if let Ok(bytes) = JsUint8Array::from_object(obj.clone()) {
                return bytes.to_vec(ctx).map(Value::Bytes).map_err(js);
            }
            if obj.is_array() {
                let len = obj
                    .get(js_string!("length"), ctx)
                    .and_then(|l| l.to_length(ctx))
                    .map_err(js)?;
                let mut items = Vec::new();
                for i in 0..len {
                    let item = obj.get(i, ctx).map_err(js)?;
                    items.push(convert(&item, ctx, depth + 1)?);
                }
                return Ok(Value::Array(items));
            }
            // The own enumerable string keys, as `Object.keys` lists them.
            let keys_fn = ctx
                .intrinsics()
                .constructors()
                .object()
                .constructor()
                .get(js_string!("keys"), ctx)
                .map_err(js)?;
            let Some(keys_fn) = keys_fn.as_callable() else {
                return Err(Error::internal("Object.keys is not a function"));
            };
            let keys = keys_fn
                .call(&JsValue::undefined(), &[obj.clone().into()], ctx)
                .map_err(js)?;
            let Value::Array(keys) = convert(&keys, ctx, depth + 1)? else {
                return Err(Error::internal("Object.keys returned no array"));
            };
            let mut map = BTreeMap::new();
            for key in keys {
                let Value::String(name) = key else { continue };
                let item = obj.get(JsString::from(name.as_str()), ctx).map_err(js)?;
                map.insert(name, convert(&item, ctx, depth + 1)?);
            }
            Value::Map(map)
        }
    })
}

/// A Troupe error as a JS `Error` object: `message`, `kind`, `retryable`,
/// `details`; `String(err)` is `Error: KIND: message`.
pub(crate) fn error_object(e: &Error, ctx: &mut Context) -> JsValue {
    let obj = JsNativeError::error()
        .with_message(format!("{}: {}", e.kind().as_str(), e.message()))
        .into_opaque(ctx);
    let details = match e.details() {
        Some(d) => to_js(d, ctx).unwrap_or_default(),
        None => JsValue::undefined(),
    };
    let props = [
        (
            js_string!("kind"),
            JsValue::from(JsString::from(e.kind().as_str())),
        ),
        (
            js_string!("message"),
            JsValue::from(JsString::from(e.message())),
        ),
        (js_string!("retryable"), JsValue::from(e.is_retryable())),
        (js_string!("details"), details),
    ];
    for (k, v) in props {
        let _ = obj.set(k, v, false, ctx);
    }
    obj.into()
}

/// `e` thrown as a JS exception.
pub(crate) fn throw(e: &Error, ctx: &mut Context) -> JsError {
    JsError::from_opaque(error_object(e, ctx))
}

/// The Troupe error for an exception that escaped the script `key`:
/// exceeded runtime limits are `LIMIT_EXCEEDED`; an object with a known
/// `kind` keeps it; anything else is `INTERNAL`. The message starts with
/// the location (`key:line:col`) when boa knows it, which `details.location`
/// also holds, beside `details.stack`.
pub(crate) fn from_js_error(err: JsError, key: &str, ctx: &mut Context) -> Error {
    if let Some(engine) = err.as_engine() {
        return match engine {
            boa_engine::error::EngineError::RuntimeLimit(limit) => {
                Error::new(ErrorKind::LimitExceeded, format!("{key}: {limit}"))
            }
            other => Error::internal(format!("{key}: {other}")),
        };
    }
    let shown = err.to_string();
    let stack: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .collect();
    let location = stack.iter().find_map(|frame| location_in(frame, key));
    let value = err.into_opaque(ctx).unwrap_or_default();
    let (kind, message) = describe(&value, ctx);
    let message = match &location {
        Some(loc) => format!("{loc}: {message}"),
        None => format!("{key}: {message}"),
    };
    let mut details = BTreeMap::new();
    if let Some(loc) = location {
        details.insert("location".to_owned(), Value::String(loc));
    }
    if !stack.is_empty() {
        details.insert("stack".to_owned(), Value::String(stack.join("\n")));
    }
    let e = Error::new(kind, message);
    if details.is_empty() {
        e
    } else {
        e.with_details(Value::Map(details))
    }
}

/// `key:line:col` out of a stack frame like `f (key:3:7)` or `key:3:7`.
fn location_in(frame: &str, key: &str) -> Option<String> {
    let start = frame.find(key)?;
    let rest = &frame[start..];
    let end = rest.find(')').unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// The kind and message of a thrown value.
fn describe(value: &JsValue, ctx: &mut Context) -> (ErrorKind, String) {
    let Some(obj) = value.as_object() else {
        let text = value
            .to_string(ctx)
            .map(|s| s.to_std_string_escaped())
            .unwrap_or_else(|_| "uncaught exception".to_owned());
        return (ErrorKind::Internal, format!("uncaught {text}"));
    };
    let text = |name, ctx: &mut Context| {
        obj.get(name, ctx)
            .ok()
            .filter(|v| !v.is_undefined())
            .and_then(|v| v.to_string(ctx).ok())
            .map(|s| s.to_std_string_escaped())
    };
    let kind = text(js_string!("kind"), ctx).and_then(|k| ErrorKind::parse(&k));
    let message = text(js_string!("message"), ctx).unwrap_or_default();
    match kind {
        Some(kind) => (kind, message),
        None => {
            let name = text(js_string!("name"), ctx).unwrap_or_else(|| "Error".to_owned());
            (ErrorKind::Internal, format!("{name}: {message}"))
        }
    }
}
