//! Starting processes: resolving the script, compiling it once per version
//! (the program cache, `programs.rs`), opening a workflow's journal, and
//! creating the process entry.

use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Pid};
use troupe_modules::Policy;
use troupe_sources::Script;

use crate::entry::{Entry, NewEntry};
use crate::exit::ExitCell;
use crate::introspect::{Origin, ProcessKind};
use crate::journal::StartMode;
use crate::journal::WorkflowStart;
use crate::journaled::{JournaledProcess, Restart};
use crate::quota::{Caps, Quota};
use crate::scheduler::Scheduler;
use crate::spawn::{Native, OptionsOf, SPAWN, child_spec, source_error};
use crate::{JournalStore, Process, ProcessInit, Spawn};

/// What a process is made with once it is counted.
struct Made {
    pid: Pid,
    limits: Arc<crate::Limits>,
}

/// A process counted in its spawn tree but not made yet. Dropped without
/// [`Admission::keep`] (making the process failed), it gives back its
/// place in the tree and the bytes charged for it.
struct Admission {
    tree: Arc<Quota>,
    runtime: Arc<Quota>,
    /// Charged to the runtime for the process's engine
    /// ([`Engine::footprint`](crate::Engine::footprint)).
    footprint: usize,
    /// The process was made (see [`Admission::keep`]).
    kept: bool,
}

impl Admission {
    /// Counts a new process in `tree` (under `runtime`): `LIMIT_EXCEEDED`
    /// if a level is at its `max_processes`, `CANCELED` if the tree is
    /// being stopped.
    fn enter(tree: Arc<Quota>, runtime: &Arc<Quota>) -> Result<Self, Error> {
        tree.admit()?;
        Ok(Self {
            tree,
            runtime: Arc::clone(runtime),
            footprint: 0,
            kept: false,
        })
    }

    /// Charges the runtime `footprint` bytes for the new process.
    fn charge(&mut self, footprint: usize) -> Result<(), Error> {
        self.runtime.charge(footprint, "a new process")?;
        self.footprint = footprint;
        Ok(())
    }

    /// The process was made: its entry gives back the place and the
    /// bytes when it ends.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if !self.kept {
            self.runtime.refund(self.footprint);
            self.tree.leave();
        }
    }
}

impl Scheduler {
    /// `CANCELED` once the runtime is shutting down.
    fn admit(&self) -> Result<(), Error> {
        if self.shutting_down() {
            return Err(Error::new(ErrorKind::Canceled, "runtime is shutting down"));
        }
        Ok(())
    }

    /// Starts a process. `parent` is the spawning process, if any.
    pub(crate) fn spawn(
        &self,
        spec: Spawn,
        parent: Option<&Entry>,
        code: Option<Script>,
        exit: Option<Arc<ExitCell>>,
    ) -> Result<Pid, Error> {
        let entry = self.prepare(spec, parent, code, exit)?;
        let pid = entry.pid;
        self.start(entry);
        Ok(pid)
    }

    /// Creates (and links, for `spawn_link`) a process without starting
    /// it, so the caller can record its pid before it runs.
    pub(crate) fn prepare(
        &self,
        spec: Spawn,
        parent: Option<&Entry>,
        code: Option<Script>,
        exit: Option<Arc<ExitCell>>,
    ) -> Result<Arc<Entry>, Error> {
        self.admit()?;
        let pid = self.table.next_pid();
        // Shared with the parent or the defaults when the same.
        let limits = match (&spec.limits, parent) {
            (None, Some(p)) => Arc::clone(&p.limits),
            (None, None) => Arc::clone(&self.default_limits),
            (Some(l), _) if l == &*self.default_limits => Arc::clone(&self.default_limits),
            (Some(l), _) => Arc::new(*l),
        };
        // A script's child joins its parent's spawn tree; the host's
        // starts one. Counted before anything is made, so a fork bomb at
        // its cap costs no compile and no state.
        let quota = match parent {
            Some(p) => Arc::clone(&p.quota),
            None => Quota::tree(
                Caps {
                    processes: limits.max_processes,
                    memory: limits.max_memory,
                },
                &self.quota,
                pid.to_string(),
            ),
        };
        let admitted = Admission::enter(quota, &self.quota)?;
        self.make(Made { pid, limits }, admitted, spec, parent, code, exit)
    }

