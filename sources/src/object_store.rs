use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use ::object_store::local::LocalFileSystem;
use ::object_store::path::Path;
use ::object_store::{BackoffConfig, GetOptions, ObjectMeta, ObjectStore, RetryConfig};
use futures_util::StreamExt;

use crate::background::{AbortOnDrop, Background};
use crate::remote::{describe, without_userinfo};
use crate::watch::differences;
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// How long a `get` or `list` may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a watch lists the objects by default.
const DEFAULT_POLL: Duration = Duration::from_secs(2);
/// The largest script `get` reads by default.
const DEFAULT_MAX_SIZE: u64 = 16 * 1024 * 1024;
/// How often the S3 client retries a failed request (a connection refused,
/// a 5xx) before giving up; a source's deadline cuts retries short too.
const S3_RETRIES: usize = 3;

/// Scripts stored as objects in S3, a local directory, or any other store
/// the [`object_store`](https://docs.rs/object_store) crate speaks (GCS,
/// Azure, … through [`new`](Self::new)): key `lib/util.lua` is the object
/// `{prefix}/lib/util.lua`.
///
/// A [`Script`]'s version is the hash of its content (whatever the store's
/// ETags are: a multipart upload's ETag is no content hash), so equal
/// content has an equal version. A script larger than
/// [`max_script_size`](Self::max_script_size) (16 MiB by default) is
/// [`SourceError::BadContent`], checked from the response's headers before
/// its body is read, and the read stops there if the body is longer than
/// they said. Every `get` and `list` has a deadline (5 s by default,
/// [`timeout`](Self::timeout)): a store that is down or hangs gives
/// [`SourceError::Unavailable`] naming the source, never a credential.
///
/// Object stores have no change notifications a client can rely on, so a
/// watch lists the watched objects every [`poll_interval`](Self::poll_interval)
/// (2 s by default) with their ETag, last-modified time and size, and
/// reports the objects added or changed (`Updated`) and removed (`Removed`)
/// since the last listing. A listing that fails (the store is down) is
/// retried at the next poll, and the first one that succeeds reports
/// everything that changed meanwhile. A watch started while the store is
/// unreachable reports [`Change::Resync`] once a listing succeeds. Cheap to
/// clone.
#[derive(Clone)]
pub struct ObjectStoreSource {
    timeout: Duration,
    poll: Duration,
    max_size: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ObjectStoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shared.name)
    }
}

struct Shared {
    name: String,
    store: Arc<dyn ObjectStore>,
    /// The object path prefix without a trailing `/` (`""`: the root).
    prefix: String,
    bg: Background,
}

/// What a listing remembers of an object to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    e_tag: Option<String>,
    version: Option<String>,
    /// Last modified, in nanoseconds since the epoch.
    modified: Option<i64>,
    size: u64,
}

impl Stamp {
    fn of(meta: &ObjectMeta) -> Self {
        Self {
            e_tag: meta.e_tag.clone(),
            version: meta.version.clone(),
            modified: meta.last_modified.timestamp_nanos_opt(),
            size: meta.size,
        }
    }
}

/// Why a request to the store failed.
enum Failure {
    Timeout,
    Store(::object_store::Error),
    TooLarge(u64),
    Stopped,
}

