use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind};

/// A process identifier: the node that runs the process and a number unique
/// on that node. Rendered (and parsed) as `<node.id>`, e.g. `<0.42>`, which is
/// how scripts see it: a plain string that travels in arguments and messages.
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
    /// script receives carries its sender's pid as text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        Ok(Self {
            node: node.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
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
        for bad in ["3.42", "<3>", "<a.1>", "<1.2", ""] {
            assert_eq!(
                bad.parse::<Pid>().unwrap_err().kind(),
                ErrorKind::Invalid,
                "{bad}"
            );
        }
    }
}
