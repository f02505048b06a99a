//! Script archives: [`ZipSource`] and [`TarGzSource`] read a zip or .tar.gz
//! file once into an in-memory index (key → script) and read it again when
//! the file changes on disk.
//!
//! Design notes:
//! - Every entry is checked while the index is built: its path must be
//!   relative and stay inside the archive (no `..`, no absolute path, no
//!   backslash), it must be a regular file or a directory (symbolic and hard
//!   links, devices, … are refused), and sizes are bounded by
//!   [`ArchiveLimits`] while decompressing (the sizes an archive declares are
//!   not trusted). One bad entry rejects the whole archive.
//! - `get` and `list` compare the file's stamp (length, modification time
//!   and, on Unix, device, inode and status-change time) with the one the
//!   index was read at, and read the archive again if it differs; a watcher
//!   does the same once a second, and reads it again on every (debounced)
//!   notification that the file was written, whatever its stamp. Whoever reads
//!   the new archive reports the difference between the two indexes to the
//!   subscribers, so no change is lost to a `get` that got there first.
//! - A new archive that cannot be read (missing, half written, or with a
//!   refused entry) does not replace the index: the last good one keeps
//!   serving, the failure is logged and kept for
//!   [`ZipSource::reload_error`], and that same file is not tried again.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use crate::watch::{Subscribers, differences};
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

mod tar_reader;
mod zip_reader;

const MIB: u64 = 1024 * 1024;

/// How long the archive file must be quiet before it is read again, by
/// default.
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

/// How often a watcher checks the file's stamp when no notification came
/// (a notification can be missed, e.g. on a network file system).
const POLL: Duration = Duration::from_secs(1);

/// Bounds on what an archive may hold, checked while it is decompressed (an
/// archive's declared sizes are not trusted). An archive over a bound is
/// rejected with [`SourceError::BadContent`] naming the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    max_entry_size: u64,
    max_total_size: u64,
    max_entries: u64,
}

impl Default for ArchiveLimits {
    /// 16 MiB per entry, 256 MiB in all, 10 000 entries.
    fn default() -> Self {
        Self {
            max_entry_size: 16 * MIB,
            max_total_size: 256 * MIB,
            max_entries: 10_000,
        }
    }
}

impl ArchiveLimits {
    /// The default limits: 16 MiB per entry, 256 MiB in all (the index is
    /// kept in memory), 10 000 entries (directories included).
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest uncompressed entry.
    #[must_use]
    pub fn max_entry_size(mut self, bytes: u64) -> Self {
        self.max_entry_size = bytes;
        self
    }

    /// The largest uncompressed total of all entries. For a .tar.gz the
    /// whole decompressed stream (headers and padding included) may be at
    /// most this plus 4 KiB per allowed entry.
    #[must_use]
    pub fn max_total_size(mut self, bytes: u64) -> Self {
        self.max_total_size = bytes;
        self
    }

    /// The most entries (files and directories).
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }
}

