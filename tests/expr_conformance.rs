//! The expr language's conformance cases, taken by the `expr-lang` crate
//! from the Go implementation (`vendor/expr-lang/compat/`), run through
//! `require("expr")` in a Lua process as scripts use it. Every case passes
//! except the exclusions below, each with its reason; the test fails if an
//! excluded case starts passing, so the list stays true.

use std::collections::BTreeMap;

use troupe::testing::TestRuntime;
use troupe::Value;

/// Cases whose result a Lua script cannot see as the Go implementation
/// prints it, and why.
const EXCLUDED: &[(&str, &str)] = &[];

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
    let excluded: BTreeMap<&str, &str> = EXCLUDED.iter().copied().collect();
    let mut failures = Vec::new();
    let mut passed = 0;
    for ((src, want), got) in cases.iter().zip(&results) {
        let want = Value::from_json(want).expect("expected JSON parses");
        let ok = match got {
            Value::Map(m) if m.get("ok") == Some(&Value::Bool(true)) => {
                same(m.get("value").unwrap_or(&Value::Nil), &want)
            }
            _ => false,
        };
        match (ok, excluded.contains_key(src.as_str())) {
            (true, false) => passed += 1,
            (false, true) => {}
            (true, true) => failures.push(format!("{src}: excluded but passes")),
            (false, false) => failures.push(format!("{src}: want {want:?}, got {got:?}")),
        }
    }
    println!(
        "expr conformance: {passed} of {} cases pass, {} excluded",
        cases.len(),
        excluded.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(passed + excluded.len(), cases.len());
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
    println!("expr conformance: {} of {} errors are errors", sources.len() - wrong.len(), sources.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(!sources.is_empty());
}
