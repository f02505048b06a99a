use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind};

/// A process identifier: the node that runs the process and a number unique
/// on that node. Rendered (and parsed) as `<node.id>`, e.g. `<0.42>`, which is
/// how scripts see it: a plain string that travels in arguments and messages.
///
/// The node is an index into this OS process's table of node names (see
/// [`nodes`]): 0 is this node, and a pid of a named node `b` renders as
/// `<b.0.42>` (process 42 as node `b` itself writes it, `<0.42>`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pid {
    node: u32,
    id: u64,
}

impl Pid {
    /// A pid for process `id` on `node`.
    pub const fn new(node: u32, id: u64) -> Self {
        Self { node, id }
    }

    /// The node this process lives on.
    pub const fn node(self) -> u32 {
        self.node
    }

    /// The process number, unique on its node.
    pub const fn id(self) -> u64 {
        self.id
    }
}

/// Writes `n`'s decimal digits to the end of `buf[..end]`; returns where
/// they start.
fn digits(mut n: u64, buf: &mut [u8], mut end: usize) -> usize {
    loop {
        end -= 1;
        buf[end] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return end;
        }
    }
}

impl fmt::Display for Pid {
    /// `<node.id>`, built on the stack and written once (every message a
    /// script receives carries its sender's pid as text); `<name.0.id>`
    /// for a pid of another named node.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.node != 0
            && let Some(name) = nodes::name(self.node)
        {
            return write!(f, "<{name}.0.{}>", self.id);
        }
        // '<' + u32 (10 digits) + '.' + u64 (20 digits) + '>'
        let mut buf = [0u8; 33];
        buf[32] = b'>';
        let at = digits(self.id, &mut buf, 32) - 1;
        buf[at] = b'.';
        let at = digits(u64::from(self.node), &mut buf, at) - 1;
        buf[at] = b'<';
        // Only ASCII digits and punctuation were written.
        f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Pid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::new(ErrorKind::Invalid, format!("not a pid: {s:?}"));
        let inner = s
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .ok_or_else(bad)?;
        let (node, id) = inner.split_once('.').ok_or_else(bad)?;
        if let Some(local) = id.strip_prefix("0.")
            && nodes::valid_name(node)
        {
            let unknown = || {
                let msg = format!("{s}: node {node:?} is not a known member of the cluster");
                Error::new(ErrorKind::Unavailable, msg)
            };
            return Ok(Self {
                node: nodes::lookup(node).ok_or_else(unknown)?,
                id: local.parse().map_err(|_| bad())?,
            });
        }
        Ok(Self {
            node: node.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// The node names this OS process knows, each with the index its pids
/// carry: index 0 is this node (named once it joins a cluster), the others
/// are the cluster's members as they became known. A name keeps its index
/// for the life of the OS process, so a pid's text never changes meaning;
/// one OS process is one node.
pub mod nodes {
    use super::{Arc, PoisonError, RwLock};
    use crate::{Error, ErrorKind};

    /// The most node names one OS process keeps.
    pub const MAX_NODES: usize = 4096;

    /// The most bytes of a node name.
    pub const MAX_NAME: usize = 64;

    /// Index → name; index 0 is this node ("" until it is named).
    static NAMES: RwLock<Vec<Arc<str>>> = RwLock::new(Vec::new());

    /// Whether `name` can name a node: 1 to [`MAX_NAME`] ASCII letters,
    /// digits, `_` or `-`, starting with a letter (so a pid's text tells
    /// it from a node index).
    pub fn valid_name(name: &str) -> bool {
        name.len() <= MAX_NAME
            && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    fn check(name: &str) -> Result<(), Error> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{name:?} is not a node name (1 to {MAX_NAME} letters, digits, '_' or '-', \
                 starting with a letter)"
            )))
        }
    }

    /// Names this node (index 0). `ALREADY_EXISTS` if it already has
    /// another name, or `name` already names another node.
    pub fn set_local(name: &str) -> Result<(), Error> {
        check(name)?;
        let mut names = NAMES.write().unwrap_or_else(PoisonError::into_inner);
        if names.is_empty() {
            names.push(Arc::from(""));
        }
        match &*names[0] {
            "" if names.iter().any(|n| &**n == name) => Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("node name {name:?} is already another node's"),
            )),
            "" => {
                names[0] = Arc::from(name);
                Ok(())
            }
            own if own == name => Ok(()),
            own => Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("this node is already named {own:?}"),
            )),
        }
    }

    /// This node's name, once it has one.
    pub fn local() -> Option<Arc<str>> {
        name(0)
    }

    /// The name of node `index`, if it has one.
    pub fn name(index: u32) -> Option<Arc<str>> {
        let names = NAMES.read().unwrap_or_else(PoisonError::into_inner);
        let name = names.get(usize::try_from(index).ok()?)?;
        (!name.is_empty()).then(|| Arc::clone(name))
    }

    /// The index of node `name`, if it has one (0 for this node's own).
    pub fn lookup(name: &str) -> Option<u32> {
        let names = NAMES.read().unwrap_or_else(PoisonError::into_inner);
        let at = names.iter().position(|n| &**n == name)?;
        u32::try_from(at).ok()
    }

    /// The index of node `name`, which it gets now if it has none yet (0
    /// for this node's own name). `INVALID` for a malformed name,
    /// `LIMIT_EXCEEDED` past [`MAX_NODES`] names.
    pub fn index(name: &str) -> Result<u32, Error> {
        check(name)?;
        if let Some(at) = lookup(name) {
            return Ok(at);
        }
        let find = |names: &[Arc<str>]| names.iter().position(|n| &**n == name);
        let mut names = NAMES.write().unwrap_or_else(PoisonError::into_inner);
        if names.is_empty() {
            names.push(Arc::from(""));
        }
        let at = match find(&names) {
            Some(at) => at,
            None if names.len() >= MAX_NODES => {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!("more than {MAX_NODES} node names"),
                ));
            }
            None => {
                names.push(Arc::from(name));
                names.len() - 1
            }
        };
        u32::try_from(at).map_err(|_| Error::internal("node index overflow"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_round_trips_through_its_text_form() {
        let pid = Pid::new(3, 42);
        assert_eq!(pid.to_string(), "<3.42>");
        assert_eq!("<3.42>".parse::<Pid>().unwrap(), pid);
        for (node, id) in [(0, 0), (0, 10), (u32::MAX, u64::MAX), (7, 1_000_000)] {
            let pid = Pid::new(node, id);
            assert_eq!(pid.to_string(), format!("<{node}.{id}>"));
            assert_eq!(pid.to_string().parse::<Pid>().unwrap(), pid);
        }
        for bad in ["3.42", "<3>", "<a.1>", "<1.2", "", "<a.1.2>", "<-a.0.1>"] {
            assert_eq!(
                bad.parse::<Pid>().unwrap_err().kind(),
                ErrorKind::Invalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn pids_of_named_nodes_render_with_the_name() {
        let b = nodes::index("bee").unwrap();
        assert_ne!(b, 0);
        assert_eq!(nodes::index("bee").unwrap(), b);
        let pid: Pid = "<bee.0.42>".parse().unwrap();
        assert_eq!(pid, Pid::new(b, 42));
        assert_eq!(pid.to_string(), "<bee.0.42>");
        assert_eq!(Pid::new(0, 7).to_string(), "<0.7>");
        let unknown = "<nowhere.0.1>".parse::<Pid>().unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::Unavailable);
        assert!(!nodes::valid_name("9a") && !nodes::valid_name("a.b"));
        assert!(nodes::valid_name("node-1_x"));
    }
}
