use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use troupe_dispatcher::Error;

use crate::{Class, ClassSet, ModuleDef, ModuleRegistry};

/// Whether a [`Rule`] grants or refuses.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleEffect {
    /// Grants the action on matching resources.
    Allow,
    /// Refuses the action on matching resources; beats any allow.
    Deny,
}

/// An action-level rule: `(action, resource pattern) → allow | deny`, e.g.
/// `http.get` on `https://api.example.com/*`. In patterns `*` matches within
/// one path segment (no `/`) and `**` matches anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The action, e.g. `fs.read`; `*` matches every action.
    pub action: String,
    /// The resource pattern.
    pub pattern: String,
    /// Allow or deny.
    pub effect: RuleEffect,
}

/// A sandbox policy. **Default-deny**: a module is loadable only if it is
/// allowed by name, or every one of its classes is allowed; a denied name
/// always loses. A policy restricted by a parent ([`Policy::within`]) allows
/// only what both allow, so a child never gets more than its parent.
///
/// A policy serializes (a workflow's journal keeps the policy it started
/// with, so a resume cannot widen it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    classes: ClassSet,
    allow_modules: BTreeSet<String>,
    deny_modules: BTreeSet<String>,
    only_modules: Option<BTreeSet<String>>,
    rules: Vec<Rule>,
    parent: Option<Arc<Policy>>,
}

impl Policy {
    /// Allows nothing.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Pure computation: `deterministic`, `encoding`.
    pub fn deterministic() -> Self {
        Self::with_classes(&[Class::Deterministic, Class::Encoding])
    }

    /// Workflow-safe: `deterministic`, `encoding`, `time`, `workflow`, `process`.
    pub fn workflow() -> Self {
        Self::with_classes(&[
            Class::Deterministic,
            Class::Encoding,
            Class::Time,
            Class::Workflow,
            Class::Process,
        ])
    }

    /// For plugins: `deterministic`, `encoding`, `time`, `nondeterministic`.
    pub fn plugin() -> Self {
        Self::with_classes(&[
            Class::Deterministic,
            Class::Encoding,
            Class::Time,
            Class::Nondeterministic,
        ])
    }

    /// Everything.
    pub fn trusted() -> Self {
        Self {
            classes: ClassSet::all(),
            ..Self::default()
        }
    }

    /// A preset by name: `deterministic`, `workflow`, `plugin`, `trusted`, `none`.
    pub fn preset(name: &str) -> Result<Self, Error> {
        match name {
            "deterministic" => Ok(Self::deterministic()),
            "workflow" => Ok(Self::workflow()),
            "plugin" => Ok(Self::plugin()),
            "trusted" => Ok(Self::trusted()),
            "none" => Ok(Self::deny_all()),
            other => Err(Error::invalid(format!(
                "unknown policy preset {other:?} (known: deterministic, workflow, plugin, trusted, none)"
            ))),
        }
    }

    fn with_classes(classes: &[Class]) -> Self {
        Self {
            classes: ClassSet::of(classes),
            ..Self::default()
        }
    }

    /// Also allows `class`.
    #[must_use]
    pub fn allow_class(mut self, class: Class) -> Self {
        self.classes = self.classes.with(class);
        self
    }

    /// Also allows every class in `classes`.
    #[must_use]
    pub fn allow_classes(mut self, classes: ClassSet) -> Self {
        for c in classes.iter() {
            self.classes = self.classes.with(c);
        }
        self
    }

    /// Allows module `name` whatever its classes.
    #[must_use]
    pub fn allow_module(mut self, name: impl Into<String>) -> Self {
        self.allow_modules.insert(name.into());
        self
    }

    /// Refuses module `name`, whatever else allows it.
    #[must_use]
    pub fn deny_module(mut self, name: impl Into<String>) -> Self {
        self.deny_modules.insert(name.into());
        self
    }

