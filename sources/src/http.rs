use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};

use crate::background::{AbortOnDrop, Background, error_chain};
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// How long one request may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a watch revalidates by default.
const DEFAULT_POLL: Duration = Duration::from_secs(2);
/// How many scripts one poll of a watch revalidates at most by default.
const DEFAULT_MAX_KEYS_PER_POLL: usize = 100;
/// Where the index document is by default, relative to the base URL.
const DEFAULT_INDEX: &str = "index.json";
/// The largest index document read.
const MAX_INDEX_SIZE: usize = 16 * 1024 * 1024;

/// A script as last served, with the ETag it came with.
struct Cached {
    etag: Option<String>,
    script: Script,
}

/// The index document as last read with an ETag.
struct IndexCache {
    path: String,
    etag: String,
    keys: Arc<[String]>,
}

struct Shared {
    name: String,
    base: Url,
    client: reqwest::Client,
    /// Every key served (by `get` or a watch) and not found missing since.
    known: Mutex<HashMap<String, Cached>>,
    index: Mutex<Option<IndexCache>>,
    bg: Background,
}

/// Scripts served over HTTP(S): `get("lib/a.lua")` is `GET
/// {base_url}/lib/a.lua`. A response's `ETag` is remembered and sent back
/// as `If-None-Match`, so an unchanged script costs a `304 Not Modified`
/// and no body. `404`/`410` mean not found; other statuses, timeouts and
/// connection errors are `Unavailable`.
///
/// **Listing** needs an index document the server offers at
/// `{base_url}/index.json` ([`index`](Self::index) changes the path): a
/// JSON array of keys, at most 16 MiB, read with `If-None-Match` too.
/// Entries that are not strings or not valid keys ([`validate_key`]) are
/// left out (and logged); an index that is no JSON array is
/// [`SourceError::BadContent`]. Without an index (`404`/`410`), `list` is
/// [`SourceError::Unsupported`].
///
/// **Watching polls**: every [`poll_interval`](Self::poll_interval) (2 s)
/// a watch revalidates the index and then the scripts under the prefix
/// that it knows of (those this source has served, and those in the
/// index), with `If-None-Match` where there is an ETag and by content
/// otherwise. It reports `Updated` when a script's content changed or a
/// key appeared in the index, and `Removed` when a script answers `404`
/// or its key left the index (it is then watched again only once read
/// again). One poll reads the index and at most
/// [`max_keys_per_poll`](Self::max_keys_per_poll) (100) scripts, taking
/// turns through the keys when there are more. A poll that finds the
/// server down is tried again at the next interval, and what changed
/// meanwhile is reported once the server answers, since a watch compares
/// with what it last read. A watch started while the index cannot be read
/// reports [`Change::Resync`] once it can. Cheap to clone.
#[derive(Clone)]
pub struct HttpSource {
    timeout: Duration,
    poll: Duration,
    max_keys: usize,
    index: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shared.name)
    }
}

