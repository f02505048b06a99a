use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::{Script, Source, SourceError, content_hash, validate_key};

/// Key → (code, content version).
type Scripts = BTreeMap<String, (Arc<[u8]>, u64)>;

/// Scripts held in memory, changeable at run time. Cheap to clone: clones
/// share the same scripts.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    scripts: Arc<RwLock<Scripts>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the script under `key`.
    pub fn insert(&self, key: &str, code: impl AsRef<[u8]>) -> Result<(), SourceError> {
        validate_key(key)?;
        let mut map = self.scripts.write().unwrap_or_else(|p| p.into_inner());
        let code: Arc<[u8]> = code.as_ref().into();
        let version = content_hash(&code);
        map.insert(key.to_owned(), (code, version));
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

    /// Removes the script under `key`; true if it was there.
    pub fn remove(&self, key: &str) -> bool {
        self.scripts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
            .is_some()
    }
}

impl Source for MemorySource {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let map = self.scripts.read().unwrap_or_else(|p| p.into_inner());
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
        let map = self.scripts.read().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
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
}
