//! Lua 5.4's pattern matcher (`lstrlib.c`), ported so that its work is
//! bounded. The C matcher backtracks without limit and runs no hook, so
//! `string.find(string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40))`
//! would hold a worker forever, deaf to timeouts and kills. Here every
//! matching step is counted: the steps are charged to the process as
//! instructions (so `max_instructions` and the wall-clock limit hold), and
//! one call may take at most [`MAX_STEPS`].
//!
//! The prelude builds `string.find`, `match`, `gmatch` and `gsub` on
//! [`find`] (one search, as `str_find_aux` does it) so that a `gsub`
//! callback runs as plain Lua; plain searches use a linear substring
//! search ([`memchr::memmem`]) instead of C's quadratic one.

use std::sync::atomic::{AtomicU64, Ordering};

use troupe_dispatcher::{Error, ErrorKind};

/// Most steps one search may take (well under a second of matching):
/// `LIMIT_EXCEEDED` past it, whatever the process's own limits.
pub(crate) const MAX_STEPS: u64 = 50_000_000;

/// The worst case, in steps, within which Lua's own C matcher runs a
/// search as is (it is several times faster): as many as one search here
/// may take. A test lowers it to reach the port on every call.
static C_BUDGET: AtomicU64 = AtomicU64::new(MAX_STEPS);

/// How many steps are counted between two charges to the process.
pub(crate) const CHARGE_EVERY: u64 = 1 << 14;

const MAX_CAPTURES: usize = 32;
/// How deep the matcher may recurse (Lua's `MAXCCALLS`).
const MAX_DEPTH: usize = 200;
const ESC: u8 = b'%';

/// One capture's state.
#[derive(Clone, Copy)]
enum Cap {
    /// Opened at this position, not closed yet.
    Open(usize),
    /// `(start, len)`.
    Closed(usize, usize),
    /// A position capture `()` at this position.
    Position(usize),
}

/// A captured value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Captured<'a> {
    /// A substring.
    Text(&'a [u8]),
    /// A position capture (1-based).
    Position(usize),
}

/// A successful search: where the match is (0-based, end exclusive) and
/// its captures (empty when the pattern has none).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Found<'a> {
    pub start: usize,
    pub end: usize,
    pub captures: Vec<Captured<'a>>,
}

/// Something a search ran into: a malformed pattern (`INVALID`), or the
/// budget (the charger's error, or `LIMIT_EXCEEDED`).
pub(crate) type MatchError = Error;

fn malformed(msg: &str) -> MatchError {
    Error::invalid(format!("malformed pattern ({msg})"))
}

struct Matcher<'a, 'c> {
    src: &'a [u8],
    pat: &'a [u8],
    caps: Vec<Cap>,
    depth: usize,
    steps: u64,
    uncharged: u64,
    charge: &'c mut dyn FnMut(u64) -> Result<(), Error>,
}

