//! The JS engine threads. boa's `Context` (and its garbage collector) is
//! bound to the thread that made it, so every JS process and interpreter
//! lives on one of a few dedicated threads for its whole life; the `Send`
//! handles the scheduler and users hold forward each call to that thread and
//! wait for its answer. A call runs one step of one script (a bounded slice
//! of work: scripts never wait inside a step, a pending Promise is a yielded
//! command), so a scheduler worker waits only while the script computes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use troupe_dispatcher::Error;

type Job = Box<dyn FnOnce() + Send>;

/// Stack size of a JS thread (boa's parser and native calls recurse).
const STACK_SIZE: usize = 16 * 1024 * 1024;

/// At most this many JS threads.
const MAX_THREADS: usize = 4;

/// One JS thread: a queue of jobs it runs in order.
pub(crate) struct Worker {
    tx: mpsc::Sender<Job>,
}

impl Worker {
    /// Runs `f` on this thread and waits for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| Error::internal("the JS engine thread is gone"))?;
        rx.recv()
            .map_err(|_| Error::internal("the JS engine thread panicked running the script"))
    }

    /// Runs `f` on this thread without waiting.
    pub(crate) fn post(&self, f: impl FnOnce() + Send + 'static) {
        let _ = self.tx.send(Box::new(f));
    }
}

fn spawn_worker(i: usize) -> Option<Worker> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(format!("troupe-js-{i}"))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                if catch_unwind(AssertUnwindSafe(job)).is_err() {
                    tracing::error!(thread = i, "a JS job panicked");
                }
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start a JS engine thread"))
        .ok()?;
    Some(Worker { tx })
}

fn workers() -> &'static [Worker] {
    static WORKERS: OnceLock<Vec<Worker>> = OnceLock::new();
    WORKERS.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(1, MAX_THREADS);
        (0..n).filter_map(spawn_worker).collect()
    })
}

/// The JS thread for a new process or interpreter (round robin).
pub(crate) fn pick() -> Result<&'static Worker, Error> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let all = workers();
    if all.is_empty() {
        return Err(Error::internal("no JS engine thread could be started"));
    }
    Ok(&all[NEXT.fetch_add(1, Ordering::Relaxed) % all.len()])
}

/// A fresh id for a process or interpreter kept on a JS thread.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) as u64
}
