//! Userdata objects of module-defined types ([`troupe_modules::UserType`])
//! as Lua userdata. Every object shares one metatable per Lua state (mlua
//! builds it once and protects it: `getmetatable(obj)` is `false`); it
//! dispatches on the object's type. Method functions are built once per
//! type and method and cached in the state; calling one on anything but an
//! object of its type is an `INVALID` error.

use mlua::{Lua, MetaMethod, MultiValue, UserData, UserDataFields, UserDataMethods};
use troupe_dispatcher::Error;
use troupe_modules::{CallError, Method, Object};

use super::convert::to_lua;
use super::state::{args_from_lua, cached_method, ret_to_lua, with_cx, wrap};

/// An [`Object`] inside Lua.
pub(crate) struct LuaObject(pub Object);

/// The object inside `v`, if `v` is one.
pub(crate) fn from_lua(v: &mlua::Value) -> Option<Object> {
    match v {
        mlua::Value::UserData(ud) => ud.borrow::<LuaObject>().ok().map(|o| o.0.clone()),
        _ => None,
    }
}

/// A Lua type name for error messages: the object type for objects.
fn type_of(v: &mlua::Value) -> String {
    from_lua(v).map_or_else(|| v.type_name().to_owned(), |o| o.type_name().to_owned())
}

/// Calls `method` of the type named `type_name` with `args` (self first).
fn call_method(
    lua: &Lua,
    type_name: &str,
    method: &Method,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    let mut args = args.into_iter();
    let this = args.next().unwrap_or(mlua::Value::Nil);
    let Some(obj) = from_lua(&this) else {
        let msg = format!(
            "{}: expected a {type_name} as self (call it as obj:method(...)), got {}",
            method.qualified(),
            type_of(&this)
        );
        return ret_to_lua(lua, Err(CallError::Raise(Error::invalid(msg))), false);
    };
    let rest: Vec<mlua::Value> = args.collect();
    let args = match args_from_lua(method.qualified(), method.takes_objects(), rest.iter()) {
        Ok(a) => a,
        Err(e) => return ret_to_lua(lua, Err(CallError::Raise(e)), false),
    };
    let result = with_cx(lua, |cx| method.call(cx, &obj, args))?;
    ret_to_lua(lua, result, true)
}

/// `obj.key`: a method function (cached per type and name), a field's
/// current value, or nil.
fn index(lua: &Lua, obj: &Object, key: &mlua::Value) -> mlua::Result<mlua::Value> {
    let Some(key) = key
        .as_string()
        .and_then(|s| s.to_str().ok().map(|s| s.to_owned()))
    else {
        return Ok(mlua::Value::Nil);
    };
    if let Some(method) = obj.method(&key) {
        let type_name = obj.type_name();
        let method = method.clone();
        let f = cached_method(lua, &obj.type_key(), &key, || {
            let raw = lua.create_function(move |lua, args: MultiValue| {
                call_method(lua, type_name, &method, args)
            })?;
            wrap(lua, raw)
        })?;
        return Ok(mlua::Value::Function(f));
    }
    match obj.field(&key) {
        Some(v) => to_lua(lua, &v),
        None => Ok(mlua::Value::Nil),
    }
}

/// A metamethod that raises an `INVALID` error object (through the
/// prelude, so scripts see a structured error).
fn invalid_meta(lua: &Lua, what: &'static str) -> mlua::Result<mlua::Function> {
    let raw = lua.create_function(move |lua, args: MultiValue| {
        let ty = args.front().map_or_else(|| "nil".to_owned(), type_of);
        let msg = format!("{ty} objects are read-only and {what}");
        ret_to_lua(lua, Err(CallError::Raise(Error::invalid(msg))), false)
    })?;
    wrap(lua, raw)
}

impl UserData for LuaObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::NewIndex, |lua| {
            invalid_meta(lua, "cannot be assigned to")
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, this, key: mlua::Value| {
            index(lua, &this.0, &key)
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_display()));
        m.add_meta_method(MetaMethod::Eq, |_, this, other: mlua::Value| {
            Ok(from_lua(&other).is_some_and(|o| this.0.equals(&o)))
        });
        m.add_meta_method(MetaMethod::Len, |_, this, ()| match this.0.length() {
            Some(n) => Ok(n),
            None => Err(mlua::Error::runtime(format!(
                "attempt to get length of a {} value",
                this.0.type_name()
            ))),
        });
    }
}
