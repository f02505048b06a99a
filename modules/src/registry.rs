use std::collections::BTreeMap;
use std::sync::Arc;

use troupe_dispatcher::Error;

use crate::{ModuleDef, Policy};

/// The modules a runtime offers, by name. Built once, then shared read-only.
/// [`ModuleRegistry::resolve`] is the single place where `require` meets the
/// policy: engines never check permissions by hand.
#[derive(Clone, Debug, Default)]
pub struct ModuleRegistry {
    modules: BTreeMap<String, Arc<ModuleDef>>,
    /// Each alias and the name of its module.
    aliases: BTreeMap<String, String>,
}

impl ModuleRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in modules.
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        for m in crate::builtin::all() {
            r.insert(m);
        }
        r
    }

    /// Adds (or replaces) a module, with its aliases.
    pub fn insert(&mut self, module: ModuleDef) {
        for alias in module.aliases() {
            self.aliases.insert(alias.clone(), module.name().to_owned());
        }
        self.modules
            .insert(module.name().to_owned(), Arc::new(module));
    }

    /// The module `name` if `policy` allows it: `NOT_FOUND` for an unknown
    /// name, `PERMISSION_DENIED` for one the policy refuses.
    pub fn resolve(&self, name: &str, policy: &Policy) -> Result<&Arc<ModuleDef>, Error> {
        let module = self
            .get(name)
            .ok_or_else(|| Error::not_found(format!("module {name:?} not found")))?;
        if !policy.allows(module) {
            return Err(Error::permission_denied(format!(
                "module {name:?} (classes: {}) is not allowed by the policy",
                module.classes()
            )));
        }
        Ok(module)
    }

    /// The module called `name` (or aliased so), whatever any policy says.
    pub fn get(&self, name: &str) -> Option<&Arc<ModuleDef>> {
        self.modules.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|real| self.modules.get(real))
        })
    }

    /// Every module, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ModuleDef>> {
        self.modules.values()
    }
}
