//! Typed module functions: arguments extracted into Rust types by position
//! ([`FromArg`], [`FromArgs`] over tuples), results converted back
//! ([`IntoRet`]), and commands whose handler results reach the script
//! through [`ModuleCommand::handle_result`].

use std::collections::BTreeMap;
use std::sync::Arc;

use troupe_dispatcher::{Call, Command, Error, Value, from_value, to_value};

use crate::types::{Signature, Type};
use crate::userdata::{Obj, Object, UserData};
use crate::{ArgError, Args, CallError, Ret};

/// One argument, read from its position. A wrong value is an [`ArgError`]
/// naming the function, the position and the expected type.
pub trait FromArg: Sized {
    /// Whether this reads a userdata object: a function whose arguments do
    /// gets objects in [`Args::object`]; for any other function an object
    /// argument is an `INVALID` error, as any unconvertible value is.
    const OBJECT: bool = false;

    /// Whether this takes every remaining argument (Lua's `...`).
    const VARIADIC: bool = false;

    /// The argument's type in a type manifest.
    fn manifest_type() -> Type {
        Type::Any
    }

    /// Reads argument `i` (0-based) of `args`.
    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError>;
}

impl FromArg for String {
    fn manifest_type() -> Type {
        Type::String
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.string(i)
    }
}

impl FromArg for i64 {
    fn manifest_type() -> Type {
        Type::Integer
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.int(i)
    }
}

impl FromArg for f64 {
    fn manifest_type() -> Type {
        Type::Number
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.number(i)
    }
}

impl FromArg for bool {
    fn manifest_type() -> Type {
        Type::Boolean
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.boolean(i)
    }
}

/// Any value, `nil` included: never fails.
impl FromArg for Value {
    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        Ok(args.take(i))
    }
}

/// A table with string keys.
impl FromArg for BTreeMap<String, Value> {
    fn manifest_type() -> Type {
        Type::map()
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.map(i)
    }
}

/// A sequence (an empty table counts).
impl FromArg for Vec<Value> {
    fn manifest_type() -> Type {
        Type::array(Type::Any)
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        match args.get(i) {
            Value::Array(_) => match args.take(i) {
                Value::Array(a) => Ok(a),
                _ => Ok(Vec::new()),
            },
            Value::Map(m) if m.is_empty() => Ok(Vec::new()),
            _ => Err(args.error(i, "table")),
        }
    }
}

/// A Lua string as raw bytes (text or binary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl FromArg for Bytes {
    fn manifest_type() -> Type {
        Type::String
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.bytes(i).map(Bytes)
    }
}

/// Every argument from this position on (Lua's `...`); must come last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rest(pub Vec<Value>);

impl FromArg for Rest {
    const VARIADIC: bool = true;

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        Ok(Rest(args.rest(i)))
    }
}

/// `nil` (or a missing argument) is `None`; anything else must convert.
impl<T: FromArg> FromArg for Option<T> {
    const OBJECT: bool = T::OBJECT;

    fn manifest_type() -> Type {
        Type::optional(T::manifest_type())
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        if args.get(i).is_nil() && args.object(i).is_none() {
            Ok(None)
        } else {
            T::from_arg(args, i).map(Some)
        }
    }
}

/// A userdata object of type `T`.
impl<T: UserData> FromArg for Obj<T> {
    const OBJECT: bool = true;

    fn manifest_type() -> Type {
        Type::named(T::NAME)
    }

    fn from_arg(args: &mut Args, i: usize) -> Result<Self, ArgError> {
        args.object(i)
            .and_then(Obj::<T>::from_object)
            .ok_or_else(|| args.error(i, T::NAME))
    }
}

/// All the arguments of a call: a tuple of [`FromArg`] types, read by
/// position (extra arguments are ignored, as Lua does), or [`Args`] itself.
pub trait FromArgs: Sized {
    /// Whether any argument is a userdata object (see [`FromArg::OBJECT`]).
    const OBJECTS: bool = false;

    /// The parameters as a manifest signature (named `arg1`, `arg2`, …),
    /// when they are typed; `None` for [`Args`].
    fn signature() -> Option<Signature> {
        None
    }

    /// Reads the arguments.
    fn from_args(args: Args) -> Result<Self, ArgError>;
}

impl FromArgs for Args {
    fn from_args(args: Args) -> Result<Self, ArgError> {
        Ok(args)
    }
}

impl FromArgs for () {
    fn signature() -> Option<Signature> {
        Some(Signature::default())
    }

    fn from_args(_args: Args) -> Result<Self, ArgError> {
        Ok(())
    }
}

macro_rules! tuple_from_args {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromArg),+> FromArgs for ($($t,)+) {
            const OBJECTS: bool = $($t::OBJECT)||+;

            fn signature() -> Option<Signature> {
                let mut sig = Signature::default();
                $(
                    sig = if $t::VARIADIC {
                        sig.variadic(Type::Any)
                    } else {
                        sig.param(format!("arg{}", $i + 1), $t::manifest_type())
                    };
                )+
                Some(sig)
            }

            fn from_args(mut args: Args) -> Result<Self, ArgError> {
                Ok(($($t::from_arg(&mut args, $i)?,)+))
            }
        }
    };
}

tuple_from_args!(A 0);
tuple_from_args!(A 0, B 1);
tuple_from_args!(A 0, B 1, C 2);
tuple_from_args!(A 0, B 1, C 2, D 3);
tuple_from_args!(A 0, B 1, C 2, D 3, E 4);
tuple_from_args!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_args!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_args!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