impl ObjectStoreSource {
    /// A source over the objects under `prefix` (e.g. `troupe/scripts`) in
    /// the S3 bucket `bucket`. Credentials and settings come from the
    /// environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
    /// `AWS_ENDPOINT` (overridden by `endpoint`, for S3-compatible servers
    /// such as MinIO) and the other `AWS_*` variables object_store knows.
    /// Requests are path-style; plain HTTP is allowed for an endpoint on a
    /// loopback address (or with `AWS_ALLOW_HTTP=true`). Does not connect
    /// yet; fails only on a bad configuration. Named `s3://bucket/prefix`,
    /// with the endpoint (without credentials) if one is set.
    pub fn s3(bucket: &str, prefix: &str, endpoint: Option<&str>) -> Result<Self, SourceError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        let mut name = format!("s3://{bucket}/{}", trim_prefix(prefix));
        if let Some(endpoint) = &endpoint {
            name.push_str(&format!(" ({})", without_userinfo(endpoint)));
            if is_loopback_http(endpoint) {
                builder = builder.with_allow_http(true);
            }
        }
        let store = builder
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: S3_RETRIES,
                retry_timeout: DEFAULT_TIMEOUT,
            })
            .build()
            .map_err(|e| SourceError::unavailable(name.clone(), describe(&e)))?;
        Self::new(Arc::new(store), name, prefix)
    }

    /// A source over the files under `prefix` in the directory `dir`,
    /// through object_store's `LocalFileSystem` (which follows symbolic
    /// links: use [`FileSource`](crate::FileSource) for a directory that
    /// may hold links leading out of it). Fails if `dir` does not exist.
    pub fn local(dir: impl AsRef<std::path::Path>, prefix: &str) -> Result<Self, SourceError> {
        let dir = dir.as_ref();
        let name = format!("local:{}/{}", dir.display(), trim_prefix(prefix));
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| SourceError::unavailable(name.clone(), describe(&e)))?;
        Self::new(Arc::new(store), name, prefix)
    }

    /// A source over the objects under `prefix` in any object store (GCS,
    /// Azure, HTTP/WebDAV, memory, or one wrapped in object_store's
    /// throttling or limits), named `name` in errors. The store's own
    /// retries count against the source's deadline.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        name: impl Into<String>,
        prefix: &str,
    ) -> Result<Self, SourceError> {
        let name = name.into();
        let trimmed = trim_prefix(prefix);
        if !trimmed.is_empty() {
            validate_key(trimmed).map_err(|e| match e {
                SourceError::InvalidKey { reason, .. } => SourceError::InvalidKey {
                    key: prefix.to_owned(),
                    reason: format!("invalid prefix: {reason}"),
                },
                e => e,
            })?;
        }
        let bg = Background::start("troupe-object-store-source").map_err(|e| {
            SourceError::unavailable(name.clone(), format!("cannot start its IO thread: {e}"))
        })?;
        Ok(Self {
            timeout: DEFAULT_TIMEOUT,
            poll: DEFAULT_POLL,
            max_size: DEFAULT_MAX_SIZE,
            shared: Arc::new(Shared {
                name,
                store,
                prefix: trimmed.to_owned(),
                bg,
            }),
        })
    }

    /// How long one `get` or `list` may take (default 5 s); past it the
    /// call returns [`SourceError::Unavailable`]. Also bounds each listing
    /// of a watch.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a watch lists the objects (default 2 s).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    /// The largest script `get` returns, in bytes (default 16 MiB); a
    /// larger object is [`SourceError::BadContent`], and is not downloaded.
    #[must_use]
    pub fn max_script_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    fn unavailable(&self, failure: Failure) -> SourceError {
        let reason = match failure {
            Failure::Timeout => return SourceError::timed_out(self.name(), self.timeout),
            Failure::Store(e) => describe(&e),
            Failure::TooLarge(size) => format!("an object of {size} bytes"),
            Failure::Stopped => "its IO thread stopped".to_owned(),
        };
        SourceError::unavailable(self.name(), reason)
    }

    /// Runs `fut` on the source's IO thread within the deadline.
    fn request<T, F>(&self, fut: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let timeout = self.timeout;
        self.shared
            .bg
            .block(async move {
                tokio::time::timeout(timeout, fut)
                    .await
                    .unwrap_or(Err(Failure::Timeout))
            })
            .unwrap_or(Err(Failure::Stopped))
    }
}

impl Source for ObjectStoreSource {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let path = Path::parse(object_path(&self.shared.prefix, key)).map_err(|e| {
            SourceError::InvalidKey {
                key: key.to_owned(),
                reason: describe(&e),
            }
        })?;
        let store = Arc::clone(&self.shared.store);
        let max = self.max_size;
        let result = self.request(async move {
            let got = store
                .get_opts(&path, GetOptions::default())
                .await
                .map_err(Failure::Store)?;
            if got.meta.size > max {
                return Err(Failure::TooLarge(got.meta.size));
            }
            let mut code = Vec::with_capacity(usize::try_from(got.meta.size).unwrap_or(0));
            let mut body = got.into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Failure::Store)?;
                code.extend_from_slice(&chunk);
                if code.len() as u64 > max {
                    return Err(Failure::TooLarge(code.len() as u64));
                }
            }
            Ok(code)
        });
        match result {
            Ok(code) => Ok(Script::from_content(key, code)),
            Err(Failure::Store(::object_store::Error::NotFound { .. })) => {
                Err(SourceError::NotFound {
                    key: key.to_owned(),
                    source_name: self.name(),
                })
            }
            Err(Failure::TooLarge(size)) => Err(SourceError::BadContent {
                key: key.to_owned(),
                source_name: self.name(),
                reason: format!(
                    "the object is larger than the limit of {} bytes ({size} bytes or more)",
                    self.max_size
                ),
            }),
            Err(f) => Err(self.unavailable(f)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let store = Arc::clone(&self.shared.store);
        let root = self.shared.prefix.clone();
        let prefix = prefix.to_owned();
        let listing = self.request(async move {
            listing(&*store, &root, &prefix)
                .await
                .map_err(Failure::Store)
        });
        match listing {
            Ok(objects) => Ok(objects.into_keys().collect()),
            Err(f) => Err(self.unavailable(f)),
        }
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let shared = &self.shared;
        let watcher = Watcher {
            name: self.name(),
            store: Arc::clone(&shared.store),
            root: shared.prefix.clone(),
            prefix: prefix.to_owned(),
            timeout: self.timeout,
            poll: self.poll,
            known: None,
            resync_on_success: false,
            failing: false,
            sink,
        };
        // The first listing now, so every change made after this call is
        // reported. If the store is unreachable, the watch starts once it
        // answers and reports a resync, since changes may have been missed.
        let (mut watcher, first) = shared
            .bg
            .block(async move {
                let first = watcher.snapshot().await;
                (watcher, first)
            })
            .ok_or_else(|| self.unavailable(Failure::Stopped))?;
        match first {
            Ok(now) => watcher.known = Some(now),
            Err(e) => {
                tracing::warn!(source = %self.name(), error = %e, "object store watch starts once the store answers");
                watcher.resync_on_success = true;
                watcher.failing = true;
            }
        }
        let task = shared.bg.spawn(watcher.run());
        Ok(WatchGuard::new((AbortOnDrop(task), Arc::clone(shared))))
    }
}

