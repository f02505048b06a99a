//! Troupe nodes in a cluster: processes on several nodes message each
//! other by pid or global name.
//!
//! - **Transport**: one long-lived libp2p stream per pair of nodes (TCP, a
//!   private-network handshake keyed by the cluster secret, noise, yamux);
//!   see `transport/`.
//! - **Membership and global names**: etcd, under a lease per node; see
//!   `membership.rs`.
//! - **Pids**: a pid of node `b` reads `<b.0.42>` on the other nodes, and
//!   pids inside payloads are rewritten as they cross; see `pids.rs`.
//!
//! A [`Cluster`] implements the runtime's [`RemoteNodes`] hook:
//!
//! ```no_run
//! use std::sync::Arc;
//! use troupe_cluster::{Cluster, ClusterConfig};
//! use troupe_runtime::Runtime;
//!
//! let cluster = Cluster::join(ClusterConfig::new("a", ["http://127.0.0.1:2379"]))?;
//! let rt = Runtime::builder().cluster(cluster.clone()).build()?;
//! // … spawn processes …
//! cluster.leave();
//! # Ok::<(), troupe_dispatcher::Error>(())
//! ```
//!
//! One OS process is one node (the pid node names are per OS process).

mod error;
mod membership;
mod pids;
mod transport;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};

use etcd_client::Client;
use libp2p::Multiaddr;
use parking_lot::{Mutex, RwLock};
use tokio::task::AbortHandle;
use troupe_dispatcher::{Error, ErrorKind, Pid, Value, nodes};
use troupe_modules::{Class, ModuleDef, Policy};
use troupe_runtime::{
    ClusterMember, HostMailbox, Message, RemoteFuture, RemoteNodes, RemoteSignal, RemoteSpawn,
    Runtime,
};

pub use error::ClusterError;

use membership::State;
use transport::{Inbound, Members, Transport};

/// How long a node that leaves waits for what it queued for the others
/// to be delivered.
const LEAVE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a remote spawn waits for the other node's answer (it comes
/// once the process is made, before it runs) before it fails with
/// `TIMEOUT`: the request or its answer may have been lost with a stream
/// that broke.
const SPAWN_ANSWER: std::time::Duration = std::time::Duration::from_secs(30);

/// How a node joins a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    node: String,
    etcd: Vec<String>,
    listen: Option<String>,
    secret: Vec<u8>,
    spawn_policy: Option<Policy>,
}

impl ClusterConfig {
    /// Node `node` of the cluster whose etcd is at `etcd` (endpoints such
    /// as `http://127.0.0.1:2379`).
    pub fn new<I, S>(node: impl Into<String>, etcd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClusterConfig {
            node: node.into(),
            etcd: etcd.into_iter().map(Into::into).collect(),
            listen: None,
            secret: Vec::new(),
            spawn_policy: None,
        }
    }

    /// Where to listen for the other nodes: a multiaddr
    /// (`/ip4/10.0.0.5/tcp/7000`) or `HOST:PORT` (default: a free port on
    /// 127.0.0.1).
    #[must_use]
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// The shared secret every node of the cluster has (as Erlang's
    /// cookie): a node with another one cannot connect. Empty (the
    /// default) is a secret too, a publicly known one.
    #[must_use]
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = secret.into();
        self
    }

    /// The most a process other nodes spawn on this one
    /// (`process.spawn(script, {node = …})`) may do, whatever its spawner
    /// may (default: the runtime's default policy, e.g. what `troupe run`'s
    /// flags allow). A node never runs code with more than this.
    #[must_use]
    pub fn spawn_policy(mut self, policy: Policy) -> Self {
        self.spawn_policy = Some(policy);
        self
    }

    /// The listen address as a multiaddr.
    fn listen_addr(&self) -> Result<Multiaddr, ClusterError> {
        let text = self.listen.as_deref().unwrap_or("127.0.0.1:0");
        if text.starts_with('/') {
            return text
                .parse()
                .map_err(|e| ClusterError::Config(format!("listen address {text:?}: {e}")));
        }
        let addr: SocketAddr = text
            .parse()
            .map_err(|e| ClusterError::Config(format!("listen address {text:?}: {e}")))?;
        let ip = match addr.ip() {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
        };
        format!("{ip}/tcp/{}", addr.port())
            .parse()
            .map_err(|e| ClusterError::Config(format!("listen address {text:?}: {e}")))
    }
}

