//! Change events: what a source reports when its scripts change, and the
//! plumbing to deliver them to sync and async consumers.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// What changed in a source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Change {
    /// The script under `key` was added or replaced.
    Updated {
        /// The key that changed.
        key: String,
    },
    /// The script under `key` was removed. For sources with directories
    /// (files) it may name a directory: everything under `key/` is gone too.
    Removed {
        /// The key that went away.
        key: String,
    },
    /// Changes may have been missed (the source lost track, e.g. its history
    /// was compacted during an outage): any key under the watched prefix may
    /// have changed.
    Resync,
}

/// The changes from listing `old` to listing `new`, both `(key, stamp)` in
/// key order: a key only in `new`, or whose stamps `differ`, is `Updated`;
/// a key only in `old` is `Removed`. In key order. (For the sources that
/// watch by comparing listings.)
#[cfg(any(
    feature = "archive",
    feature = "git",
    feature = "redis",
    feature = "sql",
    feature = "object-store"
))]
pub(crate) fn differences<'a, A, B>(
    old: impl IntoIterator<Item = (&'a String, A)>,
    new: impl IntoIterator<Item = (&'a String, B)>,
    differ: impl Fn(&A, &B) -> bool,
) -> Vec<Change> {
    use std::cmp::Ordering;
    let mut changes = Vec::new();
    let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ko, _)), Some((kn, _))) => ko.cmp(kn),
        };
        match order {
            Ordering::Less => {
                if let Some((k, _)) = old.next() {
                    changes.push(Change::Removed { key: k.clone() });
                }
            }
            Ordering::Greater => {
                if let Some((k, _)) = new.next() {
                    changes.push(Change::Updated { key: k.clone() });
                }
            }
            Ordering::Equal => {
                if let (Some((_, a)), Some((k, b))) = (old.next(), new.next())
                    && differ(&a, &b)
                {
                    changes.push(Change::Updated { key: k.clone() });
                }
            }
        }
    }
    changes
}

impl Change {
    /// The key named by the change (`None` for [`Change::Resync`]).
    pub fn key(&self) -> Option<&str> {
        match self {
            Change::Updated { key } | Change::Removed { key } => Some(key),
            Change::Resync => None,
        }
    }

    /// True if a consumer holding `key` must treat it as changed.
    pub fn affects(&self, key: &str) -> bool {
        match self {
            Change::Updated { key: k } => k == key,
            Change::Removed { key: k } => {
                key == k || (key.starts_with(k.as_str()) && key[k.len()..].starts_with('/'))
            }
            Change::Resync => true,
        }
    }

    fn matches_prefix(&self, prefix: &str) -> bool {
        match self {
            Change::Updated { key } => key.starts_with(prefix),
            // A removed directory may cover keys under the prefix.
            Change::Removed { key } => key.starts_with(prefix) || prefix.starts_with(key.as_str()),
            Change::Resync => true,
        }
    }
}

/// Where a source delivers change events. Sources call it on their own
/// thread (a file watcher, a network task, the writer of a
/// [`MemorySource`](crate::MemorySource)), so it must return quickly and
/// never block.
#[derive(Clone)]
pub struct ChangeSink(Arc<dyn Fn(Change) + Send + Sync>);

impl ChangeSink {
    /// A sink calling `f` for every change.
    pub fn new(f: impl Fn(Change) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Delivers one change.
    pub fn send(&self, change: Change) {
        (self.0)(change);
    }
}

impl std::fmt::Debug for ChangeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeSink")
    }
}

/// Keeps a subscription alive: dropping it stops the events (the source
/// drops its sink).
#[must_use = "dropping the guard ends the subscription"]
pub struct WatchGuard {
    _keep: Vec<Box<dyn Send>>,
}

impl WatchGuard {
    /// A guard keeping `keep` (a watcher, a task handle, …) alive.
    pub fn new(keep: impl Send + 'static) -> Self {
        Self {
            _keep: vec![Box::new(keep)],
        }
    }

    /// A guard for a subscription that needs nothing kept alive.
    pub fn empty() -> Self {
        Self { _keep: Vec::new() }
    }

    /// One guard for several subscriptions.
    pub fn merge(guards: impl IntoIterator<Item = WatchGuard>) -> Self {
        Self {
            _keep: guards.into_iter().flat_map(|g| g._keep).collect(),
        }
    }
}

