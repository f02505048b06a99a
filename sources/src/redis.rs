use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use ::redis::{AsyncConnectionConfig, Client, ConnectionAddr, Msg, RedisError, RedisResult, Value};
use futures_util::StreamExt;

use crate::background::{AbortOnDrop, Background};
use crate::remote::{describe, lock, without_userinfo};
use crate::watch::differences;
use crate::{
    Change, ChangeSink, Script, Source, SourceError, WatchGuard, content_hash, validate_key,
};

/// How long a `get` or `list` may take by default, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait before a broken subscription is tried again.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// How often a quiet subscription checks that the server still answers (a
/// server that hangs or a dropped network closes no socket).
const HEALTH_CHECK: Duration = Duration::from_secs(5);
/// Keys asked per `SCAN` step and per `MGET`.
const BATCH: usize = 500;
/// The pub/sub channel (after the prefix) writers publish changed keys to
/// when the server refuses `CONFIG SET`.
const CHANGES_CHANNEL: &str = "__changes";
/// The keyspace-notification classes a watch needs: `K` keyspace channels,
/// `g` generic commands (DEL, RENAME, …), `$` string commands, `x` expired
/// and `e` evicted keys.
const NOTIFY_FLAGS: &str = "Kg$xe";
/// Keyspace events that remove a key.
const REMOVING_EVENTS: &[&str] = &["del", "expired", "evicted", "rename_from", "move_from"];
/// Keyspace events that leave a key's value as it was.
const NEUTRAL_EVENTS: &[&str] = &["expire", "persist", "new"];

struct Shared {
    name: String,
    prefix: String,
    client: Client,
    /// The database number, which keyspace channels name.
    db: i64,
    /// The connection `get` and `list` share, with an id; `None` before
    /// the first request and after one failed or timed out.
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    next_conn: AtomicU64,
    bg: Background,
}

/// Scripts stored as Redis string keys under a key prefix: key
/// `lib/util.lua` is the Redis key `{prefix}lib/util.lua`, its version the
/// hash of its content. Every `get` and `list` has a deadline (5 s by
/// default, [`timeout`](Self::timeout)), connecting included, so a server
/// that is down or hangs shows as [`SourceError::Unavailable`] and never
/// blocks the caller for longer. `list` uses `SCAN`, never `KEYS`.
///
/// Watching turns on keyspace notifications (`CONFIG SET
/// notify-keyspace-events`, adding the `Kg$xe` classes to those already
/// set). If the server refuses `CONFIG` (managed services often do), only
/// changes that writers announce are seen: after a `SET` or `DEL`, a writer
/// publishes the changed script key (without the prefix) to the channel
/// `{prefix}__changes`, or an empty message for "anything may have
/// changed". After a disconnect (a server restart) the watch subscribes
/// again, then lists the keys and compares their contents with what it
/// knew, so a change made meanwhile is still reported. A watch started
/// while the server is down reports [`Change::Resync`] once it connects.
///
/// The source connects lazily: a server that is down shows on first use.
/// Errors name it `redis://host:port/prefix`, never with the credentials
/// of the URL. Cheap to clone.
#[derive(Clone)]
pub struct RedisSource {
    timeout: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shared.name)
    }
}

/// Why a request to the server failed.
enum Failure {
    Timeout,
    Redis(RedisError),
    Stopped,
}

impl RedisSource {
    /// A source over the Redis server at `url` (`redis://[user:password@]
    /// host:port[/db]`, or `redis+unix:///path`), serving the keys under
    /// `prefix` (e.g. `troupe/scripts/`). Does not connect yet; fails only
    /// on a malformed URL.
    pub fn new(url: &str, prefix: &str) -> Result<Self, SourceError> {
        let client = Client::open(url).map_err(|e| {
            SourceError::unavailable(
                format!("{}/{prefix}", without_userinfo(url).trim_end_matches('/')),
                format!("invalid Redis URL: {}", describe(&e)),
            )
        })?;
        let info = client.get_connection_info();
        let db = info.redis_settings().db();
        let mut name = match info.addr() {
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{prefix}"),
            ConnectionAddr::Unix(path) => format!("redis+unix://{}/{prefix}", path.display()),
            addr => format!("redis://{addr}/{prefix}"),
        };
        if db != 0 {
            name.push_str(&format!(" (db {db})"));
        }
        let bg = Background::start("troupe-redis-source").map_err(|e| {
            SourceError::unavailable(name.clone(), format!("cannot start its IO thread: {e}"))
        })?;
        Ok(Self {
            timeout: DEFAULT_TIMEOUT,
            shared: Arc::new(Shared {
                name,
                prefix: prefix.to_owned(),
                client,
                db,
                conn: Mutex::new(None),
                next_conn: AtomicU64::new(0),
                bg,
            }),
        })
    }

