//! The host's side of durable workflows: resuming, replaying and signalling
//! them by id, and recovering the unfinished ones at start-up.

use troupe_dispatcher::{Error, ErrorKind, Value};

use crate::journal::StartMode;
use crate::{Limits, ProcessHandle, Runtime, Spawn};

impl Runtime {
    /// Resumes the unfinished workflow `id` from its journal store: the
    /// script runs again from the start, journaled results are served
    /// without running anything, and it continues live where the journal
    /// ends. A script that diverges from its history fails with
    /// `NONDETERMINISM`.
    ///
    /// Its unfinished child workflows (`workflow.start_child`) are resumed
    /// with it, and theirs with them; one already running is left as it is.
    pub fn resume(&self, id: &str) -> Result<ProcessHandle, Error> {
        let handle = self.restart(id, StartMode::Resume)?;
        self.resume_children(id);
        Ok(handle)
    }

    /// Resumes the unfinished children of workflow `id` that do not run
    /// here yet, logging those that cannot be.
    fn resume_children(&self, id: &str) {
        let children = self
            .sched()
            .workflow_store()
            .and_then(|s| s.unfinished_children(id));
        let children = match children {
            Ok(children) => children,
            Err(e) => {
                tracing::error!(workflow = %id, error = %e, "cannot list the workflow's children");
                return;
            }
        };
        for child in children {
            match self.resume(&child) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::error!(workflow = %child, parent = %id, error = %e, "cannot resume child workflow");
                }
            }
        }
    }

    /// Replays workflow `id` (finished or not) against its history without
    /// running anything live: the result is the script's result if it
    /// follows its history exactly, `NONDETERMINISM` otherwise. For tests of
    /// script changes.
    pub fn replay(&self, id: &str) -> Result<ProcessHandle, Error> {
        self.restart(id, StartMode::Replay)
    }

    fn restart(&self, id: &str, mode: StartMode) -> Result<ProcessHandle, Error> {
        let stored = self.sched().workflow_store()?.load(id)?;
        let mut spawn = Spawn::script(stored.key).args(stored.args);
        if let Some(p) = stored.policy {
            spawn = spawn.policy(p);
        }
        // A resume gets what is left of the workflow's time; a replay, which
        // runs nothing live, none.
        if let (Some(deadline), StartMode::Resume) = (stored.deadline_ms, mode) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let left = std::time::Duration::from_millis(deadline.saturating_sub(now));
            spawn = spawn.limits(Limits {
                timeout: Some(left),
                ..*self.sched().default_limits
            });
        }
        spawn.workflow = Some((id.to_owned(), mode));
        self.spawn(spawn)
    }

    /// Sends workflow `id` a signal, by id, from the host: the message
    /// `{from = nil, topic, payload}`, durable before this returns. A
    /// workflow running in this runtime gets it in its mailbox and journals
    /// it when its `process.receive` takes it (a restart before that hands
    /// it over again); one not running (yet) gets it on its next resume,
    /// ahead of its mailbox. `NOT_FOUND` if unknown, `CONFLICT` if finished.
    pub fn signal(&self, id: &str, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.sched()
            .workflow_store()?
            .signal(id, topic, payload.into())
    }

    /// Asks workflow `id` to stop, durably: its script gets an error of
    /// kind `CANCELED` from its next command, or at once if it waits in
    /// `time.sleep` or `process.receive` in this runtime; a workflow not
    /// running gets it on its next resume. Only once: cleanup code may
    /// still run commands, and the workflow ends however its script ends.
    /// `NOT_FOUND` if unknown, `CONFLICT` if finished.
    pub fn cancel_workflow(&self, id: &str) -> Result<(), Error> {
        self.sched().workflow_store()?.cancel(id)
    }

    /// Resumes every unfinished workflow (for `RuntimeBuilder::recover`).
    pub(crate) fn recover_all(&self) -> Result<(), Error> {
        let ids = self.sched().workflow_store()?.unfinished()?;
        let mut recovered = Vec::with_capacity(ids.len());
        for id in ids {
            match self.resume(&id) {
                Ok(h) => recovered.push((id, h.pid, h.exit)),
                // A child its parent's resume resumed already.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => tracing::error!(workflow = %id, error = %e, "cannot resume workflow"),
            }
        }
        *self.owner.recovered.lock() = recovered;
        Ok(())
    }

    /// The workflows `RuntimeBuilder::recover` resumed, with their ids;
    /// each call hands them over once.
    pub fn recovered(&self) -> Vec<(String, ProcessHandle)> {
        std::mem::take(&mut *self.owner.recovered.lock())
            .into_iter()
            .map(|(id, pid, exit)| (id, self.handle(pid, exit)))
            .collect()
    }
}
