use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, WatchOptions};

use crate::background::{AbortOnDrop, Background, error_chain};
use crate::{Change, ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// How long one request may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// First and longest wait before a broken watch is resumed.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

struct Shared {
    name: String,
    prefix: String,
    client: Client,
    bg: Background,
}

/// Scripts stored in etcd under a key prefix: key `lib/a.lua` is the etcd
/// key `{prefix}lib/a.lua`, its version the key's `mod_revision`. Watching
/// uses an etcd watch that remembers the last revision it delivered and
/// resumes from the next one after a disconnect, so no change is lost
/// across etcd restarts; if that history was compacted meanwhile, watchers
/// get [`Change::Resync`]. The client connects lazily: a server that is
/// down shows as `Unavailable` on first use. Cheap to clone.
#[derive(Clone)]
pub struct EtcdSource {
    timeout: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shared.name)
    }
}

impl EtcdSource {
    /// A source over the etcd cluster at `endpoints` (`http://host:port`),
    /// serving the keys under `prefix` (e.g. `troupe/scripts/`).
    pub fn connect<E: AsRef<str>>(endpoints: &[E], prefix: &str) -> Result<Self, SourceError> {
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.as_ref().to_owned()).collect();
        let name = format!("etcd:{}/{prefix}", endpoints.join(","));
        let unavailable = |reason: String| SourceError::unavailable(name.clone(), reason);
        let bg = Background::start("troupe-etcd-source")
            .map_err(|e| unavailable(format!("cannot start its IO thread: {e}")))?;
        let options = ConnectOptions::new()
            .with_connect_timeout(DEFAULT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        let client = bg
            .block(Client::connect(endpoints, Some(options)))
            .ok_or_else(|| unavailable("its IO thread stopped".to_owned()))?
            .map_err(|e| unavailable(error_chain(&e)))?;
        Ok(Self {
            timeout: DEFAULT_TIMEOUT,
            shared: Arc::new(Shared {
                name,
                prefix: prefix.to_owned(),
                client,
                bg,
            }),
        })
    }

    /// How long one request may take (default 3 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs one etcd request with the timeout, on the source's IO thread.
    fn request<T, F>(&self, call: impl FnOnce(Client) -> F) -> Result<T, SourceError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let timeout = self.timeout;
        let call = call(self.shared.client.clone());
        self.shared
            .bg
            .block(async move { tokio::time::timeout(timeout, call).await })
            .ok_or_else(|| SourceError::unavailable(self.name(), "its IO thread stopped"))?
            .map_err(|_| SourceError::timed_out(self.name(), timeout))?
            .map_err(|e| SourceError::unavailable(self.name(), error_chain(&e)))
    }
}

impl Source for EtcdSource {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let full = format!("{}{key}", self.shared.prefix);
        let resp = self.request(|mut c| async move { c.get(full, None).await })?;
        let kv = resp.kvs().first().ok_or_else(|| SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        })?;
        Ok(Script {
            key: key.to_owned(),
            code: kv.value().into(),
            version: u64::try_from(kv.mod_revision()).unwrap_or_default(),
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let full = format!("{}{prefix}", self.shared.prefix);
        let opts = GetOptions::new().with_prefix().with_keys_only();
        let resp = self.request(|mut c| async move { c.get(full, Some(opts)).await })?;
        let strip = self.shared.prefix.len();
        let mut keys: Vec<String> = resp
            .kvs()
            .iter()
            .filter_map(|kv| kv.key_str().ok())
            .filter_map(|k| k.get(strip..))
            .filter(|k| validate_key(k).is_ok())
            .map(str::to_owned)
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let full = format!("{}{prefix}", self.shared.prefix);
        // Start right after the current revision, so changes made after this
        // call are seen. If etcd is down now, the watch starts when it is
        // back and reports a resync, since changes may have been missed.
        let probe = full.clone();
        let next = match self.request(|mut c| async move {
            c.get(probe, Some(GetOptions::new().with_count_only()))
                .await
        }) {
            Ok(resp) => resp.header().map(|h| h.revision() + 1),
            Err(e) => {
                tracing::warn!(error = %e, "etcd watch starts once the server answers");
                None
            }
        };
        let watcher = Watcher {
            client: self.shared.client.clone(),
            name: self.name(),
            full_prefix: full,
            strip: self.shared.prefix.len(),
            timeout: self.timeout,
            next,
            sink,
        };
        let task = self.shared.bg.spawn(watcher.run());
        Ok(WatchGuard::new((
            AbortOnDrop(task),
            Arc::clone(&self.shared),
        )))
    }
}

/// The task behind a subscription: watches, and resumes after failures
/// from the revision after the last one it delivered.
struct Watcher {
    client: Client,
    name: String,
    full_prefix: String,
    /// Length of the source's own prefix, cut from etcd keys.
    strip: usize,
    timeout: Duration,
    /// The first revision not yet delivered (`None`: unknown).
    next: Option<i64>,
    sink: ChangeSink,
}

impl Watcher {
    async fn run(mut self) {
        let mut backoff = BACKOFF.0;
        loop {
            match self.watch_once().await {
                Ok(true) => backoff = BACKOFF.0,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(source = %self.name, error = %e, next_revision = ?self.next, "etcd watch interrupted; resuming");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// One watch stream, until it breaks. `Ok(true)` if it delivered
    /// anything (the connection worked).
    async fn watch_once(&mut self) -> Result<bool, String> {
        let start = match self.next {
            Some(rev) => rev,
            None => {
                let probe = self.full_prefix.clone();
                let opts = GetOptions::new().with_count_only();
                let resp = tokio::time::timeout(self.timeout, self.client.get(probe, Some(opts)))
                    .await
                    .map_err(|_| format!("no answer within {:?}", self.timeout))?
                    .map_err(|e| error_chain(&e))?;
                let rev = resp.header().map_or(0, |h| h.revision()) + 1;
                self.next = Some(rev);
                self.sink.send(Change::Resync);
                rev
            }
        };
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start)
            .with_progress_notify();
        let mut stream = tokio::time::timeout(
            self.timeout,
            self.client.watch(self.full_prefix.clone(), Some(opts)),
        )
        .await
        .map_err(|_| format!("no answer within {:?}", self.timeout))?
        .map_err(|e| error_chain(&e))?;
        let mut delivered = false;
        while let Some(resp) = stream.message().await.map_err(|e| error_chain(&e))? {
            delivered = true;
            if resp.compact_revision() > 0 {
                tracing::warn!(source = %self.name, compacted = resp.compact_revision(), "etcd history was compacted; resyncing");
                self.next = None;
                return Ok(true);
            }
            if resp.canceled() {
                return Err(format!("watch canceled: {}", resp.cancel_reason()));
            }
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                self.next = Some(kv.mod_revision() + 1);
                let Some(key) = kv.key_str().ok().and_then(|k| k.get(self.strip..)) else {
                    continue;
                };
                if validate_key(key).is_err() {
                    tracing::debug!(source = %self.name, key, "ignoring an etcd key that is not a valid script key");
                    continue;
                }
                let key = key.to_owned();
                self.sink.send(match event.event_type() {
                    EventType::Put => Change::Updated { key },
                    EventType::Delete => Change::Removed { key },
                });
            }
            // A progress notification: everything up to its revision is seen.
            if resp.events().is_empty()
                && !resp.created()
                && let Some(h) = resp.header()
            {
                self.next = Some(self.next.unwrap_or(0).max(h.revision() + 1));
            }
        }
        Ok(delivered)
    }
}
