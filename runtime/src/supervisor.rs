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
use troupe_modules::builtin::{ids, parse_duration_ms};

use crate::exit::Exit;
use crate::links::{DOWN_TOPIC, EXIT_TOPIC, MonitorRef};
use crate::scheduler::{Entry, Scheduler};
use crate::{Process, Resume, Spawn, Step, StepCx};

/// Which children a supervisor restarts when one ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the child that ended.
    OneForOne,
    /// Every child (the others are terminated first).
    OneForAll,
    /// The child that ended and every child started after it.
    RestForOne,
}

impl Strategy {
    /// Parses `one_for_one`, `one_for_all` or `rest_for_one`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "one_for_one" => Ok(Self::OneForOne),
            "one_for_all" => Ok(Self::OneForAll),
            "rest_for_one" => Ok(Self::RestForOne),
            other => Err(Error::invalid(format!(
                "unknown supervisor strategy {other:?} (one_for_one, one_for_all, rest_for_one)"
            ))),
        }
    }
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (not `"normal"`).
    Transient,
    /// Never; the child is forgotten once it ends.
    Temporary,
}

impl Restart {
    /// Parses `permanent`, `transient` or `temporary`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "permanent" => Ok(Self::Permanent),
            "transient" => Ok(Self::Transient),
            "temporary" => Ok(Self::Temporary),
            other => Err(Error::invalid(format!(
                "unknown restart type {other:?} (permanent, transient, temporary)"
            ))),
        }
    }
}

/// One supervised child: an id unique within its supervisor, what to
/// spawn, and when to restart it.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    id: String,
    spawn: Spawn,
    restart: Restart,
}

impl ChildSpec {
    /// A permanent child `id` started with `spawn`.
    pub fn new(id: impl Into<String>, spawn: Spawn) -> Self {
        Self {
            id: id.into(),
            spawn,
            restart: Restart::Permanent,
        }
    }

    /// Sets the restart type (default: permanent).
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }
}

/// A supervisor's configuration: strategy, restart intensity and children
/// (started in order).
///
/// ```
/// use std::time::Duration;
/// use troupe_runtime::{ChildSpec, Restart, Spawn, Strategy, Supervisor};
///
/// let sup = Supervisor::new(Strategy::OneForOne)
///     .intensity(5, Duration::from_secs(10))
///     .child(ChildSpec::new("cache", Spawn::script("cache.lua")))
///     .child(ChildSpec::new("job", Spawn::script("job.lua")).restart(Restart::Transient));
/// ```
#[derive(Clone, Debug)]
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: usize,
    period: Duration,
    children: Vec<ChildSpec>,
}

impl Supervisor {
    /// A supervisor with no children, allowing 3 restarts in 5 seconds.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            max_restarts: 3,
            period: Duration::from_secs(5),
            children: Vec::new(),
        }
    }

    /// Gives up after more than `max_restarts` restarts within `period`.
    #[must_use]
    pub fn intensity(mut self, max_restarts: usize, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Adds a child, started after the ones added before.
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    fn validate(&self) -> Result<(), Error> {
        let mut seen = HashSet::new();
        for c in &self.children {
            if !seen.insert(c.id.as_str()) {
                return Err(Error::invalid(format!("duplicate child id {:?}", c.id)));
            }
        }
        Ok(())
    }

    /// The configuration `supervisor.start{...}` describes, with scripts
    /// and options relative to (and capped by) the calling process.
    pub(crate) fn from_value(parent: &Entry, v: &Value) -> Result<Self, Error> {
        let strategy = match v.get("strategy") {
            None | Some(Value::Nil) => Strategy::OneForOne,
            Some(s) => Strategy::parse(s.as_str().unwrap_or_default())?,
        };
        let mut sup = Self::new(strategy);
        if let Some(n) = v.get("intensity") {
            let n = n
                .as_i64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| Error::invalid("intensity must be a non-negative integer"))?;
            sup.max_restarts = n;
        }
        if let Some(p) = v.get("period") {
            sup.period = Duration::from_secs_f64(parse_duration_ms(p)? / 1e3);
        }
        let children = match v.get("children") {
            None => &[][..],
            Some(c) => c
                .as_array()
                .ok_or_else(|| Error::invalid("children must be a list of child specs"))?,
        };
        for c in children {
            let field = |name: &str| {
                c.get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::invalid(format!("a child spec needs a string {name:?}")))
            };
            let args = match c.get("args") {
                None | Some(Value::Nil) => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(Value::Map(m)) if m.is_empty() => Vec::new(),
                Some(_) => return Err(Error::invalid("child args must be a list")),
            };
            let mut spawn = Scheduler::child_spec(parent, field("script")?, args, c)?;
            spawn.link = None;
            let restart = match c.get("restart") {
                None | Some(Value::Nil) => Restart::Permanent,
                Some(r) => Restart::parse(r.as_str().unwrap_or_default())?,
            };
            sup = sup.child(ChildSpec::new(field("id")?, spawn).restart(restart));
        }
        Ok(sup)
    }
}

/// A child as `which_children` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id from its spec.
    pub id: String,
    /// Its current pid; `None` while it is not running.
    pub pid: Option<Pid>,
}

/// The children of a live supervisor, shared with whoever asks.
pub(crate) type Children = Arc<Mutex<Vec<ChildInfo>>>;

/// As `which_children` returns it to scripts: `[{id, pid?}]`.
pub(crate) fn children_value(children: &[ChildInfo]) -> Value {
    Value::Array(
        children
            .iter()
            .map(|c| {
                let mut m = std::collections::BTreeMap::new();
                m.insert("id".to_owned(), Value::from(c.id.as_str()));
                if let Some(p) = c.pid {
                    m.insert("pid".to_owned(), Value::from(p.to_string()));
                }
                Value::Map(m)
            })
            .collect(),
    )
}

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
    let mut args = std::collections::BTreeMap::new();
    args.insert("topic".to_owned(), Value::from(topic));
    Step::Yield(Call::new(ids::PROCESS_RECEIVE, Value::Map(args)))
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
        s.unlink(self.me, pid);
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
                    let mut args = std::collections::BTreeMap::new();
                    args.insert("reason".to_owned(), reason);
                    return Step::Yield(Call::new(ids::PROCESS_EXIT, Value::Map(args)));
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
                if let Err(e) = s.trap_exits(self.me, true) {
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
            s.supervisors.remove(&self.me);
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
        self: &Arc<Self>,
        mut sup: Supervisor,
        parent: Option<&Entry>,
        exit: Option<Arc<crate::scheduler::ExitCell>>,
    ) -> Result<(Pid, Children), Error> {
        sup.validate()?;
        let (key, policy, limits) = match parent {
            Some(p) => (p.key.clone(), Arc::clone(&p.policy), p.limits),
            None => {
                for c in &mut sup.children {
                    c.spawn
                        .policy
                        .get_or_insert_with(|| Arc::clone(&self.default_policy));
                }
                let trusted = Arc::new(troupe_modules::Policy::trusted());
                ("supervisor".to_owned(), trusted, self.default_limits)
            }
        };
        let shared: Children = Arc::new(Mutex::new(Vec::new()));
        let weak = Arc::downgrade(self);
        let parent_pid = parent.map(|p| p.pid);
        let make = |pid: Pid| -> Box<dyn Process> {
            self.supervisors.insert(pid, Arc::clone(&shared));
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
        let native = crate::spawn::Native {
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

/// A supervisor the host started: its pid, its children, its end.
pub struct SupervisorHandle {
    pub(crate) handle: crate::ProcessHandle,
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
