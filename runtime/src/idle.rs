//! Where idle workers wait: one spins for a moment, the others park on a
//! condition variable until work (or a timer's deadline) comes.
//!
//! An idle worker spins for up to [`SPIN`] if no other worker is spinning
//! (50 µs: work that comes within it costs no sleep and no wake-up, which
//! made a host's spawn loop 25% faster), yielding its core to any thread
//! that waits for one (which made remote round trips between two nodes on
//! two cores 20-30% faster), then parks. While work keeps coming soon
//! after workers park (within [`SHORT_PARK`]: replies from another node),
//! the spin lasts [`LONG_SPIN`] instead, so the reply finds a worker awake
//! (a parked thread takes tens of microseconds to wake); an idle runtime
//! spins only the short while. One worker spins at a
//! time (as Go's scheduler limits its spinning threads), so idle workers
//! burn at most one core's worth of spinning. Whoever makes work wakes one
//! parked worker, and only if one is parked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// How long an idle worker looks for work before it parks.
const SPIN: Duration = Duration::from_micros(50);
/// How long it looks while work comes back soon after parks: longer than
/// a remote round trip between two nodes on one machine (about 100 µs).
const LONG_SPIN: Duration = Duration::from_micros(200);
/// A park that ended with work sooner than this means a longer spin would
/// have found that work.
const SHORT_PARK: Duration = Duration::from_millis(1);

/// What an idle worker's [`Idle::spin`] came to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Spin {
    /// Work came.
    Found,
    /// None came: the worker parks.
    Missed,
    /// Another worker was spinning: this one parks at once.
    Skipped,
}

/// The parking lot of a runtime's workers.
#[derive(Default)]
pub(crate) struct Idle {
    /// Workers parked (or about to).
    sleepers: AtomicUsize,
    /// A worker is spinning before it parks.
    spinning: AtomicBool,
    /// The last park was short: spin for [`LONG_SPIN`].
    eager: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Idle {
    /// Whether a worker is parked.
    pub fn any_parked(&self) -> bool {
        self.sleepers.load(Ordering::SeqCst) > 0
    }

    /// Wakes one parked worker, if any.
    pub fn wake_one(&self) {
        if self.any_parked() {
            let _g = self.lock.lock();
            self.cv.notify_one();
        }
    }

    /// Wakes every parked worker.
    pub fn wake_all(&self) {
        let _g = self.lock.lock();
        self.cv.notify_all();
    }

    /// Spins for up to [`SPIN`] ([`LONG_SPIN`] after a short park) until
    /// `found` (work came) or `stop` holds.
    pub fn spin(&self, found: impl Fn() -> bool, stop: impl Fn() -> bool) -> Spin {
        if self.spinning.swap(true, Ordering::AcqRel) {
            return Spin::Skipped;
        }
        let start = Instant::now();
        let spin = if self.eager.load(Ordering::Relaxed) {
            LONG_SPIN
        } else {
            SPIN
        };
        let came = loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            // Hands the core over if another thread is waiting for one:
            // the thread that makes this worker's next work (a cluster's
            // network thread, another node on the same machine) then
            // runs at once instead of after the spin.
            std::thread::yield_now();
            if found() {
                break true;
            }
            if start.elapsed() >= spin || stop() {
                break false;
            }
        };
        self.spinning.store(false, Ordering::Release);
        if came { Spin::Found } else { Spin::Missed }
    }

    /// Parks the calling worker unless `ready` holds once it counts as
    /// parked, until a wake or the deadline `until` gives. The park of a
    /// worker whose spin `missed` work decides how long the next spin
    /// lasts.
    ///
    /// Whoever makes work publishes it first and then reads the sleeper
    /// count (and notifies under the lock): either `ready` sees the work
    /// here, or the wake comes. A new earliest timer works the same way.
    pub fn park(
        &self,
        missed: bool,
        ready: impl Fn() -> bool,
        until: impl Fn() -> Option<Instant>,
    ) {
        let mut g = self.lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if !ready() {
            let parked = Instant::now();
            let woken = match until() {
                Some(at) => !self.cv.wait_until(&mut g, at).timed_out(),
                None => {
                    self.cv.wait(&mut g);
                    true
                }
            };
            if missed {
                self.eager
                    .store(spin_long(woken, parked.elapsed()), Ordering::Relaxed);
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the next spin lasts [`LONG_SPIN`], after a spin that found
/// nothing and a park that ended after `parked` (`woken` by new work, not
/// by its deadline).
fn spin_long(woken: bool, parked: Duration) -> bool {
    woken && parked < SHORT_PARK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_last_longer_only_while_work_comes_soon_after_a_park() {
        assert!(spin_long(true, Duration::from_micros(80)));
        assert!(!spin_long(true, Duration::from_millis(5)));
        // A timer's deadline ended the park: no work came from outside.
        assert!(!spin_long(false, Duration::from_micros(80)));
    }

    #[test]
    fn only_one_worker_spins_at_a_time() {
        let idle = Idle::default();
        let inner = std::cell::Cell::new(None);
        let outer = idle.spin(
            || {
                inner.set(Some(idle.spin(|| true, || false)));
                true
            },
            || false,
        );
        assert_eq!(outer, Spin::Found);
        assert_eq!(inner.get(), Some(Spin::Skipped));
        assert_eq!(idle.spin(|| false, || true), Spin::Missed);
    }
}
