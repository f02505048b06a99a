use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

/// Per-process limits. `None` means unlimited. The same defaults hold in debug
/// and release builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total VM instructions before the process fails with `LIMIT_EXCEEDED`.
    pub max_instructions: Option<NonZeroU64>,
    /// Memory in bytes (per isolated state) before `LIMIT_EXCEEDED`.
    pub max_memory: Option<NonZeroUsize>,
    /// Wall-clock time from spawn before the process fails with `TIMEOUT`.
    pub timeout: Option<Duration>,
    /// Instructions per time slice before the process is preempted so others
    /// can run.
    pub slice_instructions: NonZeroU64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instructions: None,
            max_memory: None,
            timeout: None,
            slice_instructions: NonZeroU64::new(20_000).unwrap_or(NonZeroU64::MIN),
        }
    }
}
