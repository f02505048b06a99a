//! What a process is started from: the host's [`Spawn`] request, the one a
//! script's `process.spawn(script, opts, ...)` stands for, and what a
//! process implemented in Rust starts with. Starting one is `spawning.rs`.

use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_modules::builtin::workflow::ParentClose;
use troupe_modules::{ClassSet, Policy};
use troupe_sources::{SourceError, resolve_relative};

use crate::Limits;
use crate::entry::Entry;
use crate::exit::ExitCell;
use crate::journal::StartMode;

/// A request to start a process: which script, with what arguments, policy
/// and limits.
///
/// ```
/// use troupe_runtime::Spawn;
/// use troupe_modules::Policy;
/// let s = Spawn::script("worker.lua").args([1, 2]).policy(Policy::plugin()).entry("main");
/// ```
#[derive(Clone, Debug)]
pub struct Spawn {
    pub(crate) key: String,
    pub(crate) args: Vec<Value>,
    pub(crate) policy: Option<Arc<Policy>>,
    pub(crate) limits: Option<Limits>,
    pub(crate) entry: Option<String>,
    pub(crate) mailbox: Option<usize>,
    /// Link the new process to this live process before it starts.
    pub(crate) link: Option<Pid>,
    /// Stop the process when its script changes (see [`Spawn::restart_on_change`]).
    pub(crate) restart_on_change: bool,
    pub(crate) workflow: Option<(String, StartMode)>,
    /// A child workflow's parent and parent-close policy.
    pub(crate) child_of: Option<(String, ParentClose)>,
    /// Run as a lightweight process (see [`Spawn::lightweight`]).
    pub(crate) lightweight: bool,
}

impl Spawn {
    /// Runs the script under `key` in the runtime's source.
    pub fn script(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            args: Vec::new(),
            policy: None,
            limits: None,
            entry: None,
            mailbox: None,
            link: None,
            restart_on_change: false,
            workflow: None,
            child_of: None,
            lightweight: false,
        }
    }

    /// Runs the script under `key` as the durable workflow `id`: every
    /// command and its result is journaled in the runtime's journal store
    /// (see [`RuntimeBuilder::journal_store`](crate::RuntimeBuilder::journal_store)),
    /// so [`Runtime::resume`](crate::Runtime::resume) can pick it up after a
    /// crash. The id must be new. Without a policy of its own it gets the
    /// store's workflow policy.
    pub fn workflow(id: impl Into<String>, key: impl Into<String>) -> Self {
        let mut s = Self::script(key);
        s.workflow = Some((id.into(), StartMode::New));
        s
    }

    /// Sets the spawn arguments (`...` in Lua).
    #[must_use]
    pub fn args<I, V>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the sandbox policy (default: the runtime's default policy).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Sets per-process limits (default: the runtime's default limits).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Calls this function of the script (from its returned table, or its
    /// globals) with the arguments, after the chunk has run.
    #[must_use]
    pub fn entry(mut self, name: impl Into<String>) -> Self {
        self.entry = Some(name.into());
        self
    }

    /// Sets the mailbox capacity (default: the runtime's default).
    #[must_use]
    pub fn mailbox(mut self, capacity: usize) -> Self {
        self.mailbox = Some(capacity.max(1));
        self
    }

    /// Runs the script as a *lightweight* process: a coroutine in a Lua
    /// state shared with other lightweight processes, with its own globals
    /// and module instances, instead of a Lua state of its own. Far cheaper
    /// to start and to keep; the policy and the instruction, time-slice
    /// and wall-clock limits apply as for an isolated process, but memory
    /// is shared (a lightweight spawn with `max_memory` is `INVALID`), and
    /// a fault of the interpreter itself affects every process of the
    /// state. Meant for trusted code at massive scale; see "Process kinds"
    /// in docs/sandbox.md.
    #[must_use]
    pub fn lightweight(mut self) -> Self {
        self.lightweight = true;
        self
    }

    /// Opts a service in to hot reload: when its script changes and the new
    /// version compiles, the process is stopped with a `CANCELED` error
    /// (`"… changed; restarting on the new version"`) so its supervisor
    /// starts it again on the new code. Needs
    /// [`RuntimeBuilder::hot_reload`](crate::RuntimeBuilder::hot_reload).
    /// Other processes keep running the version they started with.
    #[must_use]
    pub fn restart_on_change(mut self, on: bool) -> Self {
        self.restart_on_change = on;
        self
    }
}

