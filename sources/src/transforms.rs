//! The built-in transforms (feature `transforms`): decompression (gzip,
//! zstd), bounded in output, and AES-256-GCM decryption with a [`Key`] read
//! from a file or the environment.

use std::io::Read;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use flate2::read::MultiGzDecoder;
use ruzstd::decoding::StreamingDecoder;
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use zeroize::Zeroizing;

use crate::{Source, TransformSource};

/// The largest script a decompressing transform produces by default (16 MiB).
pub const DEFAULT_MAX_DECOMPRESSED: usize = 16 * 1024 * 1024;

/// The length of the nonce in front of an AES-256-GCM encrypted script.
const NONCE_LEN: usize = 12;
/// The length of the authentication tag at its end.
const TAG_LEN: usize = 16;

/// The reason given for an output over the limit.
fn too_large(limit: usize) -> String {
    format!("decompresses to more than the limit of {limit} bytes")
}

/// Reads `reader` to its end, failing once it yields more than `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let room = limit.saturating_sub(out.len());
    let take = u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1);
    let before = out.len();
    reader
        .take(take)
        .read_to_end(out)
        .map_err(|e| e.to_string())?;
    if out.len().saturating_sub(before) > room {
        return Err(too_large(limit));
    }
    Ok(())
}

/// Decompresses gzip data (one member or several, concatenated) into at
/// most `limit` bytes.
fn gunzip_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    read_bounded(MultiGzDecoder::new(data), limit, &mut out).map_err(|e| {
        if e.starts_with("decompresses") {
            e
        } else {
            format!("not valid gzip data: {e}")
        }
    })?;
    Ok(out)
}

/// Decompresses zstd data (frames, skippable frames ignored) into at most
/// `limit` bytes. A frame may ask for a window of at most `limit` (rounded
/// up to a power of two, at least 8 MiB, at most ruzstd's default 128 MiB),
/// which bounds what the decoder allocates.
fn unzstd_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let window = u64::try_from(limit)
        .unwrap_or(u64::MAX)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX)
        .clamp(8 << 20, ruzstd::decoding::DEFAULT_MAX_WINDOW_SIZE);
    let mut input = data;
    let mut out = Vec::new();
    let bad = |e: &dyn std::fmt::Display| format!("not valid zstd data: {e}");
    while !input.is_empty() {
        let frame = match StreamingDecoder::new_with_max_window_size(&mut input, window) {
            Ok(frame) => frame,
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                input = usize::try_from(length)
                    .ok()
                    .and_then(|n| input.get(n..))
                    .ok_or_else(|| bad(&"a skippable frame runs past the end"))?;
                continue;
            }
            Err(e) => return Err(bad(&e)),
        };
        read_bounded(frame, limit, &mut out).map_err(|e| {
            if e.starts_with("decompresses") {
                e
            } else {
                bad(&e)
            }
        })?;
    }
    Ok(out)
}

/// An AES-256 key: 32 bytes, wiped from memory when dropped, never shown by
/// `Debug`.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// Why a [`Key`] could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the key file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        reason: String,
    },
    /// The environment variable is not set.
    #[error("the environment variable {var} holding the key is not set")]
    MissingVar {
        /// The variable.
        var: String,
    },
    /// The content is not a key.
    #[error("{origin} is not an AES-256 key: {reason}")]
    Malformed {
        /// Where it came from (`key file /etc/…`, `$VAR`).
        origin: String,
        /// What is wrong (never the key material).
        reason: String,
    },
}

impl Key {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(Zeroizing::new(bytes))
    }

    /// A key from 32 raw bytes, or 64 hex digits (surrounding whitespace,
    /// e.g. a final newline, ignored). `origin` names the place in errors.
    fn parse(bytes: &[u8], origin: String) -> Result<Self, KeyError> {
        let malformed = |reason: String| KeyError::Malformed {
            origin: origin.clone(),
            reason,
        };
        if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
            return Ok(Key::from_bytes(raw));
        }
        let text = bytes.trim_ascii();
        if text.len() != 64 {
            return Err(malformed(format!(
                "expected 32 raw bytes or 64 hex digits, got {} bytes",
                bytes.len()
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, &mut key[..])
            .map_err(|_| malformed("64 characters but not all hex digits".to_owned()))?;
        Ok(Key(key))
    }

    /// Reads a key from 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        if hex.trim().len() != 64 {
            return Err(KeyError::Malformed {
                origin: "the hex key".to_owned(),
                reason: format!("expected 64 hex digits, got {}", hex.trim().len()),
            });
        }
        Self::parse(hex.as_bytes(), "the hex key".to_owned())
    }

    /// Reads a key from a file holding 32 raw bytes or 64 hex digits
    /// (a final newline is fine).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| KeyError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?);
        Self::parse(&bytes, format!("the key file {}", path.display()))
    }

    /// Reads a key from the environment variable `var`: 64 hex digits (or,
    /// on Unix, 32 raw bytes).
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let value = std::env::var_os(var).ok_or_else(|| KeyError::MissingVar {
            var: var.to_owned(),
        })?;
        let bytes = Zeroizing::new(value.into_encoded_bytes());
        Self::parse(&bytes, format!("${var}"))
    }
}

