use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// Scripts compiled into the binary. Build one from a static table, or with
/// [`embed_scripts!`](crate::embed_scripts), which reads the files at
/// compile time:
///
/// ```
/// use troupe_sources::{EmbeddedSource, Source};
///
/// static SCRIPTS: &[(&str, &[u8])] = &[("main.lua", b"return 1")];
/// let src = EmbeddedSource::new(SCRIPTS)?;
/// assert_eq!(&*src.get("main.lua")?.code, b"return 1");
/// # Ok::<(), troupe_sources::SourceError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EmbeddedSource {
    scripts: Arc<BTreeMap<&'static str, Script>>,
}

impl EmbeddedSource {
    /// A source over `(key, bytes)` pairs; every key must be valid
    /// ([`validate_key`]) and appear once.
    pub fn new(entries: &'static [(&'static str, &'static [u8])]) -> Result<Self, SourceError> {
        let mut scripts = BTreeMap::new();
        for (key, code) in entries {
            validate_key(key)?;
            let script = Script::from_content(*key, *code);
            if scripts.insert(*key, script).is_some() {
                return Err(SourceError::InvalidKey {
                    key: (*key).to_owned(),
                    reason: "embedded twice".to_owned(),
                });
            }
        }
        Ok(Self {
            scripts: Arc::new(scripts),
        })
    }
}

/// Embeds script files into the binary as an
/// [`EmbeddedSource`](crate::EmbeddedSource):
/// `embed_scripts!("scripts", ["main.lua", "lib/util.lua"])` reads
/// `scripts/main.lua` and `scripts/lib/util.lua` (relative to the file the
/// macro is used in, like `include_bytes!`) and serves them under the keys
/// `main.lua` and `lib/util.lua`. Evaluates to
/// `Result<EmbeddedSource, SourceError>`.
#[macro_export]
macro_rules! embed_scripts {
    ($dir:literal, [$($key:literal),* $(,)?]) => {
        $crate::EmbeddedSource::new(&[
            $(($key, include_bytes!(concat!($dir, "/", $key)) as &'static [u8])),*
        ])
    };
}

impl Source for EmbeddedSource {
    fn name(&self) -> String {
        "embedded".to_owned()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        self.scripts
            .get(key)
            .cloned()
            .ok_or_else(|| SourceError::NotFound {
                key: key.to_owned(),
                source_name: self.name(),
            })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        Ok(self
            .scripts
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(|k| (*k).to_owned())
            .collect())
    }

    /// Embedded scripts never change: the subscription succeeds and reports
    /// nothing (a [`Watch`](crate::Watch) on it ends at once).
    fn subscribe(&self, _prefix: &str, _sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        Ok(WatchGuard::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_files_embedded_at_compile_time() {
        let src = crate::embed_scripts!("../tests/scripts", ["hello.lua", "lib/util.lua"]).unwrap();
        assert_eq!(src.list("").unwrap(), vec!["hello.lua", "lib/util.lua"]);
        assert_eq!(
            &*src.get("lib/util.lua").unwrap().code,
            include_bytes!("../tests/scripts/lib/util.lua")
        );
        assert!(matches!(
            src.get("nope.lua"),
            Err(SourceError::NotFound { .. })
        ));
        assert!(matches!(
            EmbeddedSource::new(&[("../x.lua", b"")]),
            Err(SourceError::InvalidKey { .. })
        ));
    }
}
