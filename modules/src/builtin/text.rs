//! `text`: string helpers (split, trim, replace, case, prefixes, padding)
//! and regular expressions on the `regex` crate, whose matching time is
//! linear in the input. Patterns, compiled programs, results and piece
//! counts are capped: a script cannot make the host build an unbounded
//! automaton or string.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use regex::{Regex, RegexBuilder};
use troupe_dispatcher::{Error, ErrorKind, Value};

use crate::types::{Field, Signature, Type, Types};
use crate::{Class, ModuleDef};

/// The longest pattern, in bytes.
const MAX_PATTERN: usize = 16 * 1024;
/// The most memory one compiled pattern may take.
const MAX_PROGRAM: usize = 1 << 20;
/// The longest string a function returns, in bytes.
const MAX_OUTPUT: usize = 16 << 20;
/// The most pieces `split` and `find_all` return.
const MAX_PIECES: usize = 1 << 20;
/// Compiled patterns kept for reuse (cleared when full).
const CACHED_PATTERNS: usize = 128;

fn too_long(what: &str, limit: usize) -> Error {
    Error::new(
        ErrorKind::LimitExceeded,
        format!("text.{what}: the result would exceed {limit} bytes"),
    )
}

fn too_many(what: &str) -> Error {
    Error::new(
        ErrorKind::LimitExceeded,
        format!("text.{what}: more than {MAX_PIECES} pieces"),
    )
}

/// At most `n` pieces or replacements: all for nil or a negative `n`.
fn count(n: Option<i64>) -> usize {
    n.and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX)
}

/// `pattern`, compiled once and cached.
fn regex(what: &str, pattern: &str) -> Result<Regex, Error> {
    static CACHE: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(Default::default);
    if pattern.len() > MAX_PATTERN {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("text.{what}: pattern longer than {MAX_PATTERN} bytes"),
        ));
    }
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = cache.get(pattern) {
        return Ok(re.clone());
    }
    let re = RegexBuilder::new(pattern)
        .size_limit(MAX_PROGRAM)
        .dfa_size_limit(MAX_PROGRAM)
        .nest_limit(100)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => Error::new(
                ErrorKind::LimitExceeded,
                format!("text.{what}: pattern compiles to more than {MAX_PROGRAM} bytes"),
            ),
            other => Error::invalid(format!("text.{what}: bad pattern: {other}")),
        })?;
    if cache.len() >= CACHED_PATTERNS {
        cache.clear();
    }
    cache.insert(pattern.to_owned(), re.clone());
    Ok(re)
}

/// Collects at most [`MAX_PIECES`] strings.
fn pieces<'a>(what: &str, it: impl Iterator<Item = &'a str>) -> Result<Value, Error> {
    let mut out = Vec::new();
    for piece in it {
        if out.len() == MAX_PIECES {
            return Err(too_many(what));
        }
        out.push(Value::from(piece));
    }
    Ok(Value::Array(out))
}

fn split(s: &str, sep: Option<&str>, n: usize) -> Result<Value, Error> {
    if n == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    match sep {
        None => {
            // Fields between runs of whitespace; the last keeps the rest.
            let mut out = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if out.len() + 1 == n {
                    out.push(rest);
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            pieces("split", out.into_iter())
        }
        Some("") => {
            let mut out = Vec::new();
            for (i, c) in s.char_indices() {
                if out.len() + 1 == n {
                    out.push(&s[i..]);
                    break;
                }
                out.push(&s[i..i + c.len_utf8()]);
            }
            pieces("split", out.into_iter())
        }
        Some(sep) => pieces("split", s.splitn(n, sep)),
    }
}

fn trim<'a>(s: &'a str, chars: Option<&str>, start: bool, end: bool) -> &'a str {
    let strip = |c: char| chars.map_or(c.is_whitespace(), |set| set.contains(c));
    match (start, end) {
        (true, true) => s.trim_matches(strip),
        (true, false) => s.trim_start_matches(strip),
        _ => s.trim_end_matches(strip),
    }
}

fn replace(s: &str, from: &str, to: &str, n: usize) -> Result<String, Error> {
    if from.is_empty() {
        return Err(Error::invalid("text.replace: the text to replace is empty"));
    }
    let hits = s.matches(from).take(n).count();
    let len = s.len() - hits * from.len() + hits.saturating_mul(to.len());
    if len > MAX_OUTPUT {
        return Err(too_long("replace", MAX_OUTPUT));
    }
    Ok(s.replacen(from, to, n))
}

