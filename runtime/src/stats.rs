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
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use troupe_dispatcher::{CommandId, ErrorKind};

use crate::latency::{Latencies, LatencyCounts};

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
    /// Every command scripts have called at least once, by id.
    pub commands: Vec<CommandStats>,
}

/// What one command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStats {
    /// Its id.
    pub id: CommandId,
    /// The name it is registered under (`time.sleep`, a host's `db.get`).
    pub name: String,
    /// Times scripts called it.
    pub calls: u64,
    /// How long the calls that did not answer at once (IO, a sleep, a
    /// `receive` that waited) were outstanding: from their dispatch until
    /// their process was resumed with the result.
    pub waits: LatencyCounts,
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
struct Shard {
    events: [AtomicU64; COUNTERS],
    /// Calls, by command id.
    calls: Box<[AtomicU64]>,
}

impl Shard {
    fn new(commands: usize) -> Self {
        Self {
            events: std::array::from_fn(|_| AtomicU64::new(0)),
            calls: (0..commands).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The counters of one runtime.
pub(crate) struct Counters {
    /// Identifies this runtime's counters to its worker threads.
    id: usize,
    /// Shard 0 is shared by every thread that is not one of the workers.
    shards: Box<[Shard]>,
    high_water: AtomicUsize,
    /// How long calls waited, by command id (made on a command's first
    /// wait: most commands never wait).
    waits: Box<[OnceLock<Box<Latencies>>]>,
}

/// Hands out counter ids.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The counters' id and shard of the worker this thread is (0: none).
    static SHARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

impl Counters {
    /// Counters for a runtime of `workers` worker threads whose command
    /// ids are below `commands`.
    pub fn new(workers: usize, commands: usize) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: (0..=workers).map(|_| Shard::new(commands)).collect(),
            high_water: AtomicUsize::new(0),
            waits: (0..commands).map(|_| OnceLock::new()).collect(),
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

    /// Adds one to the counter `pick` chooses in the calling thread's
    /// shard (nothing if it chooses none).
    fn bump(&self, pick: impl Fn(&Shard) -> Option<&AtomicU64>) {
        let (id, shard) = SHARD.get();
        if id == self.id && shard != 0 {
            // Only this worker writes its shard.
            if let Some(c) = pick(&self.shards[shard]) {
                c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
        } else if let Some(c) = pick(&self.shards[0]) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one `event`.
    pub fn count(&self, event: Event) {
        self.bump(|s| Some(&s.events[event as usize]));
    }

    /// Counts a call of command `id`.
    pub fn call(&self, id: CommandId) {
        self.bump(|s| s.calls.get(usize::from(id.0)));
    }

    /// Notes that a call of command `id` was outstanding for `waited`.
    pub fn waited(&self, id: CommandId, waited: Duration) {
        if let Some(cell) = self.waits.get(usize::from(id.0)) {
            cell.get_or_init(Box::default).record(waited);
        }
    }

    /// Counts a process that failed with an error of `kind`.
    pub fn failed(&self, kind: ErrorKind) {
        let at = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.bump(|s| Some(&s.events[EVENTS + at]));
    }

    /// Notes a mailbox that now holds `len` messages.
    pub fn mailbox_len(&self, len: usize) {
        if len > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(len, Ordering::Relaxed);
        }
    }

    /// The counters summed over the shards, with each command's name as
    /// `name` gives it.
    pub fn read<'n>(&self, name: impl Fn(CommandId) -> Option<&'n str>) -> RuntimeStats {
        let total = |pick: &dyn Fn(&Shard) -> Option<&AtomicU64>| -> u64 {
            self.shards.iter().fold(0u64, |t, s| {
                t.wrapping_add(pick(s).map_or(0, |c| c.load(Ordering::Relaxed)))
            })
        };
        let sum = |i: usize| total(&|s: &Shard| Some(&s.events[i]));
        let commands = (0..self.waits.len())
            .filter_map(|i| {
                let id = CommandId(u16::try_from(i).ok()?);
                let calls = total(&|s: &Shard| s.calls.get(i));
                let waits = self.waits[i].get().map(|l| l.read()).unwrap_or_default();
                (calls > 0).then(|| CommandStats {
                    id,
                    name: name(id).unwrap_or("?").to_owned(),
                    calls,
                    waits,
                })
            })
            .collect();
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
            commands,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_and_other_threads_both_count() {
        let counters = std::sync::Arc::new(Counters::new(2, 0));
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
        let stats = counters.read(|_| None);
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
        let (a, b) = (Counters::new(1, 0), Counters::new(1, 0));
        std::thread::scope(|s| {
            s.spawn(|| {
                a.enter_worker(0);
                b.count(Event::Spawned);
                a.count(Event::Spawned);
            });
        });
        assert_eq!(b.read(|_| None).spawned, 1);
        assert_eq!(a.read(|_| None).spawned, 1);
        assert_eq!(
            b.shards[0].events[Event::Spawned as usize].load(Ordering::Relaxed),
            1
        );
    }
}
