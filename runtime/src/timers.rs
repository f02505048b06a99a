//! The runtime's timers: one hierarchical timing wheel (`wheel.rs`) behind
//! a lock, driven by the workers (no timer thread).
//!
//! Workers drive the wheel: each pass of a worker's loop calls
//! [`Timers::poll`] when the earliest deadline has passed (one atomic load
//! and, only if a timer is pending, a clock read), and a worker with
//! nothing to run parks until that deadline at the latest. At most
//! [`POLL_BATCH`] timers fire per poll, so a million equal deadlines are
//! fired in batches between process steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use troupe_dispatcher::{Pid, Tag};

pub(crate) use crate::wheel::TimerKey;
use crate::wheel::{NONE, Wheel};

/// What to do when a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// `time.sleep` is over: complete the yield with `nil`.
    Wake { pid: Pid, tag: Tag },
    /// A `receive` timed out.
    ReceiveTimeout { pid: Pid, tag: Tag },
    /// A `send` of `pid` to `to`, blocked on a full mailbox, timed out.
    SendTimeout { to: Pid, pid: Pid, tag: Tag },
    /// The process's wall-clock limit passed.
    Deadline { pid: Pid },
}

/// Most timers fired by one [`Timers::poll`].
const POLL_BATCH: usize = 1024;

/// The runtime's timers: a [`Wheel`] behind a lock, plus the tick of its
/// earliest timer in an atomic so workers check it without locking.
pub(crate) struct Timers {
    start: Instant,
    wheel: Mutex<Wheel<TimerAction>>,
    next_tick: AtomicU64,
}

impl Timers {
    /// An empty wheel; its time starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            wheel: Mutex::new(Wheel::new()),
            next_tick: AtomicU64::new(NONE),
        }
    }

    /// The tick of `now`, rounded down.
    fn tick(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(NONE - 1)
    }

    /// Runs `action` after `delay` (rounded up to the millisecond). Returns
    /// its key and whether it is now the earliest timer (a parked worker
    /// must then re-arm its wake-up).
    pub fn add(&self, delay: Duration, action: TimerAction) -> (TimerKey, bool) {
        let nanos = Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos()
            .saturating_add(delay.as_nanos());
        let when = u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(NONE - 1);
        let mut wheel = self.wheel.lock();
        let key = wheel.insert(when, action);
        let next = wheel.next_tick();
        let earlier = next < self.next_tick.load(Ordering::Relaxed);
        self.next_tick.store(next, Ordering::SeqCst);
        (key, earlier)
    }

    /// Cancels a timer: O(1); false if it already fired or was cancelled.
    pub fn cancel(&self, key: TimerKey) -> bool {
        let mut wheel = self.wheel.lock();
        let cancelled = wheel.cancel(key);
        if cancelled {
            // The earliest may have gone: recompute (a cheap bit scan) so a
            // parked worker does not wake for nothing.
            self.next_tick.store(wheel.next_tick(), Ordering::SeqCst);
        }
        cancelled
    }

    /// When timer `key` is due; `None` if it fired or was cancelled.
    pub fn due(&self, key: TimerKey) -> Option<Instant> {
        let tick = self.wheel.lock().due(key)?;
        self.start.checked_add(Duration::from_millis(tick))
    }

    /// When the earliest timer is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        match self.next_tick.load(Ordering::SeqCst) {
            NONE => None,
            t => self.start.checked_add(Duration::from_millis(t)),
        }
    }

    /// True if a timer is due now (one atomic load when none is pending).
    pub fn is_due(&self) -> bool {
        match self.next_tick.load(Ordering::Acquire) {
            NONE => false,
            t => self.tick(Instant::now()) >= t,
        }
    }

    /// Moves up to [`POLL_BATCH`] due timers' actions to `due`. Returns
    /// at once if another thread is polling.
    pub fn poll(&self, due: &mut Vec<TimerAction>) {
        let Some(mut wheel) = self.wheel.try_lock() else {
            return;
        };
        let now = self.tick(Instant::now());
        wheel.poll(now, POLL_BATCH, due);
        self.next_tick.store(wheel.next_tick(), Ordering::SeqCst);
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.wheel.lock().len()
    }

    /// Drops every pending timer (at shutdown).
    pub fn clear(&self) {
        *self.wheel.lock() = Wheel::new();
        self.next_tick.store(NONE, Ordering::SeqCst);
    }
}
