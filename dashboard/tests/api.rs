//! The dashboard's HTTP side against a real runtime, over a real loopback
//! socket: the JSON API, the token, kill, the event stream, `/metrics`,
//! the workflow pages' data, and refusals of a bad configuration.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use troupe_dashboard::{Dashboard, DashboardHandle};
use troupe_dispatcher::ErrorKind;
use troupe_engines::lua::LuaEngine;
use troupe_modules::{Class, Policy};
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::WorkflowStore;

const WORKER: &str = r#"
local process = require("process")
process.register((...))
process.receive("stop")
return "stopped"
"#;

const FLOW: &str = r#"
local time = require("time")
time.sleep(1)
local t = time.now()
return {done = true}
"#;

fn runtime(store: Option<&WorkflowStore>) -> Runtime {
    let mut b = Runtime::builder()
        .workers(2)
        .source(
            MemorySource::new()
                .with("worker.lua", WORKER)
                .with("flow.lua", FLOW),
        )
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process));
    if let Some(store) = store {
        b = b.journal_store(store.clone());
    }
    b.build().expect("runtime builds")
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// GETs or POSTs `path` of `d`, with `token` as a bearer token if given:
/// the status and the body as JSON (or as a JSON string if not JSON).
fn call(d: &DashboardHandle, method: &str, path: &str, token: Option<&str>) -> (u16, Json) {
    let url = format!("http://{}{path}", d.local_addr());
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    io.block_on(async {
        let client = reqwest::Client::new();
        let mut req = match method {
            "POST" => client.post(&url),
            _ => client.get(&url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the dashboard answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Json::String(text));
        (status, body)
    })
}

fn get(d: &DashboardHandle, path: &str) -> Json {
    let (status, body) = call(d, "GET", path, None);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Waits until `n` workers are registered.
fn start_workers(rt: &Runtime, n: usize) -> Vec<troupe_runtime::ProcessHandle> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            rt.spawn(Spawn::script("worker.lua").args([format!("w{i}")]))
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (0..n).any(|i| rt.whereis(&format!("w{i}")).is_none()) {
        assert!(Instant::now() < deadline, "workers never registered");
        std::thread::sleep(Duration::from_millis(5));
    }
    handles
}

#[test]
fn the_api_lists_processes_and_one_process_in_detail() {
    let rt = runtime(None);
    let handles = start_workers(&rt, 3);
    let d = Dashboard::new(&rt).serve(loopback()).unwrap();

    let page = call(&d, "GET", "/", None);
    assert_eq!(page.0, 200);
    let html = page.1.as_str().expect("HTML");
    assert!(html.contains("<title>Troupe dashboard</title>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing fetched from elsewhere"
    );

    let list = get(&d, "/api/processes");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["w0", "w1", "w2"]);

    rt.try_send(handles[1].pid(), "other", 1).unwrap();
    let pid = handles[1].pid().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let one = loop {
        let one = get(&d, &format!("/api/processes/{pid}"));
        if one["mailbox"]["len"] == 1 && one["waiting"]["on"] == "receive" {
            break one;
        }
        assert!(Instant::now() < deadline, "never settled: {one}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(one["pid"], pid);
    assert_eq!(one["waiting"]["topic"], "stop");
    assert_eq!(one["topics"], serde_json::json!(["other"]));
    assert_eq!(one["script"], "worker.lua");
    assert_eq!(one["kind"], "isolated");
    // The pid without its brackets works too (no URL escaping needed).
    let bare = pid.trim_start_matches('<').trim_end_matches('>');
    assert_eq!(get(&d, &format!("/api/processes/{bare}"))["pid"], pid);

    let (status, body) = call(&d, "GET", "/api/processes/<0.999999>", None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["kind"], "NOT_FOUND");
    let (status, _) = call(&d, "GET", "/api/processes/nonsense", None);
    assert_eq!(status, 400);
    rt.shutdown();
}

#[test]
fn kill_needs_the_token_and_a_token_guards_every_request() {
    let rt = runtime(None);
    let handles = start_workers(&rt, 1);
    let pid = handles[0].pid().to_string();

    // Without a token: readable, but kill is refused.
    let open = Dashboard::new(&rt).serve(loopback()).unwrap();
    let (status, body) = call(&open, "POST", &format!("/api/processes/{pid}/kill"), None);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["kind"], "PERMISSION_DENIED");
    assert!(rt.process(handles[0].pid()).is_some());
    open.stop();

    let guarded = Dashboard::new(&rt)
        .token("s3cret")
        .serve(loopback())
        .unwrap();
    for path in [
        "/",
        "/api/stats",
        "/api/processes",
        "/metrics",
        "/api/events/processes",
    ] {
        let (status, _) = call(&guarded, "GET", path, None);
        assert_eq!(status, 403, "{path} without the token");
        let (status, _) = call(&guarded, "GET", path, Some("wrong"));
        assert_eq!(status, 403, "{path} with a wrong token");
    }
    let (status, _) = call(&guarded, "GET", "/api/processes?token=s3cret", None);
    assert_eq!(status, 200, "the token as a query parameter");
    let (status, body) = call(
        &guarded,
        "POST",
        &format!("/api/processes/{pid}/kill"),
        Some("s3cret"),
    );
    assert_eq!(status, 200, "{body}");
    let err = handles[0].join_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert!(rt.process(handles[0].pid()).is_none());
    rt.shutdown();
}

#[test]
fn a_bad_configuration_is_refused_before_listening() {
    let rt = runtime(None);
    let err = Dashboard::new(&rt)
        .serve("0.0.0.0:0".parse().unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("token"), "{err}");
    let err = Dashboard::new(&rt).token("").serve(loopback()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let taken = Dashboard::new(&rt).serve(loopback()).unwrap();
    let err = Dashboard::new(&rt).serve(taken.local_addr()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    rt.shutdown();
}

/// The value of the sample `series` (name and labels) in Prometheus
/// `text`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(str::trim))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_spawns_exits_messages_and_commands() {
    let rt = runtime(None);
    let handles = start_workers(&rt, 2);
    // Both wait in `receive` before their message comes: two waits.
    let deadline = Instant::now() + Duration::from_secs(30);
    while handles
        .iter()
        .any(|h| rt.process(h.pid()).is_some_and(|p| p.waiting.is_none()))
    {
        assert!(Instant::now() < deadline, "workers never waited");
        std::thread::sleep(Duration::from_millis(5));
    }
    for h in &handles {
        rt.try_send(h.pid(), "stop", ()).unwrap();
        h.join_blocking().unwrap();
    }
    let _ = rt.try_send(handles[0].pid(), "stop", ());
    let d = Dashboard::new(&rt).serve(loopback()).unwrap();
    let (status, text) = call(&d, "GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = text.as_str().expect("text").to_owned();
    let value = |line: &str| metric(&text, line);
    assert_eq!(value("troupe_spawns_total"), 2.0);
    assert_eq!(value("troupe_exits_total{reason=\"normal\"}"), 2.0);
    assert_eq!(value("troupe_messages_sent_total"), 2.0);
    assert_eq!(value("troupe_messages_to_dead_total"), 1.0);
    assert_eq!(
        value("troupe_processes{status=\"waiting\",kind=\"isolated\"}"),
        0.0
    );
    assert!(text.contains("# HELP troupe_spawns_total"));
    assert_eq!(
        value("troupe_commands_total{command=\"process.register\"}"),
        2.0
    );
    assert_eq!(
        value("troupe_commands_total{command=\"process.receive\"}"),
        2.0
    );
    let waits = "troupe_command_wait_seconds";
    assert_eq!(
        value(&format!("{waits}_count{{command=\"process.receive\"}}")),
        2.0
    );
    assert_eq!(
        value(&format!(
            "{waits}_bucket{{command=\"process.receive\",le=\"+Inf\"}}"
        )),
        2.0
    );
    assert!(value(&format!("{waits}_sum{{command=\"process.receive\"}}")) > 0.0);
    assert!(text.contains(&format!("# TYPE {waits} histogram")));

    let stats = get(&d, "/api/stats");
    assert_eq!(stats["spawned"], 2);
    assert_eq!(stats["exited"]["normal"], 2);
    assert_eq!(stats["messages"]["to_dead"], 1);
    let receive = stats["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "process.receive")
        .expect("process.receive in /api/stats");
    assert_eq!(receive["calls"], 2);
    assert_eq!(receive["waits"]["count"], 2);
    rt.shutdown();
}

#[test]
fn the_event_stream_sends_the_view_and_again_when_it_changes() {
    let rt = runtime(None);
    let d = Dashboard::new(&rt)
        .interval(Duration::from_millis(50))
        .serve(loopback())
        .unwrap();
    let url = format!("http://{}/api/events/processes", d.local_addr());
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = io.block_on(async {
        let mut resp = reqwest::get(&url).await.unwrap();
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut seen = String::new();
        let mut spawned = None;
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(chunk) = resp.chunk().await.unwrap() {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                let views = seen.matches("data: ").count();
                if views >= 1 && spawned.is_none() {
                    // The first view is the empty runtime; a spawn changes it.
                    spawned = Some(
                        rt.spawn(Spawn::script("worker.lua").args(["late"]))
                            .unwrap(),
                    );
                }
                if seen.contains("\"late\"") {
                    break;
                }
            }
        })
        .await
        .expect("the change was streamed");
        seen
    });
    let first = events.lines().find(|l| l.starts_with("data: ")).unwrap();
    assert_eq!(first, "data: []");
    let (status, body) = call(&d, "GET", "/api/events/nonsense", None);
    assert_eq!(status, 404, "{body}");
    rt.shutdown();
}

#[test]
fn workflows_are_listed_with_their_history_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = WorkflowStore::open(dir.path().join("wf.redb")).unwrap();
    let rt = runtime(Some(&store));
    let h = rt.spawn(Spawn::workflow("order-1", "flow.lua")).unwrap();
    h.join_blocking().unwrap();

    let bare = Dashboard::new(&rt).serve(loopback()).unwrap();
    let (status, body) = call(&bare, "GET", "/api/workflows", None);
    assert_eq!(status, 503, "{body}");

    let d = Dashboard::new(&rt)
        .workflows(store)
        .serve(loopback())
        .unwrap();
    let list = get(&d, "/api/workflows");
    assert_eq!(list[0]["id"], "order-1");
    assert_eq!(list[0]["status"], "completed");
    let one = get(&d, "/api/workflows/order-1");
    let commands: Vec<&str> = one["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["time.sleep", "time.now"]);
    assert_eq!(one["history"][0]["step"], 1);
    assert_eq!(one["result"]["ok"]["done"], true);
    let (status, _) = call(&d, "GET", "/api/workflows/nope", None);
    assert_eq!(status, 404);

    let (_, text) = call(&d, "GET", "/metrics", None);
    let text = text.as_str().expect("text");
    let commits = metric(text, "troupe_workflow_commits_total");
    assert!(commits >= 1.0, "the workflow's end was committed");
    assert_eq!(
        metric(text, "troupe_workflow_commit_seconds_count"),
        commits
    );
    rt.shutdown();
}

#[test]
fn stopping_the_dashboard_ends_open_event_streams() {
    let rt = runtime(None);
    let d = Dashboard::new(&rt).serve(loopback()).unwrap();
    let url = format!("http://{}/api/events/processes", d.local_addr());
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    io.block_on(async {
        let mut resp = reqwest::get(&url).await.unwrap();
        let first = resp.chunk().await.unwrap().expect("the first view");
        assert!(String::from_utf8_lossy(&first).contains("data: []"));
        d.stop();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(_)) = resp.chunk().await {}
        })
        .await
        .expect("the stream ended");
    });
    rt.shutdown();
}
