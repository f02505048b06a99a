use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::watch::Subscribers;
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard};

/// Entries kept by default.
const DEFAULT_CAPACITY: usize = 1024;

struct Entry {
    script: Script,
    fetched: Instant,
    last_used: u64,
}

struct Shared {
    inner: Arc<dyn Source>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Bumped by every invalidation, so a read that raced one is not cached.
    epoch: AtomicU64,
    clock: AtomicU64,
    subscribers: Subscribers,
    /// The subscription to the inner source (None if it cannot be watched).
    watch: Mutex<Option<WatchGuard>>,
}

/// A copy of another source kept in memory: `get` answers from the copy
/// while it is fresh. An entry is dropped when its TTL runs out, when the
/// inner source reports a change of its key (if the inner source can be
/// watched), or when the cache is full and it is the least recently used.
/// Errors are not cached. Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct CachedSource {
    ttl: Option<Duration>,
    capacity: usize,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CachedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl CachedSource {
    /// Caches `inner` with no TTL and room for 1024 scripts; entries are
    /// invalidated by the inner source's changes.
    pub fn new(inner: impl Source) -> Self {
        let shared = Arc::new(Shared {
            inner: Arc::new(inner),
            entries: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            subscribers: Subscribers::default(),
            watch: Mutex::new(None),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let sink = ChangeSink::new(move |change| {
            if let Some(shared) = weak.upgrade() {
                shared.invalidate(&change);
                shared.subscribers.emit(&change);
            }
        });
        match shared.inner.subscribe("", sink) {
            Ok(guard) => *shared.lock_watch() = Some(guard),
            Err(SourceError::Unsupported { .. }) => {}
            Err(e) => {
                tracing::warn!(source = %shared.inner.name(), error = %e, "cannot watch; the cache relies on its TTL only");
            }
        }
        Self {
            ttl: None,
            capacity: DEFAULT_CAPACITY,
            shared,
        }
    }

    /// Entries older than `ttl` are read again.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Keeps at most `n` scripts (at least 1), evicting the least recently
    /// used (an O(n) scan, only when the cache is full).
    #[must_use]
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// How many scripts are cached now.
    pub fn len(&self) -> usize {
        self.shared.lock_entries().len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every cached script.
    pub fn clear(&self) {
        self.shared.invalidate(&Change::Resync);
    }
}

impl Shared {
    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_watch(&self) -> std::sync::MutexGuard<'_, Option<WatchGuard>> {
        self.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn invalidate(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut entries = self.lock_entries();
        entries.retain(|key, _| !change.affects(key));
    }

    fn insert(&self, script: &Script, epoch: u64, capacity: usize) {
        let mut entries = self.lock_entries();
        // An invalidation since the read started may concern this script.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= capacity && !entries.contains_key(&script.key) {
            let lru = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = lru {
                entries.remove(&k);
            }
        }
        entries.insert(
            script.key.clone(),
            Entry {
                script: script.clone(),
                fetched: Instant::now(),
                last_used: self.clock.fetch_add(1, Ordering::Relaxed),
            },
        );
    }
}

impl Source for CachedSource {
    fn name(&self) -> String {
        format!("cached({})", self.shared.inner.name())
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        let shared = &self.shared;
        {
            let mut entries = shared.lock_entries();
            if let Some(entry) = entries.get_mut(key) {
                if self.ttl.is_none_or(|ttl| entry.fetched.elapsed() < ttl) {
                    entry.last_used = shared.clock.fetch_add(1, Ordering::Relaxed);
                    return Ok(entry.script.clone());
                }
                entries.remove(key);
            }
        }
        let epoch = shared.epoch.load(Ordering::Acquire);
        let script = shared.inner.get(key)?;
        shared.insert(&script, epoch, self.capacity);
        Ok(script)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.shared.inner.list(prefix)
    }

    /// Changes of the inner source, delivered after the cache has dropped
    /// the changed keys (so a subscriber that reads the key gets the new
    /// script).
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        if self.shared.lock_watch().is_none() {
            return Err(SourceError::Unsupported {
                source_name: self.name(),
                operation: "watch",
            });
        }
        Ok(self.shared.subscribers.add(prefix, sink))
    }
}
