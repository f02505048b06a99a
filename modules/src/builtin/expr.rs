//! `expr`: the expr language (expr-lang.org, Go-compatible semantics) on
//! the `expr-lang` crate: business rules such as `price * quantity > 100`,
//! `"ell" in name`, `all(items, # > 0)` or `user.name ?? "anon"`. Each
//! evaluation has a budget of steps and memory (the crate is vendored with
//! it, see `vendor/expr-lang/PATCHED.md`): `map(1..100000000, # * 2)` ends
//! with `LIMIT_EXCEEDED` instead of filling the host's memory.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use expr::{Budget, Context, Environment, Program};
use indexmap::IndexMap;
use troupe_dispatcher::{Error, ErrorKind, Value};

use crate::types::{Decl, Signature, Type, Types};
use crate::{Args, CallError, Class, ModuleDef, Ret, UserData, UserType};

/// Expressions longer than this are refused (`INVALID`).
pub const MAX_SOURCE_LEN: usize = 64 * 1024;

/// Expressions with more operator characters than this are refused
/// (`LIMIT_EXCEEDED`): the expr-lang parser and evaluator recurse once per
/// operator of a chain (`1+1+…`), about 2 KiB of stack each; 950 already
/// fill a 2 MiB thread, so this leaves room for the caller's own frames.
pub const MAX_OPERATORS: usize = 400;

/// The operator bound of CEL (the `cel` engine), whose parser and
/// evaluator take less stack per operator.
pub const MAX_CEL_OPERATORS: usize = 1000;

/// Expressions nested deeper than this (parentheses, brackets, braces)
/// are refused (`LIMIT_EXCEEDED`), for the same reason.
pub const MAX_NESTING: usize = 64;

/// Refuses an expression whose parse tree could be deep enough to
/// overflow a thread's stack: more than `max_operators` operator
/// characters or more than [`MAX_NESTING`] levels of brackets, counted
/// outside string literals. A cheap, conservative bound taken before the
/// recursive parser ever runs.
pub fn check_depth(lang: &str, src: &str, max_operators: usize) -> Result<(), Error> {
    let (mut operators, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    let mut chars = src.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // Skip the literal (escapes included); an unterminated one
                // is the parser's syntax error.
                let mut escaped = false;
                for d in chars.by_ref() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        _ if d == c => break,
                        _ => {}
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
                operators += 1;
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '&' | '|' | '?' | ':' | '.'
            | ',' => operators += 1,
            _ => {}
        }
    }
    let limit = |what: String| Err(Error::new(ErrorKind::LimitExceeded, what));
    if deepest > MAX_NESTING {
        return limit(format!(
            "{lang}: nesting of {deepest} levels is deeper than the limit of {MAX_NESTING}"
        ));
    }
    if operators > max_operators {
        return limit(format!(
            "{lang}: {operators} operators are more than the limit of {max_operators}"
        ));
    }
    Ok(())
}

/// What one evaluation may spend: nodes evaluated, and array elements
/// plus 8-byte string units allocated (about 64 MB at most).
pub const BUDGET: Budget = Budget {
    steps: 10_000_000,
    memory: 1_000_000,
};

/// The environment every expression runs in: expr's built-in functions
/// (no `now`, `date`, `duration` or `timezone`: the module is
/// deterministic) and [`BUDGET`].
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_budget(BUDGET);
    env
});

/// A compiled expression; run it any number of times with different
/// variables.
pub struct Expression {
    program: Program,
    source: String,
}

impl UserData for Expression {
    const NAME: &'static str = "expr.Program";
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expression")
    }
}

/// Where a syntax error is, 1-based (1:1 when the parser does not say).
fn position(e: &expr::Error) -> (usize, usize) {
    match e {
        expr::Error::PestError(p) => match p.line_col {
            pest::error::LineColLocation::Pos(at) | pest::error::LineColLocation::Span(at, _) => at,
        },
        _ => (1, 1),
    }
}

