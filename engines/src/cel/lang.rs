//! The CEL dialect of the `cel` engine: the CEL standard library plus
//! `max`, `min` and `len`, compiled with the same length and nesting
//! bounds as the `expr` module (`troupe_modules::builtin::expr`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use cel::extractors::Arguments;
use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, Program};
use troupe_dispatcher::{Error, Value};
use troupe_modules::builtin::expr::{MAX_CEL_OPERATORS, MAX_SOURCE_LEN, check_depth};

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
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expression")
    }
}

/// Compiles `src`. A syntax error is `INVALID` with the line and column in
/// the message (`cel: 1:4: …`) and in the details (`{line, column}`).
pub fn compile(src: &str) -> Result<Expression, Error> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(Error::invalid(format!(
            "cel: expression of {} bytes is longer than the limit of {MAX_SOURCE_LEN}",
            src.len()
        )));
    }
    check_depth("cel", src, MAX_CEL_OPERATORS)?;
    Program::compile(src)
        .map(|program| Expression { program })
        .map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| e.pos);
            let msg = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
            Error::invalid(format!("cel: {line}:{column}: {msg}")).with_details(
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
            .map_err(|e| Error::invalid(format!("cel: {e}")))?;
        from_cel(&out)
    }
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
                "cel: a {} cannot leave an expression",
                other.type_of()
            )));
        }
    })
}
