//! Supervisors, Erlang style: a process (written in Rust, with its own pid)
//! that starts child processes linked to it, traps their exits, and
//! restarts them by a strategy until too many restarts happen too quickly.
//!
//! - **Strategies**: `one_for_one` restarts only the child that ended;
//!   `one_for_all` terminates the others and restarts them all;
//!   `rest_for_one` terminates and restarts the ones started after it.
//! - **Restart types**: `permanent` children are always restarted,
//!   `transient` ones only after an abnormal exit, `temporary` ones never
//!   (and are forgotten once they end).
//! - **Intensity**: more than `max_restarts` restarts within `period` and
//!   the supervisor gives up: it terminates every child and exits with a
//!   `LIMIT_EXCEEDED` error naming the child and the reason that broke the
//!   limit (in its details too: `{child, reason, restarts}`).
//!
//! Terminating a child is: unlink, monitor, kill, and wait for its `DOWN`
//! before going on, so a restarted child never races its predecessor (for a
//! registered name, say). A supervisor started from a script is linked to
//! it; when that parent ends, the supervisor terminates its children and
//! exits with the parent's reason.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use troupe_dispatcher::{Call, Error, ErrorKind, Pid, Value};
use troupe_modules::builtin::process;

use crate::entry::Entry;
use crate::exit::{Exit, ExitCell};
use crate::links::{DOWN_TOPIC, EXIT_TOPIC, MonitorRef};
use crate::scheduler::Scheduler;
use crate::spawn::Native;
use crate::supervisor_spec::{ChildSpec, Children, Restart, Strategy};
use crate::{ChildInfo, Process, ProcessHandle, Resume, Runtime, Step, StepCx, Supervisor};

struct Child {
    spec: ChildSpec,
    pid: Option<Pid>,
}

/// What to do once every terminated child's `DOWN` has arrived.
enum Then {
    /// Start these children (by id), in order.
    Restart(Vec<String>),
    /// Exit with this reason.
    Exit(Value),
}

/// The supervisor process.
pub(crate) struct SupervisorProcess {
    sched: Weak<Scheduler>,
    me: Pid,
    parent: Option<Pid>,
    strategy: Strategy,
    max_restarts: usize,
    period: Duration,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
    waiting: HashSet<MonitorRef>,
    then: Option<Then>,
    shared: Children,
}

fn receive(topic: Option<&str>) -> Step {
    Step::Yield(Call::typed(process::Receive {
        topic: topic.map(str::to_owned),
        timeout_ms: None,
    }))
}

fn payload_pid(msg: &Value) -> Option<Pid> {
    msg.get("payload")?.get("pid")?.as_str()?.parse().ok()
}