/// The one-line message of a syntax error (pest's own text draws arrows
/// over several lines).
fn syntax_message(e: &expr::Error) -> String {
    match e {
        expr::Error::PestError(p) => format!("syntax error: {}", p.variant.message()),
        other => other.to_string(),
    }
}

/// The most parser calls one compile may make. The expr grammar
/// backtracks, and some inputs of a hundred characters (unclosed brackets
/// after a call) take seconds to reject without a bound; a 64 KiB string
/// literal, the longest legitimate source, needs about 200,000. With the
/// bound the worst input fails in about 10 ms.
const MAX_PARSER_CALLS: usize = 1_000_000;

/// Compiles `src`. A syntax error is `INVALID` with the line and column in
/// the message (`expr: 1:4: …`) and in the details (`{line, column}`); a
/// source that makes the parser backtrack past [`MAX_PARSER_CALLS`] is
/// `LIMIT_EXCEEDED`.
pub fn compile(src: &str) -> Result<Expression, Error> {
    static CALL_LIMIT: std::sync::Once = std::sync::Once::new();
    // pest's bound is process-wide; expr-lang is its only user here.
    CALL_LIMIT.call_once(|| pest::set_call_limit(std::num::NonZeroUsize::new(MAX_PARSER_CALLS)));
    if src.len() > MAX_SOURCE_LEN {
        return Err(Error::invalid(format!(
            "expr: expression of {} bytes is longer than the limit of {MAX_SOURCE_LEN}",
            src.len()
        )));
    }
    check_depth("expr", src, MAX_OPERATORS)?;
    guarded(|| expr::compile(src))?
        .map(|program| Expression {
            program,
            source: src.to_owned(),
        })
        .map_err(|e| {
            let (line, column) = position(&e);
            let message = syntax_message(&e);
            let kind = if message.contains("call limit reached") {
                ErrorKind::LimitExceeded
            } else {
                ErrorKind::Invalid
            };
            Error::new(kind, format!("expr: {line}:{column}: {message}")).with_details(
                [
                    (
                        "line".to_owned(),
                        Value::Int(i64::try_from(line).unwrap_or(0)),
                    ),
                    (
                        "column".to_owned(),
                        Value::Int(i64::try_from(column).unwrap_or(0)),
                    ),
                ]
                .into_iter()
                .collect(),
            )
        })
}

/// The stack a parse or an evaluation is sure to have: [`MAX_OPERATORS`]
/// take about 800 KiB.
const STACK_NEEDED: usize = 1 << 20;

/// Runs `f` with at least [`STACK_NEEDED`] of stack, on a fresh segment
/// when the current one has less (or cannot tell: on a wasm guest's fiber
/// the thread's bounds are not the fiber's, and pest's own guard would
/// refuse to parse), turning a panic of the expr-lang crate (it has a few
/// on unusual input) into `INVALID` instead of taking the caller down.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    let run =
        std::panic::AssertUnwindSafe(|| stacker::maybe_grow(STACK_NEEDED, 2 * STACK_NEEDED, f));
    std::panic::catch_unwind(run).map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        Error::invalid(format!(
            "expr: unsupported expression (the evaluator failed: {why})"
        ))
    })
}

/// An evaluation error: past the budget `LIMIT_EXCEEDED`, anything else
/// (an unknown name, a type mismatch, division by zero) `INVALID`.
fn run_error(e: &expr::Error) -> Error {
    let kind = match e {
        expr::Error::BudgetExceeded(_) => ErrorKind::LimitExceeded,
        _ => ErrorKind::Invalid,
    };
    Error::new(kind, format!("expr: {e}"))
}

impl Expression {
    /// Evaluates the expression with `vars` as its variables (see
    /// [`run_error`] for its errors).
    pub fn run(&self, vars: &BTreeMap<String, Value>) -> Result<Value, Error> {
        let mut ctx = Context::default();
        for (name, v) in vars {
            ctx.insert(name.as_str(), to_expr(v));
        }
        self.run_in(&ENVIRONMENT, &ctx)
    }

