//! Signals from other OS processes. redb locks a store file to the process
//! that opened it, so a process that wants to signal a workflow held by
//! another one leaves a file in the store's spool directory (`PATH.signals/`
//! beside the store file `PATH`): written under a temporary name, synced,
//! then renamed, so the holder never reads half a file. The holder's watcher
//! polls the directory, signals the workflow with each file in name (that
//! is, time) order — which journals it in the store's inbox — and only then
//! removes the file: a crash in between delivers it twice at worst, never
//! loses it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Error, ErrorKind, Value};

use crate::record::{decode, encode};
use crate::store::now_ns;
use crate::{Inner, WorkflowStore};

/// How often a runtime using a store looks for spooled signals.
pub const SPOOL_POLL: Duration = Duration::from_millis(50);

/// The extension of a spooled signal ready to be delivered.
const READY: &str = "signal";

/// The extension a spooled signal gets when it cannot be delivered.
const REJECTED: &str = "rejected";

/// One spooled signal, or a cancellation.
#[derive(Serialize, Deserialize)]
struct Spooled {
    id: String,
    topic: String,
    payload: Value,
    /// A cancellation of workflow `id` (`topic` and `payload` unused).
    #[serde(default)]
    cancel: bool,
}

/// The spool directory of the store file `store`.
fn dir(store: &Path) -> PathBuf {
    let mut name = OsString::from(store.as_os_str());
    name.push(".signals");
    PathBuf::from(name)
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("cannot {what} {}: {e}", path.display()),
    )
}

/// Writes a spooled signal; returns its path.
pub(crate) fn post(store: &Path, id: &str, topic: &str, payload: Value) -> Result<PathBuf, Error> {
    spool(
        store,
        &Spooled {
            id: id.to_owned(),
            topic: topic.to_owned(),
            payload,
            cancel: false,
        },
    )
}

/// Writes a spooled cancellation; returns its path.
pub(crate) fn post_cancel(store: &Path, id: &str) -> Result<PathBuf, Error> {
    spool(
        store,
        &Spooled {
            id: id.to_owned(),
            topic: String::new(),
            payload: Value::Nil,
            cancel: true,
        },
    )
}

/// Writes `spooled` into the spool of `store`; returns its path.
fn spool(store: &Path, spooled: &Spooled) -> Result<PathBuf, Error> {
    static SENT: AtomicU64 = AtomicU64::new(0);
    let dir = dir(store);
    std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, &e))?;
    let bytes = encode(spooled)?;
    let name = format!(
        "{:020}-{}-{}",
        now_ns(),
        std::process::id(),
        SENT.fetch_add(1, Ordering::Relaxed)
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let ready = dir.join(format!("{name}.{READY}"));
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &ready)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error("write", &ready, &e)
    })?;
    Ok(ready)
}

/// Starts the thread that ingests the spool of the store behind `inner`
/// every [`SPOOL_POLL`]; it ends once the store is dropped.
pub(crate) fn watch(inner: Weak<Inner>) {
    let started = std::thread::Builder::new()
        .name("troupe-signals".into())
        .spawn(move || {
            while let Some(inner) = inner.upgrade() {
                WorkflowStore { inner }.ingest_spool();
                std::thread::sleep(SPOOL_POLL);
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot watch the workflow signal spool");
    }
}

/// Delivers every spooled signal of `store`, oldest first.
pub(crate) fn ingest(store: &WorkflowStore) {
    let dir = dir(store.path());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == READY))
        .collect();
    files.sort();
    for file in files {
        let delivered = std::fs::read(&file)
            .map_err(|e| io_error("read", &file, &e))
            .and_then(|bytes| {
                decode::<Spooled>(&bytes).map_err(|e| {
                    Error::invalid(format!(
                        "spooled signal {} is unreadable: {e}",
                        file.display()
                    ))
                })
            })
            .and_then(|s| match s.cancel {
                true => store.cancel(&s.id),
                false => store.signal(&s.id, &s.topic, s.payload),
            });
        match delivered {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(&file) {
                    tracing::error!(file = %file.display(), error = %e, "cannot remove a delivered signal");
                }
            }
            // The store or the disk failed: try again on the next poll.
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                tracing::warn!(file = %file.display(), error = %e, "spooled signal not delivered yet");
                return;
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "spooled signal rejected");
                let _ = std::fs::rename(&file, file.with_extension(REJECTED));
            }
        }
    }
}
