use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::{Error, ErrorKind};

/// The tokio runtime on which asynchronous command handlers run, apart from
/// the scheduler's worker threads so a slow handler never stalls a process.
/// Cheap to clone; the runtime stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct IoPool {
    rt: Arc<OwnedRuntime>,
}

/// Shuts the tokio runtime down in the background when dropped, so the last
/// handle may be dropped anywhere, even inside an async context.
#[derive(Debug)]
struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    fn get(&self) -> &Runtime {
        // Only `Drop` takes the runtime out.
        self.0.as_ref().expect("IO runtime is present until drop")
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl IoPool {
    /// A pool with `threads` worker threads (at least one).
    pub fn new(threads: usize) -> Result<Self, Error> {
        let rt = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("troupe-io")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Unavailable, format!("cannot start IO pool: {e}"))
            })?;
        Ok(Self {
            rt: Arc::new(OwnedRuntime(Some(rt))),
        })
    }

    /// A handle to spawn onto the pool from anywhere.
    pub fn handle(&self) -> &Handle {
        self.rt.get().handle()
    }

    /// Runs `fut` on the pool.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.get().spawn(fut)
    }

    /// Blocks the current (non-async) thread on `fut`.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.get().block_on(fut)
    }
}