fn pad(s: &str, width: i64, opts: &BTreeMap<String, Value>) -> Result<String, Error> {
    let fill = match opts.get("char") {
        None | Some(Value::Nil) => ' ',
        Some(Value::String(c)) if c.chars().count() == 1 => c.chars().next().unwrap_or(' '),
        Some(other) => {
            return Err(Error::invalid(format!(
                "text.pad: opts.char must be one character, got {}",
                other.to_json()
            )));
        }
    };
    let side = match opts.get("side") {
        None | Some(Value::Nil) => "right",
        Some(Value::String(side)) if ["left", "right", "both"].contains(&side.as_str()) => side,
        Some(other) => {
            return Err(Error::invalid(format!(
                "text.pad: opts.side must be \"left\", \"right\" or \"both\", got {}",
                other.to_json()
            )));
        }
    };
    let width = usize::try_from(width).unwrap_or(0);
    let missing = width.saturating_sub(s.chars().count());
    if s.len()
        .saturating_add(missing.saturating_mul(fill.len_utf8()))
        > MAX_OUTPUT
    {
        return Err(too_long("pad", MAX_OUTPUT));
    }
    let (before, after) = match side {
        "left" => (missing, 0),
        "both" => (missing / 2, missing - missing / 2),
        _ => (0, missing),
    };
    let fill = |k: usize| std::iter::repeat_n(fill, k);
    Ok(fill(before).chain(s.chars()).chain(fill(after)).collect())
}

/// The first match: `{match, start, stop, groups}` (1-based byte
/// positions, inclusive; `groups` holds every capture group by number and
/// the named ones by name too, "" for a group that did not take part).
fn find(s: &str, re: &Regex) -> Value {
    let Some(caps) = re.captures(s) else {
        return Value::Nil;
    };
    let whole = caps.get(0).map_or(0..0, |m| m.range());
    let mut groups: BTreeMap<String, Value> = BTreeMap::new();
    for (i, name) in re.capture_names().enumerate().skip(1) {
        let text = caps.get(i).map_or("", |m| m.as_str());
        groups.insert(i.to_string(), Value::from(text));
        if let Some(name) = name {
            groups.insert(name.to_owned(), Value::from(text));
        }
    }
    Value::Map(BTreeMap::from([
        ("match".to_owned(), Value::from(&s[whole.clone()])),
        ("start".to_owned(), Value::Int(position(whole.start + 1))),
        ("stop".to_owned(), Value::Int(position(whole.end))),
        ("groups".to_owned(), Value::Map(groups)),
    ]))
}

/// A byte position as a script number (strings are far shorter than
/// `i64::MAX`).
fn position(at: usize) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

/// `re`'s first `n` matches in `s` replaced by `to` expanded, built in a
/// buffer that stops at [`MAX_OUTPUT`].
fn replace_regex(s: &str, re: &Regex, to: &str, n: usize) -> Result<String, Error> {
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(s).take(n) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&s[last..m.start()]);
        caps.expand(to, &mut out);
        last = m.end();
        if out.len() > MAX_OUTPUT {
            return Err(too_long("replace_regex", MAX_OUTPUT));
        }
    }
    out.push_str(&s[last..]);
    if out.len() > MAX_OUTPUT {
        return Err(too_long("replace_regex", MAX_OUTPUT));
    }
    Ok(out)
}

fn str_param(name: &str) -> (&str, Type) {
    (name, Type::String)
}

/// A function that cannot fail on arguments of the right types.
fn plain(doc: &str, params: &[(&str, Type)], returns: Type) -> Signature {
    params
        .iter()
        .fold(Signature::new(doc), |sig, (name, ty)| {
            sig.param(*name, ty.clone())
        })
        .returns(returns)
}

/// A function that returns `nil, err` when its result would be too big
/// or its pattern is bad (`LIMIT_EXCEEDED`, `INVALID`).
fn signature(doc: &str, params: &[(&str, Type)], returns: Type) -> Signature {
    plain(doc, params, returns).fallible()
}