    /// Evaluates the expression in `env` (its functions, which embedders
    /// extend) with `ctx`'s variables, with the same errors as
    /// [`Expression::run`].
    pub fn run_in(&self, env: &Environment<'_>, ctx: &Context) -> Result<Value, Error> {
        let out = guarded(|| env.run(&self.program, ctx))?.map_err(|e| run_error(&e))?;
        from_expr(out)
    }
}

/// A new environment as the module's: expr's functions and [`BUDGET`].
/// Embedders add their own functions to it and run expressions in it with
/// [`Expression::run_in`].
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_budget(BUDGET);
    env
}

/// Compiles and evaluates `src` once.
pub fn eval(src: &str, vars: &BTreeMap<String, Value>) -> Result<Value, Error> {
    compile(src)?.run(vars)
}

/// A Troupe value as an expr value (`Nil` is `nil`, maps keep their
/// sorted key order).
pub fn to_expr(v: &Value) -> expr::Value {
    match v {
        Value::Nil => expr::Value::Nil,
        Value::Bool(b) => expr::Value::Bool(*b),
        Value::Int(i) => expr::Value::Integer(*i),
        Value::Float(f) => expr::Value::Float(*f),
        Value::String(s) => expr::Value::String(s.clone()),
        Value::Bytes(b) => expr::Value::Bytes(b.clone()),
        Value::Array(a) => expr::Value::Array(a.iter().map(to_expr).collect()),
        Value::Map(m) => expr::Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), to_expr(v)))
                .collect::<IndexMap<_, _>>(),
        ),
    }
}

/// An expr value as a Troupe value. A map with keys other than strings
/// has them written as text (as Lua tables with integer keys are); a key
/// that is itself a list or a map is `INVALID`.
pub fn from_expr(v: expr::Value) -> Result<Value, Error> {
    Ok(match v {
        expr::Value::Nil => Value::Nil,
        expr::Value::Bool(b) => Value::Bool(b),
        expr::Value::Integer(i) => Value::Int(i),
        expr::Value::Float(f) => Value::Float(f),
        expr::Value::String(s) => Value::String(s),
        expr::Value::Bytes(b) => Value::Bytes(b),
        expr::Value::Array(a) => {
            Value::Array(a.into_iter().map(from_expr).collect::<Result<_, _>>()?)
        }
        expr::Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| Ok((k, from_expr(v)?)))
                .collect::<Result<_, Error>>()?,
        ),
        expr::Value::KeyedMap(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        expr::Value::String(s) => s,
                        expr::Value::Integer(i) => i.to_string(),
                        expr::Value::Float(f) => f.to_string(),
                        expr::Value::Bool(b) => b.to_string(),
                        expr::Value::Nil => "nil".to_owned(),
                        other => {
                            return Err(Error::invalid(format!(
                                "expr: a map keyed by {other} cannot leave an expression"
                            )));
                        }
                    };
                    Ok((key, from_expr(v)?))
                })
                .collect::<Result<_, Error>>()?,
        ),
    })
}

/// The optional variables argument at `i`: a table with string keys.
fn vars(args: &Args, i: usize) -> Result<BTreeMap<String, Value>, CallError> {
    Ok(args.opt_map(i)?.unwrap_or_default())
}

/// The `expr.Program` userdata type: `program:run(vars?)`.
fn program_type() -> &'static UserType<Expression> {
    static TYPE: LazyLock<UserType<Expression>> = LazyLock::new(|| {
        UserType::new()
            .tostring(|e: &Expression| format!("expr.Program({})", e.source))
            .method(
                "run",
                |_cx, e: &Expression, (vars,): (Option<BTreeMap<String, Value>>,)| {
                    Ok(e.run(&vars.unwrap_or_default())?)
                },
            )
    });
    &TYPE
}

