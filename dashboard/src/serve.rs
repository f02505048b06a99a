//! The HTTP side: routes, the token check, event streams, and the handle
//! that stops the server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde_json::{Value as Json, json};
use tokio::sync::watch;
use troupe_dispatcher::{Error, ErrorKind};
use troupe_runtime::Runtime;
use troupe_workflow::WorkflowStore;

use crate::metrics::Metrics;
use crate::{Dashboard, api, page};

/// What every request handler shares.
struct Shared {
    rt: Runtime,
    store: Option<WorkflowStore>,
    token: Option<String>,
    interval: Duration,
    metrics: Metrics,
    /// Turns true when the dashboard stops, ending the event streams.
    stopping: watch::Receiver<bool>,
}

impl Shared {
    /// Resolves when the dashboard stops.
    async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        // An error means the handle is gone: stopped too.
        let _ = stopping.wait_for(|s| *s).await;
    }
}

type App = State<Arc<Shared>>;

/// A running dashboard: where it listens; stops it when dropped.
#[derive(Debug)]
pub struct DashboardHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl DashboardHandle {
    /// The address it listens on (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: open event streams end, and the dashboard's clone
    /// of the runtime is dropped.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for DashboardHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Binds `addr` and spawns the server on `d`'s runtime's IO pool.
pub(crate) fn start(d: Dashboard, addr: SocketAddr) -> Result<DashboardHandle, Error> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the dashboard cannot listen on {addr}: {e}"),
            )
        })?;
    let bound = listener.local_addr().map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the dashboard's address: {e}"),
        )
    })?;
    let io = d.rt.io().handle().clone();
    let listener = {
        let _guard = io.enter();
        tokio::net::TcpListener::from_std(listener).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the dashboard's listener: {e}"),
            )
        })?
    };
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        rt: d.rt,
        store: d.store,
        token: d.token,
        interval: d.interval,
        metrics: Metrics::new(),
        stopping,
    });
    let app = router(Arc::clone(&shared));
    io.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shared.stopped().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the dashboard stopped");
        }
    });
    tracing::info!(addr = %bound, "dashboard listening");
    Ok(DashboardHandle { addr: bound, stop })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/stats", get(stats))
        .route("/api/processes", get(processes))
        .route("/api/processes/{pid}", get(process))
        .route("/api/processes/{pid}/kill", post(kill))
        .route("/api/supervisors", get(supervisors))
        .route("/api/workflows", get(workflows))
        .route("/api/workflows/{id}", get(workflow))
        .route("/api/events/{view}", get(events))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            check_token,
        ))
        .with_state(shared)
}

/// The token a request carries, from its `Authorization: Bearer` header
/// or its `token` query parameter.
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    bearer.or_else(|| {
        query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .and_then(|(_, v)| percent_decode(v))
    })
}

/// `%XX` escapes and `+` of a query value decoded; `None` if malformed.
fn percent_decode(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// With a token configured, every request must carry it.
async fn check_token(State(s): App, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given = presented(req.headers(), req.uri().query());
        if !given.is_some_and(|g| same(&g, token)) {
            return failure(&Error::new(
                ErrorKind::PermissionDenied,
                "this dashboard needs its token (Authorization: Bearer TOKEN, or ?token=TOKEN)",
            ));
        }
    }
    next.run(req).await
}

/// An error as a JSON response with the matching status.
fn failure(e: &Error) -> Response {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = json!({"error": {"kind": e.kind().as_str(), "message": e.message()}});
    (status, axum::Json(body)).into_response()
}

fn reply(r: Result<Json, Error>) -> Response {
    match r {
        Ok(j) => axum::Json(j).into_response(),
        Err(e) => failure(&e),
    }
}

/// Runs `f` off the IO threads (a snapshot of many processes, a store
/// read), as a JSON reply.
async fn blocking(
    s: Arc<Shared>,
    f: impl FnOnce(&Shared) -> Result<Json, Error> + Send + 'static,
) -> Response {
    let done = tokio::task::spawn_blocking(move || f(&s)).await;
    reply(done.unwrap_or_else(|e| Err(Error::internal(format!("the request failed: {e}")))))
}

async fn index() -> Html<&'static str> {
    Html(page::HTML)
}

async fn metrics(State(s): App) -> Response {
    let text = tokio::task::spawn_blocking(move || s.metrics.render(&s.rt, s.store.as_ref())).await;
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => failure(&Error::internal(format!(
            "rendering the metrics failed: {e}"
        ))),
    }
}

