//! The sending side: one queue per destination node, drained by one task
//! onto one stream to that node.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use libp2p::{Multiaddr, PeerId, Stream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::AbortHandle;
use troupe_dispatcher::{Error, Pid};
use troupe_runtime::{Message, RemoteSignal};

use super::wire::{self, Envelope, Frame, Hello, wire_pid};
use super::{PROTOCOL, StreamControl};
use crate::error::ClusterError;
use crate::pids;

/// The most messages one batch carries.
const BATCH: usize = 512;
/// Messages queued per destination node before senders wait.
const QUEUE: usize = 4096;
/// The most batches on their way (written, not yet answered) to one node:
/// while they are, what is queued waits and then goes as one larger batch
/// (a stream of messages went 20% faster than with no bound, on two cores;
/// round trips have one batch on its way).
const WINDOW: usize = 2;
/// How long opening a stream to a node may take (connecting included)
/// before what waits for it counts as lost.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a node's queue to another holds.
enum Outgoing {
    /// A message for process `.0` of that node, and its
    /// [`Message::weight`], taken once when it is sent.
    Message(u64, Message, usize),
    /// A signal for one of its processes.
    Signal(RemoteSignal),
    /// A frame ready for the wire (spawn requests and answers).
    Frame(Frame),
}

impl Outgoing {
    /// Roughly the bytes it takes in a batch: what a batch is bounded by.
    fn weight(&self) -> usize {
        /// Pids, numbers and framing.
        const FIXED: usize = 64;
        FIXED.saturating_add(match self {
            Outgoing::Message(_, _, weight) => *weight,
            Outgoing::Frame(Frame::Spawn { req, .. }) => req.weight(),
            Outgoing::Signal(_) | Outgoing::Frame(_) => 0,
        })
    }
}

/// What one node's queue is drained to: the other node, and how to reach
/// it.
pub(crate) struct Link {
    /// This node's name.
    pub local: Arc<str>,
    /// The other node's name.
    pub name: Arc<str>,
    /// Its libp2p identity.
    pub peer_id: PeerId,
    /// Where it listens.
    pub addr: Multiaddr,
    /// Asks the swarm to connect to a node.
    pub dials: mpsc::UnboundedSender<(PeerId, Multiaddr, bool)>,
    /// The peers this node has a connection to.
    pub connected: watch::Receiver<HashSet<PeerId>>,
    /// Opens streams.
    pub control: StreamControl,
}

/// The queue to one other node and the task sending what it holds.
pub(crate) struct Peer {
    /// The node's libp2p identity (a node that restarts gets a new one).
    pub peer_id: PeerId,
    /// Where it listens.
    pub addr: Multiaddr,
    sender: PeerSender,
    task: AbortHandle,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Senders waiting for room fail rather than wait for ever.
        self.sender.room.close();
        self.task.abort();
    }
}

/// A handle to the queue to one node.
#[derive(Clone)]
pub(crate) struct PeerSender {
    queue: mpsc::UnboundedSender<Outgoing>,
    /// The places for messages left in the queue.
    room: Arc<Semaphore>,
    /// Frames queued and not yet delivered (or lost).
    unsent: Arc<AtomicUsize>,
}

/// The node is gone.
fn node_left() -> ClusterError {
    ClusterError::Transport("the node left".into())
}

/// `size`, the weight of `what`, if it is not too large to go to another
/// node: a larger one is refused before it is queued rather than lost
/// with its batch.
pub(crate) fn crossing(what: &'static str, size: usize) -> Result<usize, ClusterError> {
    if size > wire::MAX_MESSAGE_BYTES {
        return Err(ClusterError::TooLarge {
            what,
            size,
            max: wire::MAX_MESSAGE_BYTES,
        });
    }
    Ok(size)
}

impl PeerSender {
    /// Queues `msg` for process `to` of that node, waiting for room;
    /// fails if it is too large to cross or the node is gone.
    pub async fn send(&self, to: u64, msg: Message) -> Result<(), ClusterError> {
        let weight = crossing("a message", msg.weight())?;
        self.room.acquire().await.map_err(|_| node_left())?.forget();
        self.queue(Outgoing::Message(to, msg, weight))
    }

    /// Queues `out`, counting it until it is delivered.
    fn queue(&self, out: Outgoing) -> Result<(), ClusterError> {
        self.unsent.fetch_add(1, Ordering::Relaxed);
        self.queue.send(out).map_err(|_| {
            self.unsent.fetch_sub(1, Ordering::Relaxed);
            node_left()
        })
    }
}

impl Peer {
    /// The queue to the node `link` names, and the task draining it.
    pub fn start(link: Link) -> Peer {
        let (queue, rx) = mpsc::unbounded_channel();
        let sender = PeerSender {
            queue,
            room: Arc::new(Semaphore::new(QUEUE)),
            unsent: Arc::new(AtomicUsize::new(0)),
        };
        let (peer_id, addr) = (link.peer_id, link.addr.clone());
        let task = tokio::spawn(pump(link, rx, sender.clone())).abort_handle();
        Peer {
            peer_id,
            addr,
            sender,
            task,
        }
    }