/// This node's membership of a cluster: its swarm, its lease in etcd and
/// what it knows of the other nodes.
pub struct Cluster {
    state: Arc<State>,
    etcd: Client,
    inbound: Arc<Inbound>,
    /// Watches the holders of this node's global names, once attached.
    holders: Mutex<Option<Arc<HostMailbox>>>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// The cluster's own threads (swarm, etcd); taken when it leaves.
    tokio: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl Cluster {
    /// Joins the cluster: names this node, starts listening, registers the
    /// node in etcd under a lease and reads the members and global names.
    /// Blocks until done; call it outside any async runtime.
    pub fn join(config: ClusterConfig) -> Result<Arc<Cluster>, ClusterError> {
        nodes::set_local(&config.node).map_err(|e| ClusterError::Config(e.to_string()))?;
        if config.secret.is_empty() {
            tracing::warn!("no cluster secret: any node that knows the etcd can join");
        }
        let listen = config.listen_addr()?;
        let tokio = tokio::runtime::Builder::new_multi_thread()
            // One thread: the streams' tasks hand each other work on it
            // without waking another (a remote round trip took 140 µs
            // instead of 180 µs).
            .worker_threads(1)
            .thread_name("troupe-cluster")
            .enable_all()
            .build()?;
        let handle = tokio.handle().clone();
        let local: Arc<str> = Arc::from(config.node.as_str());
        let cluster = tokio.block_on(async {
            let mut etcd = Client::connect(&config.etcd, None).await?;
            let lease = etcd.lease_grant(membership::LEASE_TTL, None).await?.id();
            let inbound = Arc::new(Inbound::new(config.spawn_policy.clone()));
            let transport = Transport::start(listen, &config.secret, Arc::clone(&inbound)).await?;
            let state = Arc::new(State {
                local,
                transport,
                peers: RwLock::new(HashMap::new()),
                names: RwLock::new(Default::default()),
                inbound: Arc::clone(&inbound),
                lost: RwLock::new(HashSet::new()),
                node_watchers: Mutex::new(HashMap::new()),
                lease: AtomicI64::new(lease),
                own_names: Mutex::new(Default::default()),
            });
            let members = Arc::downgrade(&state) as Weak<dyn Members>;
            let _ = inbound.members.set(members);
            membership::register_node(&mut etcd, &state, lease).await?;
            let at = membership::load(&mut etcd, &state).await?;
            let stay =
                tokio::spawn(membership::stay(etcd.clone(), Arc::clone(&state), at)).abort_handle();
            let links = tokio::spawn(follow_connections(Arc::clone(&state))).abort_handle();
            tracing::info!(
                node = %state.local,
                addr = %state.transport.addr,
                peer = %state.transport.peer_id,
                "joined the cluster"
            );
            Ok::<_, ClusterError>(Cluster {
                state,
                etcd,
                inbound,
                holders: Mutex::new(None),
                tasks: Mutex::new(vec![stay, links]),
                tokio: Mutex::new(None),
                handle: handle.clone(),
            })
        })?;
        *cluster.tokio.lock() = Some(tokio);
        Ok(Arc::new(cluster))
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.state.local
    }

    /// The live nodes' names, this one included, sorted.
    pub fn nodes(&self) -> Vec<String> {
        self.state.members()
    }

    /// The address this node listens on for the others.
    pub fn listen_addr(&self) -> String {
        self.state.transport.addr.to_string()
    }

    /// Leaves the cluster: revokes the node's lease (its member record and
    /// global names go with it), stops its tasks and threads, and lets go
    /// of the runtime. Idempotent.
    pub fn leave(&self) {
        let Some(tokio) = self.tokio.lock().take() else {
            return;
        };
        // Inside an async runtime it cannot wait: what is queued is then
        // dropped, and the lease expires by itself within its TTL.
        // Otherwise what was sent before leaving (a process's last
        // messages, the exit signals of its end) is delivered first, for a
        // while, and the lease revoked.
        // No keep-alive or rejoin from here on.
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        if tokio::runtime::Handle::try_current().is_err() {
            let mut etcd = self.etcd.clone();
            let lease = self.state.lease.load(Ordering::Acquire);
            let state = &self.state;
            let revoked = tokio.block_on(async move {
                let deadline = tokio::time::Instant::now() + LEAVE_FLUSH;
                while !state.drained() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                etcd.lease_revoke(lease).await
            });
            if let Err(e) = revoked {
                tracing::warn!(error = %e, "could not revoke the node's lease; it expires by itself");
            }
        }
        self.state.peers.write().clear();
        self.inbound.fail_all_spawns();
        *self.inbound.runtime.lock() = None;
        *self.holders.lock() = None;
        tokio.shutdown_background();
    }

    /// `UNAVAILABLE`: `to`'s node is not a live member.
    fn unavailable(to: Pid) -> Error {
        Error::from(ClusterError::NoNode(
            nodes::name(to.node()).map_or_else(|| to.node().to_string(), |n| n.to_string()),
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Joined as a runtime is built: `Runtime::builder().cluster(cluster.clone())`.
impl ClusterMember for Cluster {
    fn attach(self: Arc<Self>, rt: &Runtime) -> Result<(), Error> {
        rt.set_remote(Arc::clone(&self) as Arc<dyn RemoteNodes>)?;
        *self.inbound.runtime.lock() = Some(rt.clone());
        let holders = Arc::new(rt.mailbox());
        *self.holders.lock() = Some(Arc::clone(&holders));
        let state = Arc::clone(&self.state);
        let etcd = self.etcd.clone();
        let task = self.handle.spawn(async move {
            loop {
                let down = holders.recv_topic("DOWN").await;
                if let Some(pid) = down.from {
                    membership::release_names(etcd.clone(), &state, pid.id()).await;
                }
            }
        });
        self.tasks.lock().push(task.abort_handle());
        Ok(())
    }

    /// The `cluster` module (class `cluster`): `cluster.node()`,
    /// `cluster.nodes()` and `cluster.monitor_node(name)`.
    fn module(&self) -> ModuleDef {
        let node = Arc::clone(&self.state);
        let members = Arc::clone(&self.state);
        let watched = Arc::clone(&self.state);
        ModuleDef::new("cluster")
            .describe("The cluster this node belongs to: its name and the live nodes")
            .class(Class::Cluster)
            .typed_function("node", move |_cx, ()| Ok(node.local.to_string()))
            .typed_function("nodes", move |_cx, ()| {
                Ok(Value::Array(
                    members.members().into_iter().map(Value::from).collect(),
                ))
            })
            .typed_function("monitor_node", move |cx, (name,): (String,)| {
                nodes::valid_name(&name)
                    .then_some(())
                    .ok_or_else(|| Error::invalid(format!("{name:?} is not a node name")))?;
                watched.monitor_node(cx.pid, &name);
                Ok(true)
            })
    }
}

impl RemoteNodes for Cluster {
    fn try_send(&self, to: Pid, msg: Message) -> Result<Option<Message>, Error> {
        self.state
            .reachable(to.node(), |peer| peer.try_send(to.id(), msg))
            .ok_or_else(|| Self::unavailable(to))?
            .map_err(Error::from)
    }

    fn send(&self, to: Pid, msg: Message) -> RemoteFuture {
        let queue = self.state.reachable(to.node(), |p| p.sender());
        Box::pin(async move {
            let queue = queue.ok_or_else(|| Self::unavailable(to))?;
            queue
                .send(to.id(), msg)
                .await
                .map_err(|_| Self::unavailable(to))
        })
    }

    fn signal(&self, signal: RemoteSignal) -> bool {
        let to = signal.to();
        self.state
            .reachable(to.node(), |peer| peer.signal(signal))
            .unwrap_or(false)
    }

    fn whereis(&self, name: &str) -> Option<Pid> {
        self.state.whereis(name)
    }

    fn spawn(&self, node: &str, req: RemoteSpawn) -> RemoteFuture<Pid> {
        if let Err(e) = transport::crossing("a spawn request", req.weight()) {
            return Box::pin(std::future::ready(Err(e.into())));
        }
        let index = nodes::lookup(node);
        let asked = index.and_then(|i| {
            self.state.reachable(i, |peer| {
                self.inbound.ask_spawn((i, peer), req, &self.state.local)
            })
        });
        let unavailable = || Error::from(ClusterError::NoNode(node.to_owned()));
        let (Some(index), Some(Some(answer))) = (index, asked) else {
            return Box::pin(std::future::ready(Err(unavailable())));
        };
        let gone = Error::new(
            ErrorKind::Unavailable,
            format!("node {node:?} went away before it started the process"),
        );
        let late = Error::new(
            ErrorKind::Timeout,
            format!(
                "node {node:?} did not answer the spawn request within {} s",
                SPAWN_ANSWER.as_secs()
            ),
        );
        // On the cluster's runtime, whose timers run whoever awaits this
        // (the timeout is made there too: a worker thread has no timers).
        let answered = self
            .handle
            .spawn(async move { tokio::time::timeout(SPAWN_ANSWER, answer).await });
        Box::pin(async move {
            match answered.await {
                Ok(Ok(Ok(started))) => started.map(|id| Pid::new(index, id)),
                Ok(Ok(Err(_))) | Err(_) => Err(gone),
                Ok(Err(_)) => Err(late),
            }
        })
    }

    fn register(&self, name: &str, pid: Pid) -> RemoteFuture {
        let name = name.to_owned();
        if name.is_empty() || name.len() > 255 || name.starts_with('<') {
            return Box::pin(std::future::ready(Err(Error::invalid(format!(
                "{name:?} cannot be a global name: 1 to 255 bytes, not starting with '<'"
            )))));
        }
        let etcd = self.etcd.clone();
        let state = Arc::clone(&self.state);
        let lease = self.state.lease.load(Ordering::Acquire);
        let holders = self.holders.lock().clone();
        let claim = self.handle.spawn(async move {
            membership::claim_name(etcd, &state, lease, &name, pid).await?;
            if let Some(h) = holders
                && let Err(e) = h.monitor(pid)
            {
                tracing::debug!(%pid, error = %e, "cannot watch a global name's holder");
            }
            Ok::<_, ClusterError>(())
        });
        Box::pin(async move {
            claim
                .await
                .map_err(|e| Error::new(ErrorKind::Internal, format!("global register: {e}")))?
                .map_err(Error::from)
        })
    }
}

/// Tells `state` of the connections lost and made again, as the swarm
/// reports them.
async fn follow_connections(state: Arc<State>) {
    let mut connected = state.transport.connected.clone();
    let mut before: HashSet<libp2p::PeerId> = HashSet::new();
    while connected.changed().await.is_ok() {
        let now = connected.borrow_and_update().clone();
        for &peer in before.difference(&now) {
            state.connection_lost(peer);
        }
        for &peer in now.difference(&before) {
            state.connection_back(peer);
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_host_ports_or_multiaddrs() {
        let addr = |listen: Option<&str>| {
            let config = ClusterConfig::new("n", ["http://127.0.0.1:2379"]);
            let config = match listen {
                Some(l) => config.listen(l),
                None => config,
            };
            config.listen_addr().map(|a| a.to_string())
        };
        assert_eq!(addr(None).unwrap(), "/ip4/127.0.0.1/tcp/0");
        assert_eq!(
            addr(Some("10.0.0.5:7000")).unwrap(),
            "/ip4/10.0.0.5/tcp/7000"
        );
        assert_eq!(addr(Some("[::1]:7000")).unwrap(), "/ip6/::1/tcp/7000");
        assert_eq!(
            addr(Some("/ip4/0.0.0.0/tcp/9")).unwrap(),
            "/ip4/0.0.0.0/tcp/9"
        );
        for bad in ["nowhere", "/not/a/multiaddr", "1.2.3.4"] {
            let err = Error::from(addr(Some(bad)).unwrap_err());
            assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}");
        }
    }
}
