//! Where idle workers wait: one spins for a moment, the others park on a
//! condition variable until work (or a timer's deadline) comes.
//!
//! An idle worker spins for up to [`SPIN`] if no other worker is spinning
//! (50 µs: work that comes within it costs no sleep and no wake-up, which
//! made a host's spawn loop 25% faster), yielding its core to any thread
//! that waits for one (which made remote round trips between two nodes on
//! two cores 20-30% faster), then parks. One worker spins at a
//! time (as Go's scheduler limits its spinning threads), so idle workers
//! burn at most one core's worth of spinning. Whoever makes work wakes one
//! parked worker, and only if one is parked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// How long an idle worker looks for work before it parks.
const SPIN: Duration = Duration::from_micros(50);

/// The parking lot of a runtime's workers.
#[derive(Default)]
pub(crate) struct Idle {
    /// Workers parked (or about to).
    sleepers: AtomicUsize,
    /// A worker is spinning before it parks.
    spinning: AtomicBool,
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

    /// Spins for up to [`SPIN`] until `found` (work came) or `stop` holds;
    /// true if work came. False at once if another worker is spinning.
    pub fn spin(&self, found: impl Fn() -> bool, stop: impl Fn() -> bool) -> bool {
        if self.spinning.swap(true, Ordering::AcqRel) {
            return false;
        }
        let start = Instant::now();
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
            if start.elapsed() >= SPIN || stop() {
                break false;
            }
        };
        self.spinning.store(false, Ordering::Release);
        came
    }

    /// Parks the calling worker unless `ready` holds once it counts as
    /// parked, until a wake or the deadline `until` gives.
    ///
    /// Whoever makes work publishes it first and then reads the sleeper
    /// count (and notifies under the lock): either `ready` sees the work
    /// here, or the wake comes. A new earliest timer works the same way.
    pub fn park(&self, ready: impl Fn() -> bool, until: impl Fn() -> Option<Instant>) {
        let mut g = self.lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if !ready() {
            match until() {
                Some(at) => {
                    self.cv.wait_until(&mut g, at);
                }
                None => self.cv.wait(&mut g),
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}
