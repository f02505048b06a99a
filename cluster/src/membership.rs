//! Membership and global names in etcd.
//!
//! - `troupe/nodes/NAME` → `{"peer", "addr"}` (JSON): a live
//!   node, put under the node's lease (kept alive every third of its TTL),
//!   so it disappears when the node stops or dies.
//! - `troupe/names/NAME` → the holder's pid, cluster-wide form (`<b.0.42>`),
//!   claimed with a create-if-absent transaction under the holder's node's
//!   lease, deleted when the holder ends, and gone with its node's lease.
//!
//! Every node watches `troupe/` and keeps what it sees in [`State`]: one
//! [`Peer`] per live node, and the global names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use libp2p::{Multiaddr, PeerId};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Pid, Value, nodes};

use crate::error::ClusterError;
use crate::pids;
use crate::transport::{Inbound, Members, Peer, Transport};

/// Where members are listed.
pub(crate) const NODES: &str = "troupe/nodes/";
/// Where global names are.
pub(crate) const NAMES: &str = "troupe/names/";
/// What a node watches.
const PREFIX: &str = "troupe/";
/// How long a node's lease outlives its last keep-alive, in seconds.
pub(crate) const LEASE_TTL: i64 = 6;

/// A live node as etcd lists it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    /// Its libp2p peer id.
    pub peer: String,
    /// The multiaddr it listens on.
    pub addr: String,
}

/// What a node knows of the cluster: its peers and the global names.
pub(crate) struct State {
    /// This node's name.
    pub local: Arc<str>,
    /// This node's swarm.
    pub transport: Transport,
    /// The other live nodes, by pid node index: their names and queues.
    pub peers: RwLock<HashMap<u32, (Arc<str>, Peer)>>,
    /// Global names → the holder's node name and number there.
    pub names: RwLock<BTreeMap<String, (String, u64)>>,
    /// The runtime, told when a node goes away.
    pub inbound: Arc<Inbound>,
    /// Members whose connection was lost, by pid node index: links and
    /// monitors to them have fired, and sends fail until it is back.
    /// Taken after `peers` when both are.
    pub lost: RwLock<HashSet<u32>>,
    /// Processes waiting for a node's `nodedown`, by node name.
    pub node_watchers: Mutex<HashMap<String, Vec<Pid>>>,
    /// The lease this node's record and global names are under (a new
    /// one after a rejoin).
    pub lease: AtomicI64,
    /// The global names this node's processes hold: claimed again when
    /// the node rejoins.
    pub own_names: Mutex<BTreeMap<String, u64>>,
}

impl Members for State {
    fn peer_of(&self, node: u32) -> Option<PeerId> {
        self.peers.read().get(&node).map(|(_, p)| p.peer_id)
    }

    fn answer(&self, node: u32, id: u64, result: Result<u64, troupe_dispatcher::Error>) {
        // A node that cannot be reached counts as gone there: its request
        // failed with it.
        if self.reachable(node, |peer| peer.answer(id, result)) != Some(true) {
            tracing::debug!(
                node,
                id,
                "could not answer a spawn request: the node is gone"
            );
        }
    }
}

/// Topic of the message `cluster.monitor_node` delivers.
pub(crate) const NODEDOWN: &str = "nodedown";

/// The holder's node and number in a pid's cluster-wide text.
fn split_pid(text: &str) -> Option<(String, u64)> {
    let inner = text.strip_prefix('<')?.strip_suffix('>')?;
    let (node, id) = inner.split_once(".0.")?;
    Some((node.to_owned(), id.parse().ok()?))
}

impl State {
    /// Applies one key of `troupe/` that now has `value` (a put), or was
    /// deleted (`None`); `joining` while this node reads the cluster as it
    /// joins (it then dials the members).
    fn apply(&self, key: &str, value: Option<&str>, joining: bool) {
        if let Some(name) = key.strip_prefix(NODES) {
            match value {
                Some(v) => self.node_up(name, v, joining),
                None => self.node_down(name),
            }
        } else if let Some(name) = key.strip_prefix(NAMES) {
            match value.and_then(split_pid) {
                Some(holder) => {
                    self.names.write().insert(name.to_owned(), holder);
                }
                None => {
                    self.names.write().remove(name);
                }
            }
        }
    }

