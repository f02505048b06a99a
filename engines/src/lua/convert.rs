//! Conversions between Lua values and Troupe's neutral [`Value`].

use std::collections::BTreeMap;

use mlua::{IntoLua, Lua, Table};
use troupe_dispatcher::{Error, Value};

use super::error::{self, LuaError};

/// Tables nested deeper than this are refused.
const MAX_DEPTH: usize = 100;

/// Converts a Lua value. Sequences (keys exactly `1..n`) become arrays, other
/// tables maps with string keys (integer keys are written as text); error
/// objects become `{kind, message, retryable, details?}`. Functions,
/// coroutines, other userdata and cyclic tables are `INVALID`. The result
/// is a deep copy: a table reached twice (not in a cycle) is copied twice.
pub(crate) fn to_value(v: &mlua::Value) -> Result<Value, Error> {
    convert(v, &mut Vec::new())
}

/// `path` holds the tables being converted, outermost first: meeting one of
/// them again is a cycle.
fn convert(v: &mlua::Value, path: &mut Vec<*const std::ffi::c_void>) -> Result<Value, Error> {
    Ok(match v {
        mlua::Value::Nil => Value::Nil,
        mlua::Value::Boolean(b) => Value::Bool(*b),
        mlua::Value::Integer(i) => Value::Int(*i),
        mlua::Value::Number(n) => Value::Float(*n),
        mlua::Value::String(s) => match s.to_str() {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => Value::Bytes(s.as_bytes().to_vec()),
        },
        mlua::Value::Table(t) => {
            let at = t.to_pointer();
            if path.contains(&at) {
                return Err(Error::invalid(
                    "cannot convert a table that contains itself (a cycle)",
                ));
            }
            path.push(at);
            let v = table(t, path);
            path.pop();
            v?
        }
        mlua::Value::UserData(_) => match error::from_lua(v) {
            Some(e) => e.to_value(),
            None => return Err(Error::invalid("cannot convert userdata to a value")),
        },
        other => {
            return Err(Error::invalid(format!(
                "cannot convert {} to a value",
                other.type_name()
            )));
        }
    })
}

fn table(t: &Table, path: &mut Vec<*const std::ffi::c_void>) -> Result<Value, Error> {
    if path.len() > MAX_DEPTH {
        return Err(Error::invalid(format!(
            "table nested deeper than {MAX_DEPTH} levels (is it cyclic?)"
        )));
    }
    let lua_err = |e: mlua::Error| Error::invalid(format!("cannot read table: {e}"));
    let len = t.raw_len();
    let mut array = Vec::with_capacity(len);
    for i in 1..=len {
        array.push(convert(
            &t.raw_get::<mlua::Value>(i).map_err(lua_err)?,
            path,
        )?);
    }
    let mut map: Option<BTreeMap<String, Value>> = None;
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair.map_err(lua_err)?;
        if let mlua::Value::Integer(i) = k
            && i >= 1
            && (i as usize) <= len
        {
            continue;
        }
        let key = match &k {
            mlua::Value::String(s) => s
                .to_str()
                .map_err(|_| Error::invalid("table key is not UTF-8"))?
                .to_owned(),
            mlua::Value::Integer(i) => i.to_string(),
            mlua::Value::Number(n) => n.to_string(),
            other => {
                return Err(Error::invalid(format!(
                    "cannot convert a table with {} keys",
                    other.type_name()
                )));
            }
        };
        map.get_or_insert_with(BTreeMap::new)
            .insert(key, convert(&v, path)?);
    }
    Ok(match map {
        None if len > 0 => Value::Array(array),
        None => Value::Map(BTreeMap::new()),
        Some(mut m) => {
            for (i, v) in array.into_iter().enumerate() {
                m.insert((i + 1).to_string(), v);
            }
            Value::Map(m)
        }
    })
}

/// Converts a neutral value into a Lua value. Bytes become Lua strings.
pub(crate) fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Nil => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Int(i) => mlua::Value::Integer(*i),
        Value::Float(f) => mlua::Value::Number(*f),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Bytes(b) => mlua::Value::String(lua.create_string(b)?),
        // One table construction each (keys pushed as they are), rather
        // than a `raw_set` per entry.
        Value::Array(a) => mlua::Value::Table(lua.create_sequence_from(a.iter().map(Neutral))?),
        Value::Map(m) => mlua::Value::Table(
            lua.create_table_from(m.iter().map(|(k, v)| (k.as_str(), Neutral(v))))?,
        ),
    })
}

/// A neutral value on its way into a Lua table.
pub(crate) struct Neutral<'a>(pub &'a Value);

impl IntoLua for Neutral<'_> {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        to_lua(lua, self.0)
    }
}

/// Wraps an error as a Lua error object.
pub(crate) fn error_to_lua(lua: &Lua, e: Error) -> mlua::Result<mlua::Value> {
    lua.create_userdata(LuaError(e)).map(mlua::Value::UserData)
}
