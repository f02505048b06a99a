use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::watch::Subscribers;
use crate::{
    Change, ChangeSink, Script, Source, SourceError, WatchGuard, content_hash, validate_key,
};

/// Key → (code, content version).
type Scripts = BTreeMap<String, (Arc<[u8]>, u64)>;

#[derive(Default)]
struct Shared {
    scripts: RwLock<Scripts>,
    subscribers: Subscribers,
}

/// Scripts held in memory, changeable at run time; every change is reported
/// to watchers. Cheap to clone: clones share the same scripts.
#[derive(Clone, Default)]
pub struct MemorySource {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self
            .shared
            .scripts
            .read()
            .unwrap_or_else(|p| p.into_inner());
        f.debug_struct("MemorySource")
            .field("keys", &map.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the script under `key`; watchers see
    /// [`Change::Updated`] when the content differs.
    pub fn insert(&self, key: &str, code: impl AsRef<[u8]>) -> Result<(), SourceError> {
        validate_key(key)?;
        let code: Arc<[u8]> = code.as_ref().into();
        let version = content_hash(&code);
        let old = {
            let mut map = self
                .shared
                .scripts
                .write()
                .unwrap_or_else(|p| p.into_inner());
            map.insert(key.to_owned(), (code, version))
        };
        if old.is_none_or(|(_, v)| v != version) {
            self.shared.subscribers.emit(&Change::Updated {
                key: key.to_owned(),
            });
        }
        Ok(())
    }

    /// Builder form of [`MemorySource::insert`] for static setups.
    #[must_use]
    pub fn with(self, key: &str, code: impl AsRef<[u8]>) -> Self {
        if let Err(e) = self.insert(key, code) {
            tracing::warn!("MemorySource::with ignored a bad key: {e}");
        }
        self
    }

    /// Removes the script under `key`; true if it was there (watchers then
    /// see [`Change::Removed`]).
    pub fn remove(&self, key: &str) -> bool {
        let removed = self
            .shared
            .scripts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
            .is_some();
        if removed {
            self.shared.subscribers.emit(&Change::Removed {
                key: key.to_owned(),
            });
        }
        removed
    }
}

impl Source for MemorySource {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let map = self
            .shared
            .scripts
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let (code, version) = map.get(key).ok_or_else(|| SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        })?;
        Ok(Script {
            key: key.to_owned(),
            version: *version,
            code: Arc::clone(code),
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let map = self
            .shared
            .scripts
            .read()
            .unwrap_or_else(|p| p.into_inner());
        Ok(map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        Ok(self.shared.subscribers.add(prefix, sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_replace_remove() {
        let src = MemorySource::new().with("a.lua", "return 1");
        let v1 = src.get("a.lua").unwrap().version;
        src.insert("a.lua", "return 2").unwrap();
        assert_ne!(src.get("a.lua").unwrap().version, v1);
        assert!(src.insert("../a.lua", "x").is_err());
        assert!(src.remove("a.lua"));
        assert!(matches!(
            src.get("a.lua"),
            Err(SourceError::NotFound { .. })
        ));
    }

    #[test]
    fn watchers_see_inserts_and_removals_under_their_prefix() {
        let src = MemorySource::new().with("lib/a.lua", "return 1");
        let watch = src.watch("lib/").unwrap();
        src.insert("main.lua", "return 0").unwrap();
        src.insert("lib/a.lua", "return 1").unwrap(); // same content: no event
        src.insert("lib/a.lua", "return 2").unwrap();
        src.remove("lib/a.lua");
        assert_eq!(
            watch.try_recv(),
            Some(Change::Updated {
                key: "lib/a.lua".into()
            })
        );
        assert_eq!(
            watch.try_recv(),
            Some(Change::Removed {
                key: "lib/a.lua".into()
            })
        );
        assert_eq!(watch.try_recv(), None);
    }
}
