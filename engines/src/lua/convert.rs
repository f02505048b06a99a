//! Conversions between Lua values and Troupe's neutral [`Value`].

use std::collections::BTreeMap;

use mlua::{IntoLua, Lua, Table, ffi};
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

/// Neutral values nested deeper than this are refused on their way into
/// Lua (far beyond what [`to_value`] or a decoder makes).
const MAX_PUSH_DEPTH: usize = 512;

/// Converts a neutral value into a Lua value. Bytes become Lua strings.
///
/// A string or a table is built in one protected call through the C API
/// (a message's map is three keys and a payload: one `pcall` instead of
/// one per string and per table slot, as mlua's safe constructors do).
pub(crate) fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Nil => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Int(i) => mlua::Value::Integer(*i),
        Value::Float(f) => mlua::Value::Number(*f),
        // SAFETY: `push` leaves exactly one value on the stack and holds
        // nothing that needs dropping, so a Lua error (out of memory)
        // unwinding through it to `exec_raw`'s protected call is sound.
        _ => unsafe { lua.exec_raw::<mlua::Value>((), |state| push(state, v, 0)) }?,
    })
}

/// Pushes `v` onto `state`'s stack, tables built in place.
///
/// # Safety
/// `state` is a live Lua state in a protected call (errors are raised
/// with `lua_error`); the frames between here and that call hold no value
/// with a destructor.
unsafe fn push(state: *mut ffi::lua_State, v: &Value, depth: usize) {
    // SAFETY: the caller's contract; every C API call below gets the state
    // it was given and a stack checked for three more slots.
    unsafe {
        if depth > MAX_PUSH_DEPTH || ffi::lua_checkstack(state, 3) == 0 {
            ffi::lua_pushstring(state, c"value nested too deep for a Lua table".as_ptr());
            ffi::lua_error(state);
        }
        match v {
            Value::Nil => ffi::lua_pushnil(state),
            Value::Bool(b) => ffi::lua_pushboolean(state, i32::from(*b)),
            Value::Int(i) => ffi::lua_pushinteger(state, *i),
            Value::Float(f) => ffi::lua_pushnumber(state, *f),
            Value::String(s) => push_bytes(state, s.as_bytes()),
            Value::Bytes(b) => push_bytes(state, b),
            Value::Array(a) => {
                ffi::lua_createtable(state, size_hint(a.len()), 0);
                for (i, x) in (1..).zip(a) {
                    push(state, x, depth + 1);
                    ffi::lua_rawseti(state, -2, i);
                }
            }
            Value::Map(m) => {
                ffi::lua_createtable(state, 0, size_hint(m.len()));
                for (k, x) in m {
                    push_bytes(state, k.as_bytes());
                    push(state, x, depth + 1);
                    ffi::lua_rawset(state, -3);
                }
            }
        }
    }
}

/// # Safety
/// As [`push`].
unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
    // SAFETY: the caller's contract; `b` is valid for `b.len()` bytes.
    unsafe { ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len()) };
}

