//! [`Manager`]: named engines and pools per namespace (one namespace per
//! tenant), with graceful close.
//!
//! ```
//! # #[cfg(feature = "lua")] {
//! use std::time::Duration;
//! use troupe_engines::{EngineFactory, Manager};
//! use troupe_dispatcher::Value;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let manager = Manager::new(EngineFactory::builtin());
//! manager.add_engine("tenant-a", "rules", "lua")?;
//! let mut rules = manager.get("tenant-a", "rules").await?;
//! assert_eq!(rules.as_executor()?.execute_string("return 6 * 7")?, Value::Int(42));
//! drop(rules);
//! manager.close(Duration::from_secs(1)).await?;
//! # Ok::<(), troupe_dispatcher::Error>(())
//! # }).unwrap();
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind};

use crate::factory::EngineFactory;
use crate::pool::{EnginePool, PooledEngine};

/// Named pools by namespace. A named *engine* is a pool of one instance,
/// so users of the same engine take turns.
pub struct Manager {
    factory: EngineFactory,
    namespaces: Mutex<BTreeMap<String, BTreeMap<String, EnginePool>>>,
    /// The `(namespace, name)` [`Manager::default`] hands out.
    default: Mutex<Option<(String, String)>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Manager {
    /// A manager whose [`add_engine`](Manager::add_engine) makes instances
    /// with `factory`.
    pub fn new(factory: EngineFactory) -> Self {
        Self {
            factory,
            namespaces: Mutex::new(BTreeMap::new()),
            default: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Makes `name` in `namespace` the default engine; `NOT_FOUND` if
    /// there is none.
    pub fn set_default(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.pool(namespace, name)?;
        *self.default.lock() = Some((namespace.to_owned(), name.to_owned()));
        Ok(())
    }

    /// The default engine's pool; `NOT_FOUND` when none is set (or it was
    /// removed).
    pub fn default_pool(&self) -> Result<EnginePool, Error> {
        let default = self.default.lock().clone();
        let (namespace, name) =
            default.ok_or_else(|| Error::not_found("no default engine is set"))?;
        self.pool(&namespace, &name)
    }

    /// An instance of the default engine (see [`EnginePool::get`]).
    pub async fn default(&self) -> Result<PooledEngine, Error> {
        self.default_pool()?.get().await
    }

    /// Removes `name` from `namespace` and closes its pool, waiting up to
    /// `timeout` for checked-out instances; `NOT_FOUND` if there is none.
    pub async fn remove(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let pool = {
            let mut namespaces = self.namespaces.lock();
            let ns = namespaces
                .get_mut(namespace)
                .ok_or_else(|| Error::not_found(format!("no engine {namespace}/{name}")))?;
            let pool = ns
                .remove(name)
                .ok_or_else(|| Error::not_found(format!("no engine {namespace}/{name}")))?;
            if ns.is_empty() {
                namespaces.remove(namespace);
            }
            pool
        };
        pool.close(timeout).await
    }

    /// Checks out and returns one instance of every engine, so a broken
    /// one fails here rather than at its first use; the first error names
    /// the engine.
    pub async fn init_all(&self) -> Result<(), Error> {
        let all: Vec<(String, EnginePool)> = self
            .namespaces
            .lock()
            .iter()
            .flat_map(|(ns, pools)| {
                pools
                    .iter()
                    .map(move |(n, p)| (format!("{ns}/{n}"), p.clone()))
            })
            .collect();
        for (name, pool) in all {
            pool.get()
                .await
                .map_err(|e| Error::new(e.kind(), format!("{name}: {}", e.message())))?;
        }
        Ok(())
    }

    /// Whether [`close`](Manager::close) ran.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Adds `pool` as `name` in `namespace`; `ALREADY_EXISTS` if the name is
    /// taken there.
    pub fn add_pool(&self, namespace: &str, name: &str, pool: EnginePool) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::new(ErrorKind::Unavailable, "the manager is closed"));
        }
        let mut namespaces = self.namespaces.lock();
        let ns = namespaces.entry(namespace.to_owned()).or_default();
        if ns.contains_key(name) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{namespace}/{name} already exists"),
            ));
        }
        ns.insert(name.to_owned(), pool);
        Ok(())
    }

    /// Adds one instance of engine `kind` (from the factory) as `name` in
    /// `namespace`.
    pub fn add_engine(&self, namespace: &str, name: &str, kind: &str) -> Result<(), Error> {
        self.factory.create(kind)?;
        let factory = self.factory.clone();
        let kind = kind.to_owned();
        let pool = EnginePool::new(1, move || factory.create(&kind))?;
        self.add_pool(namespace, name, pool)
    }

    /// The pool `name` in `namespace`; `NOT_FOUND` if there is none.
    pub fn pool(&self, namespace: &str, name: &str) -> Result<EnginePool, Error> {
        self.namespaces
            .lock()
            .get(namespace)
            .and_then(|ns| ns.get(name))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no engine {namespace}/{name}")))
    }

    /// An instance of `name` in `namespace` (see [`EnginePool::get`]).
    pub async fn get(&self, namespace: &str, name: &str) -> Result<PooledEngine, Error> {
        self.pool(namespace, name)?.get().await
    }

    /// [`get`](Manager::get) for threads outside an async context.
    pub fn get_blocking(&self, namespace: &str, name: &str) -> Result<PooledEngine, Error> {
        self.pool(namespace, name)?.get_blocking()
    }

    /// The namespaces, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        self.namespaces.lock().keys().cloned().collect()
    }

    /// The engine and pool names in `namespace`, sorted.
    pub fn names(&self, namespace: &str) -> Vec<String> {
        self.namespaces
            .lock()
            .get(namespace)
            .map(|ns| ns.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes `namespace` and closes its pools, waiting up to `timeout`
    /// for checked-out instances (see [`EnginePool::close`]).
    pub async fn close_namespace(&self, namespace: &str, timeout: Duration) -> Result<(), Error> {
        let pools = self.namespaces.lock().remove(namespace);
        let pools = pools.ok_or_else(|| Error::not_found(format!("no namespace {namespace}")))?;
        close_all(pools.into_values(), timeout).await
    }

    /// Closes every namespace, waiting up to `timeout` for checked-out
    /// instances; the first error (e.g. `TIMEOUT`) after all were closed.
    pub async fn close(&self, timeout: Duration) -> Result<(), Error> {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let all = std::mem::take(&mut *self.namespaces.lock());
        close_all(all.into_values().flat_map(BTreeMap::into_values), timeout).await
    }
}

async fn close_all(
    pools: impl Iterator<Item = EnginePool>,
    timeout: Duration,
) -> Result<(), Error> {
    // A timeout too long for the clock is a century: forever, for a wait.
    let now = tokio::time::Instant::now();
    let deadline = now
        .checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
    let mut first = None;
    for pool in pools {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err(e) = pool.close(left).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
