use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Value, to_value};

/// The numeric id of a command type, unique within a runtime.
/// Ids below 1024 are reserved for Troupe's built-in modules.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandId(pub u16);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A command as a process yields it: the command's id and its arguments as a
/// neutral [`Value`]. This is the type-erased, serializable form that crosses
/// the dispatcher and is written to workflow journals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Which command.
    pub id: CommandId,
    /// Its arguments.
    pub args: Value,
}

impl Call {
    /// A call of command `id` with `args`.
    pub fn new(id: CommandId, args: impl Into<Value>) -> Self {
        Self {
            id,
            args: args.into(),
        }
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
/// assert_eq!(call.args.get("url").and_then(|v| v.as_str()), Some("https://example.com"));
/// ```
pub trait Command: Serialize + DeserializeOwned + Send + 'static {
    /// The command's id.
    const ID: CommandId;
    /// A dotted name for logs, journals and errors, e.g. `"time.sleep"`.
    const NAME: &'static str;
    /// What a successful handler returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The type-erased call for this command.
    fn to_call(&self) -> Result<Call, Error> {
        Ok(Call {
            id: Self::ID,
            args: to_value(self)?,
        })
    }
}