    /// The rest of [`Scheduler::prepare`], once the new process is counted.
    fn make(
        &self,
        Made { pid, limits }: Made,
        mut admitted: Admission,
        spec: Spawn,
        parent: Option<&Entry>,
        code: Option<Script>,
        exit: Option<Arc<ExitCell>>,
    ) -> Result<Arc<Entry>, Error> {
        let from_source = code.is_none();
        let script = match code {
            Some(s) => s,
            None => self
                .programs
                .source()
                .get(&spec.key)
                .map_err(source_error)?,
        };
        let (idx, version, program) = self.programs.program(&script, from_source)?;
        let engine = self.programs.engine(idx);
        if spec.lightweight && !engine.lightweight() {
            return Err(Error::invalid(format!(
                "the {} engine has no lightweight processes",
                engine.name()
            )));
        }
        if spec.lightweight && spec.workflow.is_some() {
            return Err(Error::invalid(
                "a workflow runs as an isolated process (its replay needs a state of its own); \
                 spawn it without `lightweight`",
            ));
        }
        if let Some(p) = &spec.policy {
            p.validate(&self.modules)?;
        }
        admitted.charge(engine.footprint(spec.lightweight))?;
        let default_policy = match (&spec.workflow, &self.journals) {
            (Some(_), Some(store)) => Arc::new(store.policy()),
            _ => Arc::clone(&self.default_policy),
        };
        let policy = match (spec.policy, parent) {
            (Some(p), Some(parent)) => Arc::new(Policy::clone(&p).within(&parent.policy)),
            (Some(p), None) => p,
            (None, Some(parent)) => Arc::clone(&parent.policy),
            (None, None) => default_policy,
        };
        let journal = match &spec.workflow {
            None => None,
            Some((id, mode)) => Some(
                self.workflow_store()?.open(&WorkflowStart {
                    id,
                    pid,
                    script: &script,
                    args: &spec.args,
                    mode: *mode,
                    policy: &policy,
                    timeout: limits.timeout,
                    parent: spec
                        .child_of
                        .as_ref()
                        .map(|(p, close)| (p.as_str(), *close)),
                })?,
            ),
        };
        let init = ProcessInit {
            pid,
            parent: parent.map(|p| p.pid),
            key: script.key.clone(),
            args: spec.args,
            entry: spec.entry,
            policy: Arc::clone(&policy),
            modules: Arc::clone(&self.modules),
            limits: *limits,
            source: Arc::clone(self.programs.source()),
            lightweight: spec.lightweight,
            memory_ceiling: self.quota.caps().memory,
            journaled: journal.is_some(),
        };
        // A workflow's journal wraps its process (see `journaled.rs`); a
        // new run (`workflow.continue_as_new`) is the same program with
        // other arguments.
        let process: Box<dyn Process> = match journal {
            Some(journal) => {
                let process = engine.instantiate(&program, init.clone())?;
                let (engine, program) = (Arc::clone(engine), program.clone());
                let restart: Restart = Box::new(move |args| {
                    let init = ProcessInit {
                        args,
                        ..init.clone()
                    };
                    engine.instantiate(&program, init)
                });
                Box::new(JournaledProcess::new(process, journal, restart))
            }
            None => engine.instantiate(&program, init)?,
        };
        if spec.restart_on_change {
            self.programs.add_service(pid, script.key.clone(), version);
        }
        let kind = if spec.lightweight {
            ProcessKind::Lightweight
        } else {
            ProcessKind::Isolated
        };
        let mut origin = Origin::new(self, parent.map(|p| p.pid), Some(idx), kind);
        origin.workflow = spec.workflow.map(|(id, _)| id.into_boxed_str());
        let entry = Entry::new(NewEntry {
            pid,
            key: script.key,
            policy,
            limits,
            quota: Arc::clone(&admitted.tree),
            footprint: admitted.footprint,
            mailbox: spec.mailbox.unwrap_or(self.default_mailbox),
            mailbox_bytes: self.mailbox_bytes,
            process,
            exit,
            origin,
        });
        if let Some(to) = spec.link {
            self.table.link_at_spawn(&entry, to)?;
        }
        admitted.keep();
        Ok(entry)
    }

