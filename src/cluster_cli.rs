//! `troupe run --cluster URL --node NAME [--listen ADDR]
//! [--cluster-secret-file F] FILE`: the node is a member of the cluster
//! while FILE runs; `troupe node` with the same flags until interrupted
//! (see docs/cluster.md).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use troupe::Error;
use troupe_cluster::{Cluster, ClusterConfig};

/// The flags that make `troupe run` (or `troupe node`) a cluster node.
#[derive(Args, Debug)]
pub(crate) struct ClusterArgs {
    /// Join the cluster whose etcd is at URL (comma-separated endpoints)
    /// while the script runs; needs --node. Scripts reach other nodes'
    /// processes by pid (`<b.0.42>`) or global name, and spawn on them
    /// (`{node = "b"}`) within the policy flags of the node they run on;
    /// the `cluster` module needs `--allow-module cluster` (its class is
    /// not allowed by default).
    #[arg(long = "cluster", value_name = "URL", requires = "node")]
    cluster: Option<String>,

    /// This node's name in the cluster: letters, digits, '_' or '-',
    /// starting with a letter.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    node: Option<String>,

    /// Where to listen for the other nodes: HOST:PORT or a multiaddr
    /// (default: a free port on 127.0.0.1).
    #[arg(long, value_name = "ADDR", requires = "cluster")]
    listen: Option<String>,

    /// A file holding the secret every node of the cluster shares (as
    /// Erlang's cookie; surrounding whitespace is ignored). A node with
    /// another secret cannot connect.
    #[arg(
        long = "cluster-secret-file",
        value_name = "FILE",
        requires = "cluster"
    )]
    secret_file: Option<PathBuf>,
}

impl ClusterArgs {
    /// Whether no cluster was asked for (no --cluster).
    pub(crate) fn is_empty(&self) -> bool {
        self.cluster.is_none()
    }

    /// Joins the cluster if `--cluster` was given.
    pub(crate) fn join(&self) -> Result<Option<Arc<Cluster>>, Error> {
        let (Some(etcd), Some(node)) = (&self.cluster, &self.node) else {
            return Ok(None);
        };
        let endpoints = etcd.split(',').map(str::trim).filter(|e| !e.is_empty());
        let mut config = ClusterConfig::new(node.as_str(), endpoints);
        if let Some(addr) = &self.listen {
            config = config.listen(addr.as_str());
        }
        if let Some(file) = &self.secret_file {
            let secret = std::fs::read_to_string(file).map_err(|e| {
                Error::invalid(format!("cluster secret file {}: {e}", file.display()))
            })?;
            config = config.secret(secret.trim().as_bytes());
        }
        Ok(Some(Cluster::join(config)?))
    }
}