/// The `expr` manifest.
fn types() -> Types {
    let vars = || Type::table(Type::String, Type::Any);
    Types::new()
        .function(
            "eval",
            Signature::new(
                "Evaluates an expression with the variables; `nil, err` (INVALID, with the line and column of a syntax error) if it does not compile or run.",
            )
            .param("src", Type::String)
            .optional("vars", vars())
            .returns(Type::Any)
            .fallible(),
        )
        .function(
            "compile",
            Signature::new("Compiles an expression once, to run many times.")
                .param("src", Type::String)
                .returns(Type::named("Program"))
                .fallible(),
        )
        .decl(
            Decl::interface("Program", "A compiled expression.").method(
                "run",
                Signature::new("Evaluates the program with the variables.")
                    .optional("vars", vars())
                    .returns(Type::Any)
                    .fallible(),
            ),
        )
}

/// `expr`: `eval(src, vars?)` → value, err; `compile(src)` → program, err;
/// `program:run(vars?)` → value, err.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("expr")
        .describe("The expr language (expr-lang.org): rules and expressions, with a budget per evaluation")
        .class(Class::Deterministic)
        .types(types())
        .function("eval", |_cx, args| {
            let src = args.string(0)?;
            Ok(Ret::Value(eval(&src, &vars(&args, 1)?)?))
        })
        .function("compile", |_cx, args| {
            let e = compile(&args.string(0)?)?;
            Ok(Ret::Object(program_type().wrap(e)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_dispatcher::ErrorKind;

    fn run(src: &str, vars: &[(&str, Value)]) -> Result<Value, Error> {
        let vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        eval(src, &vars)
    }

    /// At the limits, an expression compiles and evaluates on a thread
    /// with Rust's default 2 MiB stack (a host's thread, a test's); past
    /// them it is refused before the recursive parser runs.
    #[test]
    fn expressions_at_the_depth_limits_fit_a_default_thread_stack() {
        let chain = format!("{}1", "1+".repeat(MAX_OPERATORS - 1));
        let nested = format!("{}2{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        let ok = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || (run(&chain, &[]), run(&nested, &[])))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(ok, (Ok(Value::Int(400)), Ok(Value::Int(2))));
        for deep in [
            format!("{}1", "1+".repeat(MAX_OPERATORS + 1)),
            format!(
                "{}2{}",
                "(".repeat(MAX_NESTING + 1),
                ")".repeat(MAX_NESTING + 1)
            ),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ] {
            assert_eq!(compile(&deep).unwrap_err().kind(), ErrorKind::LimitExceeded);
        }
        // Inside a string literal nothing counts.
        let quoted = format!("'{}'", "(+".repeat(5_000));
        assert_eq!(run(&quoted, &[]), Ok(Value::from("(+".repeat(5_000))));
    }

    #[test]
    fn len_counts_characters_and_entries() {
        assert_eq!(run("len('héllo')", &[]), Ok(Value::Int(5)));
        assert_eq!(run("len({'a': 1})", &[]), Ok(Value::Int(1)));
        assert_eq!(run("len(1)", &[]).unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn syntax_errors_are_invalid_with_the_position() {
        let e = run("1 +", &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.message().starts_with("expr: 1:4: "), "{}", e.message());
        assert_eq!(
            e.details().and_then(|d| d.get("column")),
            Some(&Value::Int(4))
        );
        let e = run("1 +\n  * 2", &[]).unwrap_err();
        assert!(e.message().starts_with("expr: 2:"), "{}", e.message());
    }

    #[test]
    fn evaluation_errors_are_invalid() {
        for src in [
            "nope + 1",
            "int('x')",
            "'a' - 1",
            "'a' + 1",
            "{'n': nope + 1}",
        ] {
            let got = run(src, &[]);
            assert_eq!(got.map_err(|e| e.kind()), Err(ErrorKind::Invalid), "{src}");
        }
        let long = "1 + ".repeat(MAX_SOURCE_LEN / 4) + "1";
        assert_eq!(run(&long, &[]).unwrap_err().kind(), ErrorKind::Invalid);
    }

    /// An input the fuzzer found: unclosed brackets after a call make the
    /// parser backtrack exponentially (seconds for 98 bytes); the call
    /// bound ends it quickly with LIMIT_EXCEEDED.
    #[test]
    fn backtracking_inputs_are_cut_short() {
        let src = "h0l..mp0l..mpa(6, vi[[[[[_[n[[[[[[[[Z[n[[if[e[[[[[_[nYa(6, vi[[[[[_[n[[[[[[[[Z[n[[if[e[[[[[_[nY[[e";
        let err = compile(src).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
        let long = format!("'{}' + 'b'", "a".repeat(MAX_SOURCE_LEN - 20));
        assert_eq!(compile(&long).map(|_| ()), Ok(()));
    }

    /// Business rules as users of the expr language write them.
    #[test]
    fn ordinary_rules_follow_the_expr_language() {
        let price = [("price", Value::Float(10.5)), ("quantity", Value::Int(2))];
        assert_eq!(run("price * quantity", &price), Ok(Value::Float(21.0)));
        assert_eq!(run("10 / 4", &[]), Ok(Value::Float(2.5)));
        assert_eq!(run("2 ** 3", &[]), Ok(Value::Float(8.0)));
        assert_eq!(run(r#""hello" contains "ell""#, &[]), Ok(Value::Bool(true)));
        let ab = [("a", Value::Bool(true)), ("b", Value::Bool(false))];
        assert_eq!(run("a and b", &ab), Ok(Value::Bool(false)));
        assert_eq!(run("x == nil", &[("x", Value::Nil)]), Ok(Value::Bool(true)));
        let items = [("items", Value::Array(vec![Value::Int(1), Value::Int(2)]))];
        assert_eq!(run("all(items, # > 0)", &items), Ok(Value::Bool(true)));
        assert_eq!(
            run(r#"name ?? "anon""#, &[("name", Value::Nil)]),
            Ok(Value::from("anon"))
        );
    }

    /// A runaway expression ends with LIMIT_EXCEEDED before it allocates
    /// what it asks for.
    #[test]
    fn runaway_expressions_exhaust_their_budget_not_the_host() {
        for src in [
            "map(1..100000000, # * 2)",
            "len(1..9223372036854775807)",
            "map(1..2000, {1..2000})",
            "reduce(1..900000, #acc + #, 0) + reduce(1..900000, #acc + #, 0)",
            r#"let a = repeat("x", 1000000); let b = repeat(a, 1000); len(b)"#,
        ] {
            let err = run(src, &[]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{src}: {err}");
        }
        // A big variable referenced over and over is charged each time.
        let big = Value::Array(vec![Value::Int(1); 100_000]);
        let err = run("map(1..100, len(big) + #)", &[("big", big)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        // Within the budget: a range of a hundred thousand.
        assert_eq!(run("sum(1..100000)", &[]), Ok(Value::Int(5_000_050_000)));
        // The budget is per evaluation: the next one starts afresh.
        assert_eq!(run("len(1..900000)", &[]), Ok(Value::Int(900_000)));
    }

    #[test]
    fn values_cross_both_ways() {
        let m: Value = [("k".to_owned(), Value::Array(vec![Value::Int(1)]))]
            .into_iter()
            .collect();
        assert_eq!(
            run(
                "let n = m.k[0] + 1; {'n': 2, 'l': [true, nil]}",
                &[("m", m)]
            ),
            Ok([
                ("n".to_owned(), Value::Int(2)),
                (
                    "l".to_owned(),
                    Value::Array(vec![Value::Bool(true), Value::Nil])
                ),
            ]
            .into_iter()
            .collect())
        );
    }
}
