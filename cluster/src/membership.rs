//! Membership and global names in etcd.
//!
//! - `troupe/nodes/NAME` → `{"peer", "addr", "gateway"}` (JSON): a live
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
    /// Its gateway actor's number.
    pub gateway: u64,
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
}

impl Members for State {
    fn knows(&self, node: u32) -> bool {
        self.peers.read().contains_key(&node)
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
            Some((record, peer, addr, index))
        })();
        let Some((record, peer, addr, index)) = joined else {
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
        match self
            .transport
            .peer(local, Arc::clone(&name), target, record.gateway)
        {
            Ok(p) => {
                self.transport.add_peer(peer, addr, dial);
                tracing::info!(node = %name, "node joined the cluster");
                self.peers.write().insert(index, (name, p));
                self.inbound.joined.notify_waiters();
            }
            Err(e) => tracing::warn!(node = %name, error = %e, "cannot reach a member"),
        }
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
        gateway: state.transport.gateway_seq,
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
        .names
        .read()
        .iter()
        .filter(|(_, (node, n))| *node == *state.local && *n == id)
        .map(|(name, _)| name.clone())
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
    for (key, value) in all.kvs().iter().filter_map(texts) {
        state.apply(key, Some(value), true);
    }
    Ok(all.header().map_or(0, |h| h.revision()))
}

/// Follows the changes after revision `after` until the watch ends
/// (logged).
pub(crate) async fn follow(mut client: Client, state: Arc<State>, after: i64) {
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
    if let Err(e) = result {
        tracing::error!(error = %e, "lost the cluster's membership watch");
    }
}

/// Keeps `lease` alive until the node leaves. If the lease is lost (etcd
/// stopped answering, or it expired while this node was stopped or cut
/// off), the other nodes count this one as gone: it logs that, and counts
/// them as gone too, so links and monitors fire on both sides.
pub(crate) async fn keep_alive(mut client: Client, lease: i64, state: Arc<State>) {
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
    if let Err(e) = result {
        tracing::error!(
            error = %e,
            "lost the node's lease in etcd: the other nodes count this one as gone; restart it to rejoin"
        );
        state.isolate();
    }
}
