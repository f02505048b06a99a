//! The expr language's conformance cases, taken by the `expr-lang` crate
//! from the Go implementation (`vendor/expr-lang/compat/`), run through
//! `require("expr")` in a Lua process as scripts use it. Every case passes
//! except the exclusions below, each with its reason; the test fails if an
//! excluded case starts passing, so the list stays true.

use troupe::Value;
use troupe::testing::TestRuntime;

/// Cases left out, by what their source calls, and why. Every case these
/// cover must fail (checked below), so the list cannot go stale.
const EXCLUDED: &[(&[&str], &str)] = &[(
    &["date(", "duration(", "timezone("],
    "the temporal functions are left out of the `expr` module, which is \
     deterministic: `now()` reads the clock and `date()` the host's time zone \
     (expr-lang's `temporal` feature is off)",
)];

/// Why `src` is excluded, if it is.
fn excluded(src: &str) -> Option<&'static str> {
    EXCLUDED
        .iter()
        .find(|(calls, _)| calls.iter().any(|c| src.contains(c)))
        .map(|(_, why)| *why)
}

/// `(expression, expected JSON)` rows of `cases.tsv`.
fn cases() -> Vec<(String, String)> {
    let text = include_str!("../vendor/expr-lang/compat/cases.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .map(|(src, want)| (src.to_owned(), want.to_owned()))
        .collect()
}

/// Expressions of `errors.tsv`, which must fail.
fn errors() -> Vec<String> {
    let text = include_str!("../vendor/expr-lang/compat/errors.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Evaluates every source with `expr.eval` in one Lua process: per source,
/// `{ok = true, value = v}` or `{ok = false, kind = err:kind()}`.
fn eval_all(sources: &[String]) -> Vec<Value> {
    let t = TestRuntime::builder().build().expect("test runtime");
    let code = r#"
        local expr = require("expr")
        local out = {}
        for i, src in ipairs(...) do
          local ok, v, err = pcall(expr.eval, src)
          if not ok then
            out[i] = { ok = false, kind = "RAISED", message = tostring(v) }
          elseif err ~= nil then
            out[i] = { ok = false, kind = err:kind(), message = err:message() }
          else
            out[i] = { ok = true, value = v }
          end
        end
        return out
    "#;
    let list = Value::Array(sources.iter().map(|s| Value::from(s.as_str())).collect());
    match t.run_with(code, [list]).expect("the script runs") {
        Value::Array(results) => results,
        other => panic!("not a list: {other:?}"),
    }
}

/// Whether `got` is `want` as Lua shows it: numbers equal as numbers (Lua
/// has one number type for `5` and `5.0` in JSON), an empty table for an
/// empty list or map.
fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            number(got) == number(want)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        (Value::Map(m), Value::Array(a)) | (Value::Array(a), Value::Map(m)) => {
            m.is_empty() && a.is_empty()
        }
        _ => got == want,
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

#[test]
fn the_go_implementations_cases_pass_through_require_expr() {
    let cases = cases();
    let sources: Vec<String> = cases.iter().map(|(s, _)| s.clone()).collect();
    let results = eval_all(&sources);
    let mut failures = Vec::new();
    let (mut passed, mut left_out) = (0, 0);
    for ((src, want), got) in cases.iter().zip(&results) {
        let want = Value::from_json(want).expect("expected JSON parses");
        // Go prints a byte slice as base64; a script sees its bytes.
        let as_bytes = match &want {
            Value::String(text) if has_bytes_literal(src) => bytes_of(text),
            _ => None,
        };
        let ok = match got {
            Value::Map(m) if m.get("ok") == Some(&Value::Bool(true)) => {
                let got = m.get("value").unwrap_or(&Value::Nil);
                same(got, &want) || as_bytes.as_ref().is_some_and(|b| same(got, b))
            }
            _ => false,
        };
        match (ok, excluded(src)) {
            (true, None) => passed += 1,
            (false, Some(why)) => {
                left_out += 1;
                println!("excluded: {src} ({why})");
            }
            (true, Some(_)) => failures.push(format!("{src}: excluded but passes")),
            (false, None) => failures.push(format!("{src}: want {want:?}, got {got:?}")),
        }
    }
    println!(
        "expr conformance: {passed} of {} cases pass, {left_out} excluded",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(passed + left_out, cases.len());
}

/// Whether `src` has a bytes literal (`b"…"`, `b'…'`) outside a string.
fn has_bytes_literal(src: &str) -> bool {
    let chars: Vec<char> = src.chars().collect();
    chars.windows(2).enumerate().any(|(i, w)| {
        w[0] == 'b' && (w[1] == '"' || w[1] == '\'') && (i == 0 || " ([,=;:".contains(chars[i - 1]))
    })
}

/// The bytes a base64 string stands for, as a script sees them (`None`
/// if it is not base64).
fn bytes_of(text: &str) -> Option<Value> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Some(match String::from_utf8(bytes) {
        Ok(s) => Value::String(s),
        Err(e) => Value::Bytes(e.into_bytes()),
    })
}

#[test]
fn the_go_implementations_errors_are_errors_through_require_expr() {
    let sources = errors();
    let results = eval_all(&sources);
    let wrong: Vec<String> = sources
        .iter()
        .zip(&results)
        .filter(|(_, got)| {
            !matches!(got, Value::Map(m)
                if m.get("ok") == Some(&Value::Bool(false))
                    && matches!(m.get("kind"), Some(Value::String(k)) if k == "INVALID" || k == "LIMIT_EXCEEDED"))
        })
        .map(|(src, got)| format!("{src}: {got:?}"))
        .collect();
    println!(
        "expr conformance: {} of {} errors are errors",
        sources.len() - wrong.len(),
        sources.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(!sources.is_empty());
}