    /// How long one `get` or `list` may take, connecting included (default
    /// 5 s); past it the call returns [`SourceError::Unavailable`]. Also
    /// bounds each request of a watch.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `call` on the shared connection within the deadline, on the
    /// source's IO thread. A connection that failed or timed out is
    /// dropped; if one that was reused turns out broken (the server
    /// restarted since), `call` runs once more on a new one.
    fn request<T, F, Fut>(&self, call: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: Fn(MultiplexedConnection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RedisResult<T>> + Send,
    {
        let shared = Arc::clone(&self.shared);
        let timeout = self.timeout;
        self.shared
            .bg
            .block(async move {
                let mut used = None;
                let outcome = tokio::time::timeout(timeout, async {
                    loop {
                        let (id, conn, reused) = shared.connection().await?;
                        used = Some(id);
                        match call(conn).await {
                            // A server's error reply leaves the connection usable.
                            Err(e) if e.code().is_none() => {
                                shared.forget(used);
                                if !reused {
                                    return Err(e);
                                }
                            }
                            result => return result,
                        }
                    }
                })
                .await;
                outcome
                    .map_err(|_| {
                        shared.forget(used);
                        Failure::Timeout
                    })?
                    .map_err(Failure::Redis)
            })
            .unwrap_or(Err(Failure::Stopped))
    }

    fn unavailable(&self, failure: Failure) -> SourceError {
        let reason = match failure {
            Failure::Timeout => return SourceError::timed_out(self.name(), self.timeout),
            Failure::Redis(e) => describe(&e),
            Failure::Stopped => "its IO thread stopped".to_owned(),
        };
        SourceError::unavailable(self.name(), reason)
    }
}

impl Shared {
    /// The shared connection, connecting if there is none; true if it was
    /// there already.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection, bool)> {
        if let Some((id, conn)) = lock(&self.conn).as_ref() {
            return Ok((*id, conn.clone(), true));
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await?;
        let mut slot = lock(&self.conn);
        // Another request may have connected meanwhile: use one connection.
        let (id, conn) =
            slot.get_or_insert_with(|| (self.next_conn.fetch_add(1, Ordering::Relaxed), conn));
        Ok((*id, conn.clone(), false))
    }

    /// Drops the shared connection if it is still the one with this id.
    fn forget(&self, id: Option<u64>) {
        let mut slot = lock(&self.conn);
        if id.is_some() && slot.as_ref().map(|(i, _)| *i) == id {
            *slot = None;
        }
    }
}

impl Source for RedisSource {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let full = format!("{}{key}", self.shared.prefix);
        let value = self
            .request(move |mut conn| {
                let get = ::redis::cmd("GET").arg(&full).clone();
                async move { get.query_async::<Option<Vec<u8>>>(&mut conn).await }
            })
            .map_err(|f| match f {
                Failure::Redis(e) if e.code() == Some("WRONGTYPE") => SourceError::BadContent {
                    key: key.to_owned(),
                    source_name: self.name(),
                    reason: "the Redis key does not hold a string".to_owned(),
                },
                f => self.unavailable(f),
            })?;
        let code = value.ok_or_else(|| SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        })?;
        Ok(Script::from_content(key, code))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let pattern = format!(
            "{}*",
            glob_escape(&format!("{}{prefix}", self.shared.prefix))
        );
        let keys = self
            .request(move |mut conn| {
                let pattern = pattern.clone();
                async move { scan(&mut conn, &pattern).await }
            })
            .map_err(|f| self.unavailable(f))?;
        let strip = self.shared.prefix.len();
        let mut keys: Vec<String> = keys
            .iter()
            .filter_map(|k| k.get(strip..))
            .filter(|k| k.starts_with(prefix) && validate_key(k).is_ok())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let shared = &self.shared;
        let mut watcher = Watcher {
            client: shared.client.clone(),
            name: self.name(),
            prefix: shared.prefix.clone(),
            watched: format!("{}{prefix}", shared.prefix),
            keyspace: format!("__keyspace@{}__:", shared.db),
            channel: format!("{}{CHANGES_CHANNEL}", shared.prefix),
            timeout: self.timeout,
            known: None,
            resync_on_connect: false,
            warned_no_config: false,
            sink,
        };
        // Subscribe and take the first snapshot now, so every change made
        // after this call is reported. If the server is down, the watch
        // starts when it is back and reports a resync, since changes may
        // have been missed meanwhile.
        let (mut watcher, first) = shared
            .bg
            .block(async move {
                let first = watcher.connect().await;
                (watcher, first)
            })
            .ok_or_else(|| self.unavailable(Failure::Stopped))?;
        let first = first
            .inspect_err(|e| {
                tracing::warn!(source = %self.name(), error = %e, "redis watch starts once the server answers");
            })
            .ok();
        watcher.resync_on_connect = first.is_none();
        let task = shared.bg.spawn(watcher.run(first));
        Ok(WatchGuard::new((AbortOnDrop(task), Arc::clone(shared))))
    }
}

