//! The typed commands of the runtime-backed built-ins (`process.send`,
//! `process.try_send`, `process.receive`, `time.now`, `time.sleep`): decoded once from the
//! script's arguments by the module functions here, carried typed by the
//! yielded [`Call`](troupe_dispatcher::Call), and handled by the runtime's
//! typed handlers. Their value forms (a journal's view) are the argument
//! maps earlier builds journaled, so old histories still match.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use troupe_dispatcher::{Command, CommandId, Error, Pid, Value};

use super::ids;

/// Implements [`Command`] for `$ty`: its id in [`ids`], its name and its
/// output.
macro_rules! command {
    ($ty:ident, $id:ident, $name:literal, $out:ty) => {
        impl Command for $ty {
            const ID: CommandId = ids::$id;
            const NAME: &'static str = $name;
            type Output = $out;
        }
    };
}

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

/// A message to send: where, its topic and its payload (`{to, topic,
/// payload}` in value form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The receiver.
    pub to: Target,
    /// The message's topic.
    pub topic: String,
    /// The message's payload.
    pub payload: Value,
}

/// `process.send(to, topic, payload, opts?)`: waits for room in a full
/// mailbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Send {
    /// The message.
    #[serde(flatten)]
    pub msg: Outgoing,
    /// How long to wait for room, in ms (`opts.timeout`); forever if not
    /// given. Absent from the value form when not given, as journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
}

command!(Send, PROCESS_SEND, "process.send", bool);

/// `process.try_send(to, topic, payload)`: `RATE_LIMITED` on a full
/// mailbox instead of waiting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrySend(pub Outgoing);

command!(TrySend, PROCESS_TRY_SEND, "process.try_send", bool);

/// `process.receive(topic?, timeout_ms?)`: answered with the message
/// `{from, topic, payload}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receive {
    /// Only messages of this topic, if given.
    pub topic: Option<String>,
    /// How long to wait, in ms; forever if not given.
    pub timeout_ms: Option<f64>,
}

command!(Receive, PROCESS_RECEIVE, "process.receive", Value);

/// `time.now()`: answered with milliseconds since the Unix epoch. No
/// arguments: its value form is nil, as journaled.
#[derive(Clone, Debug, PartialEq)]
pub struct Now;

impl Serialize for Now {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Now {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Now)
    }
}

command!(Now, TIME_NOW, "time.now", f64);

/// `time.sleep(duration)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sleep {
    /// How long, in ms (already checked: finite and not negative).
    pub ms: f64,
}

command!(Sleep, TIME_SLEEP, "time.sleep", ());

#[cfg(test)]
mod tests {
    use troupe_dispatcher::{Call, ErrorKind};

    use super::*;

    /// A typed command's value form is the map earlier builds journaled.
    #[test]
    fn value_forms_are_the_journaled_argument_maps() {
        let msg = Outgoing {
            to: Target::Pid(Pid::new(0, 2)),
            topic: "ping".into(),
            payload: Value::Int(7),
        };
        let send = Send {
            msg: msg.clone(),
            timeout_ms: None,
        };
        let old = serde_json::json!({"to": "<0.2>", "topic": "ping", "payload": 7});
        assert_eq!(
            Call::typed(send.clone()),
            Call::new(ids::PROCESS_SEND, Value::from(old.clone()))
        );
        assert_eq!(
            Call::typed(TrySend(msg)),
            Call::new(ids::PROCESS_TRY_SEND, Value::from(old.clone()))
        );
        let back: Send = Call::new(ids::PROCESS_SEND, Value::from(old))
            .into_command()
            .unwrap();
        assert_eq!(back, send);
        let waiting = Send {
            timeout_ms: Some(50.0),
            ..send
        };
        let old =
            serde_json::json!({"to": "<0.2>", "topic": "ping", "payload": 7, "timeout_ms": 50.0});
        assert_eq!(
            Call::typed(waiting),
            Call::new(ids::PROCESS_SEND, Value::from(old))
        );
        let receive = Call::typed(Receive {
            topic: Some("pong".into()),
            timeout_ms: Some(10_000.0),
        });
        let old = serde_json::json!({"topic": "pong", "timeout_ms": 10_000.0});
        assert_eq!(receive, Call::new(ids::PROCESS_RECEIVE, Value::from(old)));
        let any = Receive {
            topic: None,
            timeout_ms: None,
        };
        let old = serde_json::json!({"topic": null, "timeout_ms": null});
        assert_eq!(
            Call::typed(any),
            Call::new(ids::PROCESS_RECEIVE, Value::from(old))
        );
        assert_eq!(Call::typed(Now), Call::new(ids::TIME_NOW, ()));
        let old = serde_json::json!({"ms": 5.0});
        assert_eq!(
            Call::typed(Sleep { ms: 5.0 }),
            Call::new(ids::TIME_SLEEP, Value::from(old))
        );
    }

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
