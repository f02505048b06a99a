//! What a spawn tree may use, counted as it goes: live processes and
//! bytes of memory (the Lua states of its isolated processes, sampled
//! after each step, and the messages queued in its mailboxes).
//!
//! Quotas form a chain: a process spawned by the host starts a *tree*
//! whose quota holds its limits (`max_processes`, `max_memory`), and every
//! process it spawns, and they spawn, counts against that same quota. Each
//! tree's quota counts against the runtime's, which holds the node-wide
//! caps. A charge goes through only if every quota of the chain has room
//! for it, so a fork bomb or a mailbox flood fails inside its own tree
//! with `LIMIT_EXCEEDED`, and the rest of the node keeps running.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use troupe_dispatcher::{Error, ErrorKind};

/// The caps of one quota (`None`: no cap at this level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Caps {
    pub processes: Option<NonZeroUsize>,
    pub memory: Option<NonZeroUsize>,
}

/// Live processes and bytes of a spawn tree (or of the whole runtime).
#[derive(Debug)]
pub(crate) struct Quota {
    caps: Caps,
    processes: AtomicUsize,
    memory: AtomicUsize,
    /// The quota this one counts against too.
    parent: Option<Arc<Quota>>,
    /// Names this level in errors ("the runtime", "the spawn tree of 0.7").
    owner: Box<str>,
    /// Being stopped as a whole: no process joins any more.
    closed: AtomicBool,
}

/// Which counter a charge is about.
#[derive(Clone, Copy)]
enum Counter {
    Processes,
    Memory,
}

impl Quota {
    /// The runtime's quota: the node-wide caps.
    pub fn runtime(caps: Caps) -> Arc<Self> {
        Self::new(caps, None, "the runtime".into())
    }

    /// The quota of a tree rooted at `owner`, counting against `parent`.
    pub fn tree(caps: Caps, parent: &Arc<Quota>, owner: String) -> Arc<Self> {
        Self::new(
            caps,
            Some(Arc::clone(parent)),
            format!("the spawn tree of {owner}").into(),
        )
    }

    fn new(caps: Caps, parent: Option<Arc<Quota>>, owner: Box<str>) -> Arc<Self> {
        Arc::new(Self {
            caps,
            processes: AtomicUsize::new(0),
            memory: AtomicUsize::new(0),
            parent,
            owner,
            closed: AtomicBool::new(false),
        })
    }

    /// The caps of this level.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Live processes counted here.
    #[cfg(test)]
    pub fn processes(&self) -> usize {
        self.processes.load(Ordering::Relaxed)
    }

    /// Bytes charged here.
    pub fn memory(&self) -> usize {
        self.memory.load(Ordering::Relaxed)
    }

    fn counter(&self, which: Counter) -> (&AtomicUsize, Option<NonZeroUsize>) {
        match which {
            Counter::Processes => (&self.processes, self.caps.processes),
            Counter::Memory => (&self.memory, self.caps.memory),
        }
    }

    /// The quotas of the chain, this one first.
    fn chain(&self) -> impl Iterator<Item = &Quota> {
        std::iter::successors(Some(self), |q| q.parent.as_deref())
    }

    /// Adds `n` at every level if each has room; otherwise adds nothing
    /// and names the level that is full.
    fn try_add(&self, which: Counter, n: usize) -> Result<(), &Quota> {
        for (done, q) in self.chain().enumerate() {
            let (counter, cap) = q.counter(which);
            let fits = counter
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                    let next = now.checked_add(n)?;
                    cap.is_none_or(|c| next <= c.get()).then_some(next)
                })
                .is_ok();
            if !fits {
                for undo in self.chain().take(done) {
                    undo.counter(which).0.fetch_sub(n, Ordering::AcqRel);
                }
                return Err(q);
            }
        }
        Ok(())
    }

    /// Adds `n` at every level, cap or not (what is already in memory:
    /// a runtime notification, a blocked send admitted).
    fn add(&self, which: Counter, n: usize) {
        for q in self.chain() {
            let c = q.counter(which).0;
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(n))
            });
        }
    }

    /// Takes `n` off every level.
    fn sub(&self, which: Counter, n: usize) {
        for q in self.chain() {
            let c = q.counter(which).0;
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_sub(n))
            });
        }
    }

    /// Counts one more live process: `LIMIT_EXCEEDED` if a level is at
    /// its `max_processes`.
    pub fn admit(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::Canceled,
                format!("{} is being stopped", self.owner),
            ));
        }
        self.try_add(Counter::Processes, 1).map_err(|q| {
            let cap = q.caps.processes.map_or(0, NonZeroUsize::get);
            Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{} has {cap} live processes, its max_processes: no more can be spawned \
                     until one ends",
                    q.owner
                ),
            )
        })
    }

    /// Refuses every process that would join from now on (the tree is
    /// being stopped).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// A live process ended.
    pub fn leave(&self) {
        self.sub(Counter::Processes, 1);
    }

    /// Charges `bytes`: `LIMIT_EXCEEDED` (and nothing charged) if a level
    /// would go past its `max_memory`.
    pub fn charge(&self, bytes: usize, what: &str) -> Result<(), Error> {
        self.try_add(Counter::Memory, bytes).map_err(|q| {
            let cap = q.caps.memory.map_or(0, NonZeroUsize::get);
            Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{what} ({bytes} bytes) would take {} past its memory limit of {cap} bytes \
                     ({} in use)",
                    q.owner,
                    q.memory()
                ),
            )
        })
    }

    /// Charges `bytes` whatever the caps.
    pub fn force(&self, bytes: usize) {
        self.add(Counter::Memory, bytes);
    }

    /// Gives back `bytes` charged earlier.
    pub fn refund(&self, bytes: usize) {
        self.sub(Counter::Memory, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(processes: usize, memory: usize) -> Caps {
        Caps {
            processes: NonZeroUsize::new(processes),
            memory: NonZeroUsize::new(memory),
        }
    }

    #[test]
    fn a_tree_is_capped_by_its_own_limit_and_the_runtimes() {
        let rt = Quota::runtime(caps(3, 0));
        let a = Quota::tree(caps(2, 0), &rt, "0.1".into());
        let b = Quota::tree(Caps::default(), &rt, "0.2".into());
        a.admit().unwrap();
        a.admit().unwrap();
        let e = a.admit().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(e.message().contains("spawn tree of 0.1"), "{e}");
        b.admit().unwrap();
        // The runtime is full now: the refusal names it, and the tree's
        // count was rolled back.
        let e = b.admit().unwrap_err();
        assert!(e.message().contains("the runtime"), "{e}");
        assert_eq!((rt.processes(), b.processes()), (3, 1));
        a.leave();
        b.admit().unwrap();
        assert_eq!(rt.processes(), 3);
    }

    #[test]
    fn memory_charges_roll_back_when_a_level_is_full() {
        let rt = Quota::runtime(caps(0, 100));
        let t = Quota::tree(caps(0, 60), &rt, "0.1".into());
        t.charge(50, "a message").unwrap();
        assert!(t.charge(20, "a message").is_err());
        assert_eq!((t.memory(), rt.memory()), (50, 50));
        t.force(20);
        assert_eq!((t.memory(), rt.memory()), (70, 70));
        t.refund(1000);
        assert_eq!((t.memory(), rt.memory()), (0, 0));
    }
}