impl std::fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WatchGuard({} parts)", self._keep.len())
    }
}

/// A stream of change events from [`Source::watch`](crate::Source::watch),
/// readable from sync code ([`recv`](Watch::recv),
/// [`recv_timeout`](Watch::recv_timeout)) and from async code
/// ([`next`](Watch::next)). Events are queued without bound, so none is
/// dropped while the consumer is busy. Dropping the `Watch` ends the
/// subscription.
#[derive(Debug)]
pub struct Watch {
    rx: flume::Receiver<Change>,
    _guard: WatchGuard,
}

impl Watch {
    /// A watch fed by a channel; `guard` keeps the subscription alive.
    pub(crate) fn new(rx: flume::Receiver<Change>, guard: WatchGuard) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next change, blocking; `None` once the source has gone away.
    pub fn recv(&self) -> Option<Change> {
        self.rx.recv().ok()
    }

    /// The next change within `timeout`; `None` if none came in time or the
    /// source has gone away.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Change> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// A change that is already queued, without waiting.
    pub fn try_recv(&self) -> Option<Change> {
        self.rx.try_recv().ok()
    }

    /// The next change, awaiting it; `None` once the source has gone away.
    pub async fn next(&self) -> Option<Change> {
        self.rx.recv_async().await.ok()
    }
}

/// Sinks subscribed to one source, each with its key prefix.
#[derive(Default)]
pub(crate) struct Subscribers {
    list: Arc<Mutex<SubList>>,
}

#[derive(Default)]
struct SubList {
    next_id: u64,
    subs: Vec<(u64, String, ChangeSink)>,
}

/// Removes a subscription when dropped.
struct Unsubscribe {
    list: Weak<Mutex<SubList>>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(list) = self.list.upgrade() {
            let mut list = list.lock().unwrap_or_else(|p| p.into_inner());
            list.subs.retain(|(id, _, _)| *id != self.id);
        }
    }
}

impl Subscribers {
    /// Subscribes `sink` to changes under `prefix`.
    pub fn add(&self, prefix: &str, sink: ChangeSink) -> WatchGuard {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let id = list.next_id;
        list.next_id += 1;
        list.subs.push((id, prefix.to_owned(), sink));
        WatchGuard::new(Unsubscribe {
            list: Arc::downgrade(&self.list),
            id,
        })
    }

    /// Delivers `change` to every subscriber whose prefix it touches. The
    /// sinks are called outside the lock, so a sink may use the source.
    pub fn emit(&self, change: &Change) {
        let sinks: Vec<ChangeSink> = {
            let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
            list.subs
                .iter()
                .filter(|(_, prefix, _)| change.matches_prefix(prefix))
                .map(|(_, _, sink)| sink.clone())
                .collect()
        };
        for sink in sinks {
            sink.send(change.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_directory_affects_keys_below_it() {
        let gone = Change::Removed { key: "lib".into() };
        assert!(gone.affects("lib"));
        assert!(gone.affects("lib/a.lua"));
        assert!(!gone.affects("library.lua"));
        assert!(gone.matches_prefix("lib/"));
        let upd = Change::Updated {
            key: "a.lua".into(),
        };
        assert!(upd.affects("a.lua") && !upd.affects("a.luax"));
        assert!(Change::Resync.affects("anything"));
    }

    #[test]
    fn subscribers_filter_by_prefix_and_unsubscribe_on_drop() {
        let subs = Subscribers::default();
        let (tx, rx) = flume::unbounded();
        let guard = subs.add(
            "lib/",
            ChangeSink::new(move |c| {
                let _ = tx.send(c);
            }),
        );
        subs.emit(&Change::Updated {
            key: "main.lua".into(),
        });
        subs.emit(&Change::Updated {
            key: "lib/a.lua".into(),
        });
        assert_eq!(
            rx.try_recv().ok(),
            Some(Change::Updated {
                key: "lib/a.lua".into()
            })
        );
        assert!(rx.try_recv().is_err());
        drop(guard);
        subs.emit(&Change::Updated {
            key: "lib/b.lua".into(),
        });
        assert!(
            rx.try_recv().is_err(),
            "no events after the guard is dropped"
        );
    }
}