/// A live subscription: the pub/sub connection and a connection for
/// reading keys.
struct Session {
    pubsub: PubSubSink,
    messages: PubSubStream,
    conn: MultiplexedConnection,
}

/// The task behind a subscription: delivers keyspace events, and after a
/// disconnect subscribes again and reports what changed meanwhile by
/// comparing the keys' contents with those it knew.
struct Watcher {
    client: Client,
    name: String,
    /// The source's prefix, cut from Redis keys.
    prefix: String,
    /// The Redis key prefix watched (the source's and the watch's).
    watched: String,
    /// `__keyspace@DB__:`, the start of keyspace channels.
    keyspace: String,
    /// The channel writers announce changes on (see [`RedisSource`]).
    channel: String,
    timeout: Duration,
    /// The watched keys and the hash of their content as last seen (`None`:
    /// changed since, content not read). `None` before the first snapshot.
    known: Option<BTreeMap<String, Option<u64>>>,
    /// Report a resync on connecting: the watch started disconnected.
    resync_on_connect: bool,
    warned_no_config: bool,
    sink: ChangeSink,
}

impl Watcher {
    async fn run(mut self, first: Option<Session>) {
        let mut session = first;
        let mut backoff = BACKOFF.0;
        loop {
            let current = match session.take() {
                Some(s) => s,
                None => match self.connect().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(source = %self.name, error = %e, "redis watch cannot subscribe; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF.1);
                        continue;
                    }
                },
            };
            backoff = BACKOFF.0;
            let reason = self.serve(current).await;
            tracing::warn!(source = %self.name, error = %reason, "redis watch interrupted; subscribing again");
            tokio::time::sleep(backoff).await;
        }
    }

    /// Connects, turns on keyspace notifications, subscribes, then reports
    /// what changed since the last snapshot.
    async fn connect(&mut self) -> Result<Session, String> {
        let t = self.timeout;
        let mut conn = within(
            t,
            self.client
                .get_multiplexed_async_connection_with_config(&connection_config()),
        )
        .await?;
        self.enable_notifications(&mut conn).await?;
        let (mut pubsub, messages) = within(t, self.client.get_async_pubsub()).await?.split();
        let pattern = format!("{}{}*", self.keyspace, glob_escape(&self.watched));
        within(t, pubsub.psubscribe(pattern)).await?;
        within(t, pubsub.subscribe(&self.channel)).await?;
        // Subscribed first, listed second: a change in between is reported
        // twice at worst, never lost.
        let now = self.snapshot(&mut conn).await?;
        self.report_differences(now);
        Ok(Session {
            pubsub,
            messages,
            conn,
        })
    }

    /// Adds the classes the watch needs to `notify-keyspace-events` (a
    /// restarted server has forgotten them). `Err` only if the connection
    /// failed; a server that refuses `CONFIG` leaves the changes channel.
    async fn enable_notifications(
        &mut self,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), String> {
        let t = self.timeout;
        let current = within_reply(
            t,
            ::redis::cmd("CONFIG")
                .arg("GET")
                .arg("notify-keyspace-events")
                .query_async::<HashMap<String, String>>(conn),
        )
        .await?;
        let result = match current {
            Ok(current) => {
                let flags = current
                    .get("notify-keyspace-events")
                    .cloned()
                    .unwrap_or_default();
                let missing: String = NOTIFY_FLAGS
                    .chars()
                    // `A` stands for every class but `K` (and `E`, `m`, `n`).
                    .filter(|c| !(flags.contains(*c) || (*c != 'K' && flags.contains('A'))))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    within_reply(
                        t,
                        ::redis::cmd("CONFIG")
                            .arg("SET")
                            .arg("notify-keyspace-events")
                            .arg(format!("{flags}{missing}"))
                            .query_async::<()>(conn),
                    )
                    .await?
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result
            && !self.warned_no_config
        {
            self.warned_no_config = true;
            tracing::warn!(
                source = %self.name,
                error = %describe(&e),
                channel = %self.channel,
                "the Redis server refused to turn on keyspace notifications; only changes published to the channel are seen"
            );
        }
        Ok(())
    }

    /// The watched keys and the hashes of their contents.
    async fn snapshot(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<BTreeMap<String, Option<u64>>, String> {
        let pattern = format!("{}*", glob_escape(&self.watched));
        let mut keys = within(self.timeout, scan(conn, &pattern)).await?;
        keys.sort();
        keys.dedup();
        let mut now = BTreeMap::new();
        for chunk in keys.chunks(BATCH) {
            let values = within(
                self.timeout,
                ::redis::cmd("MGET")
                    .arg(chunk)
                    .query_async::<Vec<Option<Vec<u8>>>>(conn),
            )
            .await?;
            for (full, value) in chunk.iter().zip(values) {
                if let (Some(key), Some(value)) = (self.script_key(full), value) {
                    now.insert(key.to_owned(), Some(content_hash(&value)));
                }
            }
        }
        Ok(now)
    }

    /// Reports the keys that differ between what was known and `now`, and
    /// remembers `now`.
    fn report_differences(&mut self, now: BTreeMap<String, Option<u64>>) {
        match self.known.take() {
            None => {
                if std::mem::take(&mut self.resync_on_connect) {
                    self.sink.send(Change::Resync);
                }
            }
            Some(old) => {
                // An unknown hash (`None`) counts as changed.
                for change in differences(&old, &now, |a, b| b.is_none() || a != b) {
                    self.sink.send(change);
                }
            }
        }
        self.known = Some(now);
    }

    /// Delivers events until the subscription breaks; returns why it did.
    async fn serve(&mut self, mut session: Session) -> String {
        let mut health = tokio::time::interval(HEALTH_CHECK);
        health.tick().await;
        loop {
            tokio::select! {
                msg = session.messages.next() => {
                    let Some(msg) = msg else {
                        return "the connection closed".to_owned();
                    };
                    if let Err(e) = self.handle(&msg, &mut session.conn).await {
                        return e;
                    }
                }
                _ = health.tick() => {
                    if let Err(e) = within(self.timeout, session.pubsub.ping::<Value>()).await {
                        return format!("no answer to PING: {e}");
                    }
                }
            }
        }
    }

    /// Delivers the change a message reports and updates `known`.
    async fn handle(&mut self, msg: &Msg, conn: &mut MultiplexedConnection) -> Result<(), String> {
        let Ok(channel) = msg.get_channel::<Vec<u8>>() else {
            return Ok(());
        };
        let Ok(channel) = String::from_utf8(channel) else {
            return Ok(());
        };
        if channel == self.channel {
            let Ok(key) = std::str::from_utf8(msg.get_payload_bytes()) else {
                return Ok(());
            };
            if key.is_empty() {
                // "Anything may have changed": tell, and start over.
                self.sink.send(Change::Resync);
                let now = self.snapshot(conn).await?;
                self.known = Some(now);
                return Ok(());
            }
            let full = format!("{}{key}", self.prefix);
            if !full.starts_with(&self.watched) || validate_key(key).is_err() {
                return Ok(());
            }
            // The writer did not say what happened: the key tells.
            let key = key.to_owned();
            let value = self.read(conn, &key, &full).await?;
            self.sink.send(match value {
                Some(_) => Change::Updated { key },
                None => Change::Removed { key },
            });
            return Ok(());
        }
        let Some(full) = channel.strip_prefix(&self.keyspace) else {
            return Ok(());
        };
        let Some(key) = self.script_key(full).map(str::to_owned) else {
            return Ok(());
        };
        let event = String::from_utf8_lossy(msg.get_payload_bytes());
        if NEUTRAL_EVENTS.contains(&&*event) {
            return Ok(());
        }
        if REMOVING_EVENTS.contains(&&*event) {
            if let Some(known) = &mut self.known {
                known.remove(&key);
            }
            self.sink.send(Change::Removed { key });
            return Ok(());
        }
        self.sink.send(Change::Updated { key: key.clone() });
        // Remember the new content, so a reconnect does not report it again.
        self.read(conn, &key, full).await?;
        Ok(())
    }

    /// Reads `full` and records its content hash in `known` under `key`.
    async fn read(
        &mut self,
        conn: &mut MultiplexedConnection,
        key: &str,
        full: &str,
    ) -> Result<Option<u64>, String> {
        let value = within(
            self.timeout,
            ::redis::cmd("GET")
                .arg(full)
                .query_async::<Option<Vec<u8>>>(conn),
        )
        .await;
        let hash = match value {
            Ok(value) => value.map(|v| content_hash(&v)),
            // Not a string: not a script.
            Err(e) if e.contains("WRONGTYPE") => None,
            Err(e) => {
                if let Some(known) = &mut self.known {
                    known.insert(key.to_owned(), None);
                }
                return Err(e);
            }
        };
        if let Some(known) = &mut self.known {
            match hash {
                Some(h) => known.insert(key.to_owned(), Some(h)),
                None => known.remove(key),
            };
        }
        Ok(hash)
    }

    /// The script key of the Redis key `full`, if it is a valid one under
    /// the watched prefix.
    fn script_key<'a>(&self, full: &'a str) -> Option<&'a str> {
        if !full.starts_with(&self.watched) {
            return None;
        }
        full.get(self.prefix.len()..)
            .filter(|k| validate_key(k).is_ok())
    }
}