    /// Node `name` joined (or rejoined) at what `record` says; dialed now
    /// if `dial`.
    fn node_up(&self, name: &str, record: &str, dial: bool) {
        if *self.local == *name {
            return;
        }
        let joined = (|| {
            let record: NodeRecord = serde_json::from_str(record).ok()?;
            let peer: PeerId = record.peer.parse().ok()?;
            let addr: Multiaddr = record.addr.parse().ok()?;
            let index = nodes::index(name).ok()?;
            Some((peer, addr, index))
        })();
        let Some((peer, addr, index)) = joined else {
            tracing::warn!(node = name, "ignored a malformed member record in etcd");
            return;
        };
        let known = self.peers.read().get(&index).map(|(_, p)| p.peer_id);
        match known {
            Some(id) if id == peer => return,
            // It restarted: its old processes are gone.
            Some(_) => self.node_gone(index, name),
            None => {}
        }
        let name: Arc<str> = Arc::from(name);
        let local = Arc::clone(&self.local);
        let target = (peer, addr.clone());
        let queue = self.transport.peer(local, Arc::clone(&name), target);
        self.transport.add_peer(peer, addr, dial);
        tracing::info!(node = %name, "node joined the cluster");
        self.peers.write().insert(index, (name, queue));
        self.inbound.joined.notify_waiters();
    }

    /// Node `name` left (its lease ended): sends to it fail from now on,
    /// and links and monitors to its processes fire.
    fn node_down(&self, name: &str) {
        if let Some(index) = nodes::lookup(name)
            && self.peers.write().remove(&index).is_some()
        {
            tracing::info!(node = name, "node left the cluster");
            if !self.lost.write().remove(&index) {
                self.node_gone(index, name);
            }
        }
    }

    /// The connection to the node whose libp2p identity is `peer` was
    /// lost: as Erlang does, its links and monitors fire with
    /// `noconnection` and sends to it fail, until a connection is back.
    pub fn connection_lost(&self, peer: PeerId) {
        let Some((index, name)) = self.member_of(peer) else {
            return;
        };
        if self.lost.write().insert(index) {
            tracing::warn!(node = %name, "lost the connection to a node");
            self.node_gone(index, &name);
        }
    }

    /// The connection to `peer` is back.
    pub fn connection_back(&self, peer: PeerId) {
        if let Some((index, name)) = self.member_of(peer)
            && self.lost.write().remove(&index)
        {
            tracing::info!(node = %name, "connected to a node again");
        }
    }

    /// This node is out of the cluster: every other node counts as gone.
    pub fn isolate(&self) {
        let gone: Vec<(u32, Arc<str>)> = self
            .peers
            .write()
            .drain()
            .map(|(i, (n, _))| (i, n))
            .collect();
        let lost: HashSet<u32> = std::mem::take(&mut *self.lost.write());
        for (index, name) in gone {
            if !lost.contains(&index) {
                self.node_gone(index, &name);
            }
        }
    }

    /// The member whose libp2p identity is `peer`: its index and name.
    fn member_of(&self, peer: PeerId) -> Option<(u32, Arc<str>)> {
        self.peers
            .read()
            .iter()
            .find(|(_, (_, p))| p.peer_id == peer)
            .map(|(&i, (n, _))| (i, Arc::clone(n)))
    }

    /// Fires what a node going away fires: links and monitors to its
    /// processes (`noconnection`), and `nodedown` to its watchers.
    fn node_gone(&self, index: u32, name: &str) {
        self.inbound.fail_spawns(index);
        let Some(rt) = self.inbound.runtime.lock().clone() else {
            return;
        };
        rt.node_down(index);
        let watchers = self.node_watchers.lock().remove(name).unwrap_or_default();
        for pid in watchers {
            rt.notify(pid, NODEDOWN, nodedown(name));
        }
    }

    /// The queue to node `index`, if it is a member that can be reached;
    /// a node whose connection was lost is dialed again, and counts as
    /// unreachable until the connection is back.
    pub fn reachable<T>(&self, index: u32, f: impl FnOnce(&Peer) -> T) -> Option<T> {
        let peers = self.peers.read();
        let (_, peer) = peers.get(&index)?;
        if self.lost.read().contains(&index) {
            self.transport.dial(peer.peer_id, peer.addr.clone());
            return None;
        }
        Some(f(peer))
    }

    /// `watcher` gets a `nodedown` message once node `name` goes away: at
    /// once if it is not a live member now.
    pub fn monitor_node(&self, watcher: Pid, name: &str) {
        let up = nodes::lookup(name)
            .is_some_and(|i| self.peers.read().contains_key(&i) && !self.lost.read().contains(&i));
        if up || *self.local == *name {
            self.node_watchers
                .lock()
                .entry(name.to_owned())
                .or_default()
                .push(watcher);
        } else if let Some(rt) = self.inbound.runtime.lock().clone() {
            rt.notify(watcher, NODEDOWN, nodedown(name));
        }
    }

    /// The live nodes' names (connected, or not yet tried), this one
    /// included, sorted.
    pub fn members(&self) -> Vec<String> {
        let peers = self.peers.read();
        let lost = self.lost.read();
        let mut all: Vec<String> = peers
            .iter()
            .filter(|(i, _)| !lost.contains(i))
            .map(|(_, (n, _))| n.to_string())
            .collect();
        all.push(self.local.to_string());
        all.sort_unstable();
        all
    }