fn types() -> Types {
    let opt_int = |name| (name, Type::optional(Type::Integer));
    let s = || str_param("s");
    let pattern = || str_param("pattern");
    let predicate = |doc: &str, other: &str| plain(doc, &[s(), str_param(other)], Type::Boolean);
    let string_fn = |doc: &str| signature(doc, &[s()], Type::String);
    let trim_fn = |doc: &str| {
        plain(
            doc,
            &[s(), ("chars", Type::optional(Type::String))],
            Type::String,
        )
    };
    Types::new()
        .function(
            "split",
            signature(
                "Splits `s` at every `sep` (plain text): `split(\"a,b\", \",\")` is `{\"a\", \"b\"}`. Without `sep`, splits at runs of whitespace and drops empty fields; with `sep = \"\"`, into characters. With `n`, at most `n` pieces, the last holding the rest.",
                &[s(), ("sep", Type::optional(Type::String)), opt_int("n")],
                Type::array(Type::String),
            ),
        )
        .function(
            "trim",
            trim_fn("`s` without leading and trailing whitespace, or characters of `chars`."),
        )
        .function(
            "trim_start",
            trim_fn("`s` without leading whitespace, or characters of `chars`."),
        )
        .function(
            "trim_end",
            trim_fn("`s` without trailing whitespace, or characters of `chars`."),
        )
        .function(
            "replace",
            signature(
                "Replaces `old` (plain text, not empty) with `new`: every one, or the first `n`.",
                &[s(), str_param("old"), str_param("new"), opt_int("n")],
                Type::String,
            ),
        )
        .function("upper", string_fn("`s` in upper case (Unicode)."))
        .function("lower", string_fn("`s` in lower case (Unicode)."))
        .function("starts_with", predicate("Whether `s` starts with `prefix`.", "prefix"))
        .function("ends_with", predicate("Whether `s` ends with `suffix`.", "suffix"))
        .function("contains", predicate("Whether `s` contains `sub` (plain text).", "sub"))
        .function(
            "pad",
            signature(
                "`s` padded to `width` characters with `opts.char` (\" \"): at the end (`opts.side = \"right\"`, the default), the start (\"left\") or both (\"both\"). A longer `s` is returned as it is.",
                &[
                    s(),
                    ("width", Type::Integer),
                    (
                        "opts",
                        Type::optional(Type::record(vec![
                            Field::optional("char", Type::String),
                            Field::optional("side", Type::String),
                        ])),
                    ),
                ],
                Type::String,
            ),
        )
        .function(
            "match",
            signature(
                "Whether the regular expression `pattern` (Rust `regex` syntax, linear time) matches somewhere in `s`.",
                &[s(), pattern()],
                Type::Boolean,
            ),
        )
        .function(
            "find",
            signature(
                "The first match of `pattern` in `s`: `{match, start, stop, groups}` (1-based byte positions; `groups` by number and by name, \"\" for a group that did not take part), or nil.",
                &[s(), pattern()],
                Type::optional(Type::table(Type::String, Type::Any)),
            ),
        )
        .function(
            "find_all",
            signature(
                "Every match of `pattern` in `s` (or the first `n`), as strings.",
                &[s(), pattern(), opt_int("n")],
                Type::array(Type::String),
            ),
        )
        .function(
            "replace_regex",
            signature(
                "Replaces every match of `pattern` (or the first `n`) with `new`, where `$1` or `${name}` is a group's text and `$$` a dollar sign.",
                &[s(), pattern(), str_param("new"), opt_int("n")],
                Type::String,
            ),
        )
}