impl SupervisorProcess {
    fn publish(&self) {
        *self.shared.lock() = self
            .children
            .iter()
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                pid: c.pid,
            })
            .collect();
    }

    fn start_child(&mut self, s: &Scheduler, i: usize) -> Result<(), Error> {
        let me = s
            .table
            .lookup(self.me)
            .ok_or_else(|| Error::new(ErrorKind::Canceled, "supervisor is gone"))?;
        let mut spawn = self.children[i].spec.spawn.clone();
        spawn.link = Some(self.me);
        let child = s.prepare(spawn, Some(&me), None, None).map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "supervisor cannot start child {:?}: {}",
                    self.children[i].spec.id,
                    e.message()
                ),
            )
        })?;
        // Recorded before the child runs, so `which_children` is never
        // behind what the child itself can tell anyone.
        self.children[i].pid = Some(child.pid);
        self.publish();
        s.start(child);
        Ok(())
    }

    /// Unlinks, monitors and kills child `i`; its `DOWN` is awaited.
    fn terminate(&mut self, s: &Scheduler, i: usize) {
        let Some(pid) = self.children[i].pid.take() else {
            return;
        };
        self.publish();
        s.table.unlink(self.me, pid, s);
        if let Ok(r) = s.monitor(self.me, pid) {
            self.waiting.insert(r);
        }
        s.stop(pid, Exit::Killed);
    }

    /// Terminates every child (last started first), then exits.
    fn give_up(&mut self, s: &Scheduler, reason: Value) {
        for i in (0..self.children.len()).rev() {
            self.terminate(s, i);
        }
        self.then = Some(Then::Exit(reason));
    }

    fn handle(&mut self, s: &Scheduler, msg: &Value) {
        let topic = msg.get("topic").and_then(Value::as_str).unwrap_or_default();
        if topic == DOWN_TOPIC {
            if let Some(r) = msg
                .get("payload")
                .and_then(|p| p.get("ref"))
                .and_then(Value::as_i64)
            {
                self.waiting.remove(&r);
            }
            return;
        }
        if topic != EXIT_TOPIC {
            return; // not for us; supervisors take no requests
        }
        let Some(from) = payload_pid(msg) else {
            return;
        };
        let reason = msg
            .get("payload")
            .and_then(|p| p.get("reason"))
            .cloned()
            .unwrap_or_default();
        if Some(from) == self.parent {
            self.give_up(s, reason);
        } else if let Some(i) = self.children.iter().position(|c| c.pid == Some(from)) {
            self.child_exited(s, i, reason);
        }
    }

    fn child_exited(&mut self, s: &Scheduler, i: usize, reason: Value) {
        self.children[i].pid = None;
        let normal = reason.as_str() == Some("normal");
        let restart = match self.children[i].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !normal,
            Restart::Temporary => false,
        };
        if !restart {
            if self.children[i].spec.restart == Restart::Temporary {
                self.children.remove(i);
            }
            self.publish();
            return;
        }
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.period)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() > self.max_restarts {
            let id = &self.children[i].spec.id;
            let shown = match &reason {
                Value::String(r) => r.clone(),
                r => format!(
                    "{}: {}",
                    r.get("kind").and_then(Value::as_str).unwrap_or("UNKNOWN"),
                    r.get("message").and_then(Value::as_str).unwrap_or_default()
                ),
            };
            let e = Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "supervisor gave up: child {id:?} exited with {shown}, more than {} restarts within {:?}",
                    self.max_restarts, self.period
                ),
            )
            .with_details(
                [
                    ("child".to_owned(), Value::from(id.as_str())),
                    ("reason".to_owned(), reason),
                    ("restarts".to_owned(), Value::from(self.restarts.len())),
                ]
                .into_iter()
                .collect(),
            );
            self.give_up(s, e.to_value());
            return;
        }
        let range = match self.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => i..self.children.len(),
        };
        for j in range.clone().rev() {
            self.terminate(s, j);
        }
        let ids = range
            .clone()
            .filter(|&j| j == i || self.children[j].spec.restart != Restart::Temporary)
            .map(|j| self.children[j].spec.id.clone())
            .collect();
        let mut j = range.end;
        while j > range.start {
            j -= 1;
            if j != i && self.children[j].spec.restart == Restart::Temporary {
                self.children.remove(j);
            }
        }
        self.publish();
        self.then = Some(Then::Restart(ids));
    }

    /// Restarts children by id; a failure to start one ends the supervisor.
    fn restart(&mut self, s: &Scheduler, ids: &[String]) {
        for id in ids {
            let Some(i) = self.children.iter().position(|c| &c.spec.id == id) else {
                continue;
            };
            if let Err(e) = self.start_child(s, i) {
                self.give_up(s, e.to_value());
                return;
            }
        }
    }

    /// What to wait for next, after running any pending continuation.
    fn next(&mut self, s: &Scheduler) -> Step {
        loop {
            if !self.waiting.is_empty() {
                return receive(Some(DOWN_TOPIC));
            }
            match self.then.take() {
                None => return receive(None),
                Some(Then::Exit(reason)) => {
                    return Step::Yield(Call::typed(process::Exit { reason }));
                }
                Some(Then::Restart(ids)) => self.restart(s, &ids),
            }
        }
    }
}

