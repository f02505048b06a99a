//! The receiving side: streams from the other nodes, read in order and
//! delivered to this node's runtime, and the answers to the spawn
//! requests this node sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::{AsyncWriteExt, FutureExt};
use libp2p::{PeerId, Stream};
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use troupe_dispatcher::{Error, ErrorKind, Pid, nodes};
use troupe_modules::Policy;
use troupe_runtime::{ParkedSends, RemoteSpawn, Runtime};

use super::outbound::Peer;
use super::wire::{self, Frame, Hello, unwire_pid, wire_pid};
use crate::pids;

/// What the receiving side needs of the membership: who a node is, and
/// the queue back to it.
pub(crate) trait Members: Send + Sync {
    /// The libp2p identity of node `node`, if it is a member this node
    /// knows of.
    fn peer_of(&self, node: u32) -> Option<PeerId>;

    /// Queues the answer to node `node`'s spawn request `id`.
    fn answer(&self, node: u32, id: u64, result: Result<u64, Error>);
}

/// How long a stream from a node this one does not know yet (or not by
/// that identity) waits for etcd to name it a member: a node that just
/// joined or restarted can be heard from before the others' etcd watch
/// reports it.
pub(super) const UNKNOWN_SENDER_WAIT: Duration = Duration::from_secs(5);

/// An answer to a spawn request this node sent: the new process's number
/// on the other node, or why none started.
type SpawnAnswer = oneshot::Sender<Result<u64, Error>>;

/// The newest stream (incarnation, number) read from one node; held
/// while a batch of it is delivered, so the streams of one node are
/// delivered one batch at a time.
type Lane = Arc<tokio::sync::Mutex<(u64, u64)>>;

/// Where a node's incoming messages go: its runtime, once attached, and
/// the spawn requests it sent and awaits answers to.
pub(crate) struct Inbound {
    pub runtime: Mutex<Option<Runtime>>,
    /// The most a process other nodes spawn here may do (`None`: the
    /// runtime's default policy).
    ceiling: Option<Arc<Policy>>,
    /// The membership: who is known, and where answers to other nodes'
    /// spawn requests go.
    pub members: OnceLock<Weak<dyn Members>>,
    /// Told each time a node joins.
    pub joined: Notify,
    /// Spawn requests awaiting an answer, by node index and number.
    spawns: Mutex<HashMap<(u32, u64), SpawnAnswer>>,
    next_spawn: AtomicU64,
    /// By sending node's index.
    lanes: Mutex<HashMap<u32, Lane>>,
}

