//! The per-process scheduling state and its pending signal, one atomic byte
//! (after tokio's `runtime/task/state.rs`).
//!
//! ```text
//!            wake                 pop                 step yields (pending)
//!   IDLE ──────────▶ SCHEDULED ─────────▶ RUNNING ───────────────────────▶ IDLE
//!                        ▲                  │ │  wake while running: set NOTIFIED,
//!                        └── preempted ─────┘ │  the worker re-runs instead of idling
//!                                             └──── done / failed ─────▶ DONE
//! ```
//!
//! A process is in the run queue exactly when it is `SCHEDULED`, so it is
//! stepped by at most one worker. A wake that finds it `RUNNING` sets the
//! `NOTIFIED` bit, which the worker checks before going idle: a completion
//! that races a yield is never lost.
//!
//! The two bits above those hold the [`Signal`] that stops the process from
//! outside (an exit signal, its wall-clock limit, a shutdown). Raising one
//! sets it and wakes the process in the same transition, so the worker that
//! runs it next sees the signal before it resumes the script; the first
//! signal raised wins.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::introspect::ProcessStatus;

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;
const LIFECYCLE: u8 = 3;
const NOTIFIED: u8 = 4;
const SIGNAL_SHIFT: u8 = 3;
const SIGNAL: u8 = 3 << SIGNAL_SHIFT;

/// Why a process is being stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// An exit signal: the exit waits in the entry's `exit_signal`.
    Exit = 1,
    /// Its wall-clock limit passed.
    Timeout = 2,
    /// The runtime is shutting down.
    Shutdown = 3,
}

impl Signal {
    fn bits(self) -> u8 {
        (self as u8) << SIGNAL_SHIFT
    }

    fn from_bits(word: u8) -> Option<Self> {
        match (word & SIGNAL) >> SIGNAL_SHIFT {
            1 => Some(Self::Exit),
            2 => Some(Self::Timeout),
            3 => Some(Self::Shutdown),
            _ => None,
        }
    }
}

/// What a wake-up (or a raised signal) asks the caller to do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The process went from idle to scheduled: push it on a run queue.
    Schedule,
    /// Nothing to do (already scheduled, running and now notified, or done).
    Nothing,
}

/// What a worker must do after its step left the process waiting.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Park {
    /// Parked; the next wake schedules it.
    Parked,
    /// A wake came while it ran: run it again now.
    RunAgain,
}

/// The state word of one process.
#[derive(Debug, Default)]
pub(crate) struct State(AtomicU8);

impl State {
    /// A new process starts scheduled (it is pushed right after creation).
    pub fn scheduled() -> Self {
        Self(AtomicU8::new(SCHEDULED))
    }

    /// Applies `f` to the word until it sticks; `f` returns the new word
    /// and the answer, or `None` to leave the word as it is.
    fn update<T>(&self, f: impl Fn(u8) -> Result<(u8, T), T>) -> T {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let (next, answer) = match f(cur) {
                Ok(change) => change,
                Err(answer) => return answer,
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return answer,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Something for the process came (a completion, a message).
    pub fn wake(&self) -> Wake {
        self.update(woken)
    }

    /// Stops the process at its next step with `signal` (unless another
    /// signal came first), and wakes it.
    pub fn raise(&self, signal: Signal) -> Wake {
        self.update(|cur| {
            let cur = if cur & SIGNAL == 0 && cur & LIFECYCLE != DONE {
                cur | signal.bits()
            } else {
                cur
            };
            match woken(cur) {
                Err(answer) => Ok((cur, answer)),
                change => change,
            }
        })
    }

    /// Where the process is, for observers.
    pub fn status(&self) -> ProcessStatus {
        match self.0.load(Ordering::Acquire) & LIFECYCLE {
            IDLE => ProcessStatus::Waiting,
            SCHEDULED => ProcessStatus::Runnable,
            RUNNING => ProcessStatus::Running,
            _ => ProcessStatus::Exiting,
        }
    }

    /// The signal raised, if any.
    pub fn signal(&self) -> Option<Signal> {
        Signal::from_bits(self.0.load(Ordering::Acquire))
    }

    /// Called by the worker that popped the process. Returns false if it is
    /// already done (killed while queued).
    pub fn start_running(&self) -> bool {
        self.update(|cur| match cur & LIFECYCLE {
            SCHEDULED => Ok(((cur & SIGNAL) | RUNNING, true)),
            _ => Err(false),
        })
    }

    /// The step left the process waiting for a completion.
    pub fn park(&self) -> Park {
        self.update(|cur| {
            if cur & NOTIFIED != 0 {
                Ok(((cur & SIGNAL) | RUNNING, Park::RunAgain))
            } else {
                Ok(((cur & SIGNAL) | IDLE, Park::Parked))
            }
        })
    }

    /// The step was preempted: back to the run queue.
    pub fn requeue(&self) {
        self.update(|cur| Ok::<_, ()>(((cur & SIGNAL) | SCHEDULED, ())));
    }

    /// The process ended.
    pub fn finish(&self) {
        self.0.store(DONE, Ordering::Release);
    }
}

/// The wake transition of `cur`: the new word, or nothing to change.
fn woken(cur: u8) -> Result<(u8, Wake), Wake> {
    match cur & LIFECYCLE {
        IDLE => Ok(((cur & SIGNAL) | SCHEDULED, Wake::Schedule)),
        RUNNING if cur & NOTIFIED == 0 => Ok((cur | NOTIFIED, Wake::Nothing)),
        _ => Err(Wake::Nothing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let s = State::scheduled();
        assert_eq!(s.wake(), Wake::Nothing);
        assert!(s.start_running());
        assert_eq!(s.wake(), Wake::Nothing); // sets NOTIFIED
        assert_eq!(s.park(), Park::RunAgain);
        assert_eq!(s.park(), Park::Parked);
        assert_eq!(s.wake(), Wake::Schedule);
        assert_eq!(s.wake(), Wake::Nothing);
        s.finish();
        assert_eq!(s.wake(), Wake::Nothing);
        assert!(!s.start_running());
    }

    #[test]
    fn signals() {
        let s = State::scheduled();
        assert_eq!(s.signal(), None);
        assert!(s.start_running());
        assert_eq!(s.park(), Park::Parked);
        // Raising wakes an idle process, and the first signal wins.
        assert_eq!(s.raise(Signal::Timeout), Wake::Schedule);
        assert_eq!(s.raise(Signal::Exit), Wake::Nothing);
        assert_eq!(s.signal(), Some(Signal::Timeout));
        // The signal survives every transition of the lifecycle.
        assert!(s.start_running());
        assert_eq!(s.signal(), Some(Signal::Timeout));
        s.requeue();
        assert!(s.start_running());
        assert_eq!(s.park(), Park::Parked);
        assert_eq!(s.signal(), Some(Signal::Timeout));

        // Raised while running: the worker runs it again instead of idling.
        let s = State::scheduled();
        assert!(s.start_running());
        assert_eq!(s.raise(Signal::Shutdown), Wake::Nothing);
        assert_eq!(s.park(), Park::RunAgain);
        assert_eq!(s.signal(), Some(Signal::Shutdown));

        // A finished process takes no signal.
        s.finish();
        assert_eq!(s.raise(Signal::Exit), Wake::Nothing);
        assert_eq!(s.signal(), None);
    }
}
