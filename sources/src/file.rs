use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use notify::event::{MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use crate::file_cache::{FileCache, ReadError};
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// How long a file must be quiet before its change is reported by default.
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

/// Scripts in a directory; keys are paths relative to it. Symlinks that lead
/// outside the directory are refused. Watching uses the OS's file
/// notifications (inotify, FSEvents, …), debounced so an editor's burst of
/// writes is one change.
///
/// Contents are cached: a `get` of a file whose length, modification time
/// and (on Unix) inode and status-change time are those it was read at
/// does not read it again, and content read within 2 s of the file's last
/// change is always read again, so a coarse file timestamp cannot hide an
/// edit (the rule is spelled out in `sources/src/file_cache.rs`). A `get`
/// after a write sees the new content. Clones share the cache.
#[derive(Debug, Clone)]
pub struct FileSource {
    root: PathBuf,
    debounce: Duration,
    cache: Arc<FileCache>,
}

impl FileSource {
    /// A source rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            debounce: DEFAULT_DEBOUNCE,
            cache: Arc::default(),
        }
    }

    /// How many times this source (and its clones) read a script's content
    /// from disk; a `get` answered from the cache does not count.
    pub fn disk_reads(&self) -> u64 {
        self.cache.reads()
    }

    /// How long a file must be quiet before a change is reported (default
    /// 50 ms).
    #[must_use]
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn not_found(&self, key: &str) -> SourceError {
        SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        }
    }

    /// The file `key` names and its metadata. Without a symbolic link
    /// below the root (the common case) that is `root/key`, checked one
    /// `lstat` per segment, the last one giving the metadata; a link
    /// anywhere below the root sends the key through [`Self::path_of`].
    fn resolve(&self, key: &str) -> Result<(PathBuf, Metadata), SourceError> {
        validate_key(key)?;
        let mut path = self.root.clone();
        let mut segments = key.split('/').peekable();
        while let Some(segment) = segments.next() {
            path.push(segment);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(_) => {
                    self.cache.forget(&self.root.join(key));
                    return Err(self.not_found(key));
                }
            };
            if meta.file_type().is_symlink() {
                let real = self.path_of(key)?;
                let meta = std::fs::metadata(&real).map_err(|_| self.not_found(key))?;
                return Ok((real, meta));
            }
            if segments.peek().is_none() {
                return Ok((path, meta));
            }
        }
        Err(self.not_found(key))
    }

    /// `key` resolved through symbolic links, refused if it leads outside
    /// the root.
    fn path_of(&self, key: &str) -> Result<PathBuf, SourceError> {
        let path = self.root.join(key);
        let real = path.canonicalize().map_err(|_| self.not_found(key))?;
        let root = self
            .root
            .canonicalize()
            .map_err(|e| SourceError::unavailable(self.name(), e))?;
        if !real.starts_with(&root) {
            return Err(SourceError::InvalidKey {
                key: key.to_owned(),
                reason: "resolves outside the source root".to_owned(),
            });
        }
        Ok(real)
    }
}