    /// Restricts loading to the modules named here: any other module is
    /// refused, and a listed one still needs its classes (or its name)
    /// allowed. Calling it again narrows the list further.
    #[must_use]
    pub fn only_modules<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        self.only_modules = Some(match self.only_modules.take() {
            Some(old) => old.intersection(&names).cloned().collect(),
            None => names,
        });
        self
    }

    /// Checks that every module name the policy mentions (in its allow,
    /// deny and only lists, its parents' included) exists in `modules`, and
    /// that every rule has an action and a pattern: a typo in a policy is
    /// `INVALID`, never a silent no-op.
    pub fn validate(&self, modules: &ModuleRegistry) -> Result<(), Error> {
        let named = self
            .allow_modules
            .iter()
            .chain(&self.deny_modules)
            .chain(self.only_modules.iter().flatten());
        for name in named {
            if modules.get(name).is_none() {
                return Err(Error::invalid(format!(
                    "policy names unknown module {name:?}"
                )));
            }
        }
        if let Some(r) = self
            .rules
            .iter()
            .find(|r| r.action.is_empty() || r.pattern.is_empty())
        {
            return Err(Error::invalid(format!(
                "policy rule needs an action and a pattern, got ({:?}, {:?})",
                r.action, r.pattern
            )));
        }
        self.parent.as_ref().map_or(Ok(()), |p| p.validate(modules))
    }

    /// This policy without the module names `modules` lacks, its parents'
    /// included. A policy from another node of a cluster may name modules
    /// only that node has: here they can be neither loaded nor refused, and
    /// an `only` list keeps refusing every other module.
    #[must_use]
    pub fn known(mut self, modules: &ModuleRegistry) -> Self {
        let keep = |set: &mut BTreeSet<String>| set.retain(|n| modules.get(n).is_some());
        keep(&mut self.allow_modules);
        keep(&mut self.deny_modules);
        if let Some(only) = &mut self.only_modules {
            keep(only);
        }
        self.parent = self
            .parent
            .map(|p| Arc::new(Policy::clone(&p).known(modules)));
        self
    }

    /// Adds an action-level rule.
    #[must_use]
    pub fn rule(mut self, action: &str, pattern: &str, effect: RuleEffect) -> Self {
        self.rules.push(Rule {
            action: action.to_owned(),
            pattern: pattern.to_owned(),
            effect,
        });
        self
    }

    /// This policy, limited to what `parent` allows too.
    #[must_use]
    pub fn within(mut self, parent: &Arc<Policy>) -> Self {
        self.parent = Some(match self.parent.take() {
            None => Arc::clone(parent),
            Some(own) => Arc::new(Policy::clone(&own).within(parent)),
        });
        self
    }

    /// The classes this policy itself allows (before any parent's limits).
    pub fn classes(&self) -> ClassSet {
        match &self.parent {
            Some(p) => self.classes.intersect(p.classes()),
            None => self.classes,
        }
    }

    /// Whether a process under this policy may load `module`.
    pub fn allows(&self, module: &ModuleDef) -> bool {
        self.allows_here(module) && self.parent.as_ref().is_none_or(|p| p.allows(module))
    }

    /// A module is named in a list by its name or any of its aliases.
    fn allows_here(&self, module: &ModuleDef) -> bool {
        let named = |list: &BTreeSet<String>| module.names().any(|n| list.contains(n));
        if named(&self.deny_modules) || self.only_modules.as_ref().is_some_and(|o| !named(o)) {
            return false;
        }
        named(&self.allow_modules) || self.classes.is_superset(module.classes())
    }

    /// Whether `action` on `resource` is allowed. An action no rule mentions
    /// is allowed (the module-level check already happened); once any rule
    /// names it, only matching allows without a matching deny pass. Parents'
    /// rules apply too.
    pub fn is_allowed(&self, action: &str, resource: &str) -> bool {
        let mut mentioned = false;
        let mut allowed = false;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.action == action || r.action == "*")
        {
            mentioned = true;
            if glob_match(&rule.pattern, resource) {
                match rule.effect {
                    RuleEffect::Deny => return false,
                    RuleEffect::Allow => allowed = true,
                }
            }
        }
        (!mentioned || allowed)
            && self
                .parent
                .as_ref()
                .is_none_or(|p| p.is_allowed(action, resource))
    }
}

