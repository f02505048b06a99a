//! [`GitSource`]: the scripts of a local Git repository, as they are in the
//! tree of a branch, a tag or a commit, read with gitoxide (`gix`, pure
//! Rust).
//!
//! Design notes:
//! - The repository is opened isolated: only its own configuration is read,
//!   never the user's or the system's, nor `GIT_*` environment variables.
//! - The reference is resolved once to its full name (`main` →
//!   `refs/heads/main`); a commit id (full or abbreviated) is fixed. Every
//!   `get` and `list` of a followed reference reads where it points now (one
//!   small file read) and, when it moved, indexes the new tree (key → blob
//!   id; contents are read on `get`) and reports the difference to the
//!   subscribers. A watcher does the same every poll interval, so changes
//!   are reported even when nobody reads.
//! - Symbolic links and submodules are refused: they are not listed, and a
//!   `get` of one is `BadContent` naming its path in the repository. Entries
//!   whose names are not valid keys (not UTF-8, backslashes, `..`) are
//!   skipped with a warning, since no key can name them.
//! - A new commit that cannot be read (objects missing, the reference
//!   deleted) does not replace the index: the last good tree keeps serving,
//!   and [`GitSource::reload_error`] says why. A new commit without the
//!   subdirectory serves no scripts (every key is reported removed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::watch::{Subscribers, differences};
use crate::{
    Change, ChangeSink, Script, Source, SourceError, WatchGuard, content_hash, validate_key,
};

const MIB: u64 = 1024 * 1024;

/// The largest script served by default.
const DEFAULT_MAX_SCRIPT_SIZE: u64 = 16 * MIB;

/// How often a watcher checks the reference by default.
const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Repository handles kept for reuse between calls.
const POOL: usize = 4;

/// One tree entry under the subdirectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A file (executable or not): a script.
    Blob(ObjectId),
    /// A symbolic link or a submodule, and why it is refused.
    Refused(&'static str),
}

/// Key → entry, for one tree.
type Index = BTreeMap<String, Entry>;

/// What the reference names.
enum Target {
    /// A reference by its full name (`refs/heads/main`, `HEAD`): it can move.
    Ref(gix::refs::FullName),
    /// A commit (or tree) id: it never moves.
    Fixed(ObjectId),
}

struct State {
    /// The object the reference pointed to when the index was read.
    at: ObjectId,
    /// The subdirectory's tree there (`None`: it had none).
    tree: Option<ObjectId>,
    index: Arc<Index>,
    /// The last failed read, with what the reference pointed to then
    /// (`None`: it could not be resolved), while it still points there.
    failed: Option<(Option<ObjectId>, SourceError)>,
}

struct Shared {
    name: String,
    /// `""` for the root, else `a/b`.
    subdir: String,
    path: PathBuf,
    target: Target,
    repo: gix::ThreadSafeRepository,
    /// Thread-local handles (`gix::Repository` is not `Sync`).
    pool: Mutex<Vec<gix::Repository>>,
    state: Mutex<State>,
    /// Held while a new tree is read, so it is read once.
    reload: Mutex<()>,
    subscribers: Subscribers,
}

/// Scripts in a local Git repository (bare or a checkout): the files of
/// the tree at a branch, a tag or a commit id, under a subdirectory. Key
/// `lib/util.lua` is `SUBDIR/lib/util.lua` in that tree; its version is
/// derived from the blob id, so equal content has an equal version. A
/// branch (or any reference) is followed: a commit moving it is seen by the
/// next `get` or `list`, and a [`watch`](Source::watch) (which polls the
/// reference, every second by default) reports the keys it added, changed
/// and removed. A commit id never moves.
///
/// Symbolic links and submodules in the tree are refused (not listed;
/// `get` is [`SourceError::BadContent`] naming the path), and so is a file
/// over the size limit (16 MiB by default). Errors name the source
/// `git:PATH@REF/SUBDIR`. Cheap to clone: clones share the repository and
/// the index.
#[derive(Clone)]
pub struct GitSource {
    shared: Arc<Shared>,
    poll: Duration,
    max_script_size: u64,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shared.name)
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