    /// Whether everything queued for the other nodes was delivered, or
    /// lost with a node's connection.
    pub fn drained(&self) -> bool {
        self.peers.read().values().all(|(_, p)| p.drained())
    }

    /// The pid registered cluster-wide under `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        let names = self.names.read();
        let (node, id) = names.get(name)?;
        Some(Pid::new(nodes::lookup(node)?, *id))
    }
}

/// The payload of a `nodedown` message: `{node = name}`.
fn nodedown(name: &str) -> Value {
    Value::from_iter([("node".to_owned(), Value::from(name))])
}

/// A kv's key and value as text (etcd keys and values here are UTF-8).
fn texts(kv: &KeyValue) -> Option<(&str, &str)> {
    Some((kv.key_str().ok()?, kv.value_str().ok()?))
}

/// Registers this node under `lease`: `NodeTaken` if a live node has its
/// name.
pub(crate) async fn register_node(
    client: &mut Client,
    state: &State,
    lease: i64,
) -> Result<(), ClusterError> {
    let record = NodeRecord {
        peer: state.transport.peer_id.to_string(),
        addr: state.transport.addr.to_string(),
    };
    let value = serde_json::to_string(&record)
        .map_err(|e| ClusterError::Transport(format!("member record: {e}")))?;
    let key = format!("{NODES}{}", state.local);
    let claimed = claim(client, &key, value, lease).await?;
    match claimed {
        None => Ok(()),
        Some(_) => Err(ClusterError::NodeTaken(state.local.to_string())),
    }
}

/// Puts `key` = `value` under `lease` unless the key exists: `None` when
/// claimed, else the value it has.
async fn claim(
    client: &mut Client,
    key: &str,
    value: String,
    lease: i64,
) -> Result<Option<String>, ClusterError> {
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(key, None)]);
    let resp = client.txn(txn).await?;
    if resp.succeeded() {
        return Ok(None);
    }
    let holder = resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get
            .kvs()
            .first()
            .and_then(|kv| kv.value_str().ok().map(str::to_owned)),
        _ => None,
    });
    Ok(Some(holder.unwrap_or_default()))
}

/// Claims global `name` for local process `pid` under `lease`.
pub(crate) async fn claim_name(
    mut client: Client,
    state: &State,
    lease: i64,
    name: &str,
    pid: Pid,
) -> Result<(), ClusterError> {
    let key = format!("{NAMES}{name}");
    let text = pids::global(pid, &state.local);
    match claim(&mut client, &key, text, lease).await? {
        None => {
            let mut names = state.names.write();
            names.insert(name.to_owned(), (state.local.to_string(), pid.id()));
            state.own_names.lock().insert(name.to_owned(), pid.id());
            Ok(())
        }
        Some(holder) => Err(ClusterError::NameTaken {
            name: name.to_owned(),
            holder,
        }),
    }
}

/// Frees the global names local process `id` holds (it ended).
pub(crate) async fn release_names(mut client: Client, state: &State, id: u64) {
    let held: Vec<String> = state
        .own_names
        .lock()
        .extract_if(.., |_, n| *n == id)
        .map(|(name, _)| name)
        .collect();
    let text = pids::global(Pid::new(0, id), &state.local);
    for name in held {
        let key = format!("{NAMES}{name}");
        // Only if it is still this holder's.
        let txn = Txn::new()
            .when([Compare::value(
                key.as_str(),
                CompareOp::Equal,
                text.as_str(),
            )])
            .and_then([TxnOp::delete(key.as_str(), None)]);
        if let Err(e) = client.txn(txn).await {
            tracing::warn!(name, error = %e, "could not free a global name");
        }
        state.names.write().remove(&name);
    }
}

/// Reads every member and name (so a node knows the cluster as it
/// joins); the revision read, to [`follow`] from.
pub(crate) async fn load(client: &mut Client, state: &State) -> Result<i64, ClusterError> {
    let all = client
        .get(PREFIX, Some(GetOptions::new().with_prefix()))
        .await?;
    let mut listed = HashSet::new();
    for (key, value) in all.kvs().iter().filter_map(texts) {
        state.apply(key, Some(value), true);
        listed.insert(key);
    }
    // Read again after a lost watch: what went meanwhile is gone.
    let members: Vec<Arc<str>> = state
        .peers
        .read()
        .values()
        .map(|(n, _)| Arc::clone(n))
        .collect();
    for name in members {
        if !listed.contains(format!("{NODES}{name}").as_str()) {
            state.node_down(&name);
        }
    }
    state
        .names
        .write()
        .retain(|name, _| listed.contains(format!("{NAMES}{name}").as_str()));
    Ok(all.header().map_or(0, |h| h.revision()))
}

