//! What a journal holds on disk, and its encoding: one format-version byte,
//! then the record as MessagePack with named fields (`rmp-serde`), so a
//! history written by this version of Troupe can be read by later ones.
//!
//! Format 2 stores a workflow's history as [chunks](Chunk): one record per
//! commit of consecutive steps, a MessagePack array of [`Entry`]s. Format
//! 1 stored one entry per record; this build reads both (every other
//! record is encoded alike in both), and writes format 2, which a format-1
//! build refuses with an error naming the version.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Error, Value};
use troupe_modules::Policy;

/// The journal format this build writes.
pub const FORMAT_VERSION: u8 = 2;

/// The oldest journal format this build reads.
pub const OLDEST_FORMAT_VERSION: u8 = 1;

/// The format that stored one history entry per record.
const ENTRY_PER_RECORD: u8 = 1;

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
    /// The workflow that started this one with `workflow.start_child`, if
    /// any.
    #[serde(default)]
    pub parent: Option<String>,
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

/// A history entry borrowed, encoded as the [`Entry`] it stands for: what
/// a journal records without building an `Entry`.
#[derive(Serialize)]
#[serde(rename = "Entry")]
pub enum EntryRef<'a> {
    /// [`Entry::Command`].
    Command {
        /// The command's registered name.
        name: &'a str,
        /// The command as yielded.
        call: &'a Call,
        /// Its result.
        result: &'a Result<Value, Error>,
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

    /// The entry as step `step` of a history, as `troupe workflow show
    /// --json` and the dashboard show it: `{step, command, args, result,
    /// at_ms}`, the result as [`outcome_value`] gives it.
    pub fn to_value(&self, step: usize) -> Value {
        let Entry::Command {
            name,
            call,
            result,
            at_ms,
        } = self;
        Value::Map(
            [
                ("step", Value::from(step)),
                ("command", Value::from(name.as_str())),
                ("args", call.args().into_owned()),
                ("result", outcome_value(result)),
                ("at_ms", Value::from(*at_ms)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        )
    }
}

/// A result or error as a value: `{"ok": v}` or `{"error": {kind,
/// message, …}}`.
pub fn outcome_value(r: &Result<Value, Error>) -> Value {
    let (k, v) = match r {
        Ok(v) => ("ok", v.clone()),
        Err(e) => ("error", e.to_value()),
    };
    Value::Map([(k.to_owned(), v)].into_iter().collect())
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
    #[error(
        "unsupported journal format version {0} (this build reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
    )]
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

/// Decodes a record written by [`encode`] (or by a build of an older
/// format this one reads).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (_, body) = versioned(bytes)?;
    Ok(rmp_serde::from_slice(body)?)
}

/// A record's format version, checked, and its body.
fn versioned(bytes: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&v, body)) if (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&v) => Ok((v, body)),
        Some((&v, _)) => Err(DecodeError::Version(v)),
    }
}

/// The MessagePack marker of an array with a 32-bit big-endian length.
const ARRAY32: u8 = 0xdd;

/// Where a chunk's entries start: the version byte and the array header.
const CHUNK_HEAD: usize = 6;

/// Consecutive history entries of one workflow, encoded one at a time into
/// the record that stores them (the version byte, then a MessagePack
/// array of the entries, its length patched as entries are pushed).
#[derive(Debug)]
pub struct Chunk {
    bytes: Vec<u8>,
    len: u32,
}

impl Default for Chunk {
    fn default() -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend([FORMAT_VERSION, ARRAY32, 0, 0, 0, 0]);
        Self { bytes, len: 0 }
    }
}

impl Chunk {
    /// Appends `entry`; on an error the chunk is left as it was.
    pub fn push(&mut self, entry: &EntryRef<'_>) -> Result<(), Error> {
        let len = self
            .len
            .checked_add(1)
            .ok_or_else(|| Error::internal("too many journal entries in one commit"))?;
        let end = self.bytes.len();
        if let Err(e) = rmp_serde::encode::write_named(&mut self.bytes, entry) {
            self.bytes.truncate(end);
            return Err(Error::internal(format!(
                "cannot encode a journal record: {e}"
            )));
        }
        self.len = len;
        self.bytes[2..CHUNK_HEAD].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// How many entries it holds.
    pub fn len(&self) -> u64 {
        u64::from(self.len)
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record, as stored.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The history entries of a stored history record: a [`Chunk`], or one
/// entry of format 1.
pub fn decode_entries(bytes: &[u8]) -> Result<Vec<Entry>, DecodeError> {
    match versioned(bytes)? {
        (ENTRY_PER_RECORD, body) => Ok(vec![rmp_serde::from_slice(body)?]),
        (_, body) => Ok(rmp_serde::from_slice(body)?),
    }
}

/// How many entries a stored history record holds, read from its header
/// without decoding them.
pub fn entry_count(bytes: &[u8]) -> Result<u64, DecodeError> {
    match versioned(bytes)? {
        (ENTRY_PER_RECORD, _) => Ok(1),
        (_, mut body) => rmp::decode::read_array_len(&mut body)
            .map(u64::from)
            .map_err(|e| DecodeError::Corrupt(e.into())),
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

    fn entry(at_ms: u64) -> Entry {
        Entry::Command {
            name: "time.now".into(),
            call: Call::new(CommandId(1), Value::Nil),
            result: Ok(Value::Float(at_ms as f64 + 0.5)),
            at_ms,
        }
    }

    #[test]
    fn a_chunk_reads_back_as_the_entries_pushed_and_as_an_encoded_vec() {
        let entries: Vec<Entry> = (1..=300).map(entry).collect();
        let mut chunk = Chunk::default();
        assert!(chunk.is_empty());
        for e in &entries {
            let Entry::Command {
                name,
                call,
                result,
                at_ms,
            } = e;
            let borrowed = EntryRef::Command {
                name,
                call,
                result,
                at_ms: *at_ms,
            };
            // Encoded as the entry it stands for.
            assert_eq!(encode(&borrowed).unwrap(), encode(e).unwrap());
            chunk.push(&borrowed).unwrap();
        }
        assert_eq!(chunk.len(), 300);
        assert_eq!(entry_count(chunk.bytes()).unwrap(), 300);
        assert_eq!(decode_entries(chunk.bytes()).unwrap(), entries);
        // The same record as the whole list encoded at once.
        let whole = encode(&entries).unwrap();
        assert_eq!(decode_entries(&whole).unwrap(), entries);
        assert_eq!(entry_count(&whole).unwrap(), 300);
        let bytes = chunk.bytes();
        assert!(matches!(
            decode_entries(&bytes[..bytes.len() - 3]),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn a_format_1_record_holds_one_entry() {
        let mut v1 = vec![1];
        rmp_serde::encode::write_named(&mut v1, &entry(7)).unwrap();
        assert_eq!(decode_entries(&v1).unwrap(), [entry(7)]);
        assert_eq!(entry_count(&v1).unwrap(), 1);
        assert_eq!(decode::<Entry>(&v1).unwrap(), entry(7));
        assert!(matches!(
            entry_count(&[FORMAT_VERSION + 1, 0x90]),
            Err(DecodeError::Version(_))
        ));
    }
}
