use std::collections::BTreeSet;
use std::sync::Arc;

use crate::{ChangeSink, Script, Source, SourceError, WatchGuard, validate_key};

/// How a [`LayeredSource`] picks among its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStrategy {
    /// The first layer that has the key; a layer that fails with anything
    /// but `NotFound` stops the search with its error (so an outage never
    /// silently serves a lower layer's older script).
    Fallback,
    /// The first layer that answers without error; failing layers are
    /// skipped (replicas, mirrors). `get` asks every layer at once and takes
    /// whichever succeeds first, so a hanging layer does not delay a healthy
    /// one; when all fail the error lists every layer's reason.
    FirstOk,
}

/// Several sources: asked in order, the first layer wins
/// ([`LayerStrategy::Fallback`]), or raced, the first success wins
/// ([`LayerStrategy::FirstOk`]). Watching it watches every layer that can be
/// watched.
#[derive(Clone)]
pub struct LayeredSource {
    strategy: LayerStrategy,
    layers: Vec<Arc<dyn Source>>,
}

impl std::fmt::Debug for LayeredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl LayeredSource {
    /// An empty stack with `strategy`; add layers with
    /// [`layer`](Self::layer), highest priority first.
    pub fn new(strategy: LayerStrategy) -> Self {
        Self {
            strategy,
            layers: Vec::new(),
        }
    }

    /// Adds a layer below the existing ones.
    #[must_use]
    pub fn layer(mut self, source: impl Source) -> Self {
        self.layers.push(Arc::new(source));
        self
    }

    fn not_found(&self, key: &str) -> SourceError {
        SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        }
    }

    /// `FirstOk` after every layer failed: `NotFound` if all said so, else
    /// `Unavailable` with every layer's reason.
    fn all_failed(&self, key: &str, errors: Vec<SourceError>) -> SourceError {
        if errors
            .iter()
            .all(|e| matches!(e, SourceError::NotFound { .. }))
        {
            return self.not_found(key);
        }
        SourceError::Unavailable {
            source_name: self.name(),
            reason: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// `Fallback`: the first layer that has the key; any other error stops.
    fn get_in_order(&self, key: &str) -> Result<Script, SourceError> {
        for layer in &self.layers {
            match layer.get(key) {
                Err(SourceError::NotFound { .. }) => {}
                result => return result,
            }
        }
        Err(self.not_found(key))
    }

    /// `FirstOk`: every layer asked at once; the first success wins. With
    /// one layer (or none) nothing is spawned.
    fn get_first_ok(&self, key: &str) -> Result<Script, SourceError> {
        if let [only] = self.layers.as_slice() {
            return only.get(key).map_err(|e| self.all_failed(key, vec![e]));
        }
        let (tx, rx) = flume::unbounded();
        for (i, layer) in self.layers.iter().enumerate() {
            let (layer, thread_tx, owned_key) = (Arc::clone(layer), tx.clone(), key.to_owned());
            let spawned = std::thread::Builder::new()
                .name("troupe-first-ok".to_owned())
                .spawn(move || {
                    // Fails only once the caller has its answer.
                    let _ = thread_tx.send((i, layer.get(&owned_key)));
                });
            if let Err(e) = spawned {
                let _ = tx.send((
                    i,
                    Err(SourceError::unavailable(
                        self.layers[i].name(),
                        format!("cannot start a thread to ask it: {e}"),
                    )),
                ));
            }
        }
        drop(tx);
        let mut errors = Vec::new();
        while let Ok((i, result)) = rx.recv() {
            match result {
                Ok(script) => return Ok(script),
                Err(e) => {
                    tracing::debug!(layer = %self.layers[i].name(), error = %e, "layer failed");
                    errors.push((i, e));
                }
            }
        }
        errors.sort_by_key(|(i, _)| *i);
        Err(self.all_failed(key, errors.into_iter().map(|(_, e)| e).collect()))
    }
}

impl Source for LayeredSource {
    fn name(&self) -> String {
        let strategy = match self.strategy {
            LayerStrategy::Fallback => "fallback",
            LayerStrategy::FirstOk => "first-ok",
        };
        let layers: Vec<String> = self.layers.iter().map(|l| l.name()).collect();
        format!("layered-{strategy}[{}]", layers.join(", "))
    }

    /// `Fallback` asks the layers in order. `FirstOk` asks them all at
    /// once, one thread per layer, and returns the first success: a slow or
    /// hanging layer does not delay a faster one (its thread is left to
    /// finish on its own).
    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        match self.strategy {
            LayerStrategy::Fallback => self.get_in_order(key),
            LayerStrategy::FirstOk => self.get_first_ok(key),
        }
    }

    /// The union of the layers' keys. `Fallback` fails if a layer fails;
    /// `FirstOk` skips failing layers unless all fail.
    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let mut keys = BTreeSet::new();
        let mut errors = Vec::new();
        for layer in &self.layers {
            match layer.list(prefix) {
                Ok(k) => keys.extend(k),
                Err(SourceError::Unsupported { .. }) => {}
                Err(e) if self.strategy == LayerStrategy::Fallback => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() && errors.len() == self.layers.len() {
            return Err(self.all_failed(prefix, errors));
        }
        Ok(keys.into_iter().collect())
    }

    /// Subscribes to every layer that can be watched. A change in a shadowed
    /// layer is reported too; re-reading the key then finds it unchanged.
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        let mut guards = Vec::new();
        for layer in &self.layers {
            match layer.subscribe(prefix, sink.clone()) {
                Ok(g) => guards.push(g),
                Err(SourceError::Unsupported { .. }) => {}
                Err(e) if self.strategy == LayerStrategy::Fallback => return Err(e),
                Err(e) => {
                    tracing::warn!(layer = %layer.name(), error = %e, "cannot watch a layer; its changes go unseen");
                }
            }
        }
        if guards.is_empty() {
            return Err(SourceError::Unsupported {
                source_name: self.name(),
                operation: "watch",
            });
        }
        Ok(WatchGuard::merge(guards))
    }
}
