//! Where scripts come from. A [`Source`] maps a key (a relative path such as
//! `lib/util.lua`) to the script's bytes and a version, so a runtime can cache
//! compiled code per `(key, version)` and notice changes; sources that can
//! tell when scripts change [`watch`](Source::watch) them, which is what hot
//! reload is built on.
//!
//! | source | scripts live in | watch |
//! |---|---|---|
//! | [`FileSource`] | a directory (traversal- and symlink-safe; contents cached, validated by file stamps) | notify, debounced |
//! | [`MemorySource`] | a map changed at run time | on every insert/remove |
//! | [`EmbeddedSource`] | the binary ([`embed_scripts!`]) | never changes |
//! | [`HttpSource`] | `GET base_url/key`, revalidated with ETags; `list` reads an index document (`index.json`, a JSON array of keys) | polling (2 s): the index and the scripts served or listed, revalidated with ETags (at most 100 scripts a poll, taking turns); what changed while the server was down is reported once it answers |
//! | `EtcdSource` (feature `etcd`) | etcd keys under a prefix | etcd watch, resumed by revision |
//! | `RedisSource` (feature `redis`) | Redis string keys under a prefix | keyspace notifications (or a `PREFIX__changes` channel); after a reconnect, a re-list diffed against what was known |
//! | `SqlSource` (feature `sql`) | rows `(key, code, version)` of an SQLite or PostgreSQL table | PostgreSQL: `LISTEN`/`NOTIFY` from a trigger, and after a reconnect a re-list diffed by `version`; SQLite: polling |
//! | `ObjectStoreSource` (feature `object-store`) | objects under a prefix in S3 (`s3`, credentials from the environment), a local directory (`local`) or any `object_store::ObjectStore` (`new`: GCS, Azure, …); scripts up to 16 MiB | polling: a listing (ETag, last-modified, size) every 2 s diffed against the last one, so what changed while the store was down is reported once it answers |
//! | `ZipSource` / `TarGzSource` (feature `archive`) | a zip / .tar.gz file, read into memory (no entry escaping it, no links, sizes bounded by `ArchiveLimits`) | the file's directory (notify, debounced) and a stamp check each second; changes are the diff of the old and new index |
//! | `GitSource` (feature `git`) | a local Git repository (bare or a checkout): the tree at a branch, tag or commit id, under a subdirectory (no links or submodules, scripts up to 16 MiB) | the reference, polled; a new commit's tree diffed against the old (a commit id never moves) |
//! | [`LayeredSource`] | several sources ([`LayerStrategy::Fallback`] in order / [`LayerStrategy::FirstOk`] raced) | all layers |
//! | [`CachedSource`] | a copy of another source (TTL, size bound) | the inner source's |
//! | [`TransformSource`] | another source, bytes rewritten (feature `transforms`: `gunzip`, `zstd`, `decrypt_aes256gcm` with a `Key`, output bounded) | the inner source's |
//! | `FilterSource` (feature `transforms`) | another source, only keys matching glob patterns | the inner source's, filtered |
//!
//! This crate depends on no other Troupe crate: sources know bytes and keys,
//! not engines or processes.

#[cfg(feature = "archive")]
mod archive;
mod background;
mod cached;
mod embedded;
#[cfg(feature = "etcd")]
mod etcd;
mod file;
mod file_cache;
#[cfg(feature = "transforms")]
mod filter;
#[cfg(feature = "git")]
mod git;
mod http;
mod layered;
mod memory;
#[cfg(feature = "object-store")]
mod object_store;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "redis", feature = "sql", feature = "object-store"))]
mod remote;
#[cfg(feature = "sql")]
mod sql;
mod transform;
#[cfg(feature = "transforms")]
mod transforms;
mod watch;

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "archive")]
pub use archive::{ArchiveLimits, TarGzSource, ZipSource};
pub use cached::CachedSource;
pub use embedded::EmbeddedSource;
#[cfg(feature = "etcd")]
pub use etcd::EtcdSource;
pub use file::FileSource;
#[cfg(feature = "transforms")]
pub use filter::{FilterSource, PatternError};
#[cfg(feature = "git")]
pub use git::GitSource;
pub use http::HttpSource;
pub use layered::{LayerStrategy, LayeredSource};
pub use memory::MemorySource;
#[cfg(feature = "object-store")]
pub use object_store::ObjectStoreSource;
#[cfg(feature = "redis")]
pub use redis::RedisSource;
#[cfg(feature = "sql")]
pub use sql::SqlSource;
pub use transform::TransformSource;
#[cfg(feature = "transforms")]
pub use transforms::{DEFAULT_MAX_DECOMPRESSED, Key, KeyError};
pub use watch::{Change, ChangeSink, Watch, WatchGuard};

