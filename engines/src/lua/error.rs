//! The structured error object scripts see: `err:kind()`, `err:message()`,
//! `err:retryable()`, `err:details()`, and `tostring(err) == "KIND: message"`.

use mlua::{Lua, MetaMethod, UserData, UserDataMethods};
use troupe_dispatcher::Error;

use super::convert;

/// A Troupe [`Error`] as a Lua userdata.
#[derive(Clone, Debug)]
pub(crate) struct LuaError(pub Error);

impl UserData for LuaError {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("kind", |_, this, ()| Ok(this.0.kind().as_str()));
        m.add_method("message", |_, this, ()| Ok(this.0.message().to_owned()));
        m.add_method("retryable", |_, this, ()| Ok(this.0.is_retryable()));
        m.add_method("details", |lua: &Lua, this, ()| match this.0.details() {
            Some(d) => convert::to_lua(lua, d),
            None => Ok(mlua::Value::Nil),
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
        m.add_meta_method(MetaMethod::Eq, |_, this, other: mlua::AnyUserData| {
            Ok(other.borrow::<LuaError>().is_ok_and(|o| o.0 == this.0))
        });
    }
}

/// The error object inside `v`, if `v` is one.
pub(crate) fn from_lua(v: &mlua::Value) -> Option<Error> {
    match v {
        mlua::Value::UserData(ud) => ud.borrow::<LuaError>().ok().map(|e| e.0.clone()),
        _ => None,
    }
}
