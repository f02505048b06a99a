//! What a journal holds on disk, and its encoding: one format-version byte,
//! then the record as MessagePack with named fields (`rmp-serde`), so a
//! history written by this version of Troupe can be read by later ones.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Error, Value};
use troupe_modules::Policy;

/// The journal format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Whether a workflow is still running.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Started and not finished: resumable.
    Running,
    /// Ended with a result.
    Completed,
    /// Ended with an error.
    Failed,
    /// Ended by `workflow.continue_as_new`: a later run goes on (a past
    /// run's status).
    Continued,
}

impl Status {
    /// The lowercase name, as `list` and `show` print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Continued => "continued",
        }
    }
}

/// The head record of a workflow: what it runs and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The workflow id.
    pub id: String,
    /// The script's key in the runtime's source.
    pub key: String,
    /// The spawn arguments.
    pub args: Vec<Value>,
    /// The content hash of the script when the workflow started.
    pub script_hash: u64,
    /// Running, completed or failed.
    pub status: Status,
    /// Wall-clock start, ms since the Unix epoch.
    pub started_ms: u64,
    /// Wall-clock end, if finished.
    pub finished_ms: Option<u64>,
    /// The final result, if finished.
    pub result: Option<Result<Value, Error>>,
    /// The sandbox policy it started with; resumes and replays run with it.
    /// Absent in histories written before policies were journaled.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// Which run of the workflow this is: 1, then one more after each
    /// `workflow.continue_as_new`. Absent (1) in histories written before
    /// runs were counted.
    #[serde(default = "first_run")]
    pub run: u32,
    /// When the whole workflow times out (ms since the Unix epoch), if it
    /// started with a time limit; every run of it shares the deadline.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// The number of a workflow's first run.
fn first_run() -> u32 {
    1
}

/// One step of a workflow's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// A command the script yielded, and the result it got.
    Command {
        /// The command's registered name, e.g. `time.sleep`.
        name: String,
        /// The command as yielded.
        call: Call,
        /// Its result.
        result: Result<Value, Error>,
        /// When the result was journaled, ms since the Unix epoch.
        at_ms: u64,
    },
}

impl Entry {
    /// A one-line description: `time.sleep {"ms":10}`.
    pub fn describe(&self) -> String {
        match self {
            Entry::Command { name, call, .. } => describe(name, call),
        }
    }
}

/// A command in one line: its name, then its arguments as JSON if any
/// (`time.now`, `time.sleep {"ms":10.0}`).
pub fn describe(name: &str, call: &Call) -> String {
    let args = call.args();
    if args.is_nil() {
        name.to_owned()
    } else {
        format!("{name} {}", args.to_json())
    }
}

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Nothing stored.
    #[error("empty record")]
    Empty,
    /// Written by a format this build does not know.
    #[error("unsupported journal format version {0} (this build reads version {FORMAT_VERSION})")]
    Version(u8),
    /// Truncated or corrupt bytes.
    #[error("corrupt record: {0}")]
    Corrupt(#[from] rmp_serde::decode::Error),
}

/// Encodes a record with the current format version.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, Error> {
    let mut out = vec![FORMAT_VERSION];
    rmp_serde::encode::write_named(&mut out, record)
        .map_err(|e| Error::internal(format!("cannot encode a journal record: {e}")))?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(rmp_serde::from_slice(body)?),
        Some((v, _)) => Err(DecodeError::Version(*v)),
    }
}

#[cfg(test)]
mod tests {
    use troupe_dispatcher::{CommandId, ErrorKind};

    use super::*;

    #[test]
    fn entries_round_trip_and_bad_bytes_are_errors() {
        let e = Entry::Command {
            name: "time.now".into(),
            call: Call::new(CommandId(1), Value::Nil),
            result: Err(Error::new(ErrorKind::Timeout, "late")),
            at_ms: 5,
        };
        let bytes = encode(&e).unwrap();
        assert_eq!(decode::<Entry>(&bytes).unwrap(), e);
        assert!(matches!(
            decode::<Entry>(&bytes[..bytes.len() / 2]),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(decode::<Entry>(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            decode::<Entry>(&[9, 1, 2]),
            Err(DecodeError::Version(9))
        ));
    }
}
