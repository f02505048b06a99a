//! What a supervisor is made of: its strategy, restart intensity and child
//! specs, as the host builds them or `supervisor.start{...}` describes them,
//! and the children it reports. The running supervisor is in
//! `supervisor.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use troupe_dispatcher::{Error, Pid, Value};
use troupe_modules::builtin::{duration_from_ms, parse_duration_ms};

use crate::Spawn;
use crate::entry::Entry;
use crate::spawn::{OptionsOf, child_spec};

/// A child spec: its own keys, and spawn options beside them.
const CHILD_SPEC: OptionsOf = OptionsOf {
    what: "supervisor child spec",
    own: &["id", "script", "args", "restart"],
};

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
    pub(crate) id: String,
    pub(crate) spawn: Spawn,
    pub(crate) restart: Restart,
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
    pub(crate) strategy: Strategy,
    pub(crate) max_restarts: usize,
    pub(crate) period: Duration,
    pub(crate) children: Vec<ChildSpec>,
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

    pub(crate) fn validate(&self) -> Result<(), Error> {
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
            sup.period = duration_from_ms(parse_duration_ms(p)?);
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
            let mut spawn = child_spec(parent, field("script")?, args, c, &CHILD_SPEC)?;
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
