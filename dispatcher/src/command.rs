//! Commands: the typed [`Command`] trait and the type-erased [`Call`] a
//! process yields.
//!
//! A call carries its command either typed (decoded once from the script's
//! arguments, handed to a typed handler as is) or as a neutral [`Value`]
//! (a call read back from a journal, or built by an untyped function). The
//! value form is made only when something needs it: a journal writing or
//! comparing the call, or an untyped handler.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Value, from_value, to_value};

/// The numeric id of a command type, unique within a runtime.
/// Ids below 1024 are reserved for Troupe's built-in modules.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandId(pub u16);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A typed command: a serde type with a fixed id and a typed output.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use troupe_dispatcher::{Command, CommandId};
///
/// #[derive(Serialize, Deserialize)]
/// struct Fetch { url: String }
///
/// impl Command for Fetch {
///     const ID: CommandId = CommandId(2000);
///     const NAME: &'static str = "shop.fetch";
///     type Output = String;
/// }
///
/// let call = Fetch { url: "https://example.com".into() }.to_call().unwrap();
/// assert_eq!(call.id, CommandId(2000));
/// assert_eq!(call.args().get("url").and_then(|v| v.as_str()), Some("https://example.com"));
/// ```
pub trait Command: Serialize + DeserializeOwned + Send + 'static {
    /// The command's id.
    const ID: CommandId;
    /// A dotted name for logs, journals and errors, e.g. `"time.sleep"`.
    const NAME: &'static str;
    /// What a successful handler returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The call for this command in its value form.
    fn to_call(&self) -> Result<Call, Error> {
        Ok(Call {
            id: Self::ID,
            args: Args::Value(to_value(self)?),
        })
    }
}

/// A typed command behind a [`Call`], type-erased.
trait Erased: Send {
    fn to_value(&self) -> Result<Value, Error>;
    fn clone_box(&self) -> Box<dyn Erased>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn as_any(&self) -> &dyn Any;
    fn name(&self) -> &'static str;
}

impl<C: Command + Clone> Erased for C {
    fn to_value(&self) -> Result<Value, Error> {
        to_value(self)
    }

    fn clone_box(&self) -> Box<dyn Erased> {
        Box::new(self.clone())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &'static str {
        C::NAME
    }
}

enum Args {
    Value(Value),
    Typed(Box<dyn Erased>),
}

impl Args {
    fn to_value(&self) -> Cow<'_, Value> {
        match self {
            Args::Value(v) => Cow::Borrowed(v),
            Args::Typed(t) => Cow::Owned(t.to_value().unwrap_or_else(|e| {
                tracing::error!(command = t.name(), error = %e, "a command has no value form");
                Value::Nil
            })),
        }
    }
}

/// A command as a process yields it: the command's id and its arguments,
/// typed or as a neutral [`Value`]. This is the type-erased form that
/// crosses the dispatcher; its serialized form (`{id, args}`, the
/// arguments as a value) is what workflow journals keep.
pub struct Call {
    /// Which command.
    pub id: CommandId,
    args: Args,
}

impl Call {
    /// A call of command `id` with `args` in value form.
    pub fn new(id: CommandId, args: impl Into<Value>) -> Self {
        Self {
            id,
            args: Args::Value(args.into()),
        }
    }

    /// A call carrying the typed command `cmd` as it is: a typed handler
    /// gets it back without any conversion.
    pub fn typed<C: Command + Clone>(cmd: C) -> Self {
        Self {
            id: C::ID,
            args: Args::Typed(Box::new(cmd)),
        }
    }

    /// The arguments in value form (made now for a typed call).
    pub fn args(&self) -> Cow<'_, Value> {
        self.args.to_value()
    }

    /// The arguments in value form, by value.
    pub fn into_args(self) -> Value {
        match self.args {
            Args::Value(v) => v,
            typed => typed.to_value().into_owned(),
        }
    }

    /// Whether the call carries a typed command (rather than a value).
    pub fn is_typed(&self) -> bool {
        matches!(self.args, Args::Typed(_))
    }

    /// The typed command the call carries, if it is a `C` (`None` for a
    /// call in value form).
    pub fn command_ref<C: Command>(&self) -> Option<&C> {
        match &self.args {
            Args::Typed(t) => t.as_any().downcast_ref(),
            Args::Value(_) => None,
        }
    }

    /// The command as `C`: the typed one it carries, or decoded from its
    /// value form (`INVALID` if the shape does not fit).
    pub fn into_command<C: Command>(self) -> Result<C, Error> {
        match self.args {
            Args::Typed(t) => {
                let name = t.name();
                t.into_any()
                    .downcast::<C>()
                    .map(|c| *c)
                    .map_err(|_| Error::internal(format!("command {name} handled as {}", C::NAME)))
            }
            Args::Value(v) => {
                from_value(&v).map_err(|e| Error::invalid(format!("{}: {}", C::NAME, e.message())))
            }
        }
    }
}

impl Clone for Call {
    fn clone(&self) -> Self {
        let args = match &self.args {
            Args::Value(v) => Args::Value(v.clone()),
            Args::Typed(t) => Args::Typed(t.clone_box()),
        };
        Self { id: self.id, args }
    }
}

/// Two calls are equal when their ids and value forms are.
impl PartialEq for Call {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.args() == other.args()
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Call");
        d.field("id", &self.id);
        match &self.args {
            Args::Value(v) => d.field("args", v),
            Args::Typed(t) => d.field("typed", &t.name()),
        };
        d.finish()
    }
}

/// The serialized form of a call, as journals have always kept it.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Call")]
struct CallRepr<'a> {
    id: CommandId,
    args: Cow<'a, Value>,
}

impl Serialize for Call {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CallRepr {
            id: self.id,
            args: self.args(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Call {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = CallRepr::deserialize(d)?;
        Ok(Call::new(repr.id, repr.args.into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Sleep {
        ms: f64,
    }

    impl Command for Sleep {
        const ID: CommandId = CommandId(900);
        const NAME: &'static str = "test.sleep";
        type Output = ();
    }

    #[test]
    fn a_typed_call_is_handed_back_as_is_and_serialized_as_its_value_form() {
        let typed = Call::typed(Sleep { ms: 5.0 });
        let value = Call::new(CommandId(900), Value::from(serde_json::json!({"ms": 5.0})));
        assert!(typed.is_typed() && !value.is_typed());
        assert_eq!(typed, value);
        assert_eq!(typed.clone().into_args(), value.args().into_owned());

        let bytes = rmp_serde::to_vec_named(&typed).unwrap();
        let back: Call = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, value);
        assert_eq!(bytes, rmp_serde::to_vec_named(&value).unwrap());

        assert_eq!(typed.command_ref::<Sleep>(), Some(&Sleep { ms: 5.0 }));
        assert_eq!(value.command_ref::<Sleep>(), None);
        assert_eq!(typed.into_command::<Sleep>().unwrap(), Sleep { ms: 5.0 });
        assert_eq!(back.into_command::<Sleep>().unwrap(), Sleep { ms: 5.0 });
        let bad = Call::new(CommandId(900), "soon").into_command::<Sleep>();
        assert_eq!(bad.unwrap_err().kind(), crate::ErrorKind::Invalid);
    }
}
