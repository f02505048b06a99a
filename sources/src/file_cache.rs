//! The contents a [`FileSource`](crate::FileSource) has read, by path, so
//! a spawn of an unchanged script does not read and hash the file again: a
//! cached load costs the `lstat`s that resolve the key below the root (one
//! for a key without directories), which also give the file's stamp.
//!
//! **The rule that keeps it from serving stale content.** An entry holds the
//! file's *stamp* as it was just before the read: length, modification
//! time, and on Unix also the device, inode and status-change time (ctime).
//! A load serves the entry only if the file's stamp now is the same. A write
//! changes the mtime and the ctime, a rename over the file (how editors
//! save) the inode, a `touch -d` that puts the mtime back still the ctime
//! (which no one can set), a `chmod` the ctime. The one blind spot is a
//! write within the same timestamp tick as the read: file systems keep
//! timestamps with a coarse clock (a kernel tick, 1–2 s on FAT, up to a
//! second on some network file systems), so a write right after the read
//! could leave every field the same. Hence an entry is kept only if its
//! change time (the mtime where there is no ctime) was at least
//! [`SETTLED`] (2 s) older than the clock when the stamp was taken: content
//! read within 2 s of its last change is read again on the next load (and
//! kept once the file has been quiet for 2 s). Any write after the stamp
//! then carries a later time, so it cannot match. This assumes the file
//! system's clock is not more than 2 s behind this machine's.
//!
//! Removing a file makes the next load `NOT_FOUND` (the path no longer
//! resolves) and drops its entry. The cache holds at most
//! [`MAX_BYTES`] of contents; a file that would overflow it empties it
//! first, and a larger file is never kept.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long before a stamp is taken the file must have last changed for
/// its content to be kept (see the module docs).
pub(crate) const SETTLED: Duration = Duration::from_secs(2);

/// The most content the cache holds, in bytes.
pub(crate) const MAX_BYTES: usize = 64 << 20;

/// What identifies one state of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device, inode, status-change seconds and nanoseconds.
    #[cfg(unix)]
    node: (u64, u64, i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            node: (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// When the file last changed: its ctime on Unix, else its mtime.
    fn changed(&self) -> Option<SystemTime> {
        #[cfg(unix)]
        {
            let (_, _, secs, nanos) = self.node;
            let secs = u64::try_from(secs).ok()?;
            let nanos = u32::try_from(nanos).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        }
        #[cfg(not(unix))]
        {
            self.modified
        }
    }

    /// True if the file last changed [`SETTLED`] or more before `taken`.
    fn settled(&self, taken: SystemTime) -> bool {
        self.changed()
            .and_then(|c| taken.duration_since(c).ok())
            .is_some_and(|age| age >= SETTLED)
    }
}

/// One file's content and the stamp it was read at.
struct Entry {
    stamp: Stamp,
    code: Arc<[u8]>,
    version: u64,
}

/// Read contents by canonical path (shared by the clones of a source).
#[derive(Default)]
pub(crate) struct FileCache {
    entries: Mutex<Entries>,
    /// Contents read from disk so far.
    reads: AtomicU64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<PathBuf, Entry>,
    bytes: usize,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (files, bytes) = self
            .entries
            .lock()
            .map(|e| (e.map.len(), e.bytes))
            .unwrap_or_default();
        f.debug_struct("FileCache")
            .field("files", &files)
            .field("bytes", &bytes)
            .field("reads", &self.reads())
            .finish()
    }
}

/// Why a file could not be read.
pub(crate) enum ReadError {
    /// Not there (any more), or a directory.
    NotFound,
    /// Any other IO error.
    Io(std::io::Error),
}

impl FileCache {
    /// Contents read from disk so far (loads served from the cache do not
    /// count).
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The content of the file at `path` and its version, from the cache
    /// if `meta` (the file's metadata, taken after `taken` on this
    /// machine's clock) shows the stamp it was read at.
    pub(crate) fn load(
        &self,
        path: &Path,
        meta: &Metadata,
        taken: SystemTime,
    ) -> Result<(Arc<[u8]>, u64), ReadError> {
        let stamp = Stamp::of(meta);
        if let Ok(entries) = self.entries.lock()
            && let Some(e) = entries.map.get(path)
            && e.stamp == stamp
        {
            return Ok((Arc::clone(&e.code), e.version));
        }
        let code: Arc<[u8]> = std::fs::read(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory => {
                    ReadError::NotFound
                }
                _ => ReadError::Io(e),
            })?
            .into();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let version = crate::content_hash(&code);
        if let Ok(mut entries) = self.entries.lock() {
            let entries = &mut *entries;
            if let Some(old) = entries.map.remove(path) {
                entries.bytes -= old.code.len();
            }
            if stamp.settled(taken) && code.len() <= MAX_BYTES {
                if entries.bytes + code.len() > MAX_BYTES {
                    entries.map.clear();
                    entries.bytes = 0;
                }
                entries.bytes += code.len();
                entries.map.insert(
                    path.to_owned(),
                    Entry {
                        stamp,
                        code: Arc::clone(&code),
                        version,
                    },
                );
            }
        }
        Ok((code, version))
    }

    /// Drops the entry of `path`, if any (the file is gone).
    pub(crate) fn forget(&self, path: &Path) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(old) = entries.map.remove(path)
        {
            entries.bytes -= old.code.len();
        }
    }
}