impl Process for SupervisorProcess {
    fn step(&mut self, _cx: &mut StepCx<'_>, input: Resume) -> Step {
        let Some(s) = self.sched.upgrade() else {
            return Step::Failed(Error::new(ErrorKind::Canceled, "runtime shut down"));
        };
        match input {
            Resume::Start => {
                if let Err(e) = s.table.trap_exits(self.me, true) {
                    return Step::Failed(e);
                }
                let all: Vec<String> = self.children.iter().map(|c| c.spec.id.clone()).collect();
                self.restart(&s, &all);
            }
            Resume::Return(Ok(msg)) => self.handle(&s, &msg),
            Resume::Return(Err(e)) => return Step::Failed(e),
            Resume::Continue => {}
        }
        self.next(&s)
    }
}

impl Drop for SupervisorProcess {
    fn drop(&mut self) {
        if let Some(s) = self.sched.upgrade() {
            s.table.supervisors.remove(&self.me);
        }
    }
}

impl Scheduler {
    /// Starts a supervisor process. Started by a script (`parent`), it is
    /// linked to it, resolves nothing further (its specs came from
    /// [`Supervisor::from_value`]) and gives its children at most the
    /// parent's policy and limits; started by the host, children without a
    /// policy get the runtime's default.
    pub(crate) fn start_supervisor(
        &self,
        mut sup: Supervisor,
        parent: Option<&Entry>,
        exit: Option<Arc<ExitCell>>,
    ) -> Result<(Pid, Children), Error> {
        sup.validate()?;
        let (key, policy, limits) = match parent {
            Some(p) => (p.key.to_string(), Arc::clone(&p.policy), *p.limits),
            None => {
                for c in &mut sup.children {
                    c.spawn
                        .policy
                        .get_or_insert_with(|| Arc::clone(&self.default_policy));
                }
                let trusted = Arc::new(troupe_modules::Policy::trusted());
                ("supervisor".to_owned(), trusted, *self.default_limits)
            }
        };
        let shared: Children = Arc::new(Mutex::new(Vec::new()));
        let weak = self.me.clone();
        let parent_pid = parent.map(|p| p.pid);
        let make = |pid: Pid| -> Box<dyn Process> {
            self.table.supervisors.insert(pid, Arc::clone(&shared));
            Box::new(SupervisorProcess {
                sched: weak,
                me: pid,
                parent: parent_pid,
                strategy: sup.strategy,
                max_restarts: sup.max_restarts,
                period: sup.period,
                children: sup
                    .children
                    .into_iter()
                    .map(|spec| Child { spec, pid: None })
                    .collect(),
                restarts: VecDeque::new(),
                waiting: HashSet::new(),
                then: None,
                shared: Arc::clone(&shared),
            })
        };
        let native = Native {
            key,
            policy,
            limits,
            link: parent_pid,
            exit,
        };
        let pid = self.spawn_native(make, native)?;
        Ok((pid, shared))
    }
}

impl Runtime {
    /// Starts a supervisor (see [`Supervisor`]). Children without a policy
    /// get the runtime's default policy.
    pub fn supervise(&self, sup: Supervisor) -> Result<SupervisorHandle, Error> {
        let exit = Arc::new(ExitCell::default());
        let (pid, children) =
            self.sched_arc()
                .start_supervisor(sup, None, Some(Arc::clone(&exit)))?;
        Ok(SupervisorHandle {
            handle: self.handle(pid, exit),
            children,
        })
    }
}

/// A supervisor the host started: its pid, its children, its end.
pub struct SupervisorHandle {
    pub(crate) handle: ProcessHandle,
    pub(crate) children: Children,
}

impl SupervisorHandle {
    /// The supervisor's pid (link to it, monitor it, kill it).
    pub fn pid(&self) -> Pid {
        self.handle.pid()
    }

    /// Its children in start order, with their current pids.
    pub fn which_children(&self) -> Vec<ChildInfo> {
        self.children.lock().clone()
    }

    /// Kills the supervisor; its children die with it (through their links).
    pub fn kill(&self) -> bool {
        self.handle.kill()
    }

    /// Waits until the supervisor ends: the error says why it gave up.
    pub async fn join(&self) -> Result<Value, Error> {
        self.handle.join().await
    }

    /// Like [`SupervisorHandle::join`], blocking the calling thread.
    pub fn join_blocking(&self) -> Result<Value, Error> {
        self.handle.join_blocking()
    }
}
