//! Hot reload in the background. A watched key's changes are read from the
//! source and compiled on the reload thread as soon as the source reports
//! them; the instance takes the new version before its next call (a
//! version that does not compile is logged, kept as the last error, and
//! the old one stays).

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;
use troupe_dispatcher::Error;
use troupe_sources::{ChangeSink, Script, Source, WatchGuard};

use crate::capability::source_error;

/// Compiles a changed script (on the reload thread).
pub(crate) type Compile<P> = Arc<dyn Fn(&Script) -> Result<P, Error> + Send + Sync>;

/// Reloaded versions by key, in the order they were compiled.
type Ready<P> = Mutex<Vec<(String, Result<P, Error>)>>;

/// The watched keys of one instance and what their reloads produced.
pub(crate) struct Reloads<P> {
    ready: Arc<Ready<P>>,
    guards: HashMap<String, WatchGuard>,
}

impl<P> Default for Reloads<P> {
    fn default() -> Self {
        Self {
            ready: Arc::default(),
            guards: HashMap::new(),
        }
    }
}

impl<P: Send + 'static> Reloads<P> {
    /// Recompiles `key` with `compile` whenever `source` changes it.
    pub(crate) fn watch(
        &mut self,
        source: &Arc<dyn Source>,
        key: &str,
        compile: Compile<P>,
    ) -> Result<(), Error> {
        let ready = Arc::downgrade(&self.ready);
        let (watched, from) = (key.to_owned(), Arc::clone(source));
        let sink = ChangeSink::new(move |change| {
            if change.affects(&watched) {
                let job = reload(&ready, &from, &watched, &compile);
                // Only fails if the reload thread could not start (logged).
                let _ = RELOADER.as_ref().map(|tx| tx.send(job));
            }
        });
        let guard = source.subscribe(key, sink).map_err(source_error)?;
        self.guards.insert(key.to_owned(), guard);
        Ok(())
    }
}

impl<P> Reloads<P> {
    /// Stops reloading `key`.
    pub(crate) fn unwatch(&mut self, key: &str) {
        self.guards.remove(key);
    }

    /// Stops every reload (what is compiled already is dropped).
    pub(crate) fn clear(&mut self) {
        self.guards.clear();
        self.ready.lock().clear();
    }

    /// The versions compiled since the last call, oldest first.
    pub(crate) fn take(&self) -> Vec<(String, Result<P, Error>)> {
        std::mem::take(&mut *self.ready.lock())
    }
}

/// The job that reads and compiles `key` for the instance whose reloads
/// `ready` keeps (nothing once the instance is gone).
fn reload<P: Send + 'static>(
    ready: &Weak<Ready<P>>,
    source: &Arc<dyn Source>,
    key: &str,
    compile: &Compile<P>,
) -> Job {
    let (ready, source, key, compile) = (
        Weak::clone(ready),
        Arc::clone(source),
        key.to_owned(),
        Arc::clone(compile),
    );
    Box::new(move || {
        if ready.strong_count() == 0 {
            return;
        }
        let version = source
            .get(&key)
            .map_err(source_error)
            .and_then(|script| compile(&script));
        match &version {
            Ok(_) => tracing::debug!(key, "reloaded a watched script"),
            Err(e) => {
                tracing::warn!(key, error = %e, "a watched script changed but does not load; keeping the old version")
            }
        }
        if let Some(ready) = ready.upgrade() {
            ready.lock().push((key, version));
        }
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// Stack size of the reload thread: as large as an engine thread's, since
/// compilers recurse over the scripts they compile.
const STACK_SIZE: usize = 16 << 20;

/// The reload thread: runs reloads one after another, in the order their
/// changes came.
static RELOADER: LazyLock<Option<Sender<Job>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("troupe-reload".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a script reload panicked");
                }
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start the script reload thread"))
        .ok()
        .map(|_| tx)
});