/// The task behind a subscription: lists the watched objects every poll
/// interval and reports what differs from the last successful listing.
struct Watcher {
    name: String,
    store: Arc<dyn ObjectStore>,
    /// The source's object path prefix.
    root: String,
    /// The key prefix watched.
    prefix: String,
    timeout: Duration,
    poll: Duration,
    /// The watched keys as last listed. `None` before the first listing.
    known: Option<BTreeMap<String, Stamp>>,
    /// Report a resync after the next successful listing: the watch
    /// started while the store was unreachable.
    resync_on_success: bool,
    /// The last listing failed (warned about once per outage).
    failing: bool,
    sink: ChangeSink,
}

impl Watcher {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.snapshot().await {
                Ok(now) => {
                    if std::mem::take(&mut self.failing) {
                        tracing::info!(source = %self.name, "object store watch lists again");
                    }
                    self.report_differences(now);
                }
                Err(e) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        tracing::warn!(source = %self.name, error = %e, "object store watch cannot list; retrying every poll");
                    }
                }
            }
        }
    }

    /// The watched objects and their stamps, within the deadline.
    async fn snapshot(&self) -> Result<BTreeMap<String, Stamp>, String> {
        match tokio::time::timeout(
            self.timeout,
            listing(&*self.store, &self.root, &self.prefix),
        )
        .await
        {
            Ok(Ok(objects)) => Ok(objects),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }

    /// Reports the keys that differ between what was known and `now`, and
    /// remembers `now`.
    fn report_differences(&mut self, now: BTreeMap<String, Stamp>) {
        match self.known.take() {
            None => {
                if std::mem::take(&mut self.resync_on_success) {
                    self.sink.send(Change::Resync);
                }
            }
            Some(old) => {
                for change in differences(&old, &now, |a, b| a != b) {
                    self.sink.send(change);
                }
            }
        }
        self.known = Some(now);
    }
}

/// The objects under `root` whose keys (their paths after `root/`) start
/// with `prefix` and are valid, by key. Lists the deepest directory the
/// prefix names in full (object_store lists whole path segments).
async fn listing(
    store: &dyn ObjectStore,
    root: &str,
    prefix: &str,
) -> Result<BTreeMap<String, Stamp>, ::object_store::Error> {
    let dir = match prefix.rfind('/') {
        Some(end) => object_path(root, &prefix[..end]),
        None => root.to_owned(),
    };
    let Ok(dir) = Path::parse(&dir) else {
        // An empty, `.` or `..` segment: no valid key starts with it.
        return Ok(BTreeMap::new());
    };
    let mut objects = BTreeMap::new();
    let mut stream = store.list(Some(&dir));
    while let Some(meta) = stream.next().await {
        let meta = meta?;
        let full: &str = meta.location.as_ref();
        let key = if root.is_empty() {
            Some(full)
        } else {
            full.strip_prefix(root).and_then(|k| k.strip_prefix('/'))
        };
        if let Some(key) = key
            && key.starts_with(prefix)
            && validate_key(key).is_ok()
        {
            objects.insert(key.to_owned(), Stamp::of(&meta));
        }
    }
    Ok(objects)
}

/// `prefix` without the `/`s at its ends.
fn trim_prefix(prefix: &str) -> &str {
    prefix.trim_matches('/')
}

/// The object path of `key` under the (trimmed) `prefix`.
fn object_path(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{key}"),
    }
}

/// True if `endpoint` is a plain-HTTP URL of a loopback address
/// (`localhost`, `127.0.0.0/8`, `[::1]`).
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_may_use_plain_http() {
        for yes in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
            "http://127.1.2.3",
            "http://u:p@127.0.0.1:1",
        ] {
            assert!(is_loopback_http(yes), "{yes}");
        }
        for no in [
            "https://127.0.0.1:9000",
            "http://10.0.0.1:9000",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "http://[::2]:1",
        ] {
            assert!(!is_loopback_http(no), "{no}");
        }
    }

    #[test]
    fn keys_map_to_object_paths() {
        assert_eq!(object_path("troupe", "lib/util.lua"), "troupe/lib/util.lua");
        assert_eq!(object_path("", "lib/util.lua"), "lib/util.lua");
        assert_eq!(object_path("a/b", ""), "a/b");
        assert_eq!(trim_prefix("/troupe/scripts/"), "troupe/scripts");
    }
}
