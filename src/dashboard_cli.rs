//! `--dashboard ADDR` of `troupe run` and `troupe workflow`, and
//! `troupe ps --connect ADDR`, which reads a running dashboard's API.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::Value as Json;
use troupe::{Dashboard, DashboardHandle, Error, ErrorKind, Runtime, WorkflowStore};

use crate::Output;

/// The environment variable the dashboard token may come from (safer than
/// a command line, which other users can read).
const TOKEN_ENV: &str = "TROUPE_DASHBOARD_TOKEN";

/// The dashboard flags.
#[derive(Args, Debug, Clone)]
pub struct DashboardArgs {
    /// Serve the live dashboard, its JSON API and /metrics on ADDR while
    /// the runtime runs (e.g. 127.0.0.1:4000). An address other than
    /// loopback needs --dashboard-token.
    #[arg(long, global = true, value_name = "ADDR")]
    dashboard: Option<SocketAddr>,

    /// The token every dashboard request must carry; it also allows kill
    /// from the dashboard. Default: $TROUPE_DASHBOARD_TOKEN.
    #[arg(long, global = true, value_name = "TOKEN", env = TOKEN_ENV, hide_env_values = true)]
    dashboard_token: Option<String>,
}

impl DashboardArgs {
    /// Starts the dashboard of `rt` (showing `store`'s workflows) if
    /// asked, and says where on stderr.
    pub fn serve(
        &self,
        rt: &Runtime,
        store: Option<WorkflowStore>,
    ) -> Result<Option<DashboardHandle>, Error> {
        let Some(addr) = self.dashboard else {
            return Ok(None);
        };
        let mut d = Dashboard::new(rt);
        if let Some(store) = store {
            d = d.workflows(store);
        }
        if let Some(token) = &self.dashboard_token {
            d = d.token(token.as_str());
        }
        let handle = d.serve(addr)?;
        eprintln!("dashboard: http://{}/", handle.local_addr());
        Ok(Some(handle))
    }
}

/// Where a running dashboard is, and its token: the flags of `troupe ps`
/// and `troupe top`.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The address of a running dashboard (`troupe run --dashboard ADDR`).
    #[arg(long, value_name = "ADDR")]
    connect: SocketAddr,

    /// The dashboard's token. Default: $TROUPE_DASHBOARD_TOKEN.
    #[arg(long, value_name = "TOKEN", env = TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,
}

/// How long a request to the dashboard may take.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of a dashboard's JSON API.
pub struct ApiClient {
    args: ConnectArgs,
    io: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl ApiClient {
    /// A client of the dashboard `args` name.
    pub fn new(args: ConnectArgs) -> Result<Self, Error> {
        let down = |e: &dyn std::fmt::Display| {
            Error::new(ErrorKind::Internal, format!("no HTTP client: {e}"))
        };
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| down(&e))?;
        let client = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .build()
            .map_err(|e| down(&e))?;
        Ok(Self { args, io, client })
    }

    /// The dashboard's address.
    pub fn addr(&self) -> SocketAddr {
        self.args.connect
    }

    /// GETs `path`'s JSON; an error of the dashboard's as its kind
    /// (`PERMISSION_DENIED` for a bad token), `UNAVAILABLE` when no
    /// dashboard answers.
    pub fn get(&self, path: &str) -> Result<Json, Error> {
        let addr = self.args.connect;
        let url = format!("http://{addr}{path}");
        let down = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Unavailable,
                format!("no dashboard answers at {addr}: {e}"),
            )
        };
        self.io.block_on(async {
            let mut req = self.client.get(&url);
            if let Some(t) = &self.args.token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.map_err(|e| down(&e))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| down(&e))?;
            let body: Json = serde_json::from_str(&text).map_err(|e| down(&e))?;
            if status.is_success() {
                return Ok(body);
            }
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .to_owned();
            let kind = match status.as_u16() {
                401 | 403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                _ => ErrorKind::Unavailable,
            };
            Err(Error::new(
                kind,
                format!("the dashboard at {addr}: {message}"),
            ))
        })
    }
}

/// Arguments of `troupe ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Print the processes as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl PsArgs {
    /// Lists the live processes of the runtime behind the dashboard.
    pub fn execute(self) -> Result<Output, Error> {
        let list = ApiClient::new(self.connect)?.get("/api/processes")?;
        if self.json {
            return Ok(Output::Text(list.to_string()));
        }
        Ok(Output::Text(table(&list)))
    }
}

/// What a process waits on, in a few words.
pub fn waiting(p: &Json) -> String {
    let w = &p["waiting"];
    match w["on"].as_str() {
        Some("receive") => format!("receive {}", w["topic"].as_str().unwrap_or("(any)")),
        Some("sleep") => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let left = u128::from(w["until_ms"].as_u64().unwrap_or(0)).saturating_sub(now);
            format!("sleep {left} ms")
        }
        Some(_) => w["name"].as_str().unwrap_or("").to_owned(),
        None => String::new(),
    }
}

/// A process's mailbox as `queued/capacity`.
pub fn mailbox(p: &Json) -> String {
    format!(
        "{}/{}",
        p["mailbox"]["len"].as_u64().unwrap_or(0),
        p["mailbox"]["capacity"].as_u64().unwrap_or(0)
    )
}

/// The processes as an aligned table.
fn table(list: &Json) -> String {
    let rows: Vec<[String; 7]> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let text = |v: &Json| v.as_str().unwrap_or("").to_owned();
            [
                text(&p["pid"]),
                text(&p["name"]),
                text(&p["script"]),
                text(&p["kind"]),
                text(&p["status"]),
                waiting(p),
                mailbox(p),
            ]
        })
        .collect();
    let head = [
        "PID",
        "NAME",
        "SCRIPT",
        "KIND",
        "STATUS",
        "WAITING ON",
        "MAILBOX",
    ];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(head.map(str::to_owned)).chain(rows) {
        let line = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