/// The `text` module.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("text")
        .describe("String helpers and regular expressions (linear-time, bounded)")
        .class(Class::Deterministic)
        .types(types())
        .typed_function(
            "split",
            |_cx, (s, sep, n): (String, Option<String>, Option<i64>)| {
                Ok(split(&s, sep.as_deref(), count(n))?)
            },
        )
        .typed_function("trim", |_cx, (s, chars): (String, Option<String>)| {
            Ok(trim(&s, chars.as_deref(), true, true).to_owned())
        })
        .typed_function("trim_start", |_cx, (s, chars): (String, Option<String>)| {
            Ok(trim(&s, chars.as_deref(), true, false).to_owned())
        })
        .typed_function("trim_end", |_cx, (s, chars): (String, Option<String>)| {
            Ok(trim(&s, chars.as_deref(), false, true).to_owned())
        })
        .typed_function(
            "replace",
            |_cx, (s, from, to, n): (String, String, String, Option<i64>)| {
                Ok(replace(&s, &from, &to, count(n))?)
            },
        )
        .typed_function("upper", |_cx, (s,): (String,)| {
            let out = s.to_uppercase();
            if out.len() > MAX_OUTPUT {
                return Err(too_long("upper", MAX_OUTPUT).into());
            }
            Ok(out)
        })
        .typed_function("lower", |_cx, (s,): (String,)| {
            let out = s.to_lowercase();
            if out.len() > MAX_OUTPUT {
                return Err(too_long("lower", MAX_OUTPUT).into());
            }
            Ok(out)
        })
        .typed_function("starts_with", |_cx, (s, p): (String, String)| {
            Ok(s.starts_with(&p))
        })
        .typed_function("ends_with", |_cx, (s, p): (String, String)| {
            Ok(s.ends_with(&p))
        })
        .typed_function("contains", |_cx, (s, p): (String, String)| {
            Ok(s.contains(&p))
        })
        .typed_function(
            "pad",
            |_cx, (s, width, opts): (String, i64, Option<BTreeMap<String, Value>>)| {
                Ok(pad(&s, width, &opts.unwrap_or_default())?)
            },
        )
        .typed_function("match", |_cx, (s, p): (String, String)| {
            Ok(regex("match", &p)?.is_match(&s))
        })
        .typed_function("find", |_cx, (s, p): (String, String)| {
            Ok(find(&s, &regex("find", &p)?))
        })
        .typed_function(
            "find_all",
            |_cx, (s, p, n): (String, String, Option<i64>)| {
                let re = regex("find_all", &p)?;
                Ok(pieces(
                    "find_all",
                    re.find_iter(&s).take(count(n)).map(|m| m.as_str()),
                )?)
            },
        )
        .typed_function(
            "replace_regex",
            |_cx, (s, p, to, n): (String, String, String, Option<i64>)| {
                let re = regex("replace_regex", &p)?;
                Ok(replace_regex(&s, &re, &to, count(n))?)
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &Value) -> Vec<String> {
        match v {
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default().to_owned())
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn split_by_text_whitespace_and_characters() {
        assert_eq!(
            strs(&split("a,b,,c", Some(","), usize::MAX).unwrap()),
            ["a", "b", "", "c"]
        );
        assert_eq!(strs(&split("a,b,c", Some(","), 2).unwrap()), ["a", "b,c"]);
        assert_eq!(
            strs(&split("  one two\t three ", None, usize::MAX).unwrap()),
            ["one", "two", "three"]
        );
        assert_eq!(
            strs(&split("one two three", None, 2).unwrap()),
            ["one", "two three"]
        );
        assert_eq!(
            strs(&split("héé", Some(""), usize::MAX).unwrap()),
            ["h", "é", "é"]
        );
        assert!(strs(&split("", None, usize::MAX).unwrap()).is_empty());
        assert_eq!(strs(&split("", Some(","), usize::MAX).unwrap()), [""]);
    }

    #[test]
    fn padding_counts_characters_and_refuses_huge_widths() {
        let none = BTreeMap::new();
        assert_eq!(pad("ab", 5, &none).unwrap(), "ab   ");
        let left = BTreeMap::from([
            ("side".to_owned(), Value::from("left")),
            ("char".to_owned(), Value::from("0")),
        ]);
        assert_eq!(pad("42", 5, &left).unwrap(), "00042");
        let both = BTreeMap::from([("side".to_owned(), Value::from("both"))]);
        assert_eq!(pad("é", 4, &both).unwrap(), " é  ");
        assert_eq!(pad("long", 2, &none).unwrap(), "long");
        assert_eq!(pad("x", -3, &none).unwrap(), "x");
        let err = pad("x", i64::MAX, &none).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        let bad = BTreeMap::from([("char".to_owned(), Value::from("ab"))]);
        assert_eq!(pad("x", 3, &bad).unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn replacing_is_bounded() {
        assert_eq!(replace("a-b-c", "-", "+", usize::MAX).unwrap(), "a+b+c");
        assert_eq!(replace("a-b-c", "-", "", 1).unwrap(), "ab-c");
        assert_eq!(
            replace("x", "", "y", usize::MAX).unwrap_err().kind(),
            ErrorKind::Invalid
        );
        let big = "a".repeat(1 << 20);
        let huge = "b".repeat(64);
        assert_eq!(
            replace(&big, "a", &huge, usize::MAX).unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        let re = regex("t", "a").unwrap();
        assert_eq!(
            replace_regex(&big, &re, &huge, usize::MAX)
                .unwrap_err()
                .kind(),
            ErrorKind::LimitExceeded
        );
    }

    #[test]
    fn patterns_are_checked_and_capped() {
        assert_eq!(regex("t", "(").unwrap_err().kind(), ErrorKind::Invalid);
        let long = "a".repeat(MAX_PATTERN + 1);
        assert_eq!(
            regex("t", &long).unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        // Small to write, enormous once compiled.
        assert_eq!(
            regex("t", r"\w{1000}\w{1000}").unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(regex("t", &deep).unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn find_reports_positions_and_groups() {
        let re = regex("t", r"(?P<user>\w+)@(\w+)?\.com").unwrap();
        let Value::Map(m) = find("mail ada@.com now", &re) else {
            panic!("no match");
        };
        assert_eq!(m["match"], Value::from("ada@.com"));
        assert_eq!(m["start"], Value::Int(6));
        assert_eq!(m["stop"], Value::Int(13));
        let Value::Map(g) = &m["groups"] else {
            panic!()
        };
        assert_eq!(g["1"], Value::from("ada"));
        assert_eq!(g["user"], Value::from("ada"));
        assert_eq!(g["2"], Value::from(""));
        assert_eq!(find("nothing", &re), Value::Nil);
    }
}
