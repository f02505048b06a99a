//! Between nodes: a libp2p swarm carrying kameo's remote actors.
//!
//! Each node runs one kameo actor, its [`Gateway`], and advertises the
//! gateway's actor id in etcd beside its peer id and listen address. A
//! node sends to another through one [`Peer`] per destination: a queue
//! drained by one task, which sends what is queued as one [`Batch`] (a
//! kameo `ask` to the destination's gateway), with up to [`WINDOW`]
//! batches on their way at once. Kameo hands each request to the actor
//! from a task of its own, so requests can reach the gateway out of
//! order: the batches are numbered, and the gateway holds one that came
//! early until those before it are delivered. So messages and signals
//! (links, monitors, exits) from one node to another arrive in the order
//! they were sent. Messages take a place of the queue's [`QUEUE`]
//! (signals never wait for one), and the places come back as the task
//! takes them: the queue fills (holding senders back) while the receiving
//! node delivers slowly, since the gateway answers a batch only once every
//! message in it is in its receiver's mailbox, waiting for room like any
//! send, and no more than [`WINDOW`] batches wait for their answer.
//!
//! The swarm's TCP connections start with libp2p's private-network
//! handshake (pnet) keyed by SHA-256 of the cluster secret, then noise and
//! yamux: a node with another secret cannot finish a handshake, and the
//! refused attempts are logged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use kameo::actor::{ActorId, ActorRef, RemoteActorRef, Spawn as _};
use kameo::message::{Context, Message as KameoMessage};
use kameo::remote;
use kameo::reply::{DelegatedReply, ReplySender};
use libp2p::core::upgrade::Version;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, SwarmBuilder, Transport as _, noise, tcp, yamux};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use troupe_dispatcher::{Error, ErrorKind, Pid, Value, nodes};
use troupe_modules::Policy;
use troupe_runtime::{Message, RemoteSignal, RemoteSpawn, Runtime};

use crate::error::ClusterError;
use crate::pids;

/// The most messages one batch carries.
const BATCH: usize = 512;
/// Messages queued per destination node before senders wait.
const QUEUE: usize = 4096;
/// The most batches to one node on their way (sent, not yet answered) at
/// once.
const WINDOW: usize = 4;
/// How long a batch may take to be delivered (receivers with full
/// mailboxes hold it up) before it counts as lost.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a batch waits for a connection to its node before it counts
/// as lost.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest batch a node accepts, encoded.
const MAX_BATCH_BYTES: u64 = 256 << 20;

/// One message between nodes: sender and receiver as numbers on their own
/// nodes, topic, and the payload with its pids in cluster-wide form.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    from: Option<u64>,
    to: u64,
    topic: String,
    payload: Value,
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

/// Messages and signals from one node to another, in the order they were
/// sent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The sending node's name.
    from: String,
    /// The sending OS process ([`INCARNATION`]).
    incarnation: u64,
    /// The stream of batches this one belongs to: a sender starts a new
    /// one, with a higher number, when a batch of its stream was lost.
    stream: u64,
    /// The batch's place in its stream, from 0.
    seq: u64,
    frames: Vec<Frame>,
}

/// This OS process among the incarnations of its node name: the clock
/// when it first sent a batch.
static INCARNATION: LazyLock<u64> = LazyLock::new(|| {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
});

/// The number of a new stream of batches, higher than every earlier one
/// of this OS process.
fn new_stream() -> u64 {
    static STREAMS: AtomicU64 = AtomicU64::new(1);
    STREAMS.fetch_add(1, Ordering::Relaxed)
}

/// On the wire, a signal's pids are marked by whose they are: node 1 for
/// the sending node's, node 0 for the receiving node's (a signal is always
/// between a process of each).
fn wire_pid(pid: Pid) -> Pid {
    Pid::new(u32::from(pid.node() == 0), pid.id())
}

/// A signal's pid from the wire, on the node that received it from node
/// `sender`.
fn unwire_pid(pid: Pid, sender: u32) -> Pid {
    match pid.node() {
        1 => Pid::new(sender, pid.id()),
        _ => Pid::new(0, pid.id()),
    }
}

/// What a node's queue to another holds.
enum Outgoing {
    /// A message for process `.0` of that node.
    Message(u64, Message),
    /// A signal for one of its processes.
    Signal(RemoteSignal),
    /// A frame ready for the wire (spawn requests and answers).
    Frame(Frame),
}