/// The string keys matching `pattern`, by `SCAN` (may repeat keys).
async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(BATCH)
            .arg("TYPE")
            .arg("string")
            .query_async(conn)
            .await?;
        keys.extend(batch.into_iter().filter_map(|k| String::from_utf8(k).ok()));
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Connections wait as long as the caller's deadline allows: the client's
/// own defaults (a 500 ms response timeout) would cut large reads short.
fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None)
}

/// `fut` within `timeout`, any failure as one line.
async fn within<T>(
    timeout: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

/// `fut` within `timeout`: `Err` if the connection failed, the server's
/// error reply inside `Ok`.
async fn within_reply<T>(
    timeout: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<RedisResult<T>, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Err(e)) if e.code().is_none() => Err(describe(&e)),
        Ok(result) => Ok(result),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

/// `text` with the glob characters of `SCAN MATCH` / `PSUBSCRIBE` escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_named_without_credentials() {
        let err = RedisSource::new("redis://user:s3cret@", "p/").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let src = RedisSource::new("redis://user:s3cret@127.0.0.1:6390/3", "p/").unwrap();
        assert_eq!(src.name(), "redis://127.0.0.1:6390/p/ (db 3)");
        assert!(!format!("{src:?}").contains("s3cret"));
    }

    #[test]
    fn globs_are_escaped() {
        assert_eq!(glob_escape(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d");
    }
}
