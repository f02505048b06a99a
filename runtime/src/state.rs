//! The per-process scheduling state, one atomic byte.
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

use std::sync::atomic::{AtomicU8, Ordering};

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;
const MASK: u8 = 3;
const NOTIFIED: u8 = 4;

/// What a wake-up asks the caller to do.
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

#[derive(Debug, Default)]
pub(crate) struct State(AtomicU8);

impl State {
    /// A new process starts scheduled (it is pushed right after creation).
    pub fn scheduled() -> Self {
        Self(AtomicU8::new(SCHEDULED))
    }

    pub fn wake(&self) -> Wake {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let next = match cur & MASK {
                IDLE => SCHEDULED,
                RUNNING if cur & NOTIFIED == 0 => RUNNING | NOTIFIED,
                _ => return Wake::Nothing,
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == SCHEDULED => return Wake::Schedule,
                Ok(_) => return Wake::Nothing,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Called by the worker that popped the process. Returns false if it is
    /// already done (killed while queued).
    pub fn start_running(&self) -> bool {
        self.0
            .compare_exchange(SCHEDULED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The step left the process waiting for a completion.
    pub fn park(&self) -> Park {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur & NOTIFIED != 0 {
                self.0.store(RUNNING, Ordering::Release);
                return Park::RunAgain;
            }
            match self
                .0
                .compare_exchange_weak(cur, IDLE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Park::Parked,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The step was preempted: back to the run queue.
    pub fn requeue(&self) {
        self.0.store(SCHEDULED, Ordering::Release);
    }

    pub fn finish(&self) {
        self.0.store(DONE, Ordering::Release);
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
}
