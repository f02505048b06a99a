//! Between nodes: one libp2p stream per ordered pair of nodes.
//!
//! A node sends to another through one [`Peer`] per destination: a queue
//! drained by one task, which writes what is queued as one batch on a
//! stream it opened to that node (protocol [`PROTOCOL`]), and opens a new
//! one if it broke. The receiving node reads each stream in order and
//! delivers a batch before it reads the next, answering it once every
//! message in it is in its receiver's mailbox (waiting for room like any
//! send). So messages and signals (links, monitors, exits) and spawn
//! requests from one node to another arrive in the order they were sent,
//! and nothing is sent twice. Messages take a place of the queue's
//! places (signals never wait for one), and the places come back as the
//! task takes them: while the receiving node delivers slowly, the
//! stream's flow control holds the task back, the queue fills, and
//! senders wait. The answers tell the sender what was delivered (a node
//! that leaves waits for them).
//!
//! The swarm's TCP connections start with libp2p's private-network
//! handshake (pnet) keyed by SHA-256 of the cluster secret, then noise and
//! yamux: a node with another secret cannot finish a handshake, and the
//! refused attempts are logged. A stream is read only from the libp2p
//! identity etcd lists for the node it names.
//!
//! (Before, each batch was a kameo remote-actor request: a new yamux
//! stream and protocol negotiation per batch, 200 µs and more each, which
//! kept round trips at 13× Erlang's. See benches/RESULTS.md.)

mod inbound;
mod outbound;
mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::core::upgrade::Version;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, StreamProtocol, SwarmBuilder, Transport as _, noise, tcp, yamux};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

pub(crate) use inbound::{Inbound, Members};
pub(crate) use outbound::{Link, Peer, crossing};

use crate::error::ClusterError;

/// The protocol of the streams between nodes.
const PROTOCOL: StreamProtocol = StreamProtocol::new("/troupe/frames/1");

/// Opens streams to other nodes.
type StreamControl = libp2p_stream::Control;

/// This node's end of the swarm.
pub(crate) struct Transport {
    /// This node's libp2p identity.
    pub peer_id: PeerId,
    /// The address it listens on.
    pub addr: Multiaddr,
    /// Opens streams to the other nodes.
    control: StreamControl,
    dials: mpsc::UnboundedSender<(PeerId, Multiaddr, bool)>,
    /// The peers this node has a connection to.
    pub connected: watch::Receiver<HashSet<PeerId>>,
    /// The swarm, and the task taking the streams other nodes open.
    tasks: [AbortHandle; 2],
}

impl Drop for Transport {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
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
    /// runtime), taking the streams other nodes open to `inbound`.
    pub async fn start(
        listen: Multiaddr,
        secret: &[u8],
        inbound: Arc<Inbound>,
    ) -> Result<Transport, ClusterError> {
        let key = psk(secret);
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
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .map_err(transport_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        let mut control = swarm.behaviour().new_control();
        let mut incoming = control.accept(PROTOCOL).map_err(transport_error)?;
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
                // it, so a stream is never asked for before its address is
                // known.
                tokio::select! {
                    biased;
                    dial = dial_rx.recv() => {
                        let Some((peer, addr, dial)) = dial else { break };
                        swarm.add_peer_address(peer, addr.clone());
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
        let accept_task = tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                tokio::spawn(Arc::clone(&inbound).serve(peer, stream));
            }
        })
        .abort_handle();
        Ok(Transport {
            peer_id,
            addr,
            control,
            dials,
            connected,
            tasks: [swarm_task, accept_task],
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

    /// The queue to node `name`, `peer_id` listening at `addr`.
    pub fn peer(
        &self,
        local: Arc<str>,
        name: Arc<str>,
        (peer_id, addr): (PeerId, Multiaddr),
    ) -> Peer {
        Peer::start(Link {
            local,
            name,
            peer_id,
            addr,
            dials: self.dials.clone(),
            connected: self.connected.clone(),
            control: self.control.clone(),
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use parking_lot::Mutex;
    use troupe_dispatcher::{Error, Pid, nodes};
    use troupe_modules::Policy;
    use troupe_runtime::RemoteSpawn;

    use super::inbound::UNKNOWN_SENDER_WAIT;
    use super::wire::Frame;
    use super::*;

    /// A membership listing node `claimed` under one libp2p identity, and
    /// the spawn requests this node answered (it has no runtime: it
    /// refuses each one it reads).
    struct Listed {
        claimed: u32,
        listed: PeerId,
        answered: Mutex<Vec<u64>>,
    }

    impl Members for Listed {
        fn peer_of(&self, node: u32) -> Option<PeerId> {
            (node == self.claimed).then_some(self.listed)
        }

        fn answer(&self, _node: u32, id: u64, _result: Result<u64, Error>) {
            self.answered.lock().push(id);
        }
    }

    fn spawn_request() -> Frame {
        let req = RemoteSpawn {
            parent: Pid::new(0, 1),
            key: "probe.lua".into(),
            args: Vec::new(),
            entry: None,
            mailbox: None,
            link: false,
            lightweight: false,
            restart_on_change: false,
            policy: Policy::deny_all(),
            timeout: None,
        };
        Frame::Spawn { id: 7, req }
    }

    /// Node "r" listens, with etcd listing node `forged-b` under the
    /// identity `listed` picks (given the sender's own); a node with the
    /// secret opens a stream naming itself `forged-b` and sends a spawn
    /// request. What r answered shows whether it read the stream.
    async fn answered_when_listed_as(listed: impl FnOnce(PeerId) -> PeerId) -> Vec<u64> {
        let secret = b"one secret";
        let any = || "/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().expect("addr");
        let r_in = Arc::new(Inbound::new(None));
        let r = Transport::start(any(), secret, Arc::clone(&r_in))
            .await
            .unwrap();
        let f = Transport::start(any(), secret, Arc::new(Inbound::new(None)))
            .await
            .unwrap();
        let membership = Arc::new(Listed {
            claimed: nodes::index("forged-b").expect("a node name"),
            listed: listed(f.peer_id),
            answered: Mutex::new(Vec::new()),
        });
        let members: Arc<dyn Members> = membership.clone();
        let _ = r_in.members.set(Arc::downgrade(&members));
        let to_r = f.peer("forged-b".into(), "r".into(), (r.peer_id, r.addr.clone()));
        assert!(to_r.frame(spawn_request()));
        // Past the wait for etcd to list an unknown sender.
        let until = Instant::now() + UNKNOWN_SENDER_WAIT + Duration::from_secs(3);
        while Instant::now() < until && membership.answered.lock().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        membership.answered.lock().clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_is_read_when_etcd_lists_its_sender_under_that_identity() {
        assert_eq!(answered_when_listed_as(|sender| sender).await, vec![7]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_with_the_secret_cannot_speak_as_another_node() {
        let real = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert_eq!(answered_when_listed_as(|_| real).await, Vec::<u64>::new());
    }
}