/// What a process implemented in Rust starts with.
pub(crate) struct Native {
    pub key: String,
    pub policy: Arc<Policy>,
    pub limits: Limits,
    pub link: Option<Pid>,
    pub exit: Option<Arc<ExitCell>>,
}

/// Converts a source failure into the error a script or host sees: a
/// missing key is `NOT_FOUND`, a bad key, rejected content or an operation
/// the source lacks `INVALID`, a deadline passed `TIMEOUT`, anything else
/// `UNAVAILABLE`; the source's name is in the details.
pub fn source_error(e: SourceError) -> Error {
    let kind = match &e {
        SourceError::NotFound { .. } => ErrorKind::NotFound,
        SourceError::TimedOut { .. } => ErrorKind::Timeout,
        SourceError::InvalidKey { .. }
        | SourceError::BadContent { .. }
        | SourceError::Unsupported { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    };
    let err = Error::new(kind, e.to_string()).retryable(e.is_retryable());
    match e.source_name() {
        Some(name) => err.with_details(Value::from_iter([("source".to_owned(), name)])),
        None => err,
    }
}

/// The options `process.spawn` takes; any other key is `INVALID`.
const SPAWN_OPTIONS: [&str; 7] = [
    "entry",
    "link",
    "mailbox",
    "restart_on_change",
    "lightweight",
    "allow",
    "timeout",
];

/// The largest mailbox a script may ask for, in messages.
pub const MAX_MAILBOX: usize = 1 << 24;

/// Who reads spawn options, and the keys it reads beside them.
pub(crate) struct OptionsOf {
    /// Names the reader in errors (`process.spawn`).
    pub what: &'static str,
    /// Keys the reader takes itself (a child spec's `id`, `script`, …).
    pub own: &'static [&'static str],
}

/// `process.spawn`'s options table: the spawn options, and `node` (read
/// by [`spawn_node`]).
pub(crate) const SPAWN: OptionsOf = OptionsOf {
    what: "process.spawn",
    own: &["node"],
};

/// The node `process.spawn`'s `opts.node` names, if any: `INVALID` if it
/// is not a node name.
pub(crate) fn spawn_node(opts: &Value) -> Result<Option<&str>, Error> {
    match opts.get("node") {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::String(name)) if troupe_dispatcher::nodes::valid_name(name) => Ok(Some(name)),
        Some(other) => Err(Error::invalid(format!(
            "process.spawn: opts.node must be a node name (letters, digits, '_' or '-', \
             starting with a letter), got {}",
            match other {
                Value::String(s) => format!("{s:?}"),
                v => v.type_name().to_owned(),
            }
        ))),
    }
}

/// `INVALID` naming the spawn option `name`.
fn bad_option(of: &OptionsOf, name: &str, expected: &str, got: &Value) -> Error {
    Error::invalid(format!(
        "{}: opts.{name} must be {expected}, got {}",
        of.what,
        got.type_name()
    ))
}

