//! Where scripts come from. A [`Source`] maps a key (a relative path such as
//! `lib/util.lua`) to the script's bytes and a version, so a runtime can cache
//! compiled code per `(key, version)` and notice changes.
//!
//! This crate depends on no other Troupe crate: sources know bytes and keys,
//! not engines or processes.

mod file;
mod memory;

use std::sync::Arc;

pub use file::FileSource;
pub use memory::MemorySource;

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
    /// The source could not be read (IO error, server down).
    #[error("{source_name} is unavailable: {reason}")]
    Unavailable {
        /// The source that failed.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
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

/// A place scripts are read from. Implementations are cheap to share and
/// answer without blocking for long: remote sources serve from a local copy.
pub trait Source: Send + Sync + 'static {
    /// A short name for errors, e.g. `file:/srv/scripts`.
    fn name(&self) -> String;

    /// The script under `key`.
    fn get(&self, key: &str) -> Result<Script, SourceError>;

    /// The keys that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError>;
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