/// `16 MiB` for whole mebibytes, else `N bytes`.
fn size_text(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Key → script, as read from one version of the archive.
type Index = BTreeMap<String, Script>;

/// Why an archive could not be turned into an index.
#[derive(Debug)]
enum LoadError {
    /// The file could not be read as an archive (missing, truncated, not an
    /// archive of this format): [`SourceError::Unavailable`].
    Unreadable(String),
    /// An entry was refused: [`SourceError::BadContent`] naming it.
    Rejected { entry: String, reason: String },
}

impl LoadError {
    fn rejected(entry: &str, reason: impl Into<String>) -> Self {
        LoadError::Rejected {
            entry: entry.to_owned(),
            reason: reason.into(),
        }
    }

    fn into_source_error(self, source_name: &str) -> SourceError {
        match self {
            LoadError::Unreadable(reason) => SourceError::unavailable(source_name, reason),
            LoadError::Rejected { entry, reason } => SourceError::BadContent {
                key: entry,
                source_name: source_name.to_owned(),
                reason,
            },
        }
    }
}

/// The key an entry's path names: relative, `/`-separated, with empty and
/// `.` segments dropped (`./lib//a.lua` → `lib/a.lua`). Absolute paths,
/// `..` segments, backslashes and NUL bytes are refused.
fn key_of(entry: &str) -> Result<String, LoadError> {
    let bytes = entry.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if entry.starts_with('/') || drive {
        return Err(LoadError::rejected(
            entry,
            "absolute entry paths are not allowed",
        ));
    }
    if entry.contains('\\') || entry.contains('\0') {
        return Err(LoadError::rejected(
            entry,
            "backslashes and NUL bytes are not allowed in entry paths",
        ));
    }
    let segments: Vec<&str> = entry
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segments.contains(&"..") {
        return Err(LoadError::rejected(
            entry,
            "the entry path escapes the archive ('..')",
        ));
    }
    let key = segments.join("/");
    validate_key(&key).map_err(|e| LoadError::rejected(entry, e.to_string()))?;
    Ok(key)
}

/// Builds an [`Index`] entry by entry, enforcing the [`ArchiveLimits`].
struct IndexBuilder {
    limits: ArchiveLimits,
    entries: u64,
    total: u64,
    index: Index,
}

impl IndexBuilder {
    fn new(limits: ArchiveLimits) -> Self {
        Self {
            limits,
            entries: 0,
            total: 0,
            index: Index::new(),
        }
    }

    /// Counts one more entry of any kind.
    fn count(&mut self, entry: &str) -> Result<(), LoadError> {
        self.entries = self.entries.saturating_add(1);
        if self.entries > self.limits.max_entries {
            return Err(LoadError::rejected(
                entry,
                format!(
                    "the archive has more than {} entries",
                    self.limits.max_entries
                ),
            ));
        }
        Ok(())
    }

    fn too_large(&self, entry: &str) -> LoadError {
        LoadError::rejected(
            entry,
            format!(
                "the entry is larger than the {} limit",
                size_text(self.limits.max_entry_size)
            ),
        )
    }

    fn bomb(&self, entry: &str) -> LoadError {
        LoadError::rejected(
            entry,
            format!(
                "the archive expands to more than the {} limit",
                size_text(self.limits.max_total_size)
            ),
        )
    }

    /// Reads a regular file's content from `data` into the index under the
    /// key its path names. `declared` is the size the archive states (only
    /// used to fail early and to size the buffer); at most the limit plus
    /// one byte is read, whatever it says.
    fn add(&mut self, entry: &str, declared: u64, data: impl Read) -> Result<(), LoadError> {
        let key = key_of(entry)?;
        if declared > self.limits.max_entry_size {
            return Err(self.too_large(entry));
        }
        let room = self.limits.max_total_size.saturating_sub(self.total);
        if declared > room {
            return Err(self.bomb(entry));
        }
        let cap = self.limits.max_entry_size.min(room);
        let initial = usize::try_from(declared.min(64 * 1024)).unwrap_or(0);
        let mut code = Vec::with_capacity(initial);
        data.take(cap.saturating_add(1))
            .read_to_end(&mut code)
            .map_err(|e| LoadError::Unreadable(format!("cannot read entry {entry:?}: {e}")))?;
        let len = u64::try_from(code.len()).unwrap_or(u64::MAX);
        if len > self.limits.max_entry_size {
            return Err(self.too_large(entry));
        }
        if len > room {
            return Err(self.bomb(entry));
        }
        self.total = self.total.saturating_add(len);
        // A later entry with the same path replaces an earlier one (as tar
        // does when extracting).
        self.index
            .insert(key.clone(), Script::from_content(key, code));
        Ok(())
    }

    fn finish(self) -> Index {
        self.index
    }
}

/// The archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Zip,
    TarGz,
}

impl Format {
    fn scheme(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
        }
    }

    fn load(self, path: &Path, limits: ArchiveLimits) -> Result<Index, LoadError> {
        match self {
            Format::Zip => zip_reader::load(path, limits),
            Format::TarGz => tar_reader::load(path, limits),
        }
    }
}

/// What identifies one version of the archive file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime: (i64, i64),
}

impl Stamp {
    /// The file's stamp now; `None` if it cannot be read (e.g. removed).
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            dev: meta.dev(),
            #[cfg(unix)]
            ino: meta.ino(),
            #[cfg(unix)]
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

struct State {
    /// The last index read successfully.
    index: Arc<Index>,
    /// The stamp of the file it was read from (taken before reading).
    stamp: Option<Stamp>,
    /// The last failed read, with the stamp it was tried at (`None`: the
    /// file was missing), while the file is still in that state.
    failed: Option<(Option<Stamp>, SourceError)>,
}

impl State {
    /// The index if the file in state `now` has been read (or tried) already.
    fn settled(&self, now: Option<Stamp>) -> Option<Arc<Index>> {
        let read = now.is_some() && now == self.stamp;
        let tried = self.failed.as_ref().is_some_and(|(s, _)| *s == now);
        (read || tried).then(|| Arc::clone(&self.index))
    }
}

struct Shared {
    path: PathBuf,
    format: Format,
    limits: ArchiveLimits,
    state: Mutex<State>,
    /// Held while the archive is read again, so it is read once.
    reload: Mutex<()>,
    subscribers: Subscribers,
}

/// The changes from `old` to `new`, in key order.
fn diff(old: &Index, new: &Index) -> Vec<Change> {
    differences(old, new, |a, b| a.code != b.code)
}

impl Shared {
    fn open(path: PathBuf, format: Format, limits: ArchiveLimits) -> Result<Self, SourceError> {
        let name = format!("{}:{}", format.scheme(), path.display());
        let stamp = Stamp::of(&path);
        let index = format
            .load(&path, limits)
            .map_err(|e| e.into_source_error(&name))?;
        Ok(Self {
            path,
            format,
            limits,
            state: Mutex::new(State {
                index: Arc::new(index),
                stamp,
                failed: None,
            }),
            reload: Mutex::new(()),
            subscribers: Subscribers::default(),
        })
    }

