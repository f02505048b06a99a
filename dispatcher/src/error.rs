use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Value;

/// What went wrong, in the vocabulary every script, host and journal shares.
/// The text form (`NOT_FOUND`, …) is what scripts compare against.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist (module, process, key, file).
    NotFound,
    /// The thing to create exists already (a registered name, a key).
    AlreadyExists,
    /// Bad input: a wrong argument, a syntax error, a malformed value.
    Invalid,
    /// The policy forbids it.
    PermissionDenied,
    /// A dependency is down or not reachable; usually worth a retry.
    Unavailable,
    /// A bug or an unexpected failure, including a script's runtime error.
    Internal,
    /// The operation was cancelled (process killed, runtime shut down).
    Canceled,
    /// A concurrent change got there first.
    Conflict,
    /// A deadline passed (receive timeout, wall-clock limit).
    Timeout,
    /// A bound was hit that frees up with time (full mailbox, busy pool).
    RateLimited,
    /// A hard per-process limit was exceeded (memory, instructions).
    LimitExceeded,
    /// A workflow replay diverged from its journal.
    Nondeterminism,
    /// Anything else.
    Unknown,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 13] = [
        Self::NotFound,
        Self::AlreadyExists,
        Self::Invalid,
        Self::PermissionDenied,
        Self::Unavailable,
        Self::Internal,
        Self::Canceled,
        Self::Conflict,
        Self::Timeout,
        Self::RateLimited,
        Self::LimitExceeded,
        Self::Nondeterminism,
        Self::Unknown,
    ];

    /// The constant scripts see, e.g. `"NOT_FOUND"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::Invalid => "INVALID",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::Canceled => "CANCELED",
            Self::Conflict => "CONFLICT",
            Self::Timeout => "TIMEOUT",
            Self::RateLimited => "RATE_LIMITED",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::Nondeterminism => "NONDETERMINISM",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Parses the constant form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether errors of this kind are worth retrying by default.
    pub const fn default_retryable(self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::Timeout | Self::RateLimited | Self::Conflict
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A structured error: a kind, a message, whether a retry may help, and
/// optional details. Displays as `KIND: message`, exactly what a script's
/// `tostring(err)` gives and what the CLI prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

impl Error {
    /// An error of `kind`; retryable as the kind suggests.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: kind.default_retryable(),
            details: None,
        }
    }

    /// Overrides whether a retry may help.
    #[must_use]
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Attaches structured details (a traceback, the offending key, …).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// The error as a map `{kind, message, retryable, details?}`, the form it
    /// takes inside messages (exit reasons) and JSON output.
    pub fn to_value(&self) -> Value {
        let mut map = std::collections::BTreeMap::new();
        map.insert("kind".to_owned(), Value::from(self.kind.as_str()));
        map.insert("message".to_owned(), Value::from(self.message.as_str()));
        map.insert("retryable".to_owned(), Value::Bool(self.retryable));
        if let Some(d) = &self.details {
            map.insert("details".to_owned(), d.clone());
        }
        Value::Map(map)
    }

    /// Shorthand for `Error::new(ErrorKind::Invalid, msg)`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// Shorthand for `Error::new(ErrorKind::NotFound, msg)`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for `Error::new(ErrorKind::Internal, msg)`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Shorthand for `Error::new(ErrorKind::PermissionDenied, msg)`.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_constant_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("nope"), None);
    }

    #[test]
    fn display_is_kind_colon_message() {
        let e = Error::new(ErrorKind::Timeout, "too slow");
        assert_eq!(e.to_string(), "TIMEOUT: too slow");
        assert!(e.is_retryable());
        assert!(!Error::invalid("x").is_retryable());
        assert!(!e.clone().retryable(false).is_retryable());
    }
}