/// Why a source could not deliver a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No script under this key.
    #[error("script {key:?} not found in {source_name}")]
    NotFound {
        /// The key asked for.
        key: String,
        /// The source that was asked.
        source_name: String,
    },
    /// The key is malformed or escapes the source's root.
    #[error("invalid script key {key:?}: {reason}")]
    InvalidKey {
        /// The key asked for.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The source could not be read (IO error, server down). Retryable.
    #[error("{source_name} is unavailable: {reason}")]
    Unavailable {
        /// The source that failed.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The source's server gave no answer within the deadline (it hangs,
    /// or is too slow). Retryable.
    #[error("{source_name} gave no answer within {after:?}")]
    TimedOut {
        /// The source that did not answer.
        source_name: String,
        /// The deadline.
        after: Duration,
    },
    /// The script was read but its content was rejected (e.g. by a
    /// [`TransformSource`]).
    #[error("script {key:?} from {source_name} was rejected: {reason}")]
    BadContent {
        /// The key asked for.
        key: String,
        /// The source that rejected it.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The source cannot do this (e.g. watch, or list over HTTP).
    #[error("{source_name} does not support {operation}")]
    Unsupported {
        /// The source asked.
        source_name: String,
        /// The operation, e.g. `watch`.
        operation: &'static str,
    },
}

impl SourceError {
    /// `Unavailable` for `source_name`, because of `reason`.
    pub fn unavailable(source_name: impl Into<String>, reason: impl ToString) -> Self {
        SourceError::Unavailable {
            source_name: source_name.into(),
            reason: reason.to_string(),
        }
    }

    /// `TimedOut` for `source_name`, after `after`.
    pub fn timed_out(source_name: impl Into<String>, after: Duration) -> Self {
        SourceError::TimedOut {
            source_name: source_name.into(),
            after,
        }
    }

    /// The source the error comes from, if it names one.
    pub fn source_name(&self) -> Option<&str> {
        match self {
            SourceError::NotFound { source_name, .. }
            | SourceError::Unavailable { source_name, .. }
            | SourceError::TimedOut { source_name, .. }
            | SourceError::BadContent { source_name, .. }
            | SourceError::Unsupported { source_name, .. } => Some(source_name),
            SourceError::InvalidKey { .. } => None,
        }
    }

    /// True if asking again later may succeed (the source is down or
    /// hangs).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SourceError::Unavailable { .. } | SourceError::TimedOut { .. }
        )
    }
}

/// A script's content and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The key it was read under.
    pub key: String,
    /// Its bytes.
    pub code: Arc<[u8]>,
    /// An opaque version: equal versions mean equal content.
    pub version: u64,
}

impl Script {
    /// A script whose version is the hash of its content.
    pub fn from_content(key: impl Into<String>, code: impl Into<Arc<[u8]>>) -> Self {
        let code = code.into();
        Self {
            key: key.into(),
            version: content_hash(&code),
            code,
        }
    }
}

/// A place scripts are read from. Implementations are cheap to share. `get`
/// and `list` are synchronous; remote sources wait for their server with a
/// timeout, so put a [`CachedSource`] in front of them on hot paths.
pub trait Source: Send + Sync + 'static {
    /// A short name for errors, e.g. `file:/srv/scripts`.
    fn name(&self) -> String;

    /// The script under `key`.
    fn get(&self, key: &str) -> Result<Script, SourceError>;

    /// The keys that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError>;

    /// Delivers changes of keys starting with `prefix` to `sink` until the
    /// returned guard is dropped. Sources that cannot watch return
    /// [`SourceError::Unsupported`] (the default).
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let _ = (prefix, sink);
        Err(SourceError::Unsupported {
            source_name: self.name(),
            operation: "watch",
        })
    }

    /// Changes of keys starting with `prefix` as a [`Watch`] stream, usable
    /// from sync and async code.
    fn watch(&self, prefix: &str) -> Result<Watch, SourceError> {
        let (tx, rx) = flume::unbounded();
        let guard = self.subscribe(
            prefix,
            ChangeSink::new(move |change| {
                // Fails only once the Watch (and with it the guard) is gone.
                let _ = tx.send(change);
            }),
        )?;
        Ok(Watch::new(rx, guard))
    }
}

impl Source for Arc<dyn Source> {
    fn name(&self) -> String {
        (**self).name()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        (**self).get(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        (**self).list(prefix)
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        (**self).subscribe(prefix, sink)
    }
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` segments, no
/// backslashes or NUL bytes.
pub fn validate_key(key: &str) -> Result<(), SourceError> {
    let bad = |reason: &str| {
        Err(SourceError::InvalidKey {
            key: key.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if key.is_empty() {
        return bad("empty key");
    }
    if key.starts_with('/') {
        return bad("absolute keys are not allowed");
    }
    if key.contains('\0') || key.contains('\\') {
        return bad("NUL bytes and backslashes are not allowed");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("empty, '.' and '..' segments are not allowed");
    }
    Ok(())
}

/// Joins `relative` onto the directory of `base` (`lib/a.lua` + `b.lua` →
/// `lib/b.lua`), resolving `..` without leaving the root. Absolute paths
/// (starting with `/`) are taken from the root.
pub fn resolve_relative(base: &str, relative: &str) -> Result<String, SourceError> {
    let mut parts: Vec<&str> = if relative.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = base.split('/').collect();
        p.pop();
        p
    };
    for seg in relative.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(SourceError::InvalidKey {
                        key: relative.to_owned(),
                        reason: "escapes the source root".to_owned(),
                    });
                }
            }
            s => parts.push(s),
        }
    }
    let key = parts.join("/");
    validate_key(&key)?;
    Ok(key)
}

/// A stable 64-bit FNV-1a hash, used for content versions.
pub(crate) fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a\\b",
            "a\0b",
            "./a",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key("lib/a.lua").is_ok());
        assert_eq!(resolve_relative("lib/a.lua", "b.lua").unwrap(), "lib/b.lua");
        assert_eq!(resolve_relative("lib/a.lua", "../c.lua").unwrap(), "c.lua");
        assert_eq!(resolve_relative("a.lua", "sub/x.lua").unwrap(), "sub/x.lua");
        assert_eq!(
            resolve_relative("lib/a.lua", "/top.lua").unwrap(),
            "top.lua"
        );
        assert!(resolve_relative("a.lua", "../x.lua").is_err());
    }
}
