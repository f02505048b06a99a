//! Hot reload. The program cache holds one compiled program per script key,
//! tagged with the source version it was compiled from; every spawn asks
//! the source for the key's current version, so new spawns get new code
//! while running processes keep the program they started with (they hold
//! it). A new version that fails to compile is rejected: it is logged once
//! and the previous program keeps serving, so a bad edit never takes down
//! what runs or what is spawned next.
//!
//! With [`RuntimeBuilder::hot_reload`](crate::RuntimeBuilder::hot_reload)
//! the runtime also watches its source: a [`Reloader`] thread recompiles
//! changed scripts as the changes arrive (so errors show at once, not at
//! the next spawn) and stops the processes spawned with
//! [`Spawn::restart_on_change`](crate::Spawn::restart_on_change), for their
//! supervisors to restart on the new version.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use dashmap::DashMap;
use troupe_dispatcher::{Error, ErrorKind, Pid};
use troupe_sources::{Change, ChangeSink, SourceError, WatchGuard};

use crate::engine::Program;
use crate::exit::Exit;
use crate::scheduler::Scheduler;

/// A compiled script in the program cache.
pub(crate) struct CachedProgram {
    /// The source version it was compiled from.
    pub version: u64,
    /// The engine that compiled it (index into the runtime's engines).
    pub engine: usize,
    pub program: Program,
    /// A newer version that failed to compile, so it is not tried again.
    pub rejected: Option<u64>,
}

/// Processes that restart when their script changes: pid → (key, version
/// it runs).
pub(crate) type Services = DashMap<Pid, (String, u64)>;

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
        let watch = match sched.source.subscribe("", sink) {
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
        sched.reload(&change);
    }
}

impl Scheduler {
    /// Applies one change: recompiles every cached script it affects, and
    /// restarts the opted-in services of the ones that got a new program.
    pub(crate) fn reload(&self, change: &Change) {
        let keys: Vec<String> = self
            .programs
            .iter()
            .filter(|e| change.affects(e.key()))
            .map(|e| e.key().clone())
            .collect();
        for key in keys {
            let before = self.programs.get(&key).map(|p| p.version);
            match self.source.get(&key) {
                Ok(script) => match self.program(&script, true) {
                    Ok((_, version, _)) if Some(version) != before => {
                        tracing::info!(%key, version, "hot reload: new version compiled");
                        self.restart_services(&key, version);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(%key, error = %e, "hot reload failed"),
                },
                Err(SourceError::NotFound { .. }) => {
                    self.programs.remove(&key);
                    tracing::info!(%key, "hot reload: script removed; running processes keep their code");
                }
                Err(e) => {
                    tracing::warn!(%key, error = %e, "hot reload: cannot read the changed script; keeping the compiled version");
                }
            }
        }
    }

    /// Stops the live services running `key` at another version than
    /// `version` (and forgets the services that have ended).
    fn restart_services(&self, key: &str, version: u64) {
        self.services.retain(|pid, _| self.procs.contains_key(pid));
        let stale: Vec<Pid> = self
            .services
            .iter()
            .filter(|e| e.value().0 == key && e.value().1 != version)
            .map(|e| *e.key())
            .collect();
        for pid in stale {
            self.services.remove(&pid);
            tracing::info!(%pid, %key, "hot reload: restarting a service on the new version");
            self.stop(
                pid,
                Exit::Failed(Error::new(
                    ErrorKind::Canceled,
                    format!("{key} changed; restarting on the new version"),
                )),
            );
        }
    }
}
