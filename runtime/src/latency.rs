//! Latency histograms with fixed bounds that any thread records into
//! without a lock: how long commands stay outstanding
//! ([`RuntimeStats::commands`](crate::RuntimeStats::commands)) and how
//! long a workflow journal's commits take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the histogram buckets, smallest first: 10 µs to
/// 10 s in steps of about ×3 (a last bucket takes everything above).
pub const LATENCY_BOUNDS: [Duration; 13] = [
    Duration::from_micros(10),
    Duration::from_micros(30),
    Duration::from_micros(100),
    Duration::from_micros(300),
    Duration::from_millis(1),
    Duration::from_millis(3),
    Duration::from_millis(10),
    Duration::from_millis(30),
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(10),
];

/// Buckets: one per bound, then one for everything above the last.
const BUCKETS: usize = LATENCY_BOUNDS.len() + 1;

/// A histogram of durations that threads record into with atomic adds.
#[derive(Debug, Default)]
pub struct Latencies {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one duration.
    pub fn record(&self, d: Duration) {
        let at = LATENCY_BOUNDS.partition_point(|bound| *bound < d);
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// What it has counted so far.
    pub fn read(&self) -> LatencyCounts {
        LatencyCounts {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// A histogram read out: how many durations fell in each bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyCounts {
    /// Per bucket (not cumulative): `buckets[i]` counts durations above
    /// `LATENCY_BOUNDS[i - 1]` up to `LATENCY_BOUNDS[i]`; the last one
    /// those above every bound.
    pub buckets: [u64; BUCKETS],
    /// All the durations added up (each saturates at about 584 years;
    /// the total wraps past that).
    pub sum: Duration,
}

impl LatencyCounts {
    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |t, n| t.saturating_add(*n))
    }

    /// Each bound with how many durations were at most it (Prometheus's
    /// cumulative `le` buckets); `None` stands for `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        let bounds = LATENCY_BOUNDS.iter().copied().map(Some).chain([None]);
        bounds.zip(self.buckets.iter().scan(0u64, |total, n| {
            *total = total.saturating_add(*n);
            Some(*total)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_bucket_of_their_bound() {
        let l = Latencies::new();
        l.record(Duration::from_micros(10)); // at the first bound
        l.record(Duration::from_micros(11)); // just above it
        l.record(Duration::from_secs(60)); // above every bound
        let counts = l.read();
        assert_eq!(counts.buckets[0], 1);
        assert_eq!(counts.buckets[1], 1);
        assert_eq!(counts.buckets[BUCKETS - 1], 1);
        assert_eq!(counts.count(), 3);
        assert_eq!(counts.sum, Duration::from_micros(60_000_021));
        let cumulative: Vec<_> = counts.cumulative().collect();
        assert_eq!(cumulative[0], (Some(Duration::from_micros(10)), 1));
        assert_eq!(cumulative[1], (Some(Duration::from_micros(30)), 2));
        assert_eq!(cumulative[BUCKETS - 1], (None, 3));
    }
}