    /// Queues `msg` for process `to` of that node; gives it back if the
    /// queue is full, or fails if it is too large to cross or the node is
    /// gone.
    pub fn try_send(&self, to: u64, msg: Message) -> Result<Option<Message>, ClusterError> {
        let weight = crossing("a message", msg.weight())?;
        match self.sender.room.try_acquire() {
            Ok(place) => place.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Ok(Some(msg)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(node_left()),
        }
        let out = Outgoing::Message(to, msg, weight);
        self.sender.queue(out).map(|()| None)
    }

    /// Queues `signal`, after what is queued, without waiting for room;
    /// false if the node is gone.
    pub fn signal(&self, signal: RemoteSignal) -> bool {
        self.sender.queue(Outgoing::Signal(signal)).is_ok()
    }

    /// Queues `frame` (a spawn request or answer), after what is queued
    /// (the link of a linked spawn, first of all); false if the node is
    /// gone.
    pub fn frame(&self, frame: Frame) -> bool {
        self.sender.queue(Outgoing::Frame(frame)).is_ok()
    }

    /// Queues the answer to this node's spawn request `id`.
    pub fn answer(&self, id: u64, result: Result<u64, Error>) -> bool {
        self.frame(Frame::Spawned { id, result })
    }

    /// Whether everything queued so far was delivered (or lost).
    pub fn drained(&self) -> bool {
        self.sender.unsent.load(Ordering::Relaxed) == 0
    }

    /// A handle to queue messages, waiting for room.
    pub fn sender(&self) -> PeerSender {
        self.sender.clone()
    }
}

impl Link {
    /// Waits until there is a connection to the node, dialing it if there
    /// is none; false if none comes within [`CONNECT_TIMEOUT`].
    async fn connect(&mut self) -> bool {
        if self.connected.borrow().contains(&self.peer_id) {
            return true;
        }
        let _ = self.dials.send((self.peer_id, self.addr.clone(), true));
        let peer = self.peer_id;
        let up = self.connected.wait_for(|set| set.contains(&peer));
        matches!(tokio::time::timeout(CONNECT_TIMEOUT, up).await, Ok(Ok(_)))
    }

    /// A new stream to the node, started with this node's [`Hello`].
    async fn open(&mut self, unsent: &Arc<AtomicUsize>) -> Result<Outbound, String> {
        if !self.connect().await {
            return Err("no connection".into());
        }
        let opened = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.control.open_stream(self.peer_id, PROTOCOL),
        );
        let mut stream = match opened.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no stream within the connect timeout".into()),
        };
        let hello = wire::encode(&Hello::new(&self.local), wire::MAX_HELLO_BYTES)
            .map_err(|e| e.to_string())?;
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        Ok(Outbound {
            stream,
            unacked: VecDeque::new(),
            unsent: Arc::clone(unsent),
            node: Arc::clone(&self.name),
        })
    }
}

/// An open stream to a node, and the batches written to it and not yet
/// answered (their frame counts, oldest first). One task both writes it
/// and reads its answers: a yamux stream wakes one waiting task only (its
/// reads and writes share one channel to the connection), so a stream
/// split between two tasks can leave one of them waiting for ever.
struct Outbound {
    stream: Stream,
    unacked: VecDeque<usize>,
    /// The queue's count of frames not yet delivered.
    unsent: Arc<AtomicUsize>,
    node: Arc<str>,
}

impl Outbound {
    /// Writes one encoded batch of `frames` frames.
    async fn send(&mut self, batch: &[u8], frames: usize) -> io::Result<()> {
        self.unacked.push_back(frames);
        self.stream.write_all(batch).await?;
        self.stream.flush().await
    }

    /// Whether batches wait for their answers.
    fn waiting(&self) -> bool {
        !self.unacked.is_empty()
    }