impl Source for FileSource {
    fn name(&self) -> String {
        format!("file:{}", self.root.display())
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        let taken = SystemTime::now();
        let (path, meta) = self.resolve(key)?;
        if !meta.is_file() {
            return Err(self.not_found(key));
        }
        let (code, version) = self.cache.load(&path, &meta, taken).map_err(|e| match e {
            ReadError::NotFound => self.not_found(key),
            ReadError::Io(e) => {
                SourceError::unavailable(self.name(), format!("{}: {e}", path.display()))
            }
        })?;
        Ok(Script {
            key: key.to_owned(),
            code,
            version,
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries =
                std::fs::read_dir(&dir).map_err(|e| SourceError::unavailable(self.name(), e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let root = self
            .root
            .canonicalize()
            .map_err(|e| SourceError::unavailable(self.name(), e))?;
        let cannot =
            |e: notify::Error| SourceError::unavailable(self.name(), format!("cannot watch: {e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).map_err(cannot)?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(cannot)?;
        let debouncer = Debouncer {
            root,
            prefix: prefix.to_owned(),
            quiet: self.debounce,
            sink,
        };
        std::thread::Builder::new()
            .name("troupe-file-watch".to_owned())
            .spawn(move || debouncer.run(&rx))
            .map_err(|e| SourceError::unavailable(self.name(), format!("cannot watch: {e}")))?;
        // Dropping the watcher drops the channel's sender, which ends the thread.
        Ok(WatchGuard::new(watcher))
    }
}

/// Turns raw file notifications into one change per path once the path has
/// been quiet for `quiet`. Reads (open/close without writing, access-time
/// updates) are not changes: a source reading its own files must not
/// report them as edited.
struct Debouncer {
    root: PathBuf,
    prefix: String,
    quiet: Duration,
    sink: ChangeSink,
}

impl Debouncer {
    fn run(self, rx: &Receiver<notify::Result<Event>>) {
        let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
        loop {
            let next_due = pending.values().min().map(|t| *t + self.quiet);
            let received = match next_due {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok(Ok(event)) if is_change(&event.kind) => {
                    if event.need_rescan() {
                        self.sink.send(Change::Resync);
                    }
                    for path in event.paths {
                        pending.insert(path, Instant::now());
                    }
                }
                Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "file watch error; reporting a resync");
                    self.sink.send(Change::Resync);
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            let due: Vec<PathBuf> = pending
                .iter()
                .filter(|(_, t)| now.duration_since(**t) >= self.quiet)
                .map(|(p, _)| p.clone())
                .collect();
            for path in due {
                pending.remove(&path);
                if let Some(change) = change_of(&self.root, &path)
                    && change.key().is_some_and(|k| k.starts_with(&self.prefix))
                {
                    self.sink.send(change);
                }
            }
        }
    }
}

/// False for notifications that do not change content: reads and
/// access-time updates.
fn is_change(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))
    )
}

/// The change a notification about `path` (under the canonical `root`)
/// means: an update if a file is there now, a removal if nothing is.
/// Directories that still exist and paths that are not valid keys are
/// ignored.
fn change_of(root: &Path, path: &Path) -> Option<Change> {
    let rel = path.strip_prefix(root).ok()?;
    let key = rel.to_str()?.replace('\\', "/");
    validate_key(&key).ok()?;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Some(Change::Updated { key }),
        Ok(_) => None,
        Err(_) => Some(Change::Removed { key }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("main.lua"), "return 1").unwrap();
        std::fs::write(dir.path().join("lib/u.lua"), "return 2").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.lua"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            outside.path().join("secret.lua"),
            dir.path().join("link.lua"),
        )
        .unwrap();

        let src = FileSource::new(dir.path());
        let s = src.get("main.lua").unwrap();
        assert_eq!(&*s.code, b"return 1");
        assert_eq!(
            src.list("").unwrap(),
            vec!["lib/u.lua", "link.lua", "main.lua"]
        );
        assert!(matches!(
            src.get("nope.lua"),
            Err(SourceError::NotFound { .. })
        ));
        assert!(matches!(
            src.get("../x.lua"),
            Err(SourceError::InvalidKey { .. })
        ));
        assert!(matches!(src.get("lib"), Err(SourceError::NotFound { .. })));
        #[cfg(unix)]
        assert!(matches!(
            src.get("link.lua"),
            Err(SourceError::InvalidKey { .. })
        ));
        std::fs::write(dir.path().join("main.lua"), "return 3").unwrap();
        assert_ne!(src.get("main.lua").unwrap().version, s.version);
    }

    #[test]
    fn watch_reports_edits_creations_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/a.lua"), "return 1").unwrap();
        let src = FileSource::new(dir.path()).debounce(Duration::from_millis(20));
        let watch = src.watch("lib/").unwrap();
        // A write can span two debounce windows, so the same change may be
        // reported twice; wait for the expected one, and check that nothing
        // outside the prefix shows up meanwhile.
        let expect = |want: Change| loop {
            let got = watch.recv_timeout(Duration::from_secs(10));
            let got = got.unwrap_or_else(|| panic!("no {want:?}"));
            assert!(got.key().is_some_and(|k| k.starts_with("lib/")), "{got:?}");
            if got == want {
                break;
            }
        };

        std::fs::write(dir.path().join("lib/a.lua"), "return 2").unwrap();
        expect(Change::Updated {
            key: "lib/a.lua".into(),
        });
        std::fs::write(dir.path().join("main.lua"), "outside the prefix").unwrap();
        std::fs::write(dir.path().join("lib/b.lua"), "return 3").unwrap();
        expect(Change::Updated {
            key: "lib/b.lua".into(),
        });
        std::fs::remove_file(dir.path().join("lib/a.lua")).unwrap();
        expect(Change::Removed {
            key: "lib/a.lua".into(),
        });
    }

    #[test]
    fn reading_a_script_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.lua"), "return 1").unwrap();
        let src = FileSource::new(dir.path()).debounce(Duration::from_millis(20));
        let watch = src.watch("").unwrap();
        for _ in 0..3 {
            src.get("a.lua").unwrap();
        }
        std::fs::write(dir.path().join("b.lua"), "return 2").unwrap();
        assert_eq!(
            watch.recv_timeout(Duration::from_secs(10)),
            Some(Change::Updated {
                key: "b.lua".into()
            }),
            "the reads of a.lua were not reported"
        );
    }
}