impl<'a> Matcher<'a, '_> {
    /// Counts one step; charges the process every [`CHARGE_EVERY`].
    fn step(&mut self) -> Result<(), MatchError> {
        self.steps += 1;
        self.uncharged += 1;
        if self.uncharged >= CHARGE_EVERY {
            (self.charge)(std::mem::take(&mut self.uncharged))?;
            if self.steps > MAX_STEPS {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!("pattern too complex: more than {MAX_STEPS} matching steps"),
                ));
            }
        }
        Ok(())
    }

    /// The end of the single-character class starting at `p`.
    fn class_end(&self, mut p: usize) -> Result<usize, MatchError> {
        let c = self.pat[p];
        p += 1;
        if c == ESC {
            if p >= self.pat.len() {
                return Err(malformed("ends with '%'"));
            }
            return Ok(p + 1);
        }
        if c == b'[' {
            if self.pat.get(p) == Some(&b'^') {
                p += 1;
            }
            // Look for a ']'; the first character is never the end.
            loop {
                let Some(&cc) = self.pat.get(p) else {
                    return Err(malformed("missing ']'"));
                };
                p += 1;
                if cc == ESC && p < self.pat.len() {
                    p += 1;
                }
                if self.pat.get(p) == Some(&b']') {
                    return Ok(p + 1);
                }
            }
        }
        Ok(p)
    }

    /// Whether `c` is in the class set `[p..ec)` (`p` at the '[', `ec` at the
    /// closing ']').
    fn match_bracket(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut found = true;
        if self.pat[p + 1] == b'^' {
            found = false;
            p += 1;
        }
        p += 1;
        while p < ec {
            if self.pat[p] == ESC {
                p += 1;
                if match_class(c, self.pat[p]) {
                    return found;
                }
                p += 1;
            } else if self.pat.get(p + 1) == Some(&b'-') && p + 2 < ec {
                if self.pat[p] <= c && c <= self.pat[p + 2] {
                    return found;
                }
                p += 3;
            } else {
                if self.pat[p] == c {
                    return found;
                }
                p += 1;
            }
        }
        !found
    }

    /// Whether the character at `s` matches the class `[p..ep)`.
    fn single(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            ESC => match_class(c, self.pat[p + 1]),
            b'[' => self.match_bracket(c, p, ep - 1),
            pc => pc == c,
        }
    }

    /// Matches `pat[p..]` at `src[s..]`: the end of the match, if any.
    fn do_match(&mut self, s: usize, p: usize) -> Result<Option<usize>, MatchError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                "pattern too complex (too many nested matches)",
            ));
        }
        let r = self.match_here(s, p);
        self.depth -= 1;
        r
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, MatchError> {
        loop {
            self.step()?;
            if p == self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' => {
                    return if self.pat.get(p + 1) == Some(&b')') {
                        self.start_capture(s, p + 2, Cap::Position(s))
                    } else {
                        self.start_capture(s, p + 1, Cap::Open(s))
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                ESC if self.pat.get(p + 1) == Some(&b'b') => match self.match_balance(s, p + 2)? {
                    Some(e) => {
                        s = e;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                ESC if self.pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if self.pat.get(p) != Some(&b'[') {
                        return Err(malformed("missing '[' after '%f' in pattern"));
                    }
                    let ep = self.class_end(p)?;
                    let prev = if s == 0 { 0 } else { self.src[s - 1] };
                    let cur = self.src.get(s).copied().unwrap_or(0);
                    if !self.match_bracket(prev, p, ep - 1) && self.match_bracket(cur, p, ep - 1) {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                ESC if self.pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                    match self.match_capture(s, self.pat[p + 1])? {
                        Some(e) => {
                            s = e;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {}
            }
            // The default: a single character class, maybe repeated.
            let ep = self.class_end(p)?;
            let matched = self.single(s, p, ep);
            match self.pat.get(ep) {
                Some(b'?') => {
                    if matched && let Some(e) = self.do_match(s + 1, ep + 1)? {
                        return Ok(Some(e));
                    }
                    p = ep + 1;
                }
                Some(b'+') => {
                    return if matched {
                        self.max_expand(s + 1, p, ep)
                    } else {
                        Ok(None)
                    };
                }
                Some(b'*') => return self.max_expand(s, p, ep),
                Some(b'-') => return self.min_expand(s, p, ep),
                _ => {
                    if !matched {
                        return Ok(None);
                    }
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, MatchError> {
        let mut i = 0;
        while self.single(s + i, p, ep) {
            self.step()?;
            i += 1;
        }
        // Try with the most repetitions, then fewer.
        loop {
            if let Some(e) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(e));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(
        &mut self,
        mut s: usize,
        p: usize,
        ep: usize,
    ) -> Result<Option<usize>, MatchError> {
        loop {
            if let Some(e) = self.do_match(s, ep + 1)? {
                return Ok(Some(e));
            }
            if self.single(s, p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, cap: Cap) -> Result<Option<usize>, MatchError> {
        if self.caps.len() >= MAX_CAPTURES {
            return Err(Error::invalid("too many captures"));
        }
        self.caps.push(cap);
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.caps.pop();
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, MatchError> {
        let Some(l) = self.caps.iter().rposition(|c| matches!(c, Cap::Open(_))) else {
            return Err(Error::invalid("invalid pattern capture"));
        };
        let Cap::Open(start) = self.caps[l] else {
            return Err(Error::invalid("invalid pattern capture"));
        };
        self.caps[l] = Cap::Closed(start, s - start);
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.caps[l] = Cap::Open(start);
        }
        Ok(r)
    }

    fn match_balance(&mut self, s: usize, p: usize) -> Result<Option<usize>, MatchError> {
        let (Some(&open), Some(&close)) = (self.pat.get(p), self.pat.get(p + 1)) else {
            return Err(malformed("missing arguments to '%b'"));
        };
        if self.src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1usize;
        let mut i = s + 1;
        while let Some(&c) = self.src.get(i) {
            self.step()?;
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
            i += 1;
        }
        Ok(None)
    }

    fn match_capture(&mut self, s: usize, digit: u8) -> Result<Option<usize>, MatchError> {
        let invalid = || Error::invalid(format!("invalid capture index %{}", char::from(digit)));
        let l = usize::from(digit.checked_sub(b'1').ok_or_else(invalid)?);
        let (start, len) = match self.caps.get(l) {
            Some(Cap::Closed(start, len)) => (*start, *len),
            // A position capture never matches as text (as in C).
            Some(Cap::Position(_)) => return Ok(None),
            _ => return Err(invalid()),
        };
        let end = s + len;
        if self.src.get(s..end) == Some(&self.src[start..start + len]) {
            Ok(Some(end))
        } else {
            Ok(None)
        }
    }

    fn captures(&self, start: usize, end: usize, whole: bool) -> Result<Vec<Captured<'a>>, Error> {
        if self.caps.is_empty() {
            return Ok(if whole {
                vec![Captured::Text(&self.src[start..end])]
            } else {
                Vec::new()
            });
        }
        self.caps
            .iter()
            .map(|c| match *c {
                Cap::Closed(s, len) => Ok(Captured::Text(&self.src[s..s + len])),
                Cap::Position(s) => Ok(Captured::Position(s + 1)),
                Cap::Open(_) => Err(Error::invalid("unfinished capture")),
            })
            .collect()
    }
}

/// Whether `c` is in the class `%cl` (`%a`, `%d`, … or their complements;
/// any other character stands for itself).
fn match_class(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => c.is_ascii_whitespace() || c == 0x0b,
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return cl == c,
    };
    if cl.is_ascii_uppercase() { !res } else { res }
}

/// Searches `src` for `pat` from `init` (0-based, at most `src.len()`):
/// the first match and its captures. A leading `^` anchors the search at
/// `init` when `anchor` is set (`find`, `match`, `gsub`); `gmatch` takes it
/// literally, as Lua 5.4 does. With `whole`, a pattern without captures
/// captures the whole match (`match`, `gmatch`, `gsub`'s replacement).
/// `charge` is given the steps taken, every [`CHARGE_EVERY`]; its error
/// ends the search.
pub(crate) fn find<'a>(
    src: &'a [u8],
    pat: &'a [u8],
    init: usize,
    anchor: bool,
    whole: bool,
    charge: &mut dyn FnMut(u64) -> Result<(), Error>,
) -> Result<Option<Found<'a>>, MatchError> {
    let (pat, anchored) = match pat.strip_prefix(b"^") {
        Some(rest) if anchor => (rest, true),
        _ => (pat, false),
    };
    let mut m = Matcher {
        src,
        pat,
        caps: Vec::new(),
        depth: 0,
        steps: 0,
        uncharged: 0,
        charge,
    };
    let mut s = init;
    let found = loop {
        m.caps.clear();
        if let Some(end) = m.do_match(s, 0)? {
            break Some((s, end));
        }
        s += 1;
        if anchored || s > src.len() {
            break None;
        }
    };
    let result = match found {
        Some((start, end)) => Some(Found {
            start,
            end,
            captures: m.captures(start, end, whole)?,
        }),
        None => None,
    };
    (m.charge)(m.uncharged)?;
    Ok(result)
}

/// Whether Lua's C matcher stays within `budget` steps on a subject of
/// `n` bytes: its work is about `(n+1)^(k+1) * (m+1)` steps for a pattern
/// of `m` bytes with `k` backtracking points (`*`, `+`, `-`, `?`, `%b`,
/// back-references: each, like each start position, tries at most `n+1`
/// places; a `-` inside a set counts too, which only errs on the safe
/// side).
pub(crate) fn c_bounded(n: usize, pat: &[u8], budget: u64) -> bool {
    let quantifiers = pat
        .iter()
        .filter(|c| matches!(c, b'*' | b'+' | b'-' | b'?'))
        .count();
    let scans = pat
        .windows(2)
        .filter(|w| w[0] == ESC && matches!(w[1], b'b' | b'1'..=b'9'))
        .count();
    let power = i32::try_from(quantifiers + scans + 1).unwrap_or(i32::MAX);
    #[allow(clippy::cast_precision_loss)]
    let (n, m) = (n as f64, pat.len() as f64);
    #[allow(clippy::cast_precision_loss)]
    let budget = budget as f64;
    (n + 1.0).powi(power) * (m + 1.0) <= budget
}

/// A plain substring search from `init` (0-based): the match's start.
pub(crate) fn find_plain(src: &[u8], pat: &[u8], init: usize) -> Option<usize> {
    memchr::memmem::find(src.get(init..)?, pat).map(|i| i + init)
}

/// `string.gsub(src, pat, template, max)` for a string `template` (`%0` to
/// `%9`, `%%`): the result and the number of replacements, as Lua's C
/// `gsub` makes them.
pub(crate) fn gsub_template(
    src: &[u8],
    pat: &[u8],
    template: &[u8],
    max: usize,
    charge: &mut dyn FnMut(u64) -> Result<(), Error>,
) -> Result<(Vec<u8>, usize), MatchError> {
    let anchored = pat.first() == Some(&b'^');
    let mut out = Vec::with_capacity(src.len());
    let (mut pos, mut last, mut n) = (0usize, None, 0usize);
    while n < max {
        let Some(f) = find(src, pat, pos, true, true, charge)? else {
            break;
        };
        if Some(f.end) == last {
            // An empty match right where the last one ended: keep a char.
            let Some(&c) = src.get(pos) else {
                break;
            };
            out.push(c);
            pos += 1;
        } else {
            out.extend_from_slice(&src[pos..f.start]);
            n += 1;
            expand(&mut out, template, &src[f.start..f.end], &f.captures)?;
            pos = f.end;
            last = Some(f.end);
        }
        if anchored {
            break;
        }
    }
    out.extend_from_slice(&src[pos.min(src.len())..]);
    Ok((out, n))
}

/// Appends `template` with its `%` escapes replaced.
fn expand(
    out: &mut Vec<u8>,
    template: &[u8],
    whole: &[u8],
    captures: &[Captured<'_>],
) -> Result<(), Error> {
    let mut i = 0;
    while let Some(at) = memchr::memchr(ESC, &template[i..]) {
        out.extend_from_slice(&template[i..i + at]);
        match template.get(i + at + 1).copied() {
            Some(ESC) => out.push(ESC),
            Some(b'0') => out.extend_from_slice(whole),
            Some(d @ b'1'..=b'9') => match captures.get(usize::from(d - b'1')) {
                Some(Captured::Text(t)) => out.extend_from_slice(t),
                Some(Captured::Position(p)) => out.extend_from_slice(p.to_string().as_bytes()),
                None => {
                    return Err(Error::invalid(format!(
                        "invalid capture index %{} in replacement string",
                        char::from(d)
                    )));
                }
            },
            _ => return Err(Error::invalid("invalid use of '%' in replacement string")),
        }
        i += at + 2;
    }
    out.extend_from_slice(&template[i..]);
    Ok(())
}

/// Registers the prelude's primitives: `R.pfind(s, p, init, anchor,
/// whole)`, `R.pgsub(s, p, template, max)` (a `gsub` with a string
/// replacement, whole in Rust) and `R.pfind_plain(s, p, init)` (`init`
/// 1-based and already in range). `pfind` returns nil (no match), `false, err` (a malformed
/// pattern or the budget), or the match's 1-based start and end and its
/// captures; `pfind_plain` the start or nil.
pub(crate) fn register(lua: &mlua::Lua, r: &mlua::Table) -> mlua::Result<()> {
    use mlua::{IntoLua, LuaString, MultiValue};

    use super::convert::error_to_lua;
    use super::state::ProcCtx;

    /// Charges `n` matching steps to the running process: its limit's
    /// error once one is exceeded.
    fn charge(lua: &mlua::Lua, n: u64) -> Result<(), Error> {
        let Some(mut ctx) = lua.app_data_mut::<ProcCtx>() else {
            return Ok(());
        };
        ctx.charge(n);
        match &ctx.terminate {
            Some(e) => Err((**e).clone()),
            None => Ok(()),
        }
    }

    r.raw_set(
        "pfind",
        lua.create_function(
            |lua, (s, p, init, anchor, whole): (LuaString, LuaString, usize, bool, bool)| {
                let (src, pat) = (s.as_bytes(), p.as_bytes());
                let found = find(
                    &src,
                    &pat,
                    init.saturating_sub(1),
                    anchor,
                    whole,
                    &mut |n| charge(lua, n),
                );
                let mut out = Vec::new();
                match found {
                    Ok(None) => out.push(mlua::Value::Nil),
                    Err(e) => {
                        out.push(mlua::Value::Boolean(false));
                        out.push(error_to_lua(lua, e)?);
                    }
                    Ok(Some(f)) => {
                        out.push((f.start + 1).into_lua(lua)?);
                        out.push(f.end.into_lua(lua)?);
                        for c in f.captures {
                            out.push(match c {
                                Captured::Text(t) => mlua::Value::String(lua.create_string(t)?),
                                Captured::Position(i) => i.into_lua(lua)?,
                            });
                        }
                    }
                }
                Ok(MultiValue::from_vec(out))
            },
        )?,
    )?;
    r.raw_set(
        "pgsub",
        lua.create_function(
            |lua, (s, p, template, max): (LuaString, LuaString, LuaString, usize)| {
                let done = gsub_template(
                    &s.as_bytes(),
                    &p.as_bytes(),
                    &template.as_bytes(),
                    max,
                    &mut |n| charge(lua, n),
                );
                let out = match done {
                    Ok((text, n)) => vec![
                        mlua::Value::String(lua.create_string(text)?),
                        n.into_lua(lua)?,
                    ],
                    Err(e) => vec![mlua::Value::Boolean(false), error_to_lua(lua, e)?],
                };
                Ok(MultiValue::from_vec(out))
            },
        )?,
    )?;
    r.raw_set(
        "c_bounded",
        lua.create_function(|_, (n, p): (usize, LuaString)| {
            Ok(c_bounded(
                n,
                &p.as_bytes(),
                C_BUDGET.load(Ordering::Relaxed),
            ))
        })?,
    )?;
    r.raw_set(
        "pfind_plain",
        lua.create_function(|_, (s, p, init): (LuaString, LuaString, usize)| {
            Ok(find_plain(&s.as_bytes(), &p.as_bytes(), init.saturating_sub(1)).map(|i| i + 1))
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search<'a>(src: &'a str, pat: &'a str, whole: bool) -> Result<Option<Found<'a>>, Error> {
        find(src.as_bytes(), pat.as_bytes(), 0, true, whole, &mut |_| {
            Ok(())
        })
    }

    fn text(s: &str) -> Captured<'_> {
        Captured::Text(s.as_bytes())
    }

    #[test]
    fn matches_as_lua_does() {
        let f = search("hello world", "o w", false).unwrap().unwrap();
        assert_eq!((f.start, f.end), (4, 7));
        let f = search("key = value", "(%w+)%s*=%s*(%w+)", true)
            .unwrap()
            .unwrap();
        assert_eq!(f.captures, vec![text("key"), text("value")]);
        let f = search("  trim me  ", "^%s*(.-)%s*$", true)
            .unwrap()
            .unwrap();
        assert_eq!(f.captures, vec![text("trim me")]);
        let f = search("f(a(b)c) d", "%b()", true).unwrap().unwrap();
        assert_eq!(f.captures, vec![text("(a(b)c)")]);
        let f = search("THE (quick) fox", "%f[%a]%a+", true)
            .unwrap()
            .unwrap();
        assert_eq!(f.captures, vec![text("THE")]);
        let f = search("abcabc", "()(abc)%2()", true).unwrap().unwrap();
        assert_eq!(
            f.captures,
            vec![Captured::Position(1), text("abc"), Captured::Position(7)]
        );
        let f = search("x = [[a]]", "[%[%]]+", true).unwrap().unwrap();
        assert_eq!(f.captures, vec![text("[[")]);
        let f = search("a-b", "[^%w]", true).unwrap().unwrap();
        assert_eq!(f.captures, vec![text("-")]);
        assert!(search("abc", "^b", false).unwrap().is_none());
        assert!(search("abc", "c$", false).unwrap().is_some());
        assert!(search("aaa", "b*", false).unwrap().is_some());
        let f = search("2024-12-04", "(%d+)-(%d+)-(%d+)", true)
            .unwrap()
            .unwrap();
        assert_eq!(f.captures, vec![text("2024"), text("12"), text("04")]);
    }

    #[test]
    fn malformed_patterns_are_invalid() {
        for bad in ["%", "[a", "(()", "%b", "%f", "%1", "a)"] {
            let e = search("abc", bad, false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn backtracking_is_bounded() {
        let src = "a".repeat(40);
        let pat = format!("{}{}", "a?".repeat(40), "a".repeat(40));
        let mut charged = 0u64;
        let e = find(src.as_bytes(), pat.as_bytes(), 0, true, false, &mut |n| {
            charged += n;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(charged > MAX_STEPS, "{charged}");
        // The charger's own refusal (a process's limit) ends it sooner.
        let e = find(src.as_bytes(), pat.as_bytes(), 0, true, false, &mut |_| {
            Err(Error::new(ErrorKind::Timeout, "deadline"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }

    /// The same calls give the same results as Lua's own C functions, in
    /// a plain state beside one with the prelude's replacements.
    #[test]
    fn string_functions_agree_with_lua_c() {
        // Every call takes the port, none Lua's C matcher.
        C_BUDGET.store(0, Ordering::Relaxed);
        let c = mlua::Lua::new();
        let output: super::super::state::Output = std::sync::Arc::new(|_| {});
        let ours = super::super::state::new_state(&output).unwrap();
        let subjects = [
            "",
            "hello world",
            "  trim me  ",
            "key = value; k2=v2",
            "f(a(b)c) d",
            "THE (quick) fox",
            "abcabcabc",
            "2024-12-04T10:20:30",
            "aaa",
            "a.b-c%d",
            "x\0y",
            "über straße",
        ];
        let patterns = [
            "",
            "o",
            "l+",
            "(%w+)%s*=%s*(%w+)",
            "^%s*(.-)%s*$",
            "%b()",
            "%f[%a]%a+",
            "()(abc)%2()",
            "[%a_][%w_]*",
            "[^%s]+",
            "(%d+)-(%d+)-(%d+)",
            "a*",
            "a-",
            "a?b",
            ".-",
            "^a",
            "c$",
            "%.",
            "[a-c]+",
            "[%-%%]",
            "(a)(b)?",
            "%s*",
            "(h)(e)(l)",
            "x?",
            "%W",
            "[]]",
            "[^]]",
        ];
        let mut mismatches = Vec::new();
        for s in subjects {
            for p in patterns {
                for init in ["nil", "1", "2", "-3", "100"] {
                    let code = format!(
                        "local s, p, init = {s:?}, {p:?}, {init} \
                         local out = {{}} \
                         local function add(...) local n = select('#', ...) out[#out+1] = n \
                           for i = 1, n do out[#out+1] = tostring((select(i, ...))) end end \
                         add(pcall(string.find, s, p, init)) \
                         add(pcall(string.find, s, p, init, true)) \
                         add(pcall(string.match, s, p, init)) \
                         add(pcall(function() local r = {{}} for a, b in string.gmatch(s, p, init) do r[#r+1] = tostring(a) .. '|' .. tostring(b) end return table.concat(r, ',') end)) \
                         add(pcall(string.gsub, s, p, '<%0>')) \
                         add(pcall(string.gsub, s, p, '%%', 2)) \
                         add(pcall(string.gsub, s, p, function(a) return a and #tostring(a) end)) \
                         add(pcall(string.gsub, s, p, {{hello = 'HI', a = false}})) \
                         return table.concat(out, ' ')"
                    );
                    let run = |lua: &mlua::Lua| {
                        let out: mlua::LuaString = lua.load(&code).eval().unwrap();
                        String::from_utf8_lossy(&out.as_bytes()).into_owned()
                    };
                    let (want, got) = (run(&c), run(&ours));
                    // Error messages differ in their position prefix;
                    // compare outcomes only where both succeeded.
                    if want != got && !(want.contains("false") && got.contains("false")) {
                        mismatches
                            .push(format!("{s:?} {p:?} {init}\n  C:    {want}\n  ours: {got}"));
                    }
                }
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn only_searches_that_cannot_run_away_go_to_lua_c() {
        let within = |n, p: &[u8]| c_bounded(n, p, MAX_STEPS);
        assert!(within(1_000, b"%s+"));
        assert!(within(100, b"(%w+)=(%w+)"));
        assert!(!within(40, "a?".repeat(40).as_bytes()));
        assert!(!within(10_000, b"(.-)x"));
        assert!(within(1 << 20, b"%d"));
        assert!(!within(1 << 26, b"%d"));
        assert!(!within(1_000, b"%b()%b()%b()"));
    }

    #[test]
    fn plain_search_is_linear() {
        let src = "a".repeat(1_000_000);
        let pat = format!("{}b", "a".repeat(500_000));
        assert_eq!(find_plain(src.as_bytes(), pat.as_bytes(), 0), None);
        assert_eq!(find_plain(b"hello", b"l", 3), Some(3));
        assert_eq!(find_plain(b"hello", b"", 5), Some(5));
        assert_eq!(find_plain(b"hello", b"x", 9), None);
    }
}
