//! What the built-in modules' typed commands share: the macros that
//! declare them and [`Target`], a message's or a signal's destination.
//!
//! Every built-in command is a Rust type beside its module's definition
//! (`process::Send`, `time::Sleep`, `rand::Int`, …): decoded once from the
//! script's arguments by the module function, carried typed by the yielded
//! [`Call`](troupe_dispatcher::Call), and handled by a typed handler (the
//! runtime's for `time`, `process`, `supervisor` and `workflow.signal`,
//! the module's own otherwise). Their value forms (a journal's view) are
//! the argument maps earlier builds journaled, so old histories still
//! match.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use troupe_dispatcher::{Error, Pid};

/// Implements [`Command`] for `$ty`: its id in [`ids`](super::ids), its
/// name and its output.
macro_rules! command {
    ($ty:ident, $id:ident, $name:literal, $out:ty) => {
        impl troupe_dispatcher::Command for $ty {
            const ID: troupe_dispatcher::CommandId = $crate::builtin::ids::$id;
            const NAME: &'static str = $name;
            type Output = $out;
        }
    };
}

/// Declares a command without arguments: its value form is nil, as
/// journaled.
macro_rules! unit_command {
    ($(#[$doc:meta])* $ty:ident, $id:ident, $name:literal, $out:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $ty;

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_unit()
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <()>::deserialize(d).map(|()| $ty)
            }
        }

        $crate::builtin::commands::command!($ty, $id, $name, $out);
    };
}

pub(crate) use {command, unit_command};

/// Where a message goes: a pid (an integer pair, parsed once from its text)
/// or a registered name. Serialized as the text a script gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A process by pid.
    Pid(Pid),
    /// A process by registered name.
    Name(String),
}

impl Target {
    /// Reads a script's destination: a pid's text (`<0.42>`; `INVALID` if
    /// malformed) or a name.
    pub fn parse(text: String) -> Result<Self, Error> {
        if text.starts_with('<') {
            text.parse().map(Target::Pid)
        } else {
            Ok(Target::Name(text))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pid(p) => p.fmt(f),
            Target::Name(n) => f.write_str(n),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Target::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use troupe_dispatcher::ErrorKind;

    use super::*;

    #[test]
    fn targets_are_pids_or_names() {
        assert_eq!(
            Target::parse("<1.5>".into()).unwrap(),
            Target::Pid(Pid::new(1, 5))
        );
        assert_eq!(
            Target::parse("db".into()).unwrap(),
            Target::Name("db".into())
        );
        assert_eq!(
            Target::parse("<x>".into()).unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
}
