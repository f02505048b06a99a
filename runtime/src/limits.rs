use std::num::{NonZeroU64, NonZeroUsize};
use std::time::{Duration, Instant};

/// Per-process limits. `None` means unlimited. The same defaults hold in debug
/// and release builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total VM instructions before the process fails with `LIMIT_EXCEEDED`.
    pub max_instructions: Option<NonZeroU64>,
    /// Memory in bytes before `LIMIT_EXCEEDED`: of each isolated Lua
    /// state, and of the whole spawn tree a host-spawned process roots
    /// (its descendants' states and the messages queued in its tree's
    /// mailboxes count against it). `None`: the runtime's caps only
    /// ([`RuntimeBuilder::max_memory`](crate::RuntimeBuilder::max_memory)).
    pub max_memory: Option<NonZeroUsize>,
    /// Live processes of the spawn tree a host-spawned process roots (the
    /// root included) before `process.spawn` fails with `LIMIT_EXCEEDED`.
    /// `None`: the runtime's cap only
    /// ([`RuntimeBuilder::max_processes`](crate::RuntimeBuilder::max_processes)).
    pub max_processes: Option<NonZeroUsize>,
    /// Wall-clock time from spawn before the process fails with `TIMEOUT`.
    pub timeout: Option<Duration>,
    /// Instructions per time slice before the process is preempted so others
    /// can run.
    pub slice_instructions: NonZeroU64,
}

impl Limits {
    /// The instructions between two preemption checks: the slice, or the
    /// instruction limit when that is smaller (so a tiny limit is not
    /// overshot by a whole slice).
    pub fn check_every(&self) -> u64 {
        let max = self.max_instructions.map_or(u64::MAX, NonZeroU64::get);
        self.slice_instructions.get().min(max)
    }

    /// When a process started at `start` times out: `None` without a
    /// timeout, or with one too long to fall on the clock (it never does).
    pub fn deadline(&self, start: Instant) -> Option<Instant> {
        self.timeout.and_then(|t| start.checked_add(t))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instructions: None,
            max_memory: None,
            max_processes: None,
            timeout: None,
            slice_instructions: NonZeroU64::new(20_000).unwrap_or(NonZeroU64::MIN),
        }
    }
}
