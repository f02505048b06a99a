//! Taking over the workflows of a troupe process that died, on a store
//! several processes share (PostgreSQL): a runtime built with `recover`
//! looks, every tenth of the lease timeout, for unfinished workflows whose
//! lease no process holds, and resumes them. The lease decides: of several
//! processes looking at once, one gets each workflow, and the others'
//! resumes fail with `UNAVAILABLE`, which is not worth a log line.

use std::sync::Weak;
use std::time::Duration;

use troupe_dispatcher::ErrorKind;
use troupe_runtime::TakeOver;

use crate::{Inner, WorkflowStore};

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
