//! One timer thread for the whole runtime: a binary heap of deadlines. No
//! thread or task per sleeper; a million sleepers cost a million heap entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use troupe_dispatcher::{Pid, Tag};

/// What to do when a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerAction {
    /// `time.sleep` is over: complete the yield with `nil`.
    Wake { pid: Pid, tag: Tag },
    /// A `receive` timed out.
    ReceiveTimeout { pid: Pid, tag: Tag },
    /// The process's wall-clock limit passed.
    Deadline { pid: Pid },
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Reverse<(Instant, u64, TimerAction)>>,
    seq: u64,
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    heap: Mutex<Heap>,
    cv: Condvar,
}

/// Handle to the timer thread.
pub(crate) struct Timers {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Timers {
    /// Starts the timer thread; `fire` runs on it for every expired timer.
    pub fn start(fire: impl Fn(TimerAction) + Send + 'static) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("troupe-timers".into())
            .spawn(move || {
                let mut due = Vec::new();
                loop {
                    {
                        let mut heap = s.heap.lock();
                        loop {
                            if heap.stopped {
                                return;
                            }
                            let now = Instant::now();
                            while let Some(Reverse((at, _, _))) = heap.entries.peek() {
                                if *at > now {
                                    break;
                                }
                                if let Some(Reverse((_, _, action))) = heap.entries.pop() {
                                    due.push(action);
                                }
                            }
                            if !due.is_empty() {
                                break;
                            }
                            match heap.entries.peek() {
                                Some(Reverse((at, _, _))) => {
                                    let at = *at;
                                    s.cv.wait_until(&mut heap, at);
                                }
                                None => s.cv.wait(&mut heap),
                            }
                        }
                    }
                    for action in due.drain(..) {
                        fire(action);
                    }
                }
            })?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `action` after `delay`.
    pub fn add(&self, delay: Duration, action: TimerAction) {
        let at = Instant::now() + delay;
        let mut heap = self.shared.heap.lock();
        let earliest = heap
            .entries
            .peek()
            .is_none_or(|Reverse((first, _, _))| at < *first);
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse((at, seq, action)));
        drop(heap);
        if earliest {
            self.shared.cv.notify_one();
        }
    }

    /// Stops the thread; pending timers are dropped.
    pub fn stop(&self) {
        self.shared.heap.lock().stopped = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}