impl TransformSource {
    /// Decompresses `inner`'s gzip-compressed scripts; a script that is not
    /// gzip data, or decompresses to more than 16 MiB, is
    /// [`BadContent`](crate::SourceError::BadContent). Keys are unchanged
    /// (a script stored as `a.lua.gz` is asked for as `a.lua.gz`).
    pub fn gunzip(inner: impl Source) -> Self {
        Self::gunzip_with_limit(inner, DEFAULT_MAX_DECOMPRESSED)
    }

    /// [`gunzip`](Self::gunzip) with at most `max_bytes` of output.
    pub fn gunzip_with_limit(inner: impl Source, max_bytes: usize) -> Self {
        Self::new(inner, "gunzip", move |_, code| {
            gunzip_bounded(code, max_bytes)
        })
    }

    /// Decompresses `inner`'s zstd-compressed scripts (with the pure-Rust
    /// ruzstd decoder); a script that is not zstd data, or decompresses to
    /// more than 16 MiB, is [`BadContent`](crate::SourceError::BadContent).
    pub fn zstd(inner: impl Source) -> Self {
        Self::zstd_with_limit(inner, DEFAULT_MAX_DECOMPRESSED)
    }

    /// [`zstd`](Self::zstd) with at most `max_bytes` of output.
    pub fn zstd_with_limit(inner: impl Source, max_bytes: usize) -> Self {
        Self::new(inner, "zstd", move |_, code| {
            unzstd_bounded(code, max_bytes)
        })
    }

    /// Decrypts `inner`'s scripts with AES-256-GCM under `key`. A script is
    /// a 12-byte nonce followed by the ciphertext and its 16-byte tag; one
    /// that fails authentication (tampered, or encrypted under another key)
    /// is [`BadContent`](crate::SourceError::BadContent) ("authentication
    /// failed") and nothing of it is returned. The script's key is not
    /// authenticated: whoever can write the store can swap two encrypted
    /// scripts (each still decrypts).
    pub fn decrypt_aes256gcm(inner: impl Source, key: &Key) -> Self {
        let cipher = Aes256Gcm::new(&(*key.0).into());
        Self::new(inner, "aes256gcm", move |_, code| {
            if code.len() < NONCE_LEN + TAG_LEN {
                return Err(format!(
                    "too short for AES-256-GCM ({} bytes; a nonce and a tag take {})",
                    code.len(),
                    NONCE_LEN + TAG_LEN
                ));
            }
            let (nonce, sealed) = code.split_at(NONCE_LEN);
            let nonce = Nonce::try_from(nonce).map_err(|_| "bad nonce length".to_owned())?;
            cipher.decrypt(&nonce, sealed).map_err(|_| {
                "authentication failed (tampered, or encrypted with another key)".to_owned()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_raw_bytes_and_hex_only() {
        let raw = [7u8; 32];
        let hex_text = format!("{}\n", hex::encode(raw));
        let from_raw = Key::parse(&raw, "raw".into()).unwrap();
        let from_hex = Key::parse(hex_text.as_bytes(), "hex".into()).unwrap();
        assert_eq!(*from_raw.0, *from_hex.0);
        assert!(Key::from_hex(&"zz".repeat(32)).is_err());
        assert!(Key::parse(&[1u8; 31], "short".into()).is_err());
        assert_eq!(format!("{from_raw:?}"), "Key(…)");
    }

    #[test]
    fn truncated_streams_are_errors() {
        assert!(gunzip_bounded(b"\x1f\x8b\x08", 100).is_err());
        assert!(unzstd_bounded(b"\x28\xb5\x2f\xfd", 100).is_err());
    }
}
