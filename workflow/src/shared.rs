//! What a runtime does on a store several troupe processes share
//! (PostgreSQL):
//!
//! - **takeover**: built with `recover`, it looks, every tenth of the lease
//!   timeout, for unfinished workflows whose lease no process holds, and
//!   resumes them. The lease decides: of several processes looking at
//!   once, one gets each workflow, and the others' resumes fail with
//!   `UNAVAILABLE`, which is not worth a log line;
//! - **signals and cancellations from elsewhere**: every [`SPOOL_POLL`] it
//!   reads what other processes stored for the workflows it runs (their
//!   inbox signals and cancellations) and hands it to their processes, as
//!   a store file's spool watcher does with the files in its spool.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use troupe_dispatcher::ErrorKind;
use troupe_runtime::TakeOver;

use crate::{Inner, SPOOL_POLL, WorkflowStore, signal_parts};

/// Starts the thread that hands signals and cancellations stored by other
/// processes to the workflows running here, until the store is gone.
pub(crate) fn watch_inboxes(inner: Weak<Inner>) {
    let started = std::thread::Builder::new()
        .name("troupe-inboxes".into())
        .spawn(move || {
            while let Some(inner) = inner.upgrade() {
                WorkflowStore { inner }.hand_over_waiting();
                std::thread::sleep(SPOOL_POLL);
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot watch the inboxes of running workflows");
    }
}

/// Starts the thread that takes over orphaned workflows of the store
/// `inner` every `every`, until the store is gone (a runtime that shut
/// down resumes nothing: `UNAVAILABLE`).
pub(crate) fn watch(inner: Weak<Inner>, every: Duration, resume: TakeOver) {
    let started = std::thread::Builder::new()
        .name("troupe-takeover".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                WorkflowStore { inner }.take_over_orphans(&resume);
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start taking over workflows of dead processes");
    }
}

impl WorkflowStore {
    /// Hands the signals and cancellations waiting for workflows running
    /// here to their processes (each once).
    fn hand_over_waiting(&self) {
        let ids: Vec<String> = self
            .inner
            .running
            .lock()
            .keys()
            .map(|id| id.to_string())
            .collect();
        if ids.is_empty() {
            return;
        }
        let waiting = match self.db().and_then(|db| db.waiting(&ids)) {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the inboxes of running workflows");
                return;
            }
        };
        for (id, seq, message) in waiting.signals {
            let Some((topic, payload)) = signal_parts(message) else {
                tracing::error!(workflow = %id, seq, "an inbox signal without a topic");
                continue;
            };
            self.hand_over(self.inner.running.lock(), &id, seq, &topic, payload);
        }
        for id in waiting.cancels {
            let running = self.inner.running.lock();
            // Once: a cancellation stays stored until the workflow ends.
            if running
                .get(id.as_str())
                .is_some_and(|l| !l.cancel.requested.load(Ordering::SeqCst))
            {
                self.cancel_live(running, &id);
            }
        }
    }

    /// Resumes the orphaned workflows that do not run here.
    fn take_over_orphans(&self, resume: &TakeOver) {
        let orphans = match self.db().and_then(|db| db.orphans()) {
            Ok(orphans) => orphans,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for workflows to take over");
                return;
            }
        };
        for id in orphans {
            if self.inner.running.lock().contains_key(id.as_str()) {
                continue;
            }
            match resume(&id) {
                Ok(()) => {
                    tracing::info!(workflow = %id, "took over the workflow of a process that died")
                }
                // Another process got it first, or it ended meanwhile.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::AlreadyExists | ErrorKind::Conflict | ErrorKind::Unavailable
                    ) => {}
                Err(e) => {
                    tracing::warn!(workflow = %id, error = %e, "cannot take over the workflow")
                }
            }
        }
    }
}