/// Matches `text` against `pattern` where `**` matches anything and `*`
/// matches anything but `/`.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matcher with backtracking to the last star.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize, bool)> = None; // (pattern idx after star, text idx, crosses '/')
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            let double = p.get(pi + 1) == Some(&b'*');
            pi += if double { 2 } else { 1 };
            star = Some((pi, ti, double));
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st, double)) = star {
            if !double && t[st] == b'/' {
                return false;
            }
            pi = sp;
            ti = st + 1;
            star = Some((sp, st + 1, double));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, classes: &[Class]) -> ModuleDef {
        ModuleDef::new(name).with_classes(classes)
    }

    #[test]
    fn default_deny_classes_names_and_deny_wins() {
        let json = module("json", &[Class::Deterministic, Class::Encoding]);
        let fs = module("fs", &[Class::Io]);
        assert!(!Policy::deny_all().allows(&json));
        assert!(Policy::deterministic().allows(&json));
        assert!(!Policy::deterministic().allows(&fs));
        assert!(Policy::deterministic().allow_module("fs").allows(&fs));
        assert!(!Policy::trusted().deny_module("fs").allows(&fs));
        assert!(
            !Policy::trusted()
                .allow_module("fs")
                .deny_module("fs")
                .allows(&fs)
        );
        // all classes must be allowed
        let mixed = module("mixed", &[Class::Deterministic, Class::Network]);
        assert!(!Policy::deterministic().allows(&mixed));
    }

    #[test]
    fn a_child_never_gets_more_than_its_parent() {
        let parent = Arc::new(Policy::plugin().deny_module("json"));
        let fs = module("fs", &[Class::Io]);
        let json = module("json", &[Class::Deterministic, Class::Encoding]);
        let child = Policy::trusted().allow_module("fs").within(&parent);
        assert!(!child.allows(&fs));
        assert!(!child.allows(&json));
        assert!(!child.classes().contains(Class::Io));
        let grandchild = Policy::trusted().within(&Arc::new(child));
        assert!(!grandchild.allows(&fs));
    }

    #[test]
    fn action_rules_with_globs() {
        let p = Policy::trusted()
            .rule("http.get", "https://api.example.com/*", RuleEffect::Allow)
            .rule("fs.read", "data/**", RuleEffect::Allow)
            .rule("fs.read", "data/secret/**", RuleEffect::Deny);
        assert!(p.is_allowed("http.get", "https://api.example.com/users"));
        assert!(!p.is_allowed("http.get", "https://api.example.com/users/1"));
        assert!(!p.is_allowed("http.get", "https://evil.com/"));
        assert!(p.is_allowed("fs.read", "data/a/b.txt"));
        assert!(!p.is_allowed("fs.read", "data/secret/key"));
        assert!(p.is_allowed("kv.get", "anything"));
        let child = Policy::trusted().within(&Arc::new(p));
        assert!(!child.is_allowed("fs.read", "data/secret/key"));
    }

    #[test]
    fn only_modules_restricts_but_never_grants() {
        let json = module("json", &[Class::Deterministic, Class::Encoding]);
        let hash = module("hash", &[Class::Deterministic, Class::Encoding]);
        let fs = module("fs", &[Class::Io]);
        let p = Policy::deterministic().only_modules(["json", "fs"]);
        assert!(p.allows(&json));
        assert!(!p.allows(&hash));
        assert!(!p.allows(&fs));
        let narrowed = p.only_modules(["hash", "fs"]);
        assert!(!narrowed.allows(&json) && !narrowed.allows(&hash));
    }

    #[test]
    fn unknown_module_names_and_empty_rules_are_invalid() {
        let registry = ModuleRegistry::with_builtins();
        assert!(
            Policy::plugin()
                .allow_module("json")
                .validate(&registry)
                .is_ok()
        );
        for bad in [
            Policy::plugin().allow_module("jsno"),
            Policy::plugin().deny_module("nope"),
            Policy::plugin().only_modules(["json", "xml"]),
            Policy::plugin().rule("", "*", RuleEffect::Allow),
            Policy::plugin().within(&Arc::new(Policy::plugin().deny_module("ghost"))),
        ] {
            let e = bad.validate(&registry).unwrap_err();
            assert_eq!(e.kind(), troupe_dispatcher::ErrorKind::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn names_of_modules_another_node_has_are_dropped_never_widening() {
        let registry = ModuleRegistry::with_builtins();
        let json = registry.get("json").unwrap();
        let only = Policy::plugin().only_modules(["plugin_db", "json"]);
        let parent = Arc::new(Policy::plugin().deny_module("ghost").deny_module("json"));
        let remote = Policy::plugin().allow_module("plugin_db").within(&parent);
        let here = remote.known(&registry);
        assert!(here.validate(&registry).is_ok());
        assert!(!here.allows(json), "a known deny in a parent stays");
        let here = only.known(&registry);
        assert!(here.validate(&registry).is_ok() && here.allows(json));
        let gone = Policy::plugin()
            .only_modules(["plugin_db"])
            .known(&registry);
        assert!(
            !gone.allows(json),
            "an `only` list of unknown modules refuses all"
        );
    }

    #[test]
    fn unknown_preset_is_invalid() {
        assert!(Policy::preset("workflow").is_ok());
        assert_eq!(
            Policy::preset("root").unwrap_err().kind(),
            troupe_dispatcher::ErrorKind::Invalid
        );
    }
}
