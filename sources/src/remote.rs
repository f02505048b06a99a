//! What the networked sources (Redis, SQL, object stores) share: naming a server without
//! its credentials, one-line error text, and a lock that outlives a panic.

#[cfg(any(feature = "redis", feature = "sql"))]
use std::sync::{Mutex, MutexGuard};

/// `url` without `user:password@` and without its query or fragment (which
/// may hold a password too), for naming a server in errors and logs.
pub(crate) fn without_userinfo(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// `e` and its causes on one line, each cause once (client errors often
/// repeat their cause in their own message).
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(any(feature = "redis", feature = "sql"))]
/// Locks `m`, also after a panic of another holder (the state it guards
/// stays usable: a connection slot or a list of idle connections).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            without_userinfo("redis://user:s3cret@host:6379/2"),
            "redis://host:6379/2"
        );
        assert_eq!(without_userinfo("redis://:p@ss@h"), "redis://h");
        assert_eq!(
            without_userinfo("postgres://u:s3cret@h:5432/db?password=x"),
            "postgres://h:5432/db"
        );
        assert_eq!(without_userinfo("nonsense"), "nonsense");
    }
}
