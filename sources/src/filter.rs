use std::sync::Arc;

use globset::{GlobSet, GlobSetBuilder};

use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// A glob pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad glob pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Another source with only the keys matching glob patterns visible: `get`
/// of any other key is [`SourceError::NotFound`], `list` leaves them out
/// and `watch` does not report their updates. Built with
/// [`FilterSource::glob`]; it composes with the other wrappers, e.g.
/// `TransformSource::gunzip(FilterSource::glob(zip, ["**/*.lua.gz"])?)`.
#[derive(Clone)]
pub struct FilterSource {
    inner: Arc<dyn Source>,
    patterns: Arc<[String]>,
    set: Arc<GlobSet>,
}

impl std::fmt::Debug for FilterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl FilterSource {
    /// Shows the keys of `inner` matching any of `patterns`. Patterns are
    /// globset globs over the whole key: `*` and `?` stay within one `/`
    /// segment (`*.lua` matches `a.lua`, not `lib/a.lua`), `**` spans
    /// segments (`**/*.lua`, `lib/**`), plus `[abc]` classes and `{a,b}`
    /// alternatives. No pattern shows nothing.
    pub fn glob<I, P>(inner: impl Source, patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| PatternError {
                    pattern: pattern.to_owned(),
                    reason: e.kind().to_string(),
                })?;
            builder.add(glob);
            kept.push(pattern.to_owned());
        }
        let set = builder.build().map_err(|e| PatternError {
            pattern: kept.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(inner),
            patterns: kept.into(),
            set: Arc::new(set),
        })
    }

    /// True if `key` is visible through the filter.
    pub fn matches(&self, key: &str) -> bool {
        self.set.is_match(key)
    }
}

impl Source for FilterSource {
    fn name(&self) -> String {
        format!("glob[{}]({})", self.patterns.join(", "), self.inner.name())
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        if !self.matches(key) {
            return Err(SourceError::NotFound {
                key: key.to_owned(),
                source_name: self.name(),
            });
        }
        self.inner.get(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let mut keys = self.inner.list(prefix)?;
        keys.retain(|k| self.matches(k));
        Ok(keys)
    }

    /// The inner source's changes of visible keys. A removal is passed on
    /// even for a key that does not match, since it may name a directory
    /// holding visible keys (a [`FileSource`](crate::FileSource) reports a
    /// removed directory once); [`Change::Resync`] is passed on.
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let set = Arc::clone(&self.set);
        self.inner.subscribe(
            prefix,
            ChangeSink::new(move |change| {
                let pass = match &change {
                    Change::Updated { key } => set.is_match(key),
                    _ => true,
                };
                if pass {
                    sink.send(change);
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySource;

    #[test]
    fn star_stays_in_one_segment_and_bad_patterns_are_errors() {
        let mem = MemorySource::new()
            .with("a.lua", "1")
            .with("lib/b.lua", "2")
            .with("c.txt", "3");
        let top = FilterSource::glob(mem.clone(), ["*.lua"]).unwrap();
        assert_eq!(top.list("").unwrap(), vec!["a.lua"]);
        let all = FilterSource::glob(mem, ["**/*.lua"]).unwrap();
        assert_eq!(all.list("").unwrap(), vec!["a.lua", "lib/b.lua"]);
        let err = FilterSource::glob(MemorySource::new(), ["a[.lua"]).unwrap_err();
        assert_eq!(err.pattern, "a[.lua");
        assert!(err.to_string().contains("bad glob pattern"), "{err}");
    }
}
