//! How a process ended, in the two forms the runtime needs: the result a
//! joining host sees, and the *exit reason* that links and monitors carry
//! (Erlang's `normal`, `killed`, `noproc`, or the error).

use parking_lot::{Condvar, Mutex};
use troupe_dispatcher::{Error, ErrorKind, Value};

/// The reason of a `DOWN`/`EXIT` about a pid that was not alive when the
/// link or monitor was made.
pub(crate) const NOPROC: &str = "noproc";

/// How a process ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Exit {
    /// It returned (or called `process.exit()`); the value is its result.
    Normal(Value),
    /// It was killed (`process.kill`, `ProcessHandle::kill`, or a linked
    /// process that was killed).
    Killed,
    /// It failed with an error (raised, a limit, a linked crash).
    Failed(Error),
}

impl Exit {
    /// Whether this is a normal exit, which linked processes ignore unless
    /// they trap exits.
    pub fn is_normal(&self) -> bool {
        matches!(self, Exit::Normal(_))
    }

    /// The reason links and monitors deliver: `"normal"`, `"killed"`, or the
    /// error as `{kind, message, retryable, details?}`.
    pub fn reason(&self) -> Value {
        match self {
            Exit::Normal(_) => Value::from("normal"),
            Exit::Killed => Value::from("killed"),
            Exit::Failed(e) => e.to_value(),
        }
    }

    /// The result a joining host sees; a kill is a `CANCELED` error.
    pub fn into_result(self) -> Result<Value, Error> {
        match self {
            Exit::Normal(v) => Ok(v),
            Exit::Killed => Err(Error::new(ErrorKind::Canceled, "killed")),
            Exit::Failed(e) => Err(e),
        }
    }

    /// The exit a linked process takes when this one's exit signal reaches
    /// it without being trapped (a normal exit never gets that far).
    pub fn propagated(&self) -> Exit {
        match self {
            Exit::Failed(e) => Exit::Failed(e.clone()),
            _ => Exit::Killed,
        }
    }
}

impl From<Result<Value, Error>> for Exit {
    fn from(r: Result<Value, Error>) -> Self {
        match r {
            Ok(v) => Exit::Normal(v),
            Err(e) => Exit::Failed(e),
        }
    }
}

/// A result kept until someone takes it, its error boxed: a slot holding
/// one is a [`Value`]'s size (32 B), not an [`Error`]'s (64 B), and errors
/// are the rare case.
#[derive(Clone, Debug)]
pub(crate) struct Kept(Result<Value, Box<Error>>);

impl Kept {
    /// Keeps `r`.
    pub fn new(r: Result<Value, Error>) -> Self {
        Self(r.map_err(Box::new))
    }

    /// The result kept.
    pub fn into_result(self) -> Result<Value, Error> {
        self.0.map_err(|e| *e)
    }
}

/// Where a finished process's result goes, for whoever joins it.
#[derive(Default)]
pub(crate) struct ExitCell {
    value: Mutex<Option<Kept>>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

impl ExitCell {
    /// Stores the result and wakes every joiner.
    pub fn set(&self, r: Result<Value, Error>) {
        *self.value.lock() = Some(Kept::new(r));
        self.cv.notify_all();
        self.notify.notify_waiters();
    }

    /// Waits for the result.
    pub async fn wait(&self) -> Result<Value, Error> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.value.lock().clone() {
                return r.into_result();
            }
            notified.await;
        }
    }

    /// Waits for the result, blocking the calling thread.
    pub fn wait_blocking(&self) -> Result<Value, Error> {
        let mut v = self.value.lock();
        loop {
            if let Some(r) = v.clone() {
                return r.into_result();
            }
            self.cv.wait(&mut v);
        }
    }
}

/// The result of `process.exit(reason)`: `nil`/`"normal"` is a normal exit;
/// `"killed"` is a kill; an error (or `{kind, message}`) is a failure with
/// that error; anything else fails with `UNKNOWN`, the reason in the details.
pub(crate) fn from_exit_call(reason: Option<&Value>) -> Exit {
    match reason {
        None | Some(Value::Nil) => Exit::Normal(Value::Nil),
        Some(Value::String(s)) if s == "normal" => Exit::Normal(Value::Nil),
        Some(Value::String(s)) if s == "killed" => Exit::Killed,
        Some(v) => {
            let kind = v
                .get("kind")
                .and_then(Value::as_str)
                .and_then(ErrorKind::parse);
            if let (Some(kind), Some(msg)) = (kind, v.get("message")) {
                let mut e = Error::new(kind, msg.as_str().unwrap_or_default());
                if let Some(d) = v.get("details") {
                    e = e.with_details(d.clone());
                }
                return Exit::Failed(e);
            }
            let text = v.as_str().map_or_else(|| v.to_json(), str::to_owned);
            Exit::Failed(
                Error::new(ErrorKind::Unknown, format!("exit: {text}")).with_details(v.clone()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_results() {
        let normal = from_exit_call(Some(&Value::from("normal")));
        assert!(normal.is_normal());
        assert_eq!(normal.reason(), Value::from("normal"));
        assert_eq!(normal.into_result(), Ok(Value::Nil));

        let killed = from_exit_call(Some(&Value::from("killed")));
        assert_eq!(killed.reason(), Value::from("killed"));
        assert_eq!(
            killed.clone().into_result().unwrap_err().kind(),
            ErrorKind::Canceled
        );
        assert_eq!(killed.propagated(), Exit::Killed);

        let e = Error::new(ErrorKind::Conflict, "taken");
        let failed = from_exit_call(Some(&e.to_value()));
        assert_eq!(failed, Exit::Failed(e.clone()));
        assert_eq!(failed.reason().get("kind"), Some(&Value::from("CONFLICT")));
        assert_eq!(failed.propagated(), Exit::Failed(e));

        let odd = from_exit_call(Some(&Value::from("shutdown")));
        let Exit::Failed(e) = odd else {
            panic!("custom reasons are failures")
        };
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Unknown, "exit: shutdown")
        );
    }
}
