//! `/metrics`: the runtime's counters and a census of its processes in
//! Prometheus text, through the `metrics` facade and the Prometheus
//! exporter's recorder (local to the dashboard, so a host's own global
//! recorder is left alone).
//!
//! The runtime counts as it goes ([`Runtime::stats`]); a scrape sets each
//! metric to the runtime's figure, then renders.

use std::fmt::Write;

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use troupe_runtime::{LatencyCounts, Runtime};
use troupe_workflow::{Status, WorkflowStore};

/// The dashboard's recorder and the handle that renders it.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        with_local_recorder(&recorder, describe);
        Self { recorder, handle }
    }

    /// The metrics of `rt` (and of the workflows in `store`) now.
    pub fn render(&self, rt: &Runtime, store: Option<&WorkflowStore>) -> String {
        let stats = rt.stats();
        let census = rt.census();
        let workflows = store.and_then(|s| s.list().ok());
        let commits = store.and_then(|s| Some((s.commits().ok()?, s.commit_latencies().ok()?)));
        with_local_recorder(&self.recorder, || {
            for (status, kind, n) in census {
                gauge!("troupe_processes", "status" => status.as_str(), "kind" => kind.as_str())
                    .set(n as f64);
            }
            counter!("troupe_spawns_total").absolute(stats.spawned);
            counter!("troupe_exits_total", "reason" => "normal").absolute(stats.exited_normal);
            counter!("troupe_exits_total", "reason" => "killed").absolute(stats.exited_killed);
            for (kind, n) in &stats.exited_failed {
                counter!("troupe_exits_total", "reason" => kind.as_str()).absolute(*n);
            }
            counter!("troupe_messages_sent_total").absolute(stats.messages_sent);
            counter!("troupe_messages_mailbox_full_total").absolute(stats.mailbox_full);
            counter!("troupe_messages_to_dead_total").absolute(stats.messages_to_dead);
            gauge!("troupe_mailbox_high_water_messages").set(stats.mailbox_high_water as f64);
            counter!("troupe_scheduler_steals_total").absolute(stats.steals);
            counter!("troupe_scheduler_parks_total").absolute(stats.parks);
            gauge!("troupe_memory_in_use_bytes").set(rt.memory_in_use() as f64);
            gauge!("troupe_timers_pending").set(rt.pending_timers() as f64);
            for c in &stats.commands {
                counter!("troupe_commands_total", "command" => c.name.clone()).absolute(c.calls);
            }
            if let Some((n, _)) = &commits {
                counter!("troupe_workflow_commits_total").absolute(*n);
            }
            if let Some(list) = &workflows {
                for status in [Status::Running, Status::Completed, Status::Failed] {
                    let n = list
                        .iter()
                        .filter(|s| s.header.as_ref().is_ok_and(|h| h.status == status))
                        .count();
                    gauge!("troupe_workflows", "status" => status.as_str()).set(n as f64);
                }
                let steps: u64 = list.iter().map(|s| s.steps).sum();
                gauge!("troupe_workflow_steps").set(steps as f64);
            }
        });
        let mut text = self.handle.render();
        let waits: Vec<_> = stats
            .commands
            .iter()
            .filter(|c| c.waits.count() > 0)
            .map(|c| (Some(("command", c.name.as_str())), &c.waits))
            .collect();
        histograms(
            &mut text,
            "troupe_command_wait_seconds",
            "How long commands that did not answer at once were outstanding",
            &waits,
        );
        if let Some((_, latencies)) = &commits {
            histograms(
                &mut text,
                "troupe_workflow_commit_seconds",
                "How long the workflow journal's durable commits took, fsync included",
                &[(None, latencies)],
            );
        }
        text
    }
}

/// Appends the histogram family `name` in Prometheus text: one series per
/// entry of `series`, labelled with its label if it has one. Written here
/// rather than by the exporter, which builds its buckets from every
/// sample while the runtime has counted them already.
fn histograms(
    out: &mut String,
    name: &str,
    help: &str,
    series: &[(Option<(&str, &str)>, &LatencyCounts)],
) {
    if series.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (label, counts) in series {
        let label = label.map(|(k, v)| format!("{k}=\"{}\"", escape(v)));
        let with = |extra: Option<String>| -> String {
            let all: Vec<String> = label.iter().cloned().chain(extra).collect();
            if all.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", all.join(","))
            }
        };
        for (bound, n) in counts.cumulative() {
            let le = bound.map_or("+Inf".to_owned(), |b| b.as_secs_f64().to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{} {n}",
                with(Some(format!("le=\"{le}\"")))
            );
        }
        let _ = writeln!(out, "{name}_sum{} {}", with(None), counts.sum.as_secs_f64());
        let _ = writeln!(out, "{name}_count{} {}", with(None), counts.count());
    }
    out.push('\n');
}

/// A label value with Prometheus's escapes.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The help text of every metric.
fn describe() {
    describe_gauge!("troupe_processes", "Live processes by status and kind");
    describe_counter!("troupe_spawns_total", "Processes started");
    describe_counter!(
        "troupe_exits_total",
        "Processes ended, by reason: normal, killed or the error kind of a failure"
    );
    describe_counter!(
        "troupe_messages_sent_total",
        "Messages put in a mailbox or handed to a waiting receive"
    );
    describe_counter!(
        "troupe_messages_mailbox_full_total",
        "Sends that found no room: refused, or parked until there was room"
    );
    describe_counter!(
        "troupe_messages_to_dead_total",
        "Sends to a process that does not exist"
    );
    describe_gauge!(
        "troupe_mailbox_high_water_messages",
        "The most messages any mailbox has held"
    );
    describe_counter!(
        "troupe_scheduler_steals_total",
        "Processes a worker took from the shared queue or another worker"
    );
    describe_counter!(
        "troupe_scheduler_parks_total",
        "Times a worker found nothing to run and parked"
    );
    describe_gauge!(
        "troupe_memory_in_use_bytes",
        Unit::Bytes,
        "Memory charged to processes: interpreter states, queued messages, engine footprints"
    );
    describe_gauge!(
        "troupe_timers_pending",
        "Sleeps, receive timeouts and deadlines pending"
    );
    describe_counter!(
        "troupe_commands_total",
        "Commands scripts called, by name (waits: troupe_command_wait_seconds)"
    );
    describe_counter!(
        "troupe_workflow_commits_total",
        "Durable commits of the workflow journal (latency: troupe_workflow_commit_seconds)"
    );
    describe_gauge!("troupe_workflows", "Workflows in the store by status");
    describe_gauge!(
        "troupe_workflow_steps",
        "Steps in the histories of the store's workflows"
    );
}