impl Inbound {
    /// Nothing attached yet; processes spawned here for other nodes get
    /// at most `ceiling`.
    pub fn new(ceiling: Option<Policy>) -> Self {
        Inbound {
            runtime: Mutex::new(None),
            ceiling: ceiling.map(Arc::new),
            members: OnceLock::new(),
            joined: Notify::new(),
            spawns: Mutex::new(HashMap::new()),
            next_spawn: AtomicU64::new(0),
            lanes: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `req` for node `node` on `peer`, the queue to it: the
    /// answer arrives on the receiver. `None` if the node is gone.
    pub fn ask_spawn(
        &self,
        (node, peer): (u32, &Peer),
        mut req: RemoteSpawn,
        local: &str,
    ) -> Option<oneshot::Receiver<Result<u64, Error>>> {
        let id = self.next_spawn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.spawns.lock().insert((node, id), tx);
        req.parent = wire_pid(req.parent);
        req.args = req
            .args
            .into_iter()
            .map(|a| pids::outbound(a, local))
            .collect();
        if !peer.frame(Frame::Spawn { id, req }) {
            self.spawns.lock().remove(&(node, id));
            return None;
        }
        Some(rx)
    }

    /// Node `node` went away: its unanswered spawn requests fail.
    pub fn fail_spawns(&self, node: u32) {
        self.spawns.lock().retain(|&(n, _), _| n != node);
    }

    /// The node leaves: every unanswered spawn request fails.
    pub fn fail_all_spawns(&self) {
        self.spawns.lock().clear();
    }

    fn members(&self) -> Option<Arc<dyn Members>> {
        self.members.get().and_then(Weak::upgrade)
    }

    /// Reads the stream `peer` opened to this node and delivers what it
    /// carries, batch by batch, answering each once delivered. A stream
    /// from a node etcd does not list under that identity is refused, and
    /// one from a node that left is dropped.
    pub async fn serve(self: Arc<Self>, peer: PeerId, mut stream: Stream) {
        let hello: Hello = match wire::read(&mut stream, wire::MAX_HELLO_BYTES).await {
            Ok(Some(hello)) => hello,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "a stream that does not start as a troupe node's; dropped");
                return;
            }
        };
        let Ok(node) = nodes::index(&hello.from) else {
            tracing::warn!(%peer, from = %hello.from, "a stream from a malformed node name; dropped");
            return;
        };
        if !self.known(node, peer).await {
            tracing::warn!(%peer, from = %hello.from, "a stream from a node etcd does not list by that identity; dropped");
            return;
        }
        let lane = Arc::clone(self.lanes.lock().entry(node).or_default());
        let this = (hello.incarnation, hello.stream);
        loop {
            let frames: Vec<Frame> = match lingering(wire::read(&mut stream, wire::MAX_BATCH_BYTES))
                .await
            {
                Ok(Some(frames)) => frames,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(node = %hello.from, error = %e, "a stream from another node broke");
                    return;
                }
            };
            if self.members().and_then(|m| m.peer_of(node)) != Some(peer) {
                // It left (or this node counts it gone): as after
                // Erlang's nodedown, nothing more of it is delivered.
                tracing::debug!(node = %hello.from, "a stream from a node no longer a member; dropped");
                return;
            }
            {
                let mut newest = lane.lock().await;
                if newest.0 == this.0 && newest.1 > this.1 {
                    tracing::debug!(node = %hello.from, "a batch of a stream its sender gave up; dropped");
                    return;
                }
                *newest = this;
                tracing::trace!(frames = frames.len(), "batch arrived");
                self.deliver(node, frames).await;
            }
            if stream.write_all(&[wire::ACK]).await.is_err() || stream.flush().await.is_err() {
                return;
            }
        }
    }

    /// Waits (for a while) until node `node` is a member with libp2p
    /// identity `peer`; false if it does not become one.
    async fn known(&self, node: u32, peer: PeerId) -> bool {
        let Some(members) = self.members() else {
            return false;
        };
        let deadline = tokio::time::Instant::now() + UNKNOWN_SENDER_WAIT;
        loop {
            let joined = self.joined.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if members.peer_of(node) == Some(peer) {
                return true;
            }
            if tokio::time::timeout_at(deadline, joined).await.is_err() {
                return false;
            }
        }
    }

    /// Answers the spawn requests among `frames` from node `node`: this
    /// node has no runtime (yet, or any more).
    fn refuse_spawns(&self, node: u32, frames: Vec<Frame>) {
        let Some(out) = self.members() else {
            return;
        };
        for frame in frames {
            if let Frame::Spawn { id, .. } = frame {
                let why = Error::new(ErrorKind::Unavailable, "the node is not running processes");
                out.answer(node, id, Err(why));
            }
        }
    }

    /// Starts the process node `node` asked for in request `id` (off the
    /// swarm's threads: a script is read and compiled), and answers it.
    fn serve_spawn(&self, rt: &Runtime, node: u32, id: u64, mut req: RemoteSpawn) {
        req.parent = unwire_pid(req.parent, node);
        req.args = req.args.into_iter().map(pids::inbound).collect();
        let rt = rt.clone();
        let ceiling = self.ceiling.clone();
        let members = self.members();
        tokio::task::spawn_blocking(move || {
            rt.spawn_for(req, ceiling.as_ref(), |result| match members {
                Some(out) => out.answer(node, id, result.map(Pid::id)),
                None => tracing::warn!("answered a spawn request while leaving the cluster"),
            });
        });
    }

    /// Delivers `frames` from node `node` in order and returns once all
    /// are in their receivers' mailboxes. Messages that find a mailbox full
    /// wait there together (later ones to the same receiver queue up
    /// behind); a signal or spawn frame waits for those before it is acted
    /// on, so it never overtakes a message sent before it. A message to a
    /// process that is gone is dropped (as Erlang drops a message to a dead
    /// remote pid).
    async fn deliver(&self, node: u32, frames: Vec<Frame>) {
        let Some(rt) = self.runtime.lock().clone() else {
            tracing::warn!(
                node,
                "messages arrived while the node was not running; dropped"
            );
            self.refuse_spawns(node, frames);
            return;
        };
        let parked = Arc::new(ParkedSends::default());
        for frame in frames {
            if !matches!(frame, Frame::Message(_)) {
                parked.settled().await;
            }
            match frame {
                Frame::Message(env) => {
                    let from = env.from.map(|id| Pid::new(node, id));
                    let to = Pid::new(0, env.to);
                    let payload = pids::inbound(env.payload);
                    if let Err(e) = rt.deliver_remote(&parked, from, to, env.topic, payload) {
                        tracing::debug!(%to, error = %e, "dropped a message from another node");
                    }
                }
                Frame::Signal(signal) => {
                    rt.deliver_signal(signal.map_pids(|p| unwire_pid(p, node)));
                }
                Frame::Spawn { id, req } => self.serve_spawn(&rt, node, id, req),
                Frame::Spawned { id, result } => match self.spawns.lock().remove(&(node, id)) {
                    // The asker may have stopped waiting (it was killed).
                    Some(answer) => drop(answer.send(result)),
                    None => tracing::debug!(id, "an answer to no spawn request"),
                },
            }
        }
        parked.settled().await;
    }
}

/// How long a stream's reader stays awake for the next batch after one
/// before it waits parked.
const LINGER: Duration = Duration::from_micros(50);

/// Awaits `read`, first polling it for up to [`LINGER`], yielding in
/// between to the node's other tasks and to any thread waiting for the
/// core. The answer a delivered message prompts (a reply, the next
/// request) is then sent by a thread still awake: a parked thread takes
/// tens of microseconds to wake, the better part of a remote round trip
/// (140 µs without, 100 µs with, between two nodes on two cores).
async fn lingering<F: std::future::Future>(read: F) -> F::Output {
    let mut read = std::pin::pin!(read);
    let until = Instant::now() + LINGER;
    while Instant::now() < until {
        if let Some(done) = read.as_mut().now_or_never() {
            return done;
        }
        std::thread::yield_now();
        tokio::task::yield_now().await;
    }
    read.await
}
