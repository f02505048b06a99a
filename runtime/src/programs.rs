//! The program cache and hot reload. The cache holds one compiled program
//! per script key, tagged with the source version it was compiled from;
//! every spawn asks the source for the key's current version, so new spawns
//! get new code while running processes keep the program they started with
//! (they hold it). A new version that fails to compile is rejected: it is
//! logged once and the previous program keeps serving, so a bad edit never
//! takes down what runs or what is spawned next.
//!
//! With [`RuntimeBuilder::hot_reload`](crate::RuntimeBuilder::hot_reload)
//! a reloader thread (`reload.rs`) feeds the source's changes to
//! [`Programs::refresh`], which recompiles changed scripts as the changes
//! arrive (so errors show at once, not at the next spawn); the processes
//! spawned with [`Spawn::restart_on_change`](crate::Spawn::restart_on_change)
//! at an older version are then stopped, for their supervisors to restart
//! them on the new one.

use std::sync::Arc;

use dashmap::DashMap;
use troupe_dispatcher::{Error, Pid};
use troupe_sources::{Change, Script, Source, SourceError};

use crate::engine::{Engine, Program};

/// A compiled script in the program cache.
struct CachedProgram {
    /// The source version it was compiled from.
    version: u64,
    /// The engine that compiled it (index into the runtime's engines).
    engine: usize,
    program: Program,
    /// A newer version that failed to compile, so it is not tried again.
    rejected: Option<u64>,
}

/// The engines, the source, the programs compiled from it, and the
/// processes that restart when their script changes.
pub(crate) struct Programs {
    engines: Vec<Arc<dyn Engine>>,
    /// The engines' names, for snapshots.
    names: Vec<Arc<str>>,
    source: Arc<dyn Source>,
    cache: DashMap<String, CachedProgram>,
    /// Processes that restart when their script changes: pid → (key,
    /// version it runs).
    services: DashMap<Pid, (String, u64)>,
}

impl Programs {
    /// An empty cache over `engines` and `source`.
    pub fn new(engines: Vec<Arc<dyn Engine>>, source: Arc<dyn Source>) -> Self {
        Self {
            names: engines.iter().map(|e| Arc::from(e.name())).collect(),
            engines,
            source,
            cache: DashMap::new(),
            services: DashMap::new(),
        }
    }

    /// Where scripts come from.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Engine `idx`, as [`Programs::program`] names it.
    pub fn engine(&self, idx: usize) -> &Arc<dyn Engine> {
        &self.engines[idx]
    }

    /// The name of engine `idx`.
    pub fn engine_name(&self, idx: usize) -> Option<Arc<str>> {
        self.names.get(idx).cloned()
    }

    fn engine_for(&self, key: &str) -> Result<(usize, &Arc<dyn Engine>), Error> {
        let ext = key.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        self.engines
            .iter()
            .enumerate()
            .find(|(_, e)| e.extensions().contains(&ext))
            .ok_or_else(|| Error::not_found(format!("no engine runs {key:?} (extension {ext:?})")))
    }

    /// The compiled program for `script` and the version it was compiled
    /// from: from the cache when the version is unchanged. With
    /// `keep_previous` (scripts read from the source), a new version that
    /// fails to compile is logged and remembered as rejected, and the
    /// previous program keeps serving; without a previous one the
    /// error is returned.
    pub fn program(
        &self,
        script: &Script,
        keep_previous: bool,
    ) -> Result<(usize, u64, Program), Error> {
        if let Some(hit) = self.cache.get(&script.key)
            && (hit.version == script.version
                || (keep_previous && hit.rejected == Some(script.version)))
        {
            return Ok((hit.engine, hit.version, Arc::clone(&hit.program)));
        }
        let (idx, engine) = self.engine_for(&script.key)?;
        match engine.compile(script) {
            Ok(program) => {
                self.cache.insert(
                    script.key.clone(),
                    CachedProgram {
                        version: script.version,
                        engine: idx,
                        program: Arc::clone(&program),
                        rejected: None,
                    },
                );
                Ok((idx, script.version, program))
            }
            Err(e) if keep_previous => {
                let Some(mut hit) = self.cache.get_mut(&script.key) else {
                    return Err(e);
                };
                tracing::error!(
                    key = %script.key,
                    error = %e,
                    "the new version does not compile; keeping the previous one"
                );
                hit.rejected = Some(script.version);
                Ok((hit.engine, hit.version, Arc::clone(&hit.program)))
            }
            Err(e) => Err(e),
        }
    }

    /// Restarts `pid` when `key` changes from `version`.
    pub fn add_service(&self, pid: Pid, key: String, version: u64) {
        self.services.insert(pid, (key, version));
    }

    /// Applies one change: recompiles every cached script it affects;
    /// the keys that got a new program, with its version.
    pub fn refresh(&self, change: &Change) -> Vec<(String, u64)> {
        let keys: Vec<String> = self
            .cache
            .iter()
            .filter(|e| change.affects(e.key()))
            .map(|e| e.key().clone())
            .collect();
        let mut changed = Vec::new();
        for key in keys {
            let before = self.cache.get(&key).map(|p| p.version);
            match self.source.get(&key) {
                Ok(script) => match self.program(&script, true) {
                    Ok((_, version, _)) if Some(version) != before => {
                        tracing::info!(%key, version, "hot reload: new version compiled");
                        changed.push((key, version));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(%key, error = %e, "hot reload failed"),
                },
                Err(SourceError::NotFound { .. }) => {
                    self.cache.remove(&key);
                    tracing::info!(%key, "hot reload: script removed; running processes keep their code");
                }
                Err(e) => {
                    tracing::warn!(%key, error = %e, "hot reload: cannot read the changed script; keeping the compiled version");
                }
            }
        }
        changed
    }

    /// Takes the live services running `key` at another version than
    /// `version` (and forgets the services that have ended).
    pub fn stale_services(&self, key: &str, version: u64, alive: impl Fn(Pid) -> bool) -> Vec<Pid> {
        self.services.retain(|pid, _| alive(*pid));
        let stale: Vec<Pid> = self
            .services
            .iter()
            .filter(|e| e.value().0 == key && e.value().1 != version)
            .map(|e| *e.key())
            .collect();
        for pid in &stale {
            self.services.remove(pid);
        }
        stale
    }
}