    /// Reads the answers that came (at least one); an error if the stream
    /// ended or answers a batch never sent.
    async fn answers(&mut self) -> io::Result<()> {
        let mut buf = [0; 256];
        let n = self.stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        for _ in 0..n {
            let frames = self.unacked.pop_front().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "an answer to no batch")
            })?;
            self.unsent.fetch_sub(frames, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Drop for Outbound {
    /// What was on its way is lost: never sent again, so never delivered
    /// twice.
    fn drop(&mut self) {
        let lost: usize = self.unacked.drain(..).sum();
        if lost > 0 {
            tracing::warn!(node = %self.node, lost, "messages to another node were lost: the stream broke");
            self.unsent.fetch_sub(lost, Ordering::Relaxed);
        }
    }
}

/// How many of the frames first in `queued` go in the next batch: as
/// many as fit in [`wire::BATCH_BYTES`], at least one.
fn next_batch(queued: &[Outgoing]) -> usize {
    let mut bytes = 0usize;
    let fitting = queued
        .iter()
        .take_while(|out| {
            bytes = bytes.saturating_add(out.weight());
            bytes <= wire::BATCH_BYTES
        })
        .count();
    fitting.max(1)
}

/// The frames `queued` holds, in wire form; the number of messages among
/// them is added to `taken`.
fn frames(queued: impl Iterator<Item = Outgoing>, local: &str, taken: &mut usize) -> Vec<Frame> {
    queued
        .map(|out| match out {
            Outgoing::Message(to, m, _) => {
                *taken += 1;
                Frame::Message(Envelope {
                    from: m.from.map(Pid::id),
                    to,
                    topic: m.topic,
                    payload: pids::outbound(m.payload, local),
                })
            }
            Outgoing::Signal(signal) => Frame::Signal(signal.map_pids(wire_pid)),
            Outgoing::Frame(frame) => frame,
        })
        .collect()
}

/// Writes what is queued for one node as batches on one stream, opened
/// when first needed and again when it broke, no more than [`WINDOW`] of
/// them unanswered, and reads the stream's answers while any are due;
/// gives the queue's places back as it takes
/// messages out. The stream's flow control holds this task back while
/// the other node delivers slowly (it reads a batch only once the one
/// before is in its receivers' mailboxes), and the queue then fills,
/// holding senders back.
async fn pump(mut link: Link, mut rx: mpsc::UnboundedReceiver<Outgoing>, sender: PeerSender) {
    let mut queued = Vec::with_capacity(BATCH);
    let mut out: Option<Outbound> = None;
    let node = Arc::clone(&link.name);
    loop {
        let full = out.as_ref().is_some_and(|s| s.unacked.len() >= WINDOW);
        if queued.is_empty() || full {
            let got = match out.as_mut() {
                Some(stream) if stream.waiting() => tokio::select! {
                    got = rx.recv_many(&mut queued, BATCH), if !full => got,
                    answered = stream.answers() => {
                        if let Err(e) = answered {
                            tracing::debug!(%node, error = %e, "a stream to another node broke");
                            out = None;
                        }
                        continue;
                    }
                },
                _ => rx.recv_many(&mut queued, BATCH).await,
            };
            if got == 0 {
                break;
            }
        }
        let mut taken = 0;
        let next = next_batch(&queued);
        let frames = frames(queued.drain(..next), &link.local, &mut taken);
        sender.room.add_permits(taken);
        let count = frames.len();
        let lost = |why: &dyn std::fmt::Display| {
            tracing::warn!(%node, lost = count, error = %why, "messages to another node were lost");
            sender.unsent.fetch_sub(count, Ordering::Relaxed);
        };
        let batch = match wire::encode(&frames, wire::MAX_BATCH_BYTES) {
            Ok(batch) => batch,
            Err(e) => {
                lost(&e);
                continue;
            }
        };
        if out.is_none() {
            match link.open(&sender.unsent).await {
                Ok(stream) => out = Some(stream),
                Err(e) => {
                    lost(&e);
                    continue;
                }
            }
        }
        if let Some(stream) = out.as_mut() {
            tracing::trace!(frames = count, "batch sent");
            if let Err(e) = stream.send(&batch, count).await {
                tracing::debug!(%node, error = %e, "a stream to another node broke");
                // Dropping it counts this batch and those before it lost.
                out = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: usize) -> Outgoing {
        let payload = troupe_dispatcher::Value::String("x".repeat(bytes));
        let msg = Message {
            from: None,
            topic: "t".into(),
            payload,
        };
        let weight = msg.weight();
        Outgoing::Message(1, msg, weight)
    }

    #[test]
    fn a_batch_stops_growing_at_its_byte_bound_but_takes_at_least_one_frame() {
        let small: Vec<_> = (0..BATCH).map(|_| message(100)).collect();
        assert_eq!(next_batch(&small), BATCH);
        let mb = 1 << 20;
        let large = [message(6 * mb), message(6 * mb), message(6 * mb)];
        assert_eq!(next_batch(&large), 2);
        assert_eq!(next_batch(&[message(40 * mb), message(1)]), 1);
    }

    #[test]
    fn a_message_too_large_to_cross_is_refused_with_limit_exceeded() {
        assert!(crossing("a message", wire::MAX_MESSAGE_BYTES).is_ok());
        let err = Error::from(crossing("a message", wire::MAX_MESSAGE_BYTES + 1).unwrap_err());
        assert_eq!(err.kind(), troupe_dispatcher::ErrorKind::LimitExceeded);
        assert!(err.message().contains("larger than a node sends"), "{err}");
    }
}