async fn stats(State(s): App) -> Response {
    blocking(s, |s| Ok(api::stats(&s.rt))).await
}

async fn processes(State(s): App) -> Response {
    blocking(s, |s| Ok(api::processes(&s.rt))).await
}

async fn process(State(s): App, Path(pid): Path<String>) -> Response {
    blocking(s, move |s| api::one_process(&s.rt, api::parse_pid(&pid)?)).await
}

async fn kill(State(s): App, Path(pid): Path<String>) -> Response {
    if s.token.is_none() {
        return failure(&Error::new(
            ErrorKind::PermissionDenied,
            "kill needs a dashboard started with a token (--dashboard-token)",
        ));
    }
    let pid = match api::parse_pid(&pid) {
        Ok(pid) => pid,
        Err(e) => return failure(&e),
    };
    if s.rt.kill(pid) {
        tracing::info!(%pid, "killed from the dashboard");
        reply(Ok(json!({"killed": pid.to_string()})))
    } else {
        failure(&Error::not_found(format!("process {pid} is not alive")))
    }
}

async fn supervisors(State(s): App) -> Response {
    blocking(s, |s| Ok(api::supervisors(&s.rt))).await
}

async fn workflows(State(s): App) -> Response {
    blocking(s, |s| api::workflows(s.store.as_ref())).await
}

async fn workflow(State(s): App, Path(id): Path<String>) -> Response {
    blocking(s, move |s| api::workflow(s.store.as_ref(), &id)).await
}

/// What an event stream sends: one of the views, computed again every
/// interval and sent when it changed.
fn view(s: &Shared, name: &str, q: &HashMap<String, String>) -> Result<Json, Error> {
    let arg = |k: &str| {
        q.get(k)
            .map(String::as_str)
            .ok_or_else(|| Error::invalid(format!("the {name} view needs ?{k}=")))
    };
    match name {
        "stats" => Ok(api::stats(&s.rt)),
        "processes" => Ok(api::processes(&s.rt)),
        "process" => api::one_process(&s.rt, api::parse_pid(arg("pid")?)?),
        "supervisors" => Ok(api::supervisors(&s.rt)),
        "workflows" => api::workflows(s.store.as_ref()),
        "workflow" => api::workflow(s.store.as_ref(), arg("id")?),
        other => Err(Error::not_found(format!(
            "no view {other:?} (stats, processes, process, supervisors, workflows, workflow)"
        ))),
    }
}

async fn events(
    State(s): App,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // A bad request fails now, as a plain error, not as a stream.
    let first = {
        let (s, name, q) = (Arc::clone(&s), name.clone(), q.clone());
        tokio::task::spawn_blocking(move || view(&s, &name, &q)).await
    };
    let first = match first {
        Ok(Ok(j)) => j.to_string(),
        Ok(Err(e)) => return failure(&e),
        Err(e) => return failure(&Error::internal(format!("the view failed: {e}"))),
    };
    Sse::new(changes(s, name, q, first))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The view as events: `first` at once, then each time it changes. An
/// error (the process ended, say) is sent as a `failure` event, and the
/// stream goes on.
fn changes(
    s: Arc<Shared>,
    name: String,
    q: HashMap<String, String>,
    first: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (s, name, q, Some(first), String::new()),
        |(s, name, q, pending, mut last)| async move {
            if let Some(text) = pending {
                last.clone_from(&text);
                return Some((Ok(Event::default().data(text)), (s, name, q, None, last)));
            }
            loop {
                tokio::select! {
                    () = tokio::time::sleep(s.interval) => {}
                    () = s.stopped() => return None,
                }
                let (s2, n2, q2) = (Arc::clone(&s), name.clone(), q.clone());
                let now = tokio::task::spawn_blocking(move || view(&s2, &n2, &q2))
                    .await
                    .unwrap_or_else(|e| Err(Error::internal(format!("the view failed: {e}"))));
                let (kind, text) = match now {
                    Ok(j) => ("view", j.to_string()),
                    Err(e) => (
                        "failure",
                        json!({"kind": e.kind().as_str(), "message": e.message()}).to_string(),
                    ),
                };
                if text != last {
                    last.clone_from(&text);
                    let event = Event::default().event(kind).data(text);
                    return Some((Ok(event), (s, name, q, None, last)));
                }
            }
        },
    )
}
