//! Pids inside payloads that cross nodes.
//!
//! Scripts see pids as strings, so a pid in a message's payload is text
//! written from its node's point of view: `<0.7>` on node `a` is process 7
//! of `a` itself. Before a payload leaves a node every string that is
//! exactly a pid (it parses as one, nothing before or after) is written in
//! its cluster-wide form, `<a.0.7>`; when it arrives, every string that is
//! exactly a pid of a known node is written from the receiving node's point
//! of view again (`<b.0.9>` arriving at `b` becomes `<0.9>`). Map keys are
//! rewritten too. Other strings, and pid-like text of nodes the receiver does
//! not know, are left as they are.

use std::collections::BTreeMap;

use troupe_dispatcher::{Pid, Value};

/// `pid` as any node reads it: `<name.0.id>`, with this node's name for a
/// pid of this node.
pub(crate) fn global(pid: Pid, local: &str) -> String {
    match pid.node() {
        0 => format!("<{local}.0.{}>", pid.id()),
        _ => pid.to_string(),
    }
}

/// The string `s` rewritten by `f` if it is exactly a pid's text.
fn rewrite_str(s: String, f: &impl Fn(Pid) -> String) -> String {
    if !(s.starts_with('<') && s.ends_with('>')) {
        return s;
    }
    match s.parse::<Pid>() {
        Ok(pid) => f(pid),
        Err(_) => s,
    }
}

/// `value` with every pid-shaped string (and map key) rewritten by `f`.
fn rewrite(value: Value, f: &impl Fn(Pid) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(rewrite_str(s, f)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| rewrite(v, f)).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (rewrite_str(k, f), rewrite(v, f)))
                .collect::<BTreeMap<_, _>>(),
        ),
        other => other,
    }
}

/// A payload about to leave node `local`: its pids in cluster-wide form.
pub(crate) fn outbound(payload: Value, local: &str) -> Value {
    rewrite(payload, &|pid| global(pid, local))
}

/// A payload that arrived: its pids as this node writes them (its own
/// processes as `<0.id>`).
pub(crate) fn inbound(payload: Value) -> Value {
    rewrite(payload, &|pid| pid.to_string())
}

#[cfg(test)]
mod tests {
    use troupe_dispatcher::nodes;

    use super::*;

    #[test]
    fn exact_pids_are_rewritten_both_ways() {
        let me = nodes::local().map_or_else(|| "pids-test".to_owned(), |n| n.to_string());
        nodes::set_local(&me).unwrap();
        let other = nodes::index("pids-other").unwrap();
        let payload = Value::Map(BTreeMap::from([
            ("me".to_owned(), Value::from("<0.7>")),
            (
                "other".to_owned(),
                Value::from(Pid::new(other, 9).to_string()),
            ),
            ("text".to_owned(), Value::from("pid <0.7> inside")),
            ("<0.3>".to_owned(), Value::Array(vec![Value::from("<0.4>")])),
        ]));
        let out = outbound(payload.clone(), &me);
        let Value::Map(m) = &out else { panic!() };
        assert_eq!(m["me"], Value::from(format!("<{me}.0.7>")));
        assert_eq!(m["other"], Value::from("<pids-other.0.9>"));
        assert_eq!(m["text"], Value::from("pid <0.7> inside"));
        let key = format!("<{me}.0.3>");
        assert_eq!(
            m[&key],
            Value::Array(vec![Value::from(format!("<{me}.0.4>"))])
        );
        assert_eq!(inbound(out), payload);
        let unknown = Value::from("<stranger.0.1>");
        assert_eq!(inbound(unknown.clone()), unknown);
    }
}