/// What the receiving side needs of the membership: whether a node is
/// known yet, and the queue back to it.
pub(crate) trait Members: Send + Sync {
    /// Whether node `node` is a member this node knows of.
    fn knows(&self, node: u32) -> bool;

    /// Queues the answer to node `node`'s spawn request `id`.
    fn answer(&self, node: u32, id: u64, result: Result<u64, Error>);
}

/// How long a batch from a node this one does not know yet waits for etcd
/// to name it a member (a node that just joined can be heard from before
/// the others' etcd watch reports it).
const UNKNOWN_SENDER_WAIT: Duration = Duration::from_secs(5);

/// An answer to a spawn request this node sent: the new process's number
/// on the other node, or why none started.
type SpawnAnswer = oneshot::Sender<Result<u64, Error>>;

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
        if peer
            .sender
            .queue(Outgoing::Frame(Frame::Spawn { id, req }))
            .is_err()
        {
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

    /// Waits (for a while) until node `node` is a known member: answers
    /// and signals back to it need its queue.
    async fn known(&self, node: u32, name: &str) {
        let Some(members) = self.members() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + UNKNOWN_SENDER_WAIT;
        loop {
            let joined = self.joined.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if members.knows(node) {
                return;
            }
            if tokio::time::timeout_at(deadline, joined).await.is_err() {
                tracing::warn!(
                    node = name,
                    "frames from a node etcd does not list as a member"
                );
                return;
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

    /// Delivers `batch` in order, each message waiting for room in its
    /// receiver's mailbox. A message to a process that is gone is dropped
    /// (as Erlang drops a message to a dead remote pid).
    async fn deliver(&self, batch: Batch) {
        let Ok(node) = nodes::index(&batch.from) else {
            tracing::warn!(from = %batch.from, "messages from a malformed node name; dropped");
            return;
        };
        self.known(node, &batch.from).await;
        let Some(rt) = self.runtime.lock().clone() else {
            tracing::warn!(from = %batch.from, "messages arrived while the node was not running; dropped");
            self.refuse_spawns(node, batch.frames);
            return;
        };
        for frame in batch.frames {
            match frame {
                Frame::Message(env) => {
                    let from = env.from.map(|id| Pid::new(node, id));
                    let to = Pid::new(0, env.to);
                    let payload = pids::inbound(env.payload);
                    if let Err(e) = rt.deliver_remote(from, to, env.topic, payload).await {
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
    }
}

/// The actor through which a node receives messages from the others.
#[derive(kameo::Actor, kameo::RemoteActor)]
pub(crate) struct Gateway {
    inbound: Arc<Inbound>,
    /// Where each sending node's stream of batches is.
    streams: HashMap<String, Stream>,
}

/// Where one sending node's stream of batches is.
#[derive(Default)]
struct Stream {
    incarnation: u64,
    id: u64,
    /// The number of the batch to deliver next.
    next: u64,
    /// Batches that came before `next`, with their answers.
    early: BTreeMap<u64, (Batch, Option<ReplySender<()>>)>,
}

#[kameo::remote_message("troupe.cluster.batch")]
impl KameoMessage<Batch> for Gateway {
    type Reply = DelegatedReply<()>;

    /// Delivers `batch` and the early ones that follow it, answering each
    /// once delivered; holds it if it came early. A batch of a stream its
    /// sender gave up is dropped unanswered (the sender counts it lost).
    async fn handle(&mut self, batch: Batch, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        let stream = self.streams.entry(batch.from.clone()).or_default();
        if stream.incarnation != batch.incarnation {
            *stream = Stream {
                incarnation: batch.incarnation,
                ..Stream::default()
            };
        }
        if (batch.stream, batch.seq) < (stream.id, stream.next) {
            tracing::debug!(from = %batch.from, "a batch of an abandoned stream; dropped");
            return delegated;
        }
        if batch.stream > stream.id {
            // What the old stream held waits for a batch that was lost.
            stream.id = batch.stream;
            stream.next = 0;
            stream.early.clear();
        }
        if batch.seq != stream.next {
            stream.early.insert(batch.seq, (batch, reply));
            return delegated;
        }
        let mut ready = Some((batch, reply));
        while let Some((batch, reply)) = ready {
            tracing::trace!(
                seq = batch.seq,
                frames = batch.frames.len(),
                "batch arrived"
            );
            self.inbound.deliver(batch).await;
            tracing::trace!("batch delivered");
            if let Some(reply) = reply {
                reply.send(());
            }
            stream.next += 1;
            ready = stream.early.remove(&stream.next);
        }
        delegated
    }
}

/// This node's end of the swarm.
pub(crate) struct Transport {
    /// This node's libp2p identity.
    pub peer_id: PeerId,
    /// The address it listens on.
    pub addr: Multiaddr,
    /// Its gateway's number among its actors.
    pub gateway_seq: u64,
    /// Kept alive for as long as the node is up.
    _gateway: ActorRef<Gateway>,
    dials: mpsc::UnboundedSender<(PeerId, Multiaddr, bool)>,
    /// The peers this node has a connection to.
    pub connected: watch::Receiver<HashSet<PeerId>>,
    swarm_task: AbortHandle,
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.swarm_task.abort();
    }
}

/// The pre-shared key of the private network: SHA-256 of the secret.
fn psk(secret: &[u8]) -> PreSharedKey {
    PreSharedKey::new(Sha256::digest(secret).into())
}

fn transport_error(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Transport(e.to_string())
}

impl Transport {
    /// Starts the swarm listening on `listen` (inside the cluster's tokio
    /// runtime), and this node's gateway.
    pub async fn start(
        listen: Multiaddr,
        secret: &[u8],
        inbound: Arc<Inbound>,
    ) -> Result<Transport, ClusterError> {
        let key = psk(secret);
        let messaging = remote::messaging::Config::default()
            .with_request_timeout(BATCH_TIMEOUT)
            .with_request_size_maximum(MAX_BATCH_BYTES);
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_other_transport(|id| {
                let noise = noise::Config::new(id)?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    tcp::tokio::Transport::new(tcp::Config::default())
                        .and_then(move |socket, _| PnetConfig::new(key).handshake(socket))
                        .upgrade(Version::V1Lazy)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default())
                        .timeout(Duration::from_secs(20))
                        .boxed(),
                )
            })
            .map_err(transport_error)?
            .with_behaviour(|id| remote::Behaviour::new(id.public().to_peer_id(), messaging))
            .map_err(transport_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        swarm
            .behaviour()
            .try_init_global()
            .map_err(|_| transport_error("one OS process can be one node of a cluster only"))?;
        swarm.listen_on(listen).map_err(transport_error)?;
        let addr = loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => break address,
                SwarmEvent::ListenerError { error, .. } => return Err(transport_error(error)),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    let why = reason
                        .err()
                        .map_or_else(|| "closed".to_owned(), |e| e.to_string());
                    return Err(transport_error(why));
                }
                _ => {}
            }
        };
        let peer_id = *swarm.local_peer_id();
        let (dials, mut dial_rx) = mpsc::unbounded_channel::<(PeerId, Multiaddr, bool)>();
        let (links, connected) = watch::channel(HashSet::new());
        let swarm_task = tokio::spawn(async move {
            loop {
                // Dials first: a node is dialed before anything is sent to
                // it, so a request never goes out before its address is known.
                tokio::select! {
                    biased;
                    dial = dial_rx.recv() => {
                        let Some((peer, addr, dial)) = dial else { break };
                        swarm.add_peer_address(peer, addr.clone());
                        // A dial refused because the peer is connected
                        // is a dial failure to kameo, which then fails
                        // every request on its way to the peer (while they
                        // are still delivered): dial only the unconnected.
                        let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                        if dial && !swarm.is_connected(&peer) && let Err(e) = swarm.dial(opts) {
                            tracing::debug!(%peer, error = %e, "dial");
                        }
                    }
                    event = swarm.select_next_some() => {
                        log_event(&event);
                        track(&links, &event);
                    }
                }
            }
        })
        .abort_handle();
        let gateway = Gateway::spawn(Gateway {
            inbound,
            streams: HashMap::new(),
        });
        gateway.into_remote_ref().await;
        Ok(Transport {
            peer_id,
            addr,
            gateway_seq: gateway.id().sequence_id(),
            _gateway: gateway,
            dials,
            connected,
            swarm_task,
        })
    }

    /// Records that `peer` listens at `addr`, and starts connecting to it
    /// if `dial`: a node that joins connects to the members it finds, so
    /// its first messages find a connection; the members wait for it (a
    /// queue dials its node itself when it has something to send and no
    /// connection).
    pub fn add_peer(&self, peer: PeerId, addr: Multiaddr, dial: bool) {
        let _ = self.dials.send((peer, addr, dial));
    }

    /// Starts connecting to `peer` at `addr` (again).
    pub fn dial(&self, peer: PeerId, addr: Multiaddr) {
        let _ = self.dials.send((peer, addr, true));
    }

    /// The queue to node `name`, whose gateway is `seq` on `peer_id`
    /// listening at `addr`.
    pub fn peer(
        &self,
        local: Arc<str>,
        name: Arc<str>,
        (peer_id, addr): (PeerId, Multiaddr),
        seq: u64,
    ) -> Result<Peer, ClusterError> {
        let link = Link {
            local,
            name,
            gateway: gateway_of(peer_id, seq)?,
            peer_id,
            addr: addr.clone(),
            dials: self.dials.clone(),
            connected: self.connected.clone(),
        };
        let (queue, rx) = mpsc::unbounded_channel();
        let sender = PeerSender {
            queue,
            room: Arc::new(Semaphore::new(QUEUE)),
            unsent: Arc::new(AtomicUsize::new(0)),
        };
        let task = tokio::spawn(pump(link, rx, sender.clone())).abort_handle();
        Ok(Peer {
            peer_id,
            addr,
            sender,
            task,
        })
    }
}

/// Keeps the set of connected peers up to date.
fn track<E>(links: &watch::Sender<HashSet<PeerId>>, event: &SwarmEvent<E>) {
    match event {
        SwarmEvent::ConnectionEstablished { peer_id, .. } => {
            links.send_modify(|set| {
                set.insert(*peer_id);
            });
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established: 0,
            ..
        } => {
            links.send_modify(|set| {
                set.remove(peer_id);
            });
        }
        _ => {}
    }
}

/// Logs what the swarm reports that matters to an operator: refused
/// connections (a wrong secret, or frames from outside the cluster) and
/// connections made and lost.
fn log_event<E>(event: &SwarmEvent<E>) {
    match event {
        SwarmEvent::IncomingConnectionError {
            send_back_addr,
            error,
            ..
        } => tracing::warn!(
            from = %send_back_addr,
            error = %error,
            "refused a connection from outside the cluster (wrong secret or not a troupe node)"
        ),
        SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => tracing::warn!(
            peer = ?peer_id,
            error = %error,
            "could not connect to a node (wrong secret, or it is down)"
        ),
        SwarmEvent::ConnectionEstablished { peer_id, .. } => {
            tracing::debug!(peer = %peer_id, "connected to a node");
        }
        SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
            tracing::debug!(peer = %peer_id, cause = ?cause, "connection to a node closed");
        }
        _ => {}
    }
}

/// The gateway of the node whose peer id is `peer`, from the number etcd
/// advertises for it.
fn gateway_of(peer: PeerId, seq: u64) -> Result<RemoteActorRef<Gateway>, ClusterError> {
    // kameo makes remote refs from their serialized form only.
    let id = ActorId::new_with_peer_id(seq, peer);
    let bytes = rmp_serde::to_vec(&(id,)).map_err(transport_error)?;
    rmp_serde::from_slice(&bytes).map_err(transport_error)
}

/// The queue to one other node and the task sending what it holds.
pub(crate) struct Peer {
    /// The node's libp2p identity (a node that rejoins gets a new one).
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

impl PeerSender {
    /// Queues `msg` for process `to` of that node, waiting for room.
    pub async fn send(&self, to: u64, msg: Message) -> Result<(), ClusterError> {
        self.room.acquire().await.map_err(|_| node_left())?.forget();
        self.queue(Outgoing::Message(to, msg))
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
    /// Queues `msg` for process `to` of that node; gives it back if the
    /// queue is full, or fails if the node is gone.
    pub fn try_send(&self, to: u64, msg: Message) -> Result<Option<Message>, ClusterError> {
        match self.sender.room.try_acquire() {
            Ok(place) => place.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Ok(Some(msg)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(node_left()),
        }
        self.sender.queue(Outgoing::Message(to, msg)).map(|()| None)
    }

    /// Queues `signal`, after what is queued, without waiting for room;
    /// false if the node is gone.
    pub fn signal(&self, signal: RemoteSignal) -> bool {
        self.sender.queue(Outgoing::Signal(signal)).is_ok()
    }

    /// Queues the answer to this node's spawn request `id`, after what is
    /// queued (the link of a linked spawn, first of all).
    pub fn answer(&self, id: u64, result: Result<u64, Error>) -> bool {
        let frame = Frame::Spawned { id, result };
        self.sender.queue(Outgoing::Frame(frame)).is_ok()
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

/// What one node's queue is drained to: the other node's gateway, and
/// how to connect to it.
struct Link {
    local: Arc<str>,
    name: Arc<str>,
    gateway: RemoteActorRef<Gateway>,
    peer_id: PeerId,
    addr: Multiaddr,
    dials: mpsc::UnboundedSender<(PeerId, Multiaddr, bool)>,
    connected: watch::Receiver<HashSet<PeerId>>,
}

impl Link {
    /// Waits until there is a connection to the node, dialing it if there
    /// is none; false if none comes within [`CONNECT_TIMEOUT`]. A request
    /// is only sent on a connection: one sent while a dial is under way
    /// would be failed by kameo (it fails a peer's requests on any dial
    /// failure, a dial refused because another is under way included) and
    /// still be delivered.
    async fn connect(&mut self) -> bool {
        if self.connected.borrow().contains(&self.peer_id) {
            return true;
        }
        let _ = self.dials.send((self.peer_id, self.addr.clone(), true));
        let peer = self.peer_id;
        let up = self.connected.wait_for(|set| set.contains(&peer));
        matches!(tokio::time::timeout(CONNECT_TIMEOUT, up).await, Ok(Ok(_)))
    }
}

/// Sends what is queued for one node as numbered batches, up to
/// [`WINDOW`] of them on their way at once; gives the queue's places back
/// as it takes messages out. A batch whose delivery cannot be confirmed is
/// lost, and the batches after it go in a new stream, so the gateway does
/// not wait for it.
async fn pump(mut link: Link, mut rx: mpsc::UnboundedReceiver<Outgoing>, sender: PeerSender) {
    let mut queued = Vec::with_capacity(BATCH);
    let mut flying = FuturesUnordered::new();
    let (mut stream, mut seq) = (new_stream(), 0);
    let mut open = true;
    while open || !flying.is_empty() {
        tokio::select! {
            Some((sent_in, lost, answer)) = flying.next(), if !flying.is_empty() => {
                tracing::trace!(frames = lost, "batch answered");
                if let Err(e) = answer {
                    tracing::warn!(node = %link.name, lost, error = %e, "messages to another node were lost");
                    if sent_in == stream {
                        (stream, seq) = (new_stream(), 0);
                    }
                }
                sender.unsent.fetch_sub(lost, Ordering::Relaxed);
            }
            got = rx.recv_many(&mut queued, BATCH), if open && flying.len() < WINDOW => {
                if got == 0 {
                    open = false;
                    continue;
                }
                let mut taken = 0;
                let frames: Vec<Frame> = queued
                    .drain(..)
                    .map(|out| match out {
                        Outgoing::Message(to, m) => {
                            taken += 1;
                            Frame::Message(Envelope {
                                from: m.from.map(Pid::id),
                                to,
                                topic: m.topic,
                                payload: pids::outbound(m.payload, &link.local),
                            })
                        }
                        Outgoing::Signal(signal) => Frame::Signal(signal.map_pids(wire_pid)),
                        Outgoing::Frame(frame) => frame,
                    })
                    .collect();
                sender.room.add_permits(taken);
                let lost = frames.len();
                if !link.connect().await {
                    tracing::warn!(node = %link.name, lost, "messages to another node were lost: no connection");
                    sender.unsent.fetch_sub(lost, Ordering::Relaxed);
                    continue;
                }
                let batch = Batch {
                    from: link.local.to_string(),
                    incarnation: *INCARNATION,
                    stream,
                    seq,
                    frames,
                };
                seq += 1;
                tracing::trace!(seq = batch.seq, frames = lost, "batch sent");
                let gateway = link.gateway.clone();
                flying.push(async move {
                    let answer = gateway.ask(&batch).await.map_err(|e| e.to_string());
                    (batch.stream, lost, answer)
                });
            }
        }
    }
}