/// Checks `opts` has only known keys, each of the right type, before any
/// is used: a misspelt option (`timout`) must not be ignored silently.
fn check_options(opts: &Value, of: &OptionsOf) -> Result<(), Error> {
    let Value::Map(map) = opts else {
        return Ok(());
    };
    for (k, v) in map {
        if of.own.contains(&k.as_str()) {
            continue;
        }
        if !SPAWN_OPTIONS.contains(&k.as_str()) {
            let mut known: Vec<&str> = of.own.to_vec();
            known.extend(SPAWN_OPTIONS);
            return Err(Error::invalid(format!(
                "{}: unknown option {k:?} (the options are {})",
                of.what,
                known.join(", ")
            )));
        }
        let fits = match (k.as_str(), v) {
            (_, Value::Nil) => true,
            ("entry", v) => v.as_str().is_some(),
            ("link" | "restart_on_change" | "lightweight", v) => v.as_bool().is_some(),
            ("mailbox", v) => v
                .as_i64()
                .and_then(|n| usize::try_from(n).ok())
                .is_some_and(|n| (1..=MAX_MAILBOX).contains(&n)),
            _ => true,
        };
        if !fits {
            let expected = match k.as_str() {
                "entry" => "a string".to_owned(),
                "mailbox" => format!("an integer from 1 to {MAX_MAILBOX}"),
                _ => "a boolean".to_owned(),
            };
            return Err(bad_option(of, k, &expected, v));
        }
    }
    Ok(())
}

/// The classes of the spawn option `allow`: a list of class names, or
/// one comma-separated string.
fn classes(allow: &Value) -> Result<ClassSet, Error> {
    let list = match allow {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    Error::invalid("process.spawn: opts.allow must be a list of class names")
                })
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        _ => {
            return Err(Error::invalid(
                "process.spawn: opts.allow must be a list of classes",
            ));
        }
    };
    ClassSet::parse_list(&list)
}

/// Checks `process.spawn`'s options as a script gives them, all that can
/// be checked without the spawning process: only known keys, each of the
/// right type and range, `allow` naming known classes, `timeout` a
/// duration. `INVALID` naming the option otherwise.
pub fn check_spawn_options(opts: &Value) -> Result<(), Error> {
    check_options(opts, &SPAWN)?;
    spawn_node(opts)?;
    if let Some(allow) = opts.get("allow") {
        classes(allow)?;
    }
    if let Some(t) = opts.get("timeout") {
        troupe_modules::builtin::parse_duration_ms(t)?;
    }
    Ok(())
}

/// The spawn request `process.spawn(script, opts, ...)` stands for:
/// `script` relative to `parent`'s, and the options `entry`,
/// `mailbox`, `link`, `restart_on_change`, `lightweight`, `allow`
/// (classes, at most the parent's) and
/// `timeout` (at most the parent's).
pub(crate) fn child_spec(
    parent: &Entry,
    script: &str,
    args: Vec<Value>,
    opts: &Value,
    of: &OptionsOf,
) -> Result<Spawn, Error> {
    check_options(opts, of)?;
    let key = resolve_relative(&parent.key, script).map_err(source_error)?;
    let mut spec = Spawn::script(key);
    spec.args = args;
    if let Some(entry) = opts.get("entry").and_then(Value::as_str) {
        spec.entry = Some(entry.to_owned());
    }
    if let Some(n) = opts.get("mailbox").and_then(Value::as_i64) {
        spec.mailbox = usize::try_from(n).ok();
    }
    if opts.get("link").and_then(Value::as_bool) == Some(true) {
        spec.link = Some(parent.pid);
    }
    if opts.get("restart_on_change").and_then(Value::as_bool) == Some(true) {
        spec.restart_on_change = true;
    }
    match opts.get("lightweight") {
        None | Some(Value::Nil) => {}
        Some(v) => {
            spec.lightweight = v.as_bool().ok_or_else(|| {
                Error::invalid("process.spawn: opts.lightweight must be a boolean")
            })?;
        }
    }
    if let Some(allow) = opts.get("allow") {
        spec.policy = Some(Arc::new(Policy::deny_all().allow_classes(classes(allow)?)));
    }
    if let Some(t) = opts.get("timeout") {
        let ms = troupe_modules::builtin::parse_duration_ms(t)?;
        let mut limits = *parent.limits;
        let asked = troupe_modules::builtin::duration_from_ms(ms);
        limits.timeout = Some(limits.timeout.map_or(asked, |own| own.min(asked)));
        spec.limits = Some(limits);
    }
    Ok(spec)
}
