//! Values and errors between Troupe and TCL. TCL values are strings: going
//! in, lists and maps become TCL lists and dicts; coming out, a value that
//! reads as an integer is an `Int`, one that reads as a decimal number a
//! `Float`, anything else a `String`.

use troupe_dispatcher::{Error, ErrorKind, Value};

/// `v` as a TCL value.
pub(super) fn to_tcl(v: &Value) -> molt::Value {
    match v {
        Value::Nil => molt::Value::empty(),
        Value::Bool(b) => molt::Value::from(*b),
        Value::Int(i) => molt::Value::from(*i),
        Value::Float(f) => molt::Value::from(*f),
        Value::String(s) => molt::Value::from(s.as_str()),
        Value::Bytes(b) => molt::Value::from(String::from_utf8_lossy(b).into_owned()),
        Value::Array(items) => molt::Value::from(items.iter().map(to_tcl).collect::<Vec<_>>()),
        Value::Map(entries) => {
            let mut dict = molt::dict::dict_new();
            for (k, v) in entries {
                dict.insert(molt::Value::from(k.as_str()), to_tcl(v));
            }
            molt::Value::from(dict)
        }
    }
}

/// A TCL value as Troupe reads it (see the module docs).
pub(super) fn from_tcl(v: &molt::Value) -> Value {
    let s = v.as_str();
    if let Ok(i) = s.parse::<i64>() {
        return Value::Int(i);
    }
    let numeric = !s.is_empty()
        && s.contains(['.', 'e', 'E'])
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match s.parse::<f64>() {
        Ok(f) if numeric => Value::Float(f),
        _ => Value::String(s.to_owned()),
    }
}

/// `e` as a TCL error whose `errorCode` is its kind.
pub(super) fn exception(e: &Error) -> molt::Exception {
    molt::Exception::molt_err2(
        molt::Value::from(e.kind().as_str()),
        molt::Value::from(e.message()),
    )
}

/// A TCL error out of the script `key` (source `code`) as an `Error`: its
/// `errorCode` is the kind when it names one (errors Troupe raised keep
/// theirs), else `INTERNAL`; the line is where the failing command is.
pub(super) fn to_error(key: &str, code: &str, e: &molt::Exception) -> Error {
    if !e.is_error() {
        return Error::invalid(format!("{key}: {:?} outside of a loop or proc", e.code()));
    }
    let kind = ErrorKind::parse(e.error_code().as_str())
        .filter(|k| *k != ErrorKind::Unknown)
        .unwrap_or(ErrorKind::Internal);
    let message = e.value();
    match line_of(code, e.error_info().as_str()) {
        Some(line) => Error::new(kind, format!("{key}:{line}: {}", message.as_str())).with_details(
            [
                ("script".to_owned(), Value::from(key)),
                ("line".to_owned(), Value::Int(line as i64)),
            ]
            .into_iter()
            .collect(),
        ),
        None => Error::new(kind, format!("{key}: {}", message.as_str())),
    }
}

/// The line of `code` holding the command molt's `errorInfo` says failed
/// (`    while executing` followed by the command in quotes), where the
/// command's text appears as written.
fn line_of(code: &str, info: &str) -> Option<usize> {
    let mut lines = info.lines();
    lines.find(|l| l.trim() == "while executing")?;
    let command = lines.next()?.trim().trim_matches('"');
    if command.is_empty() {
        return None;
    }
    let at = code.find(command)?;
    Some(code[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_out_typed_and_the_rest_as_text() {
        let read = |s: &str| from_tcl(&molt::Value::from(s));
        assert_eq!(read("42"), Value::Int(42));
        assert_eq!(read("-2.5"), Value::Float(-2.5));
        assert_eq!(read("1e3"), Value::Float(1000.0));
        assert_eq!(read("inf"), Value::from("inf"));
        assert_eq!(read("a b"), Value::from("a b"));
        assert_eq!(read(""), Value::from(""));
    }

    #[test]
    fn the_failing_command_names_its_line() {
        let info = "boom\n    while executing\n\"error boom\"";
        assert_eq!(line_of("set x 1\nerror boom\n", info), Some(2));
        assert_eq!(line_of("set x 1\n", info), None);
    }
}
