//! Counters of what a runtime did (spawns, exits, messages, scheduling),
//! for metrics: [`Runtime::stats`](crate::Runtime::stats).
//!
//! They are always on, so they must cost next to nothing on the paths
//! they count (a send, a spawn, a park). Each worker thread counts in a
//! shard of its own, a cache line no other thread writes, with a plain
//! load and store (no locked instruction); every other thread (the host's,
//! the IO pool's) counts in one shared shard with atomic additions. A
//! reader sums the shards: each counter only grows, and a sum read while
//! workers count may miss their last few increments, never count one twice.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use troupe_dispatcher::ErrorKind;

/// What the counters say, summed over the runtime's threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Processes started (spawned, restarted, resumed).
    pub spawned: u64,
    /// Processes that returned normally.
    pub exited_normal: u64,
    /// Processes killed.
    pub exited_killed: u64,
    /// Processes that failed, by the kind of their error, in
    /// [`ErrorKind::ALL`] order.
    pub exited_failed: Vec<(ErrorKind, u64)>,
    /// Messages handed to a mailbox or a waiting `receive` (every send,
    /// `try_send` and runtime notification that found its process).
    pub messages_sent: u64,
    /// Sends that found no room in their mailbox: refused (`try_send`, or
    /// a message larger than the mailbox's byte cap) or parked until there
    /// is room (`send`).
    pub mailbox_full: u64,
    /// Sends to a process that does not exist.
    pub messages_to_dead: u64,
    /// The most messages any mailbox has held.
    pub mailbox_high_water: usize,
    /// Processes a worker took from another worker's queue or the shared
    /// injector.
    pub steals: u64,
    /// Times a worker found nothing to run and parked.
    pub parks: u64,
}

/// One counted event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Spawned,
    ExitedNormal,
    ExitedKilled,
    Sent,
    MailboxFull,
    ToDead,
    Steal,
    Park,
}

/// Counters before the per-kind failures.
const EVENTS: usize = 8;
/// Every counter: the events, then one failure count per error kind.
const COUNTERS: usize = EVENTS + ErrorKind::ALL.len();

/// One thread's counters, on cache lines of their own.
#[repr(align(128))]
struct Shard([AtomicU64; COUNTERS]);

impl Shard {
    fn new() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// The counters of one runtime.
pub(crate) struct Counters {
    /// Identifies this runtime's counters to its worker threads.
    id: usize,
    /// Shard 0 is shared by every thread that is not one of the workers.
    shards: Box<[Shard]>,
    high_water: AtomicUsize,
}

/// Hands out counter ids.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The counters' id and shard of the worker this thread is (0: none).
    static SHARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

impl Counters {
    /// Counters for a runtime of `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: (0..=workers).map(|_| Shard::new()).collect(),
            high_water: AtomicUsize::new(0),
        }
    }

    /// Makes the calling thread worker `index`'s: it counts in a shard it
    /// alone writes.
    pub fn enter_worker(&self, index: usize) {
        let shard = index.saturating_add(1);
        if shard < self.shards.len() {
            SHARD.set((self.id, shard));
        }
    }

    fn bump(&self, counter: usize) {
        let (id, shard) = SHARD.get();
        if id == self.id && shard != 0 {
            // Only this worker writes its shard.
            let c = &self.shards[shard].0[counter];
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        } else {
            self.shards[0].0[counter].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one `event`.
    pub fn count(&self, event: Event) {
        self.bump(event as usize);
    }

    /// Counts a process that failed with an error of `kind`.
    pub fn failed(&self, kind: ErrorKind) {
        let at = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.bump(EVENTS + at);
    }

    /// Notes a mailbox that now holds `len` messages.
    pub fn mailbox_len(&self, len: usize) {
        if len > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(len, Ordering::Relaxed);
        }
    }

    /// The counters summed over the shards.
    pub fn read(&self) -> RuntimeStats {
        let sum = |i: usize| -> u64 {
            self.shards
                .iter()
                .fold(0u64, |t, s| t.wrapping_add(s.0[i].load(Ordering::Relaxed)))
        };
        RuntimeStats {
            spawned: sum(Event::Spawned as usize),
            exited_normal: sum(Event::ExitedNormal as usize),
            exited_killed: sum(Event::ExitedKilled as usize),
            exited_failed: ErrorKind::ALL
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, sum(EVENTS + i)))
                .collect(),
            messages_sent: sum(Event::Sent as usize),
            mailbox_full: sum(Event::MailboxFull as usize),
            messages_to_dead: sum(Event::ToDead as usize),
            mailbox_high_water: self.high_water.load(Ordering::Relaxed),
            steals: sum(Event::Steal as usize),
            parks: sum(Event::Park as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_and_other_threads_both_count() {
        let counters = std::sync::Arc::new(Counters::new(2));
        let worker = {
            let c = std::sync::Arc::clone(&counters);
            std::thread::spawn(move || {
                c.enter_worker(1);
                for _ in 0..1000 {
                    c.count(Event::Sent);
                }
                c.failed(ErrorKind::Timeout);
            })
        };
        for _ in 0..500 {
            counters.count(Event::Sent);
        }
        worker.join().unwrap();
        counters.mailbox_len(7);
        counters.mailbox_len(3);
        let stats = counters.read();
        assert_eq!(stats.messages_sent, 1500);
        assert_eq!(stats.mailbox_high_water, 7);
        let timeouts = stats
            .exited_failed
            .iter()
            .find(|(k, _)| *k == ErrorKind::Timeout)
            .map(|(_, n)| *n);
        assert_eq!(timeouts, Some(1));
    }

    #[test]
    fn a_worker_of_another_runtime_counts_in_the_shared_shard() {
        let (a, b) = (Counters::new(1), Counters::new(1));
        std::thread::scope(|s| {
            s.spawn(|| {
                a.enter_worker(0);
                b.count(Event::Spawned);
                a.count(Event::Spawned);
            });
        });
        assert_eq!(b.read().spawned, 1);
        assert_eq!(a.read().spawned, 1);
        assert_eq!(
            b.shards[0].0[Event::Spawned as usize].load(Ordering::Relaxed),
            1
        );
    }
}