/// A gix error on one line, with its causes.
fn text(e: &gix::Error) -> String {
    crate::background::error_chain(e).replace('\n', " ")
}

/// The subdirectory as `a/b` (`""` for the root): surrounding slashes and
/// a lone `.` are dropped, the rest must be a valid key.
fn normalize_subdir(subdir: &str) -> Result<String, String> {
    let trimmed = subdir.trim_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        return Ok(String::new());
    }
    validate_key(trimmed).map_err(|e| format!("invalid subdirectory {subdir:?}: {e}"))?;
    Ok(trimmed.to_owned())
}

/// True if `reference` could be an (abbreviated) SHA-1 object id.
fn looks_like_id(reference: &str) -> bool {
    (4..=40).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

impl GitSource {
    /// Opens the repository at `repo` (a bare repository, a checkout, or
    /// its `.git` directory) and serves the files under `subdir` (`""` for
    /// the root) of the tree at `reference`: a branch (`main`), a tag
    /// (`v1`), any reference git would find by that name (`origin/main`,
    /// `HEAD`, `refs/heads/main`), or a commit id (full or abbreviated).
    /// Fails with [`SourceError::Unavailable`] if `repo` is not a
    /// repository, `reference` names nothing, or the tree has no such
    /// subdirectory.
    pub fn open(
        repo: impl Into<PathBuf>,
        reference: &str,
        subdir: &str,
    ) -> Result<Self, SourceError> {
        let path = repo.into();
        let shown_subdir = subdir.trim_matches('/');
        let mut name = format!("git:{}@{reference}", path.display());
        if !shown_subdir.is_empty() {
            name.push('/');
            name.push_str(shown_subdir);
        }
        let fail = |reason: String| SourceError::unavailable(name.clone(), reason);
        let subdir = normalize_subdir(subdir).map_err(fail)?;
        let local = gix::open_opts(&path, gix::open::Options::isolated())
            .map_err(|e| fail(format!("cannot open the repository: {}", text(&e))))?;
        let target = resolve_name(&local, reference).map_err(fail)?;
        let at = peel(&local, &target).map_err(fail)?;
        let tree = subdir_tree(&local, at, &subdir).map_err(fail)?;
        let Some(tree) = tree else {
            return Err(fail(format!(
                "no directory {subdir:?} in the tree at {reference}"
            )));
        };
        let index = walk(&local, tree, &subdir).map_err(fail)?;
        let repo = local.clone().into_sync();
        Ok(Self {
            shared: Arc::new(Shared {
                name,
                subdir,
                path,
                target,
                repo,
                pool: Mutex::new(vec![local]),
                state: Mutex::new(State {
                    at,
                    tree: Some(tree),
                    index: Arc::new(index),
                    failed: None,
                }),
                reload: Mutex::new(()),
                subscribers: Subscribers::default(),
            }),
            poll: DEFAULT_POLL,
            max_script_size: DEFAULT_MAX_SCRIPT_SIZE,
        })
    }

    /// How often a watcher checks where the reference points (default 1 s).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// The largest script served (default 16 MiB); a larger file is
    /// [`SourceError::BadContent`]. Checked before the file is read.
    #[must_use]
    pub fn max_script_size(mut self, bytes: u64) -> Self {
        self.max_script_size = bytes;
        self
    }

    /// The repository's path, as given.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The id (hex) of the commit served now: where the reference points,
    /// or the last one that could be read (see
    /// [`reload_error`](Self::reload_error)).
    pub fn commit_id(&self) -> String {
        self.shared.current();
        self.shared.state().at.to_hex().to_string()
    }

    /// Why the commit the reference points to now is not the one served
    /// (the reference is gone, or its tree cannot be read), or `None`.
    pub fn reload_error(&self) -> Option<SourceError> {
        self.shared.current();
        self.shared.state().failed.as_ref().map(|(_, e)| e.clone())
    }
}

/// What `reference` names in `repo`: a reference (preferred, as git does)
/// or an object id.
fn resolve_name(repo: &gix::Repository, reference: &str) -> Result<Target, String> {
    if reference.is_empty() {
        return Err("no reference given (a branch, tag or commit id)".to_owned());
    }
    // A name that is not a valid reference name may still be an id.
    if let Ok(Some(found)) = repo.try_find_reference(reference) {
        return Ok(Target::Ref(found.name().to_owned()));
    }
    if looks_like_id(reference)
        && let Ok(prefix) = gix::hash::Prefix::from_hex(reference)
    {
        match repo.objects.lookup_prefix(prefix, None) {
            Ok(Some(Ok(id))) => return Ok(Target::Fixed(id)),
            Ok(Some(Err(()))) => {
                return Err(format!("the commit id {reference} is ambiguous"));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot look up {reference}: {e}")),
        }
    }
    Err(format!("no branch, tag or commit named {reference:?}"))
}

/// The object `target` points to now, tags peeled.
fn peel(repo: &gix::Repository, target: &Target) -> Result<ObjectId, String> {
    match target {
        Target::Fixed(id) => Ok(*id),
        Target::Ref(name) => {
            let mut found = repo
                .try_find_reference(name.as_ref())
                .map_err(|e| format!("cannot read the reference {name}: {}", text(&e)))?
                .ok_or_else(|| format!("the reference {name} is gone"))?;
            found
                .peel_to_id()
                .map(|id| id.detach())
                .map_err(|e| format!("cannot resolve the reference {name}: {}", text(&e)))
        }
    }
}

/// The tree of `subdir` in the commit (or tree) `at`; `None` if it has none.
fn subdir_tree(
    repo: &gix::Repository,
    at: ObjectId,
    subdir: &str,
) -> Result<Option<ObjectId>, String> {
    let root = repo
        .find_object(at)
        .and_then(|object| object.peel_to_tree())
        .map_err(|e| format!("cannot read the tree of {at}: {}", text(&e)))?;
    if subdir.is_empty() {
        return Ok(Some(root.id));
    }
    let entry = root
        .lookup_entry_by_path(subdir)
        .map_err(|e| format!("cannot read {subdir:?} at commit {at}: {}", text(&e)))?;
    match entry {
        Some(entry) if entry.mode().is_tree() => Ok(Some(entry.object_id())),
        Some(_) => Err(format!("{subdir:?} is not a directory (at commit {at})")),
        None => Ok(None),
    }
}

/// Indexes the tree `tree` (the subdirectory's), recursively. Keys are
/// relative to it; `subdir` is only used in messages.
fn walk(repo: &gix::Repository, tree: ObjectId, subdir: &str) -> Result<Index, String> {
    let mut index = Index::new();
    // An explicit stack: a deep tree cannot overflow the thread's.
    let mut pending = vec![(String::new(), tree)];
    while let Some((prefix, id)) = pending.pop() {
        let tree = repo
            .find_tree(id)
            .map_err(|e| format!("cannot read the tree {subdir}/{prefix}: {}", text(&e)))?;
        for entry in tree.iter() {
            let entry = entry
                .map_err(|e| format!("corrupt tree {subdir}/{prefix} ({id}): {}", text(&e)))?;
            let name = entry.filename();
            let Ok(name) = std::str::from_utf8(name) else {
                tracing::warn!(tree = %id, name = %name, "skipping a tree entry whose name is not UTF-8");
                continue;
            };
            let key = format!("{prefix}{name}");
            if name.contains('/') || validate_key(&key).is_err() {
                tracing::warn!(tree = %id, key, "skipping a tree entry whose name is not a valid key");
                continue;
            }
            let entry = match entry.mode().kind() {
                EntryKind::Tree => {
                    pending.push((format!("{key}/"), entry.object_id()));
                    continue;
                }
                EntryKind::Blob | EntryKind::BlobExecutable => Entry::Blob(entry.object_id()),
                EntryKind::Link => Entry::Refused("symbolic links are not allowed"),
                EntryKind::Commit => Entry::Refused("submodules are not supported"),
            };
            index.insert(key, entry);
        }
    }
    Ok(index)
}

/// The scripts (blobs) of an index, by id.
fn blobs(index: &Index) -> impl Iterator<Item = (&String, ObjectId)> {
    index.iter().filter_map(|(k, e)| match e {
        Entry::Blob(id) => Some((k, *id)),
        Entry::Refused(_) => None,
    })
}

/// The changes from `old` to `new`, in key order (refused entries count as
/// absent).
fn diff(old: &Index, new: &Index) -> Vec<Change> {
    differences(blobs(old), blobs(new), |a, b| a != b)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with a repository handle of this thread's own.
    fn with_repo<T>(&self, f: impl FnOnce(&gix::Repository) -> T) -> T {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let repo = pooled.unwrap_or_else(|| self.repo.to_thread_local());
        let out = f(&repo);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL {
            pool.push(repo);
        }
        out
    }

    /// `subdir/key`, the path of `key` in the repository's tree.
    fn tree_path(&self, key: &str) -> String {
        if self.subdir.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.subdir)
        }
    }

    /// The index of the tree the reference points to now, reading it (and
    /// reporting the changes) if the reference moved since it was read.
    fn current(&self) -> Arc<Index> {
        if matches!(self.target, Target::Fixed(_)) {
            return Arc::clone(&self.state().index);
        }
        let settled = |state: &State, now: &Result<ObjectId, String>| {
            let at = now.as_ref().ok().copied();
            let read = at == Some(state.at) && state.failed.is_none();
            let tried = state.failed.as_ref().is_some_and(|(f, _)| *f == at);
            (read || tried).then(|| Arc::clone(&state.index))
        };
        let now = self.with_repo(|repo| peel(repo, &self.target));
        if let Some(index) = settled(&self.state(), &now) {
            return index;
        }
        let (index, changes) = {
            let _reload = self.reload.lock().unwrap_or_else(|p| p.into_inner());
            // Another thread may have read it while this one waited.
            let now = self.with_repo(|repo| peel(repo, &self.target));
            if let Some(index) = settled(&self.state(), &now) {
                return index;
            }
            let at = now.as_ref().ok().copied();
            let known = {
                let state = self.state();
                (state.at, state.tree, Arc::clone(&state.index))
            };
            let loaded = now.and_then(|id| {
                self.with_repo(|repo| {
                    let tree = subdir_tree(repo, id, &self.subdir)?;
                    let index = match tree {
                        // The same subtree: nothing under it changed.
                        Some(tree) if Some(tree) == known.1 => Arc::clone(&known.2),
                        Some(tree) => Arc::new(walk(repo, tree, &self.subdir)?),
                        None => Arc::new(Index::new()),
                    };
                    Ok((id, tree, index))
                })
            });
            let mut state = self.state();
            match loaded {
                Ok((id, tree, new)) => {
                    if tree.is_none() {
                        tracing::warn!(source = %self.name, commit = %id, "the new commit has no such directory; serving no scripts");
                    }
                    let changes = diff(&state.index, &new);
                    state.at = id;
                    state.tree = tree;
                    state.index = new;
                    state.failed = None;
                    (Arc::clone(&state.index), changes)
                }
                Err(reason) => {
                    let e = SourceError::unavailable(self.name.clone(), reason);
                    tracing::warn!(source = %self.name, error = %e, serving = %known.0, "cannot read the reference's new commit; keeping the last good one");
                    state.failed = Some((at, e));
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

    fn get(&self, key: &str, max_size: u64) -> Result<Script, SourceError> {
        validate_key(key)?;
        let entry = self.current().get(key).copied();
        let rejected = |reason: String| SourceError::BadContent {
            key: key.to_owned(),
            source_name: self.name.clone(),
            reason,
        };
        let id = match entry {
            None => {
                return Err(SourceError::NotFound {
                    key: key.to_owned(),
                    source_name: self.name.clone(),
                });
            }
            Some(Entry::Refused(why)) => {
                return Err(rejected(format!("{}: {why}", self.tree_path(key))));
            }
            Some(Entry::Blob(id)) => id,
        };
        let unreadable = |e: &gix::Error| {
            SourceError::unavailable(
                self.name.clone(),
                format!("cannot read {} ({id}): {}", self.tree_path(key), text(e)),
            )
        };
        let too_large = || {
            rejected(format!(
                "{} is larger than the {} limit",
                self.tree_path(key),
                size_text(max_size)
            ))
        };
        let code = self.with_repo(|repo| {
            let header = repo.find_header(id).map_err(|e| unreadable(&e))?;
            if header.kind() != gix::object::Kind::Blob {
                return Err(SourceError::unavailable(
                    self.name.clone(),
                    format!(
                        "{} ({id}) is a {}, not a blob",
                        self.tree_path(key),
                        header.kind()
                    ),
                ));
            }
            if header.size() > max_size {
                return Err(too_large());
            }
            let object = repo.find_object(id).map_err(|e| unreadable(&e))?;
            Ok(object.detach().data)
        })?;
        if u64::try_from(code.len()).unwrap_or(u64::MAX) > max_size {
            return Err(too_large());
        }
        Ok(Script {
            key: key.to_owned(),
            code: code.into(),
            version: content_hash(id.as_bytes()),
        })
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        let index = self.current();
        index
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| matches!(e, Entry::Blob(_)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn subscribe(
        self: &Arc<Self>,
        prefix: &str,
        sink: ChangeSink,
        poll: Duration,
    ) -> Result<WatchGuard, SourceError> {
        let guard = self.subscribers.add(prefix, sink);
        if matches!(self.target, Target::Fixed(_)) {
            // A commit id never moves: nothing to watch.
            return Ok(guard);
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let shared = Arc::clone(self);
        std::thread::Builder::new()
            .name("troupe-git-watch".to_owned())
            .spawn(move || {
                // Dropping the guard drops `stop`, which ends the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(poll) {
                    shared.current();
                }
            })
            .map_err(|e| {
                SourceError::unavailable(self.name.clone(), format!("cannot watch: {e}"))
            })?;
        Ok(WatchGuard::merge([guard, WatchGuard::new(stop)]))
    }
}

impl Source for GitSource {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        self.shared.get(key, self.max_script_size)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        Ok(self.shared.list(prefix))
    }

    /// Polls the reference (every second by default,
    /// [`poll_interval`](GitSource::poll_interval)) and reports the keys a
    /// new commit added, changed and removed under the subdirectory. A
    /// commit id never moves, so its watch never reports anything.
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        self.shared.subscribe(prefix, sink, self.poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdirectories_are_normalized_or_refused() {
        assert_eq!(normalize_subdir("").unwrap(), "");
        assert_eq!(normalize_subdir("/").unwrap(), "");
        assert_eq!(normalize_subdir(".").unwrap(), "");
        assert_eq!(normalize_subdir("/scripts/").unwrap(), "scripts");
        assert_eq!(normalize_subdir("a/b").unwrap(), "a/b");
        for bad in ["../x", "a/../b", "a//b", "a\\b"] {
            assert!(normalize_subdir(bad).is_err(), "{bad:?}");
        }
        assert!(looks_like_id("abcd") && looks_like_id(&"f".repeat(40)));
        assert!(!looks_like_id("abc") && !looks_like_id("main") && !looks_like_id(&"f".repeat(41)));
    }

    #[test]
    fn diff_reports_added_changed_and_removed_scripts_in_order() {
        let id = |n: u8| ObjectId::from_bytes_or_panic(&[n; 20]);
        let old: Index = [
            ("a".to_owned(), Entry::Blob(id(1))),
            ("b".to_owned(), Entry::Blob(id(2))),
            ("c".to_owned(), Entry::Blob(id(3))),
            ("l".to_owned(), Entry::Blob(id(6))),
        ]
        .into();
        let new: Index = [
            ("b".to_owned(), Entry::Blob(id(2))),
            ("c".to_owned(), Entry::Blob(id(4))),
            ("d".to_owned(), Entry::Blob(id(5))),
            (
                "l".to_owned(),
                Entry::Refused("symbolic links are not allowed"),
            ),
        ]
        .into();
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Removed { key: "a".into() },
                Change::Updated { key: "c".into() },
                Change::Updated { key: "d".into() },
                Change::Removed { key: "l".into() },
            ]
        );
    }
}
