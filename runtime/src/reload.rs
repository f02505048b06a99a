//! Hot reload's thread: with
//! [`RuntimeBuilder::hot_reload`](crate::RuntimeBuilder::hot_reload) the
//! runtime watches its source, and a [`Reloader`] thread applies the
//! changes as they arrive: the program cache recompiles the changed
//! scripts (`programs.rs`), and the processes spawned with
//! [`Spawn::restart_on_change`](crate::Spawn::restart_on_change) at an
//! older version are stopped, for their supervisors to restart them on the
//! new code.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use troupe_dispatcher::{Error, ErrorKind};
use troupe_sources::{Change, ChangeSink, SourceError, WatchGuard};

use crate::exit::Exit;
use crate::scheduler::Scheduler;

enum Msg {
    Change(Change),
    Stop,
}

/// The thread applying the source's changes to the program cache.
pub(crate) struct Reloader {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    _watch: WatchGuard,
}

impl Reloader {
    /// Subscribes to the scheduler's source; `None` (logged) if it cannot be
    /// watched, in which case changes are still picked up at spawn time.
    pub fn start(sched: &Arc<Scheduler>) -> Option<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sink_tx = tx.clone();
        let sink = ChangeSink::new(move |change| {
            // Fails only after `stop`, when nothing reloads any more.
            let _ = sink_tx.send(Msg::Change(change));
        });
        let watch = match sched.programs.source().subscribe("", sink) {
            Ok(guard) => guard,
            Err(e @ SourceError::Unsupported { .. }) => {
                tracing::info!(%e, "hot reload: changes are picked up at spawn time");
                return None;
            }
            Err(e) => {
                tracing::warn!(%e, "hot reload: cannot watch the source; changes are picked up at spawn time");
                return None;
            }
        };
        let weak = Arc::downgrade(sched);
        let thread = std::thread::Builder::new()
            .name("troupe-reload".to_owned())
            .spawn(move || run(&weak, &rx));
        match thread {
            Ok(t) => Some(Self {
                tx,
                thread: Some(t),
                _watch: watch,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "hot reload: cannot start its thread");
                None
            }
        }
    }

    /// Stops the thread and the subscription.
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(sched: &Weak<Scheduler>, rx: &Receiver<Msg>) {
    while let Ok(Msg::Change(change)) = rx.recv() {
        let Some(sched) = sched.upgrade() else { break };
        reload(&sched, &change);
    }
}

/// Applies one change: recompiles every cached script it affects, and
/// stops the opted-in services of the ones that got a new program.
fn reload(sched: &Scheduler, change: &Change) {
    for (key, version) in sched.programs.refresh(change) {
        let alive = |pid| sched.table.contains(pid);
        for pid in sched.programs.stale_services(&key, version, alive) {
            tracing::info!(%pid, %key, "hot reload: restarting a service on the new version");
            sched.stop(
                pid,
                Exit::Failed(Error::new(
                    ErrorKind::Canceled,
                    format!("{key} changed; restarting on the new version"),
                )),
            );
        }
    }
}
