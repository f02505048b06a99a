//! The timed spawn loop of the spawn benches (included with
//! `#[path = "support/spawn.rs"]`).

use std::time::{Duration, Instant};

use troupe::{Runtime, Spawn, Value};

/// Spawns `spawn` `iters` times on `rt` in batches of `batch` (spawn the
/// batch, then join it all), checking that every process ends with
/// `expect`; how long that took.
pub fn spawn_batches(
    rt: &Runtime,
    spawn: &Spawn,
    batch: u64,
    iters: u64,
    expect: &Value,
) -> Duration {
    let mut handles = Vec::with_capacity(usize::try_from(batch).expect("batch fits usize"));
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let k = left.min(batch);
        for _ in 0..k {
            handles.push(rt.spawn(spawn.clone()).expect("spawn"));
        }
        for h in handles.drain(..) {
            assert_eq!(&h.join_blocking().expect("join"), expect);
        }
        left -= k;
    }
    start.elapsed()
}
