//! The hook through which a runtime reaches processes of other nodes.
//!
//! The runtime knows nothing of networks: a cluster (`troupe-cluster`)
//! implements [`RemoteNodes`] and is handed to
//! [`Runtime::set_remote`](crate::Runtime::set_remote). From then on a send
//! to a pid of another node (`pid.node() != 0`) goes to the hook instead of
//! a local mailbox, `whereis` (and a send to a name) falls back to the
//! cluster's global names, and `register(name, {global = true})` claims a
//! name cluster-wide. Messages arriving from other nodes come in through
//! [`Runtime::deliver_remote`](crate::Runtime::deliver_remote).

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;
use std::time::Duration;

use troupe_dispatcher::{Dispatched, Error, ErrorKind, HandlerCx, Pid, Tag, Value};

use crate::mailbox::Message;
use crate::scheduler::Scheduler;

/// A cluster operation that finishes later (on the runtime's IO pool).
pub type RemoteFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// What a runtime needs of a cluster: sending to other nodes and the
/// global name registry.
pub trait RemoteNodes: Send + Sync + 'static {
    /// Queues `msg` for `to`, a pid of another node, if that node's
    /// outgoing queue has room (`Ok(None)`); gives the message back when
    /// it is full (`Ok(Some(msg))`). `UNAVAILABLE` if the node is not a
    /// live member of the cluster.
    fn try_send(&self, to: Pid, msg: Message) -> Result<Option<Message>, Error>;

    /// Queues `msg` for `to`, waiting while its node's queue is full.
    fn send(&self, to: Pid, msg: Message) -> RemoteFuture;

    /// The pid registered cluster-wide under `name`, if any.
    fn whereis(&self, name: &str) -> Option<Pid>;

    /// Claims `name` cluster-wide for `pid`, a process of this node:
    /// `ALREADY_EXISTS` if it is taken.
    fn register(&self, name: &str, pid: Pid) -> RemoteFuture;
}

impl Scheduler {
    /// The cluster that reaches `to`, when it is a pid of another node and
    /// this node is in a cluster (outside one, such a pid is simply not a
    /// live process here).
    pub(crate) fn remote_of(&self, to: Pid) -> Option<&Arc<dyn RemoteNodes>> {
        if to.node() == self.table.node() {
            return None;
        }
        self.remote.get()
    }

    /// The cluster, or `UNAVAILABLE` outside one.
    pub(crate) fn cluster(&self) -> Result<&Arc<dyn RemoteNodes>, Error> {
        self.remote
            .get()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "this node is not in a cluster"))
    }

    /// Runs `op` on the IO pool for process `pid`'s yield `tag`, which it
    /// answers with `true` once `op` is done (`TIMEOUT` after `timeout`).
    pub(crate) fn remote_pending(
        &self,
        (pid, tag): (Pid, Tag),
        op: RemoteFuture,
        timeout: Option<Duration>,
    ) -> Dispatched {
        let completer = HandlerCx {
            pid,
            tag,
            sink: &self.sink,
            can_wait: true,
        }
        .completer();
        let task = self.dispatcher.io().spawn(async move {
            let done = match timeout {
                None => op.await,
                Some(after) => tokio::time::timeout(after, op).await.unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Timeout,
                        "timed out waiting for room in the queue to another node",
                    ))
                }),
            };
            completer.complete(done.map(|()| Value::Bool(true)));
        });
        Dispatched::Pending(Some(task.abort_handle()))
    }
}

/// `RATE_LIMITED`: the queue to `to`'s node is full.
pub(crate) fn queue_full(to: Pid) -> Error {
    Error::new(
        ErrorKind::RateLimited,
        format!("the queue of messages to the node of {to} is full"),
    )
}