/// Follows the changes after revision `after` until the watch fails.
async fn follow(mut client: Client, state: &State, after: i64) -> ClusterError {
    let result: Result<(), ClusterError> = async {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(after.saturating_add(1));
        let mut stream = client.watch(PREFIX, Some(opts)).await?;
        while let Some(resp) = stream.message().await? {
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                let Ok(key) = kv.key_str() else { continue };
                match event.event_type() {
                    EventType::Put => state.apply(key, kv.value_str().ok(), false),
                    EventType::Delete => state.apply(key, None, false),
                }
            }
        }
        Ok(())
    }
    .await;
    result
        .err()
        .unwrap_or_else(|| ClusterError::Transport("etcd ended the watch".into()))
}

/// Keeps `lease` alive until it is lost (etcd stopped answering, or it
/// expired while this node was stopped or cut off).
async fn keep_alive(mut client: Client, lease: i64) -> ClusterError {
    let every = Duration::from_secs(u64::try_from(LEASE_TTL / 3).unwrap_or(1).max(1));
    let result: Result<(), ClusterError> = async {
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
        loop {
            keeper.keep_alive().await?;
            match stream.message().await? {
                None => return Err(ClusterError::Transport("etcd ended the keep-alive".into())),
                Some(r) if r.ttl() <= 0 => {
                    return Err(ClusterError::Transport("the lease expired".into()));
                }
                Some(_) => {}
            }
            tokio::time::sleep(every).await;
        }
    }
    .await;
    result
        .err()
        .unwrap_or_else(|| ClusterError::Transport("the keep-alive ended".into()))
}

/// The longest wait between two tries to reach etcd again.
const REJOIN_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps this node a member until it leaves, following the cluster from
/// revision `at`: keeps its lease alive and follows the changes. When the
/// watch fails, it reads the cluster again. When the lease is lost, the
/// other nodes count this one as gone: it counts them as gone too (so
/// links and monitors fire on both sides), then rejoins as Erlang nodes
/// reconnect: a new lease, its member record, and the global names its
/// live processes held (unless another process took one meanwhile).
pub(crate) async fn stay(mut client: Client, state: Arc<State>, mut at: i64) {
    loop {
        let lease = state.lease.load(Ordering::Acquire);
        let lost = tokio::select! {
            e = keep_alive(client.clone(), lease) => {
                tracing::error!(
                    error = %e,
                    "lost the node's lease in etcd: the other nodes count this one as gone; rejoining"
                );
                state.isolate();
                true
            }
            e = follow(client.clone(), &state, at) => {
                tracing::warn!(error = %e, "lost the cluster's membership watch; reading it again");
                false
            }
        };
        at = match rejoin(&mut client, &state, lost).await {
            Some(at) => at,
            None => return,
        };
    }
}

/// Reads the cluster again (after a new lease and registration, if
/// `lost`), trying until etcd answers; the revision read, or `None` if
/// another node has taken this one's name meanwhile.
async fn rejoin(client: &mut Client, state: &State, mut lost: bool) -> Option<i64> {
    let mut wait = Duration::from_millis(100);
    loop {
        if lost {
            match register_again(client, state).await {
                Ok(()) => lost = false,
                Err(ClusterError::NodeTaken(name)) => {
                    tracing::error!(
                        node = name,
                        "another node took this node's name while it was out; it stays out of the cluster"
                    );
                    return None;
                }
                Err(e) => tracing::debug!(error = %e, "rejoin"),
            }
        }
        if !lost {
            match load(client, state).await {
                Ok(at) => return Some(at),
                Err(e) => tracing::debug!(error = %e, "reading the cluster"),
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(REJOIN_BACKOFF);
    }
}

/// Registers this node under a new lease, and claims again the global
/// names its processes held.
async fn register_again(client: &mut Client, state: &State) -> Result<(), ClusterError> {
    // The old lease may live on in etcd (it was etcd that could not be
    // reached): its record would refuse the new one.
    let old = state.lease.load(Ordering::Acquire);
    if let Err(e) = client.lease_revoke(old).await {
        tracing::debug!(error = %e, "revoking the lost lease");
    }
    let lease = client.lease_grant(LEASE_TTL, None).await?.id();
    if let Err(e) = register_node(client, state, lease).await {
        let _ = client.lease_revoke(lease).await;
        return Err(e);
    }
    state.lease.store(lease, Ordering::Release);
    let own: Vec<(String, u64)> = state
        .own_names
        .lock()
        .iter()
        .map(|(name, id)| (name.clone(), *id))
        .collect();
    for (name, id) in own {
        let pid = Pid::new(0, id);
        if let Err(e) = claim_name(client.clone(), state, lease, &name, pid).await {
            state.own_names.lock().remove(&name);
            tracing::warn!(name, %pid, error = %e, "a global name could not be claimed again; its process lost it");
        }
    }
    tracing::info!(node = %state.local, "rejoined the cluster");
    Ok(())
}
