//! The JSON of the API: processes, supervisors and workflows, and the
//! views the page streams.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};
use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_runtime::{LatencyCounts, ProcessInfo, Runtime, SupervisorTree, WaitingOn};
use troupe_workflow::{Header, WorkflowStore, outcome_value};

/// Milliseconds since the Unix epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn pids(pids: &[Pid]) -> Json {
    pids.iter().map(|p| Json::from(p.to_string())).collect()
}

/// A script value as JSON (through its own JSON text).
fn value(v: &Value) -> Json {
    serde_json::from_str(&v.to_json()).unwrap_or(Json::Null)
}

/// One process.
pub(crate) fn process(p: &ProcessInfo) -> Json {
    let waiting = p.waiting.as_ref().map(|w| match w {
        WaitingOn::Receive { topic } => json!({"on": "receive", "topic": topic}),
        WaitingOn::Sleep { until } => json!({"on": "sleep", "until_ms": epoch_ms(*until)}),
        WaitingOn::Command { name } => json!({"on": "command", "name": name}),
    });
    json!({
        "pid": p.pid.to_string(),
        "name": p.name,
        "script": p.script,
        "engine": &*p.engine,
        "kind": p.kind.as_str(),
        "workflow": p.workflow,
        "status": p.status.as_str(),
        "waiting": waiting,
        "mailbox": {
            "len": p.mailbox_len,
            "capacity": p.mailbox_capacity,
            "bytes": p.mailbox_bytes,
            "blocked_senders": p.blocked_senders,
        },
        "topics": p.topics,
        "instructions": p.instructions,
        "memory": p.memory,
        "parent": p.parent.map(|p| p.to_string()),
        "links": pids(&p.links),
        "monitors": pids(&p.monitors),
        "monitored_by": pids(&p.monitored_by),
        "trap_exits": p.trap_exits,
        "started_ms": epoch_ms(p.started_at),
    })
}

/// A latency histogram: count, total and per-bucket counts (`le_ms`:
/// each bucket's upper bound in milliseconds, `null` for the last).
fn latencies(l: &LatencyCounts) -> Json {
    let buckets: Vec<Json> = l
        .cumulative()
        .map(|(bound, n)| json!({"le_ms": bound.map(|b| b.as_secs_f64() * 1e3), "count": n}))
        .collect();
    json!({"count": l.count(), "sum_ms": l.sum.as_secs_f64() * 1e3, "buckets": buckets})
}

/// What the runtime has done since it started ([`Runtime::stats`]), with
/// its process census, memory and pending timers.
pub(crate) fn stats(rt: &Runtime) -> Json {
    let s = rt.stats();
    let failed: serde_json::Map<String, Json> = s
        .exited_failed
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.as_str().to_owned(), Json::from(*n)))
        .collect();
    let census: Vec<Json> = rt
        .census()
        .into_iter()
        .map(|(status, kind, n)| json!({"status": status.as_str(), "kind": kind.as_str(), "count": n}))
        .collect();
    let commands: Vec<Json> = s
        .commands
        .iter()
        .map(|c| json!({"name": c.name, "calls": c.calls, "waits": latencies(&c.waits)}))
        .collect();
    json!({
        "processes": rt.process_count(),
        "census": census,
        "spawned": s.spawned,
        "exited": {"normal": s.exited_normal, "killed": s.exited_killed, "failed": failed},
        "messages": {
            "sent": s.messages_sent,
            "mailbox_full": s.mailbox_full,
            "to_dead": s.messages_to_dead,
            "mailbox_high_water": s.mailbox_high_water,
        },
        "scheduler": {"steals": s.steals, "parks": s.parks},
        "memory_in_use": rt.memory_in_use(),
        "timers_pending": rt.pending_timers(),
        "commands": commands,
    })
}

/// Every live process.
pub(crate) fn processes(rt: &Runtime) -> Json {
    rt.processes().iter().map(process).collect()
}

/// Process `pid` given as `<0.42>` or `0.42`.
pub(crate) fn parse_pid(text: &str) -> Result<Pid, Error> {
    let bare = text.trim_start_matches('<').trim_end_matches('>');
    format!("<{bare}>")
        .parse()
        .map_err(|_| Error::invalid(format!("{text:?} is not a pid (like <0.42>)")))
}

/// One live process, or `NOT_FOUND`.
pub(crate) fn one_process(rt: &Runtime, pid: Pid) -> Result<Json, Error> {
    rt.process(pid)
        .map(|p| process(&p))
        .ok_or_else(|| Error::not_found(format!("process {pid} is not alive")))
}

fn tree(t: &SupervisorTree) -> Json {
    let children: Vec<Json> = t
        .children
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "pid": c.pid.map(|p| p.to_string()),
                "supervisors": c.supervisors.iter().map(tree).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"pid": t.pid.to_string(), "name": t.name, "children": children})
}

/// The supervision tree.
pub(crate) fn supervisors(rt: &Runtime) -> Json {
    rt.supervisors().iter().map(tree).collect()
}

fn no_store() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "this dashboard has no workflow store (troupe workflow --dashboard, or Dashboard::workflows)",
    )
}

fn header(h: &Header) -> Json {
    json!({
        "id": h.id,
        "run": h.run,
        "parent": h.parent,
        "status": h.status.as_str(),
        "script": h.key,
        "args": h.args.iter().map(value).collect::<Vec<_>>(),
        "started_ms": h.started_ms,
        "finished_ms": h.finished_ms,
        "deadline_ms": h.deadline_ms,
        "result": h.result.as_ref().map(|r| value(&outcome_value(r))),
    })
}

/// The workflows of the store: header and step count of each.
pub(crate) fn workflows(store: Option<&WorkflowStore>) -> Result<Json, Error> {
    let store = store.ok_or_else(no_store)?;
    Ok(store
        .list()?
        .iter()
        .map(|s| match &s.header {
            Ok(h) => {
                let mut j = header(h);
                j["steps"] = json!(s.steps);
                j
            }
            Err(e) => json!({"id": s.id, "steps": s.steps, "unreadable": e.to_string()}),
        })
        .collect())
}

/// One workflow: its header, its history as a timeline and its past runs.
pub(crate) fn workflow(store: Option<&WorkflowStore>, id: &str) -> Result<Json, Error> {
    let store = store.ok_or_else(no_store)?;
    let mut j = header(&store.header(id)?);
    let steps: Vec<Json> = store
        .history(id)?
        .iter()
        .enumerate()
        .map(|(i, e)| value(&e.to_value(i + 1)))
        .collect();
    j["history"] = Json::Array(steps);
    j["past_runs"] = store
        .runs(id)?
        .iter()
        .map(|r| {
            let mut h = header(&r.header);
            h["steps"] = json!(r.history.len());
            h
        })
        .collect();
    Ok(j)
}
