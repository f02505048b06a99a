//! What goes over a stream between two nodes, and how it is framed.
//!
//! A stream from node a to node b starts with a [`Hello`] naming a, then
//! carries batches of [`Frame`]s, each answered by b with one [`ACK`]
//! byte once delivered. Every hello and batch is MessagePack behind a
//! 4-byte little-endian length.

use std::io;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures_util::{AsyncRead, AsyncReadExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Error, Pid, Value};
use troupe_runtime::{RemoteSignal, RemoteSpawn};

/// The largest batch a node accepts, encoded.
pub(crate) const MAX_BATCH_BYTES: u32 = 256 << 20;
/// The largest message (or spawn request) that goes to another node, as
/// [`troupe_runtime::Message::weight`] counts it: never less than its
/// encoded size. Larger ones fail with `LIMIT_EXCEEDED` when sent.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// A batch takes no more frames once it weighs this much, so that a full
/// batch and one largest message stay well within [`MAX_BATCH_BYTES`].
pub(crate) const BATCH_BYTES: usize = 16 << 20;
const _: () = assert!(BATCH_BYTES + MAX_MESSAGE_BYTES <= MAX_BATCH_BYTES as usize / 2);
/// The largest hello a node accepts, encoded.
pub(crate) const MAX_HELLO_BYTES: u32 = 4096;
/// What a receiving node answers each batch with once delivered.
pub(crate) const ACK: u8 = 1;

/// One message between nodes: sender and receiver as numbers on their own
/// nodes, topic, and the payload with its pids in cluster-wide form.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub from: Option<u64>,
    pub to: u64,
    pub topic: String,
    pub payload: Value,
}

/// What one node sends another.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame {
    /// A message.
    Message(Envelope),
    /// A link, monitor or exit signal, its pids marked by [`wire_pid`].
    Signal(RemoteSignal),
    /// A process the sending node asks this one to start (its parent
    /// marked by [`wire_pid`], pids in its arguments in cluster-wide
    /// form), answered by [`Frame::Spawned`] with the same `id`.
    Spawn {
        /// The sending node's number for the request.
        id: u64,
        /// What to start.
        req: RemoteSpawn,
    },
    /// The answer to the receiving node's [`Frame::Spawn`] `id`: the new
    /// process's number on the sending node, or why none started.
    Spawned {
        /// The request's number.
        id: u64,
        /// The process's number, or the error.
        result: Result<u64, Error>,
    },
}

/// The start of a stream: who sends on it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The sending node's name.
    pub from: String,
    /// The sending OS process ([`INCARNATION`]).
    pub incarnation: u64,
    /// The stream's number among the sending OS process's streams: a
    /// sender opens a new one, with a higher number, when one broke, and
    /// the receiver then reads nothing more from the old one.
    pub stream: u64,
}

impl Hello {
    /// A new stream from node `from`.
    pub fn new(from: &str) -> Self {
        static STREAMS: AtomicU64 = AtomicU64::new(1);
        Hello {
            from: from.to_owned(),
            incarnation: *INCARNATION,
            stream: STREAMS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// This OS process among the incarnations of its node name: the clock
/// when it first opened a stream.
static INCARNATION: LazyLock<u64> = LazyLock::new(|| {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
});

/// On the wire, a signal's pids are marked by whose they are: node 1 for
/// the sending node's, node 0 for the receiving node's (a signal is always
/// between a process of each).
pub(crate) fn wire_pid(pid: Pid) -> Pid {
    Pid::new(u32::from(pid.node() == 0), pid.id())
}

/// A signal's pid from the wire, on the node that received it from node
/// `sender`.
pub(crate) fn unwire_pid(pid: Pid, sender: u32) -> Pid {
    match pid.node() {
        1 => Pid::new(sender, pid.id()),
        _ => Pid::new(0, pid.id()),
    }
}

/// `value` encoded behind its length, ready to be written in one go; an
/// error if it is larger than `max`.
pub(crate) fn encode<T: Serialize>(value: &T, max: u32) -> io::Result<Vec<u8>> {
    let mut out = vec![0; 4];
    rmp_serde::encode::write(&mut out, value).map_err(io::Error::other)?;
    let len = u32::try_from(out.len() - 4)
        .ok()
        .filter(|&len| len <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes encoded, more than {max}", out.len() - 4),
            )
        })?;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// Reads one value written by [`encode`]; an error if its length is over
/// `max` (before reading it) or it does not decode. `Ok(None)` at the
/// end of the stream.
pub(crate) async fn read<T, R>(from: &mut R, max: u32) -> io::Result<Option<T>>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut len = [0; 4];
    match from.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes, more than {max}"),
        ));
    }
    let mut body = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    from.read_exact(&mut body).await?;
    rmp_serde::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all<T: DeserializeOwned>(bytes: &[u8], max: u32) -> io::Result<Option<T>> {
        use futures_util::FutureExt;
        // Reading a slice never waits.
        read(&mut &bytes[..], max).now_or_never().unwrap()
    }

    #[test]
    fn a_value_reads_back_as_written_and_the_end_is_none() {
        let hello = Hello::new("b");
        let bytes = encode(&hello, MAX_HELLO_BYTES).unwrap();
        let back: Hello = read_all(&bytes, MAX_HELLO_BYTES).unwrap().unwrap();
        assert_eq!((back.from.as_str(), back.stream), ("b", hello.stream));
        assert!(read_all::<Hello>(&[], MAX_HELLO_BYTES).unwrap().is_none());
    }

    #[test]
    fn oversized_truncated_and_garbled_frames_are_errors() {
        let big = encode(&"x".repeat(100), 200).unwrap();
        assert!(encode(&"x".repeat(100), 50).is_err());
        let err = read_all::<String>(&big, 50).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A length claiming 4 GiB is refused before anything is allocated.
        let err = read_all::<String>(&[0xff; 4], MAX_BATCH_BYTES).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = read_all::<String>(&big[..20], 200).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut garbled = big.clone();
        garbled[4] = 0xc1; // never valid MessagePack
        let err = read_all::<String>(&garbled, 200).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn signal_pids_are_marked_by_whose_they_are() {
        let sender_side = Pid::new(0, 7);
        let receiver_side = Pid::new(3, 9);
        assert_eq!(unwire_pid(wire_pid(sender_side), 5), Pid::new(5, 7));
        assert_eq!(unwire_pid(wire_pid(receiver_side), 5), Pid::new(0, 9));
    }
}