impl HttpSource {
    /// A source under `base_url` (`http` or `https`).
    pub fn new(base_url: &str) -> Result<Self, SourceError> {
        let invalid = |reason: String| SourceError::unavailable(format!("http:{base_url}"), reason);
        let mut base = Url::parse(base_url).map_err(|e| invalid(format!("bad base URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("the base URL must be http(s)://host/…".to_owned()));
        }
        if let Ok(mut segs) = base.path_segments_mut() {
            segs.pop_if_empty();
        }
        let bg = Background::start("troupe-http-source")
            .map_err(|e| invalid(format!("cannot start its IO thread: {e}")))?;
        let client = {
            let _rt = bg.handle().enter();
            reqwest::Client::builder()
                .build()
                .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?
        };
        Ok(Self {
            timeout: DEFAULT_TIMEOUT,
            poll: DEFAULT_POLL,
            max_keys: DEFAULT_MAX_KEYS_PER_POLL,
            index: DEFAULT_INDEX.to_owned(),
            shared: Arc::new(Shared {
                name: format!("http:{base}"),
                base,
                client,
                known: Mutex::new(HashMap::new()),
                index: Mutex::new(None),
                bg,
            }),
        })
    }

    /// How long one request may take (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a watch revalidates (default 2 s; at least 1 ms).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval.max(Duration::from_millis(1));
        self
    }

    /// How many scripts one poll of a watch revalidates at most (default
    /// 100; at least 1). With more keys, polls take turns through them, so
    /// each is revalidated every `ceil(keys / n)` polls.
    #[must_use]
    pub fn max_keys_per_poll(mut self, n: usize) -> Self {
        self.max_keys = n.max(1);
        self
    }

    /// Where the index document is, relative to the base URL (default
    /// `index.json`). Fails if `path` is no valid key ([`validate_key`]).
    pub fn index(mut self, path: &str) -> Result<Self, SourceError> {
        validate_key(path).map_err(|e| match e {
            SourceError::InvalidKey { key, reason } => SourceError::InvalidKey {
                key,
                reason: format!("invalid index path: {reason}"),
            },
            e => e,
        })?;
        self.index = path.to_owned();
        Ok(self)
    }

    /// Runs `fut` on the source's IO thread and waits for it.
    fn block<T, F>(&self, fut: F) -> Result<T, SourceError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, SourceError>> + Send + 'static,
    {
        self.shared
            .bg
            .block(fut)
            .unwrap_or_else(|| Err(self.stopped()))
    }

    fn stopped(&self) -> SourceError {
        SourceError::unavailable(self.name(), "its IO thread stopped")
    }
}

/// Locks `m`, also after a panic of another holder (the maps it guards
/// stay consistent: every update is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one GET brought back.
struct Fetched {
    status: StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Shared {
    fn unavailable(&self, reason: impl ToString) -> SourceError {
        SourceError::unavailable(self.name.clone(), reason)
    }

    /// `GET {base}/{path}`, with `If-None-Match: etag` if given, reading
    /// the body of a `200` (at most `limit` bytes, if given).
    async fn fetch(
        &self,
        path: &str,
        etag: Option<&str>,
        timeout: Duration,
        limit: Option<usize>,
    ) -> Result<Fetched, SourceError> {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(path.split('/'));
        }
        let mut req = self.client.get(url).timeout(timeout);
        if let Some(etag) = etag {
            req = req.header(IF_NONE_MATCH, etag);
        }
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                SourceError::timed_out(self.name.clone(), timeout)
            } else {
                self.unavailable(error_chain(&e))
            }
        };
        let mut resp = req.send().await.map_err(failed)?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        if status == StatusCode::OK {
            while let Some(chunk) = resp.chunk().await.map_err(failed)? {
                body.extend_from_slice(&chunk);
                if let Some(limit) = limit
                    && body.len() > limit
                {
                    return Err(SourceError::BadContent {
                        key: path.to_owned(),
                        source_name: self.name.clone(),
                        reason: format!("larger than {limit} bytes"),
                    });
                }
            }
        }
        Ok(Fetched { status, etag, body })
    }

    /// The script under `key` (`None`: `404`/`410`), revalidated against
    /// the copy served last, which it replaces.
    async fn fetch_script(
        &self,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<Script>, SourceError> {
        let etag = lock(&self.known).get(key).and_then(|c| c.etag.clone());
        let fetched = self.fetch(key, etag.as_deref(), timeout, None).await?;
        match fetched.status {
            StatusCode::OK => {
                let script = Script::from_content(key, fetched.body);
                let cached = Cached {
                    etag: fetched.etag,
                    script: script.clone(),
                };
                lock(&self.known).insert(key.to_owned(), cached);
                Ok(Some(script))
            }
            StatusCode::NOT_MODIFIED => lock(&self.known)
                .get(key)
                .map(|c| Some(c.script.clone()))
                .ok_or_else(|| {
                    self.unavailable(format!(
                        "304 Not Modified for {key:?}, which was never fetched"
                    ))
                }),
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                lock(&self.known).remove(key);
                Ok(None)
            }
            status => Err(self.unavailable(format!("GET {key}: HTTP {status}"))),
        }
    }

    /// The keys of the index at `path`, valid and sorted (`None`: there is
    /// no index, `404`/`410`).
    async fn fetch_index(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<Arc<[String]>>, SourceError> {
        let etag = lock(&self.index)
            .as_ref()
            .filter(|c| c.path == path)
            .map(|c| c.etag.clone());
        let fetched = self
            .fetch(path, etag.as_deref(), timeout, Some(MAX_INDEX_SIZE))
            .await?;
        match fetched.status {
            StatusCode::OK => {
                let keys: Arc<[String]> = self.parse_index(path, &fetched.body)?.into();
                *lock(&self.index) = fetched.etag.map(|etag| IndexCache {
                    path: path.to_owned(),
                    etag,
                    keys: Arc::clone(&keys),
                });
                Ok(Some(keys))
            }
            StatusCode::NOT_MODIFIED => lock(&self.index)
                .as_ref()
                .filter(|c| c.path == path)
                .map(|c| Some(Arc::clone(&c.keys)))
                .ok_or_else(|| {
                    self.unavailable(format!(
                        "304 Not Modified for the index {path:?}, which was never fetched"
                    ))
                }),
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                *lock(&self.index) = None;
                Ok(None)
            }
            status => Err(self.unavailable(format!("GET {path}: HTTP {status}"))),
        }
    }

    /// The valid keys of an index document, sorted and without duplicates.
    fn parse_index(&self, path: &str, body: &[u8]) -> Result<Vec<String>, SourceError> {
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| SourceError::BadContent {
                key: path.to_owned(),
                source_name: self.name.clone(),
                reason: format!("the index is no JSON array of keys: {e}"),
            })?;
        let total = entries.len();
        let mut keys: Vec<String> = entries
            .into_iter()
            .filter_map(|entry| match entry {
                serde_json::Value::String(key) if validate_key(&key).is_ok() => Some(key),
                _ => None,
            })
            .collect();
        if keys.len() < total {
            tracing::warn!(
                source = %self.name,
                index = path,
                left_out = total - keys.len(),
                "index entries that are no valid keys are left out"
            );
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

impl Source for HttpSource {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let shared = Arc::clone(&self.shared);
        let owned = key.to_owned();
        let timeout = self.timeout;
        self.block(async move { shared.fetch_script(&owned, timeout).await })?
            .ok_or_else(|| SourceError::NotFound {
                key: key.to_owned(),
                source_name: self.name(),
            })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let shared = Arc::clone(&self.shared);
        let path = self.index.clone();
        let timeout = self.timeout;
        let keys = self
            .block(async move { shared.fetch_index(&path, timeout).await })?
            .ok_or_else(|| SourceError::Unsupported {
                source_name: self.name(),
                operation: "list",
            })?;
        Ok(keys
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let mut watcher = Watcher {
            shared: Arc::clone(&self.shared),
            prefix: prefix.to_owned(),
            index_path: self.index.clone(),
            timeout: self.timeout,
            poll: self.poll,
            max_keys: self.max_keys,
            tracked: BTreeMap::new(),
            index_keys: None,
            cursor: None,
            failing: false,
            bad_index: false,
            sink,
        };
        // The scripts served so far are known as served; the index is read
        // now, so keys added to it after this call are reported. If it
        // cannot be read, the watch reports a resync once it can.
        watcher.absorb_served();
        let (mut watcher, first) = self
            .shared
            .bg
            .block(async move {
                let first = watcher
                    .shared
                    .fetch_index(&watcher.index_path, watcher.timeout)
                    .await;
                (watcher, first)
            })
            .ok_or_else(|| self.stopped())?;
        match first {
            Ok(found) => watcher.index_baseline(found.as_deref()),
            Err(e) => {
                tracing::warn!(source = %self.name(), error = %e, "HTTP watch: the index is read again at every poll");
            }
        }
        let task = self.shared.bg.spawn(watcher.run());
        Ok(WatchGuard::new((
            AbortOnDrop(task),
            Arc::clone(&self.shared),
        )))
    }
}

/// The task behind a subscription: every poll interval, reads the index
/// and revalidates a batch of the watched keys, reporting what differs
/// from what it read before.
struct Watcher {
    shared: Arc<Shared>,
    prefix: String,
    index_path: String,
    timeout: Duration,
    poll: Duration,
    max_keys: usize,
    /// The watched keys known to exist, with the version last read
    /// (`None`: listed in the index, not read yet).
    tracked: BTreeMap<String, Option<u64>>,
    /// The index's keys under the prefix as last read (empty: no index).
    /// `None` until it was read once.
    index_keys: Option<BTreeSet<String>>,
    /// The key revalidated last: the next batch starts after it.
    cursor: Option<String>,
    /// The last poll failed (warned about once per outage).
    failing: bool,
    /// The last index read was rejected (warned about once).
    bad_index: bool,
    sink: ChangeSink,
}

impl Watcher {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.poll_once().await {
                Ok(()) => {
                    if std::mem::take(&mut self.failing) {
                        tracing::info!(source = %self.shared.name, "HTTP watch: the server answers again");
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        tracing::warn!(source = %self.shared.name, error = %e, "HTTP watch cannot revalidate; retrying every poll");
                    }
                }
            }
        }
    }

    /// One poll: the index, then at most `max_keys` keys. A script the
    /// server does not answer for (refused, timed out, `5xx`) ends the
    /// poll, and the next one goes on after it (so one broken script does
    /// not stall the others); an index it does not answer for only skips
    /// the index's changes. What was not read stays as it was, so the
    /// changes are reported once it is read.
    async fn poll_once(&mut self) -> Result<(), SourceError> {
        self.absorb_served();
        let index_error = match self
            .shared
            .fetch_index(&self.index_path, self.timeout)
            .await
        {
            Ok(found) => {
                self.bad_index = false;
                self.index_read(found.as_deref());
                None
            }
            Err(e) if e.is_retryable() => Some(e),
            Err(e) => {
                if !std::mem::replace(&mut self.bad_index, true) {
                    tracing::warn!(source = %self.shared.name, error = %e, "HTTP watch: keeping the last index");
                }
                None
            }
        };
        for key in self.batch() {
            let result = self.shared.fetch_script(&key, self.timeout).await;
            self.cursor = Some(key.clone());
            match result {
                Ok(Some(script)) => match self.tracked.insert(key.clone(), Some(script.version)) {
                    // Unchanged, or read for the first time (the baseline).
                    Some(Some(old)) if old == script.version => {}
                    Some(None) => {}
                    // Changed, or back after a 404.
                    _ => self.sink.send(Change::Updated { key }),
                },
                Ok(None) => {
                    if self.tracked.remove(&key).is_some() {
                        self.sink.send(Change::Removed { key });
                    }
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    tracing::debug!(source = %self.shared.name, key, error = %e, "HTTP watch skips a key");
                }
            }
        }
        index_error.map_or(Ok(()), Err)
    }

    /// Tracks the keys under the prefix this source has served, from the
    /// version it served.
    fn absorb_served(&mut self) {
        let known = lock(&self.shared.known);
        for (key, cached) in known.iter().filter(|(k, _)| k.starts_with(&self.prefix)) {
            let version = cached.script.version;
            self.tracked
                .entry(key.clone())
                .and_modify(|v| {
                    v.get_or_insert(version);
                })
                .or_insert(Some(version));
        }
    }

    /// The index's keys under the prefix (none if there is no index).
    fn under_prefix(&self, found: Option<&[String]>) -> BTreeSet<String> {
        found
            .unwrap_or_default()
            .iter()
            .filter(|k| k.starts_with(&self.prefix))
            .cloned()
            .collect()
    }

    /// Takes the index read when the watch started as what exists.
    fn index_baseline(&mut self, found: Option<&[String]>) {
        let keys = self.under_prefix(found);
        for key in &keys {
            self.tracked.entry(key.clone()).or_insert(None);
        }
        self.index_keys = Some(keys);
    }

    /// Reports the keys added to the index (and not known yet) and those
    /// that left it, which are no longer watched unless read again. An
    /// index that went away (`404`) removes nothing: its keys are
    /// revalidated one by one.
    fn index_read(&mut self, found: Option<&[String]>) {
        let Some(old) = self.index_keys.take() else {
            // The watch started without the index: changes may be missed.
            self.sink.send(Change::Resync);
            self.index_baseline(found);
            return;
        };
        let new = self.under_prefix(found);
        for key in new.difference(&old) {
            if !self.tracked.contains_key(key) {
                self.tracked.insert(key.clone(), None);
                self.sink.send(Change::Updated { key: key.clone() });
            }
        }
        if found.is_some() {
            for key in old.difference(&new) {
                // Forgotten as served too, so it is watched again only if
                // it is read again.
                lock(&self.shared.known).remove(key);
                if self.tracked.remove(key).is_some() {
                    self.sink.send(Change::Removed { key: key.clone() });
                }
            }
        }
        self.index_keys = Some(new);
    }

    /// The next keys to revalidate: at most `max_keys`, in key order from
    /// the one after the cursor, wrapping around.
    fn batch(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self
            .tracked
            .keys()
            .chain(self.index_keys.iter().flatten())
            .collect();
        let after = |k: &&&String| self.cursor.as_ref().is_none_or(|c| **k > c);
        all.iter()
            .filter(after)
            .chain(all.iter().filter(|k| !after(k)))
            .take(self.max_keys)
            .map(|k| (*k).clone())
            .collect()
    }
}
