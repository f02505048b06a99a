//! The cluster's errors, and what they are as Troupe errors.

use troupe_dispatcher::{Error, ErrorKind};

/// What can go wrong joining or using a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A setting is malformed (a node name, a listen address).
    #[error("invalid cluster setting: {0}")]
    Config(String),
    /// etcd refused or could not be reached.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// The network layer (libp2p) failed.
    #[error("cluster transport: {0}")]
    Transport(String),
    /// Another live node already has this node's name.
    #[error("node name {0:?} is taken by a live node of the cluster")]
    NodeTaken(String),
    /// A global name is already registered.
    #[error("the name {name:?} is already registered by {holder}")]
    NameTaken {
        /// The name.
        name: String,
        /// The pid holding it, cluster-wide form.
        holder: String,
    },
    /// A node is not a live member of the cluster.
    #[error("node {0:?} is not a live member of the cluster")]
    NoNode(String),
    /// A message or spawn request is larger than one node sends another.
    #[error("{what} of {size} bytes is larger than a node sends another ({max} bytes)")]
    TooLarge {
        /// What it is ("a message", "a spawn request").
        what: &'static str,
        /// Its size, as [`troupe_runtime::Message::weight`] counts it.
        size: usize,
        /// The most that crosses.
        max: usize,
    },
    /// The cluster's threads could not start.
    #[error("cannot start the cluster's threads: {0}")]
    Io(#[from] std::io::Error),
}

impl From<ClusterError> for Error {
    fn from(e: ClusterError) -> Self {
        let kind = match &e {
            ClusterError::Config(_) => ErrorKind::Invalid,
            ClusterError::NodeTaken(_) | ClusterError::NameTaken { .. } => ErrorKind::AlreadyExists,
            ClusterError::TooLarge { .. } => ErrorKind::LimitExceeded,
            ClusterError::Etcd(_)
            | ClusterError::Transport(_)
            | ClusterError::NoNode(_)
            | ClusterError::Io(_) => ErrorKind::Unavailable,
        };
        Error::new(kind, e.to_string())
    }
}
