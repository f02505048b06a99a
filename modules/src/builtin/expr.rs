//! `expr`: small expressions such as `x > 0 ? 'positive' : 'negative'`,
//! backed by the `cel` crate (the Common Expression Language: ternaries,
//! lists, maps, indexing, `+` on strings and lists, `&&`/`||`/`!`, macros
//! like `all`/`exists`/`map`/`filter`) plus `max`, `min` and `len`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use cel::extractors::Arguments;
use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, Program};
use troupe_dispatcher::{Error, ErrorKind, Value};

use crate::types::{Decl, Signature, Type, Types};
use crate::{Args, CallError, Class, ModuleDef, Ret, UserData, UserType};

/// Expressions longer than this are refused (`INVALID`).
pub const MAX_SOURCE_LEN: usize = 64 * 1024;

/// Expressions with more operator characters than this are refused
/// (`LIMIT_EXCEEDED`): the parser and the evaluator recurse once per
/// operator of a chain (`1+1+…`), so this bounds their stack use.
pub const MAX_OPERATORS: usize = 1000;

/// Expressions nested deeper than this (parentheses, brackets, braces)
/// are refused (`LIMIT_EXCEEDED`), for the same reason.
pub const MAX_NESTING: usize = 64;

/// Refuses an expression whose parse tree could be deep enough to
/// overflow a thread's stack: more than [`MAX_OPERATORS`] operator
/// characters or more than [`MAX_NESTING`] levels of brackets, counted
/// outside string literals. A cheap, conservative bound taken before the
/// recursive parser ever runs.
fn check_depth(src: &str) -> Result<(), Error> {
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
            "expr: nesting of {deepest} levels is deeper than the limit of {MAX_NESTING}"
        ));
    }
    if operators > MAX_OPERATORS {
        return limit(format!(
            "expr: {operators} operators are more than the limit of {MAX_OPERATORS}"
        ));
    }
    Ok(())
}

/// The root context: the CEL standard library plus `max`, `min`, `len`.
/// Shared by every evaluation; variables live in a child scope per run.
static ROOT: LazyLock<Context<'static, 'static>> = LazyLock::new(root_context);

/// A new root context: the CEL standard library plus `max`, `min`, `len`.
/// Embedders add their own functions to it (only a root context takes
/// functions) and run expressions in it with [`Expression::run_in`].
pub fn root_context() -> Context<'static, 'static> {
    let mut ctx = Context::default();
    // These names are not declared by the standard library, so adding them
    // cannot conflict; a failure would only hide the function.
    let _ = ctx.add_function("max", cel::functions::max);
    let _ = ctx.add_function("min", cel::functions::min);
    let _ = ctx.add_function("len", len);
    ctx
}

/// `len(x)`: characters of a string, bytes of bytes, items of a list or map.
fn len(Arguments(args): Arguments) -> Result<cel::Value, ExecutionError> {
    let n = match args.as_slice() {
        [cel::Value::String(s)] => s.chars().count(),
        [cel::Value::Bytes(b)] => b.len(),
        [cel::Value::List(l)] => l.len(),
        [cel::Value::Map(m)] => m.map.len(),
        [other] => {
            return Err(ExecutionError::function_error(
                "len",
                format!("len() of a {} is undefined", other.type_of()),
            ));
        }
        many => {
            return Err(ExecutionError::InvalidArgumentCount {
                expected: 1,
                actual: many.len(),
            });
        }
    };
    Ok(cel::Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

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

/// Compiles `src`. A syntax error is `INVALID` with the line and column in
/// the message (`expr: 1:4: …`) and in the details (`{line, column}`).
pub fn compile(src: &str) -> Result<Expression, Error> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(Error::invalid(format!(
            "expr: expression of {} bytes is longer than the limit of {MAX_SOURCE_LEN}",
            src.len()
        )));
    }
    check_depth(src)?;
    Program::compile(src)
        .map(|program| Expression {
            program,
            source: src.to_owned(),
        })
        .map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| e.pos);
            let msg = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
            Error::invalid(format!("expr: {line}:{column}: {msg}")).with_details(
                [
                    ("line".to_owned(), Value::Int(line as i64)),
                    ("column".to_owned(), Value::Int(column as i64)),
                ]
                .into_iter()
                .collect(),
            )
        })
}

impl Expression {
    /// Evaluates the expression with `vars` as its variables. An evaluation
    /// error (an unknown name, a type mismatch, division by zero, an index
    /// out of range) is `INVALID`.
    pub fn run(&self, vars: &BTreeMap<String, Value>) -> Result<Value, Error> {
        let mut ctx = ROOT.new_inner_scope();
        for (name, v) in vars {
            ctx.add_variable_from_value(name.as_str(), to_cel(v));
        }
        self.run_in(&ctx)
    }

    /// Evaluates the expression in `ctx` (its variables and functions), with
    /// the same errors as [`Expression::run`].
    pub fn run_in(&self, ctx: &Context) -> Result<Value, Error> {
        let out = self
            .program
            .execute(ctx)
            .map_err(|e| Error::invalid(format!("expr: {e}")))?;
        from_cel(&out)
    }
}

/// Compiles and evaluates `src` once.
pub fn eval(src: &str, vars: &BTreeMap<String, Value>) -> Result<Value, Error> {
    compile(src)?.run(vars)
}

/// A Troupe value as a CEL value (`Nil` is `null`, maps have string keys).
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Nil => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Int(i) => cel::Value::Int(*i),
        Value::Float(f) => cel::Value::Float(*f),
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Bytes(b) => cel::Value::Bytes(Arc::new(b.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Map(m) => {
            let map: HashMap<Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// A CEL value as a Troupe value: unsigned integers become integers (floats
/// past `i64::MAX`), map keys become strings; durations, timestamps and
/// functions cannot leave an expression (`INVALID`).
pub fn from_cel(v: &cel::Value) -> Result<Value, Error> {
    Ok(match v {
        cel::Value::Null => Value::Nil,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(i) => Value::Int(*i),
        cel::Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(*u as f64),
        },
        cel::Value::Float(f) => Value::Float(*f),
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::Bytes(b) => Value::Bytes(b.to_vec()),
        cel::Value::List(l) => Value::Array(l.iter().map(from_cel).collect::<Result<_, _>>()?),
        cel::Value::Map(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m.map.iter() {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                out.insert(key, from_cel(v)?);
            }
            Value::Map(out)
        }
        other => {
            return Err(Error::invalid(format!(
                "expr: a {} cannot leave an expression",
                other.type_of()
            )));
        }
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
        .describe("Expressions (CEL syntax) with max, min and len")
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
        assert_eq!(ok, (Ok(Value::Int(1000)), Ok(Value::Int(2))));
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
        for src in ["nope + 1", "1 / 0", "[1][5]", "'a' + 1"] {
            assert_eq!(
                run(src, &[]).unwrap_err().kind(),
                ErrorKind::Invalid,
                "{src}"
            );
        }
        let long = "1 + ".repeat(MAX_SOURCE_LEN / 4) + "1";
        assert_eq!(run(&long, &[]).unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn values_cross_both_ways() {
        let m: Value = [("k".to_owned(), Value::Array(vec![Value::Int(1)]))]
            .into_iter()
            .collect();
        assert_eq!(
            run("{'n': m.k[0] + 1, 'l': [true, null]}", &[("m", m)]),
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