/// A table's preallocation for `n` entries (a hint: capped, never wrong).
fn size_hint(n: usize) -> std::ffi::c_int {
    std::ffi::c_int::try_from(n).unwrap_or(std::ffi::c_int::MAX)
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

/// A module function's arguments as its callback receives them: read
/// straight off the Lua stack when every one is nil, a boolean, a number or
/// a string (the common case: pids, topics, counts), with no registry
/// reference made and dropped per string; otherwise as mlua values, for
/// [`to_value`] to walk (tables, error objects, userdata).
pub(crate) enum StackArgs {
    /// Every argument, converted.
    Plain(Vec<Value>),
    /// At least one argument needs the full conversion.
    Lua(mlua::MultiValue),
}

impl mlua::FromLuaMulti for StackArgs {
    fn from_lua_multi(values: mlua::MultiValue, _: &Lua) -> mlua::Result<Self> {
        Ok(StackArgs::Lua(values))
    }

    unsafe fn from_stack_args(
        nargs: std::ffi::c_int,
        i: usize,
        to: Option<&str>,
        lua: &mlua::state::RawLua,
    ) -> mlua::Result<Self> {
        let state = lua.state();
        // SAFETY: mlua calls this with the `nargs` arguments on top of the
        // stack of `state`; these only read them (`lua_tolstring` only on
        // strings, so nothing is converted in place) and raise nothing.
        unsafe {
            let plain = (1..=nargs).all(|k| {
                matches!(
                    ffi::lua_type(state, -k),
                    ffi::LUA_TNIL | ffi::LUA_TBOOLEAN | ffi::LUA_TNUMBER | ffi::LUA_TSTRING
                )
            });
            if !plain {
                return mlua::MultiValue::from_stack_args(nargs, i, to, lua).map(StackArgs::Lua);
            }
            let mut values = Vec::with_capacity(usize::try_from(nargs).unwrap_or(0));
            for at in -nargs..0 {
                values.push(match ffi::lua_type(state, at) {
                    ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(state, at) != 0),
                    ffi::LUA_TNUMBER if ffi::lua_isinteger(state, at) != 0 => {
                        Value::Int(ffi::lua_tointeger(state, at))
                    }
                    ffi::LUA_TNUMBER => Value::Float(ffi::lua_tonumber(state, at)),
                    ffi::LUA_TSTRING => {
                        let mut len = 0;
                        let at_bytes = ffi::lua_tolstring(state, at, &mut len);
                        let bytes = std::slice::from_raw_parts(at_bytes.cast::<u8>(), len);
                        match std::str::from_utf8(bytes) {
                            Ok(text) => Value::String(text.to_owned()),
                            Err(_) => Value::Bytes(bytes.to_vec()),
                        }
                    }
                    _ => Value::Nil,
                });
            }
            Ok(StackArgs::Plain(values))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reach_lua_as_tables_and_come_back_the_same() {
        let lua = Lua::new();
        let v = Value::Map(BTreeMap::from([
            ("from".to_owned(), Value::from("<0.7>")),
            ("topic".to_owned(), Value::from("ping")),
            (
                "payload".to_owned(),
                Value::Array(vec![Value::Int(1), Value::Float(2.5), Value::Bool(true)]),
            ),
            ("raw".to_owned(), Value::Bytes(vec![0, 255])),
        ]));
        let back = to_value(&to_lua(&lua, &v).unwrap()).unwrap();
        let expected = Value::Map(BTreeMap::from([
            ("from".to_owned(), Value::from("<0.7>")),
            ("topic".to_owned(), Value::from("ping")),
            (
                "payload".to_owned(),
                Value::Array(vec![Value::Int(1), Value::Float(2.5), Value::Bool(true)]),
            ),
            ("raw".to_owned(), Value::Bytes(vec![0, 255])),
        ]));
        assert_eq!(back, expected);
    }

    #[test]
    fn a_value_nested_too_deep_is_an_error_not_a_crash() {
        let lua = Lua::new();
        let mut v = Value::Int(1);
        for _ in 0..10_000 {
            v = Value::Array(vec![v]);
        }
        let err = to_lua(&lua, &v).unwrap_err();
        assert!(err.to_string().contains("nested too deep"), "{err}");
        // The state is still usable.
        assert_eq!(lua.load("return 1 + 1").eval::<i64>().unwrap(), 2);
    }

    #[test]
    fn running_out_of_memory_while_building_a_table_is_an_error() {
        let lua = Lua::new();
        let big = Value::Array(vec![Value::from("x".repeat(1024)); 4096]);
        lua.set_memory_limit(lua.used_memory() + 64 * 1024).unwrap();
        let err = to_lua(&lua, &big).unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)), "{err}");
    }

    #[test]
    fn plain_arguments_read_off_the_stack_convert_as_the_full_path_does() {
        let lua = Lua::new();
        let both = lua
            .create_function(|_, args: StackArgs| {
                let StackArgs::Plain(fast) = args else {
                    return Ok(None);
                };
                Ok(Some(format!("{fast:?}")))
            })
            .unwrap();
        let full = lua
            .create_function(|_, args: mlua::MultiValue| {
                let values: Result<Vec<_>, _> = args.iter().map(to_value).collect();
                Ok(format!("{:?}", values.map_err(mlua::Error::external)?))
            })
            .unwrap();
        lua.globals().set("fast", both).unwrap();
        lua.globals().set("full", full).unwrap();
        let same: bool = lua
            .load(
                r#"
                local function same(...) return fast(...) == full(...) end
                return same("<b.0.42>", "msg", 7, 2.5, true, false, nil, "\255bytes", -0.0, 2^63)
                  and same() and same(nil, nil)
                "#,
            )
            .eval()
            .unwrap();
        assert!(same);
        // A table among them takes the full path.
        let fast: Option<String> = lua.load(r#"return fast(1, {2})"#).eval().unwrap();
        assert_eq!(fast, None);
        let bytes: String = lua.load(r#"return fast("\255")"#).eval().unwrap();
        assert_eq!(bytes, "[Bytes([255])]");
    }
}