impl Args {
    /// Reads the arguments as `T` (a tuple of [`FromArg`] types):
    /// `let (name, greeting): (String, Option<String>) = args.parse()?;`
    pub fn parse<T: FromArgs>(self) -> Result<T, ArgError> {
        T::from_args(self)
    }
}

/// What a typed module function may return: any value (`String`, `i64`,
/// `Option<T>`, `Vec<T>`, [`Value`], …), a userdata [`Object`], or a [`Ret`].
pub trait IntoRet {
    /// The script-facing result.
    fn into_ret(self) -> Ret;
}

impl IntoRet for Ret {
    fn into_ret(self) -> Ret {
        self
    }
}

impl IntoRet for Object {
    fn into_ret(self) -> Ret {
        Ret::Object(self)
    }
}

impl<T: Into<Value>> IntoRet for T {
    fn into_ret(self) -> Ret {
        Ret::Value(self.into())
    }
}

type HandleFn = dyn Fn(Result<Value, Error>) -> Result<Ret, CallError> + Send + Sync;

/// A command a module function yields, with what turns the handler's result
/// into the script's return values.
#[derive(Clone)]
pub struct Yielded {
    call: Call,
    handle: Option<Arc<HandleFn>>,
}

impl Yielded {
    /// Yields `call`; the script gets the handler's value, or `nil, err`.
    pub fn new(call: Call) -> Self {
        Self { call, handle: None }
    }

    /// Yields the typed command `cmd`; its [`ModuleCommand::handle_result`]
    /// makes the script's return values.
    pub fn command<C: ModuleCommand + Clone>(cmd: C) -> Self {
        Self {
            call: Call::typed(cmd),
            handle: Some(Arc::new(|result: Result<Value, Error>| {
                C::handle_result(result.and_then(|v| from_value::<C::Output>(&v)))
            })),
        }
    }

    /// Replaces how the handler's result reaches the script.
    #[must_use]
    pub fn then(
        mut self,
        handle: impl Fn(Result<Value, Error>) -> Result<Ret, CallError> + Send + Sync + 'static,
    ) -> Self {
        self.handle = Some(Arc::new(handle));
        self
    }

    /// The command to dispatch.
    pub fn call(&self) -> &Call {
        &self.call
    }

    /// Splits into the command and the result handler.
    pub fn into_parts(self) -> (Call, ResultHandler) {
        (self.call, ResultHandler(self.handle))
    }
}

impl std::fmt::Debug for Yielded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yielded")
            .field("call", &self.call)
            .field("handled", &self.handle.is_some())
            .finish()
    }
}

/// Turns a yielded command's result into the script's return values; kept
/// by the engine while the command is pending.
#[derive(Clone, Default)]
pub struct ResultHandler(Option<Arc<HandleFn>>);

impl ResultHandler {
    /// The script's return values for the handler's `result`: by default
    /// `value` on success, `nil, err` on failure.
    pub fn finish(&self, result: Result<Value, Error>) -> Result<Ret, CallError> {
        match &self.0 {
            Some(handle) => handle(result),
            None => result.map(Ret::Value).map_err(CallError::Fail),
        }
    }

    /// Whether this is the default (no custom handling).
    pub fn is_default(&self) -> bool {
        self.0.is_none()
    }
}

impl std::fmt::Debug for ResultHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ResultHandler(custom)"
        } else {
            "ResultHandler(default)"
        })
    }
}

/// A typed [`Command`] a module function returns: the script yields it, a
/// handler registered for it runs (inline, or as an `async fn` on the
/// runtime's IO pool), and [`ModuleCommand::handle_result`] turns the
/// handler's result or error into what the script's call returns.
pub trait ModuleCommand: Command {
    /// The script's return values: by default the output as one value, or
    /// `nil, err` on failure. Override to reshape the output, return several
    /// values, or turn certain errors into values.
    fn handle_result(result: Result<Self::Output, Error>) -> Result<Ret, CallError> {
        match result.and_then(|out| to_value(&out)) {
            Ok(v) => Ok(Ret::Value(v)),
            Err(e) => Err(CallError::Fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: Vec<Value>) -> Args {
        Args::new("greet.hello".into(), values)
    }

    #[test]
    fn tuples_read_arguments_by_position() {
        let (name, greeting): (String, Option<String>) =
            args(vec![Value::from("ada")]).parse().unwrap();
        assert_eq!((name.as_str(), greeting), ("ada", None));

        let (n, rest): (i64, Rest) = args(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
            .parse()
            .unwrap();
        assert_eq!((n, rest.0), (1, vec![Value::Int(2), Value::Int(3)]));

        let e = args(vec![])
            .parse::<(String, Option<String>)>()
            .unwrap_err();
        assert_eq!(
            e.into_error().to_string(),
            "INVALID: greet.hello: argument #1 expected string, got nil"
        );
        let e = args(vec![Value::from("x"), Value::Int(5)])
            .parse::<(String, Option<String>)>()
            .unwrap_err();
        assert_eq!(
            e.into_error().message(),
            "greet.hello: argument #2 expected string, got integer"
        );
    }

    #[test]
    fn default_result_handling_is_value_or_nil_err() {
        let h = ResultHandler::default();
        assert!(matches!(
            h.finish(Ok(Value::Int(1))),
            Ok(Ret::Value(Value::Int(1)))
        ));
        assert!(matches!(
            h.finish(Err(Error::invalid("x"))),
            Err(CallError::Fail(_))
        ));
    }
}