    /// The journal store, for spawning workflows.
    pub(crate) fn workflow_store(&self) -> Result<&Arc<dyn JournalStore>, Error> {
        self.journals.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "this runtime has no workflow store (RuntimeBuilder::journal_store)",
            )
        })
    }

    /// `process.spawn(script, opts, ...)` from a script: the key is
    /// relative to the parent's script, the policy at most the parent's.
    pub(crate) fn spawn_child(
        &self,
        parent: &Entry,
        cmd: troupe_modules::builtin::process::Spawn,
    ) -> Result<Pid, Error> {
        let spec = child_spec(parent, &cmd.script, cmd.args, &cmd.opts, &SPAWN)?;
        self.spawn(spec, Some(parent), None, None)
    }

    /// `workflow.start_child(id, script, args, opts)` from the workflow
    /// `parent`: starts the child workflow `id` (the script relative to the
    /// parent's, the policy at most the parent's) and answers its id. A
    /// child this parent already started from the same script (a start
    /// run again after a crash) is answered as it is; any other workflow
    /// with that id is `ALREADY_EXISTS`. `INVALID` if `parent` is no
    /// workflow.
    pub(crate) fn start_child(
        &self,
        parent: &Entry,
        cmd: troupe_modules::builtin::workflow::StartChild,
    ) -> Result<String, Error> {
        const START_CHILD: OptionsOf = OptionsOf {
            what: "workflow.start_child",
            own: &["parent_close"],
        };
        let Some(parent_id) = parent.origin.workflow.as_deref() else {
            return Err(Error::invalid(
                "workflow.start_child: this process is not a workflow",
            ));
        };
        let close = cmd.parent_close();
        let mut spec = child_spec(parent, &cmd.script, cmd.args, &cmd.opts, &START_CHILD)?;
        let store = self.workflow_store()?;
        match store.load(&cmd.id) {
            Ok(stored) if stored.parent.as_deref() == Some(parent_id) && stored.key == spec.key => {
                return Ok(cmd.id);
            }
            Ok(stored) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "workflow.start_child: workflow {:?} already exists (script {}, {})",
                        cmd.id,
                        stored.key,
                        stored
                            .parent
                            .map_or_else(|| "no parent".to_owned(), |p| format!("parent {p:?}")),
                    ),
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Started by the host, not as the parent's process: a child workflow
        // outlives its parent's process (a restart, an abandon), so it gets
        // the parent's policy and limits as its own, never more.
        let policy = match spec.policy.take() {
            Some(p) => Policy::clone(&p).within(&parent.policy),
            None => Policy::clone(&parent.policy),
        };
        spec.policy = Some(Arc::new(policy));
        spec.limits = Some(spec.limits.unwrap_or(*parent.limits));
        spec.workflow = Some((cmd.id.clone(), StartMode::New));
        spec.child_of = Some((parent_id.to_owned(), close));
        self.spawn(spec, None, None, None)?;
        Ok(cmd.id)
    }

    /// Starts a process implemented in Rust (a supervisor), made by
    /// `make` once its pid is known.
    pub(crate) fn spawn_native(
        &self,
        make: impl FnOnce(Pid) -> Box<dyn Process>,
        n: Native,
    ) -> Result<Pid, Error> {
        self.admit()?;
        let pid = self.table.next_pid();
        let quota = Quota::tree(Caps::default(), &self.quota, pid.to_string());
        let admitted = Admission::enter(quota, &self.quota)?;
        let entry = Entry::new(NewEntry {
            pid,
            key: n.key,
            policy: n.policy,
            limits: Arc::new(n.limits),
            quota: Arc::clone(&admitted.tree),
            footprint: admitted.footprint,
            mailbox: self.default_mailbox,
            mailbox_bytes: self.mailbox_bytes,
            process: make(pid),
            exit: n.exit,
            origin: Origin::new(self, n.link, None, ProcessKind::Native),
        });
        if let Some(to) = n.link {
            self.table.link_at_spawn(&entry, to)?;
        }
        admitted.keep();
        self.start(entry);
        Ok(pid)
    }
}
