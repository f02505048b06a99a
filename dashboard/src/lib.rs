//! See inside a running Troupe runtime: a live web dashboard, the JSON API
//! it reads, and Prometheus metrics, served by axum on the runtime's IO
//! pool.
//!
//! ```no_run
//! # fn main() -> Result<(), troupe_dispatcher::Error> {
//! # let rt = troupe_runtime::Runtime::builder().build()?;
//! use troupe_dashboard::Dashboard;
//!
//! let dashboard = Dashboard::new(&rt).serve("127.0.0.1:4000".parse().unwrap())?;
//! println!("open http://{}/", dashboard.local_addr());
//! # Ok(()) }
//! ```
//!
//! | path | what |
//! |---|---|
//! | `/` | the dashboard: one page (assets embedded in the binary) |
//! | `/api/stats` | what the runtime did: spawns, exits, messages, each command's calls and waits ([`Runtime::stats`]) |
//! | `/api/processes` | every live process ([`Runtime::processes`]) |
//! | `/api/processes/{pid}` | one process, with its queued topics |
//! | `POST /api/processes/{pid}/kill` | kills it (needs the token) |
//! | `/api/supervisors` | the supervision tree |
//! | `/api/workflows`, `/api/workflows/{id}` | the workflow store's list, one workflow's history |
//! | `/api/events/{view}` | a view above as server-sent events, sent again when it changes |
//! | `/metrics` | Prometheus text |
//!
//! **Access.** A dashboard on a loopback address is readable by anyone on
//! the machine; on any other address it needs a token, and every request
//! must carry it (`Authorization: Bearer TOKEN`, or `?token=TOKEN`, which
//! the page passes on). The dashboard is read-only except kill, which
//! always needs the token: without one configured, kill is refused.

mod api;
mod metrics;
mod page;
mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use troupe_dispatcher::Error;
use troupe_runtime::Runtime;
use troupe_workflow::WorkflowStore;

pub use serve::DashboardHandle;

/// How often a live view is computed again for its event stream.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Configures the dashboard of a runtime; [`Dashboard::serve`] starts it.
#[derive(Clone)]
pub struct Dashboard {
    rt: Runtime,
    store: Option<WorkflowStore>,
    token: Option<String>,
    interval: Duration,
}

impl Dashboard {
    /// A dashboard of `rt` (it keeps a clone of the runtime until it is
    /// stopped).
    pub fn new(rt: &Runtime) -> Self {
        Self {
            rt: rt.clone(),
            store: None,
            token: None,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// Shows the workflows of `store` (the one the runtime journals to).
    #[must_use]
    pub fn workflows(mut self, store: WorkflowStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Requires `token` on every request, and allows kill.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How often live views are computed again (default
    /// [`DEFAULT_INTERVAL`]; at least 50 ms).
    #[must_use]
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(50));
        self
    }

    /// Binds `addr` and serves the dashboard on the runtime's IO pool
    /// until the handle is stopped or dropped. A non-loopback address
    /// without a token, or an empty token, is `INVALID`; an address in use
    /// is `UNAVAILABLE`.
    pub fn serve(self, addr: SocketAddr) -> Result<DashboardHandle, Error> {
        match &self.token {
            Some(t) if t.is_empty() => {
                return Err(Error::invalid("the dashboard token is empty"));
            }
            None if !addr.ip().is_loopback() => {
                return Err(Error::invalid(format!(
                    "the dashboard would listen on {addr}, which is not a loopback address: \
                     give it a token (--dashboard-token)"
                )));
            }
            _ => {}
        }
        serve::start(self, addr)
    }
}
