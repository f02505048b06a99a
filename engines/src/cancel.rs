//! Cancelling a run from another thread. An instance carries at most one
//! [`CancellationToken`] ([`ScriptEngine::set_cancel`], or
//! [`cancellable`] for one call); every execute and call it makes while the
//! token is cancelled stops with `CANCELED`, a busy loop included:
//!
//! - Lua stops at its next preemption (the watchdog preempts a running
//!   script every 1–2 ms);
//! - JavaScript runs scripts in slices of boa's async budget and checks
//!   between them; a canceled run leaves the instance as after `reset`
//!   (its context may be mid-call);
//! - Python checks every 1,024 lines and calls;
//! - WebAssembly checks at every fuel-slice yield;
//! - Starlark checks in its evaluator's cancellation hook;
//! - CEL, expr and evalexpr cannot loop: they check before a run and at
//!   every host function call.
//!
//! ```
//! # #[cfg(feature = "lua")] {
//! use std::time::Duration;
//! use troupe_engines::cancel::{CancellationToken, cancellable};
//! use troupe_engines::{EngineFactory, ScriptEngine};
//! use troupe_dispatcher::ErrorKind;
//!
//! let mut lua = EngineFactory::builtin().create("lua")?;
//! let token = CancellationToken::new();
//! let canceller = token.clone();
//! std::thread::spawn(move || {
//!     std::thread::sleep(Duration::from_millis(20));
//!     canceller.cancel();
//! });
//! let r = cancellable(lua.as_mut(), &token, |lua| {
//!     lua.as_executor()?.execute_string("while true do end")
//! });
//! assert_eq!(r.unwrap_err().kind(), ErrorKind::Canceled);
//! # }
//! # Ok::<(), troupe_dispatcher::Error>(())
//! ```
//!
//! [`ScriptEngine::set_cancel`]: crate::ScriptEngine::set_cancel

use std::sync::Arc;

use parking_lot::Mutex;
pub use tokio_util::sync::CancellationToken;
use troupe_dispatcher::{Error, ErrorKind};

use crate::capability::{HostFunction, ScriptEngine};

/// The error a canceled execution or call gives.
pub fn canceled() -> Error {
    Error::new(ErrorKind::Canceled, "canceled by the host")
}

/// Runs `f` on `engine` with `token` as its cancellation handle, and takes
/// the handle away again afterwards.
pub fn cancellable<R>(
    engine: &mut dyn ScriptEngine,
    token: &CancellationToken,
    f: impl FnOnce(&mut dyn ScriptEngine) -> Result<R, Error>,
) -> Result<R, Error> {
    engine.set_cancel(Some(token.clone()));
    let r = f(&mut *engine);
    engine.set_cancel(None);
    r
}

/// An instance's cancellation handle, shared with its host functions and
/// the thread its scripts run on.
#[derive(Clone, Default)]
pub(crate) struct CancelSlot(Arc<Mutex<Option<CancellationToken>>>);

impl CancelSlot {
    /// Replaces the handle (`None` removes it).
    pub(crate) fn set(&self, token: Option<CancellationToken>) {
        *self.0.lock() = token;
    }

    /// Whether a handle is set (a run must then be stoppable).
    #[cfg(feature = "js")]
    pub(crate) fn is_set(&self) -> bool {
        self.0.lock().is_some()
    }

    /// `CANCELED` once the handle is cancelled.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.0.lock().as_ref() {
            Some(token) if token.is_cancelled() => Err(canceled()),
            _ => Ok(()),
        }
    }

    /// `f`, checking the handle before each call.
    pub(crate) fn guard(&self, f: HostFunction) -> HostFunction {
        let slot = self.clone();
        Arc::new(move |args| {
            slot.check()?;
            f(args)
        })
    }
}
