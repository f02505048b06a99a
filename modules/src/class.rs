use std::fmt;

use troupe_dispatcher::Error;

/// What kind of power a module gives a script. A policy allows classes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Pure functions whose results depend only on their inputs.
    Deterministic,
    /// Results that differ between runs (randomness, ids).
    Nondeterministic,
    /// Data encodings (JSON, base64, hashes).
    Encoding,
    /// Clocks and timers.
    Time,
    /// Files.
    Io,
    /// The network.
    Network,
    /// Persistent storage.
    Storage,
    /// Spawning and messaging other processes.
    Process,
    /// Security-sensitive power (evaluating code, changing policies).
    Security,
    /// Workflow primitives (side effects, versions).
    Workflow,
    /// The cluster this node belongs to (its members).
    Cluster,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 11] = [
        Class::Deterministic,
        Class::Nondeterministic,
        Class::Encoding,
        Class::Time,
        Class::Io,
        Class::Network,
        Class::Storage,
        Class::Process,
        Class::Security,
        Class::Workflow,
        Class::Cluster,
    ];

    /// The lowercase name used in policies and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Deterministic => "deterministic",
            Class::Nondeterministic => "nondeterministic",
            Class::Encoding => "encoding",
            Class::Time => "time",
            Class::Io => "io",
            Class::Network => "network",
            Class::Storage => "storage",
            Class::Process => "process",
            Class::Security => "security",
            Class::Workflow => "workflow",
            Class::Cluster => "cluster",
        }
    }

    /// Parses a class name; an unknown name is `INVALID`, never ignored.
    pub fn parse(name: &str) -> Result<Class, Error> {
        Class::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Class::ALL.iter().map(|c| c.as_str()).collect();
                Error::invalid(format!(
                    "unknown module class {name:?} (known: {})",
                    known.join(", ")
                ))
            })
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of classes, as a bitmask.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ClassSet(u16);

impl ClassSet {
    /// No classes.
    pub const EMPTY: ClassSet = ClassSet(0);

    /// Every class.
    pub const fn all() -> ClassSet {
        let mut bits = 0;
        let mut i = 0;
        while i < Class::ALL.len() {
            bits |= Class::ALL[i].bit();
            i += 1;
        }
        ClassSet(bits)
    }

    /// The set holding `classes`.
    pub fn of(classes: &[Class]) -> ClassSet {
        classes.iter().fold(ClassSet::EMPTY, |s, c| s.with(*c))
    }

    /// This set plus `class`.
    #[must_use]
    pub const fn with(self, class: Class) -> ClassSet {
        ClassSet(self.0 | class.bit())
    }

    /// Whether `class` is in the set.
    pub const fn contains(self, class: Class) -> bool {
        self.0 & class.bit() != 0
    }

    /// Whether every class of `other` is in this set.
    pub const fn is_superset(self, other: ClassSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The classes in both sets.
    #[must_use]
    pub const fn intersect(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 & other.0)
    }

    /// The classes in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Class> {
        Class::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Parses a comma-separated list of class names; `all` means every class.
    pub fn parse_list(list: &str) -> Result<ClassSet, Error> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .try_fold(ClassSet::EMPTY, |set, name| {
                if name == "all" {
                    Ok(ClassSet::all())
                } else {
                    Class::parse(name).map(|c| set.with(c))
                }
            })
    }
}

impl fmt::Display for ClassSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Class::as_str).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_list_rejects_unknown_names() {
        let set = ClassSet::parse_list("time, io").unwrap();
        assert!(set.contains(Class::Time) && set.contains(Class::Io));
        assert!(!set.contains(Class::Network));
        assert_eq!(ClassSet::parse_list("all").unwrap(), ClassSet::all());
        let err = ClassSet::parse_list("time,netwrk").unwrap_err();
        assert_eq!(err.kind(), troupe_dispatcher::ErrorKind::Invalid);
        assert!(err.message().contains("netwrk"));
    }
}