    fn name(&self) -> String {
        format!("{}:{}", self.format.scheme(), self.path.display())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index for the archive as it is on disk now, reading it again
    /// (and reporting the changes) if it changed since it was read.
    fn current(&self) -> Arc<Index> {
        self.refresh(false)
    }

    /// [`current`](Self::current); with `force` (a notification said the
    /// file was written) the archive is read again even if its stamp looks
    /// the same, since a coarse file-system clock can hide a rewrite of the
    /// same length.
    fn refresh(&self, force: bool) -> Arc<Index> {
        if !force && let Some(index) = self.state().settled(Stamp::of(&self.path)) {
            return index;
        }
        let (index, changes) = {
            let _reload = self.reload.lock().unwrap_or_else(|p| p.into_inner());
            // Another thread may have read it while this one waited.
            let now = Stamp::of(&self.path);
            if !force && let Some(index) = self.state().settled(now) {
                return index;
            }
            let loaded = match now {
                None => Err(SourceError::unavailable(
                    self.name(),
                    "the archive file is missing",
                )),
                Some(_) => self
                    .format
                    .load(&self.path, self.limits)
                    .map_err(|e| e.into_source_error(&self.name())),
            };
            let mut state = self.state();
            match loaded {
                Ok(new) => {
                    let changes = diff(&state.index, &new);
                    state.index = Arc::new(new);
                    state.stamp = now;
                    state.failed = None;
                    (Arc::clone(&state.index), changes)
                }
                Err(e) => {
                    tracing::warn!(source = %self.name(), error = %e, "cannot read the changed archive; keeping the last good one");
                    state.failed = Some((now, e));
                    (Arc::clone(&state.index), Vec::new())
                }
            }
        };
        // Outside the locks: a sink may use the source.
        for change in &changes {
            self.subscribers.emit(change);
        }
        index
    }

    fn reload_error(&self) -> Option<SourceError> {
        self.current();
        self.state().failed.as_ref().map(|(_, e)| e.clone())
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        self.current()
            .get(key)
            .cloned()
            .ok_or_else(|| SourceError::NotFound {
                key: key.to_owned(),
                source_name: self.name(),
            })
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        self.current()
            .range(prefix.to_owned()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn subscribe(
        self: &Arc<Self>,
        prefix: &str,
        sink: ChangeSink,
        debounce: Duration,
    ) -> Result<WatchGuard, SourceError> {
        let cannot = |e: &dyn std::fmt::Display| {
            SourceError::unavailable(self.name(), format!("cannot watch: {e}"))
        };
        let file_name = self
            .path
            .file_name()
            .ok_or_else(|| cannot(&"the path names no file"))?
            .to_owned();
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // The directory is watched, not the file: a file replaced by a
        // rename is a new file that a watch on the old one would not see.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).map_err(|e| cannot(&e))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| cannot(&e))?;
        let guard = self.subscribers.add(prefix, sink);
        let shared = Arc::clone(self);
        std::thread::Builder::new()
            .name("troupe-archive-watch".to_owned())
            .spawn(move || shared.watch_loop(&rx, &file_name, debounce))
            .map_err(|e| cannot(&e))?;
        // Dropping the watcher drops the channel's sender, which ends the
        // thread.
        Ok(WatchGuard::merge([guard, WatchGuard::new(watcher)]))
    }

    /// Reads the archive again once it has been quiet for `quiet` after a
    /// notification about it, and every [`POLL`] otherwise.
    fn watch_loop(
        &self,
        rx: &Receiver<notify::Result<Event>>,
        file_name: &std::ffi::OsStr,
        quiet: Duration,
    ) {
        let mut pending: Option<Instant> = None;
        loop {
            let wait = match pending {
                Some(at) => (at + quiet).saturating_duration_since(Instant::now()),
                None => POLL,
            };
            match rx.recv_timeout(wait) {
                Ok(Ok(event)) => {
                    let ours = event.paths.iter().any(|p| p.file_name() == Some(file_name));
                    if (ours && is_change(&event.kind)) || event.need_rescan() {
                        pending = Some(Instant::now());
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(source = %self.name(), error = %e, "archive watch error; checking the file");
                    pending = Some(Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if pending.is_none() {
                        self.current();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if pending.is_some_and(|at| at.elapsed() >= quiet) {
                pending = None;
                self.refresh(true);
            }
        }
    }
}

/// False for notifications that do not change content (reads, access-time
/// updates); a write being closed counts as a change.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Defines an archive source type over [`Shared`] with one [`Format`].
macro_rules! archive_source {
    ($(#[$doc:meta])* $name:ident, $format:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            shared: Arc<Shared>,
            debounce: Duration,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.shared.name())
            }
        }

        impl $name {
            /// Reads the archive at `path` with the default
            /// [`ArchiveLimits`]. Fails with [`SourceError::Unavailable`] if
            /// it cannot be read and [`SourceError::BadContent`] (naming the
            /// entry) if an entry is refused.
            pub fn open(path: impl Into<PathBuf>) -> Result<Self, SourceError> {
                Self::open_with(path, ArchiveLimits::default())
            }

            /// Reads the archive at `path` with `limits`.
            pub fn open_with(
                path: impl Into<PathBuf>,
                limits: ArchiveLimits,
            ) -> Result<Self, SourceError> {
                Ok(Self {
                    shared: Arc::new(Shared::open(path.into(), $format, limits)?),
                    debounce: DEFAULT_DEBOUNCE,
                })
            }

            /// How long the file must be quiet after a notification before
            /// it is read again by a watcher (default 50 ms).
            #[must_use]
            pub fn debounce(mut self, quiet: Duration) -> Self {
                self.debounce = quiet;
                self
            }

            /// The archive file.
            pub fn path(&self) -> &Path {
                &self.shared.path
            }

            /// Why the archive now on disk is not the one served: the error
            /// of reading it (missing, unreadable, or an entry refused), or
            /// `None` if the index is that of the file as it is.
            pub fn reload_error(&self) -> Option<SourceError> {
                self.shared.reload_error()
            }
        }

        impl Source for $name {
            fn name(&self) -> String {
                self.shared.name()
            }

            fn get(&self, key: &str) -> Result<Script, SourceError> {
                self.shared.get(key)
            }

            fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
                Ok(self.shared.list(prefix))
            }

            /// Watches the archive file (its directory's notifications,
            /// debounced, and a check of its stamp every second) and reports
            /// the keys added, changed and removed by a new version.
            fn subscribe(
                &self,
                prefix: &str,
                sink: ChangeSink,
            ) -> Result<WatchGuard, SourceError> {
                self.shared.subscribe(prefix, sink, self.debounce)
            }
        }
    };
}

archive_source!(
    /// Scripts in a zip file; keys are the entries' paths (`lib/util.lua`).
    /// Stored and deflated entries are read; encrypted entries and other
    /// compression methods are refused. The whole archive is read into memory
    /// when opened and again when the file changes (see the module notes in
    /// `sources/src/archive.rs`); a later entry with the same path wins.
    /// Cheap to clone: clones share the index.
    ZipSource,
    Format::Zip
);

archive_source!(
    /// Scripts in a gzip-compressed tar file (`.tar.gz`, `.tgz`); keys are
    /// the entries' paths, with a leading `./` dropped. Regular files and
    /// directories are accepted; links, devices and the like are refused.
    /// The whole archive is read into memory when opened and again when the
    /// file changes; a later entry with the same path wins (as when
    /// extracting). Cheap to clone: clones share the index.
    TarGzSource,
    Format::TarGz
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_become_keys_or_are_refused() {
        assert_eq!(key_of("./lib//a.lua").unwrap(), "lib/a.lua");
        assert_eq!(key_of("a.lua").unwrap(), "a.lua");
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "C:x",
            "a\\b",
            "",
        ] {
            assert!(
                matches!(key_of(bad), Err(LoadError::Rejected { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn diff_reports_added_changed_and_removed_keys_in_order() {
        let index = |pairs: &[(&str, &str)]| -> Index {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Script::from_content(*k, v.as_bytes())))
                .collect()
        };
        let old = index(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let new = index(&[("b", "2"), ("c", "4"), ("d", "5")]);
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Removed { key: "a".into() },
                Change::Updated { key: "c".into() },
                Change::Updated { key: "d".into() },
            ]
        );
    }
}
