use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use troupe_dispatcher::{Error, Value};

use crate::Object;

/// A wrong argument: which function, which position, what was expected and
/// what came. Raised to the script as an `INVALID` error reading
/// `greet.hello: argument #1 expected string, got nil`.
#[derive(Debug, Clone)]
pub struct ArgError {
    function: Arc<str>,
    position: usize,
    expected: Cow<'static, str>,
    got: String,
}

/// So an async handler can use `args.string(0)?` and fail with `INVALID`.
impl From<ArgError> for Error {
    fn from(e: ArgError) -> Self {
        e.into_error()
    }
}

impl ArgError {
    /// The structured error scripts see.
    pub fn into_error(self) -> Error {
        Error::invalid(format!(
            "{}: argument #{} expected {}, got {}",
            self.function, self.position, self.expected, self.got
        ))
    }
}

/// The arguments of one module-function call, with typed accessors. Positions
/// are 0-based in Rust and reported 1-based to scripts.
#[derive(Debug)]
pub struct Args {
    function: Arc<str>,
    values: Vec<Value>,
    /// Userdata objects by position (their place in `values` holds `nil`).
    objects: Vec<(usize, Object)>,
}

fn lua_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) | Value::Map(_) => "table",
        Value::Bytes(_) => "string",
        other => other.type_name(),
    }
}

macro_rules! typed {
    ($(#[$doc:meta])* $req:ident, $(#[$odoc:meta])* $opt:ident, $t:ty, $expected:literal, $conv:expr) => {
        $(#[$doc])*
        pub fn $req(&self, i: usize) -> Result<$t, ArgError> {
            let v = self.get(i);
            let conv: fn(&Value) -> Option<$t> = $conv;
            conv(v).ok_or_else(|| self.error(i, $expected))
        }

        $(#[$odoc])*
        pub fn $opt(&self, i: usize) -> Result<Option<$t>, ArgError> {
            match self.get(i) {
                Value::Nil => Ok(None),
                _ => self.$req(i).map(Some),
            }
        }
    };
}

impl Args {
    /// Arguments `values` of a call to `function` (qualified, `module.fn`).
    pub fn new(function: Arc<str>, values: Vec<Value>) -> Self {
        Self {
            function,
            values,
            objects: Vec::new(),
        }
    }

    /// Adds userdata object `obj` as argument `i` (engines use this for
    /// functions whose arguments take objects).
    #[must_use]
    pub fn with_object(mut self, i: usize, obj: Object) -> Self {
        if self.values.len() <= i {
            self.values.resize(i + 1, Value::Nil);
        }
        self.objects.push((i, obj));
        self
    }

    /// The userdata object passed as argument `i`, if one was.
    pub fn object(&self, i: usize) -> Option<&Object> {
        self.objects.iter().find(|(p, _)| *p == i).map(|(_, o)| o)
    }

    /// How many arguments were passed.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no arguments were passed.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Argument `i`, `Nil` when absent.
    pub fn get(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Nil)
    }

    /// Takes argument `i` out, `Nil` when absent.
    pub fn take(&mut self, i: usize) -> Value {
        self.values
            .get_mut(i)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Arguments from `i` on.
    pub fn rest(&mut self, i: usize) -> Vec<Value> {
        if i >= self.values.len() {
            Vec::new()
        } else {
            self.values.split_off(i)
        }
    }

    /// A wrong-argument error for position `i`.
    pub fn error(&self, i: usize, expected: impl Into<Cow<'static, str>>) -> ArgError {
        let got = match self.object(i) {
            Some(o) => o.type_name().to_owned(),
            None => lua_type(self.get(i)).to_owned(),
        };
        ArgError {
            function: Arc::clone(&self.function),
            position: i + 1,
            expected: expected.into(),
            got,
        }
    }

    /// The qualified name of the called function.
    pub fn function(&self) -> &str {
        &self.function
    }

    typed!(
        /// A required string (text).
        string,
        /// An optional string.
        opt_string, String, "string", |v| v.as_str().map(str::to_owned)
    );
    typed!(
        /// A required string as raw bytes (text or binary).
        bytes,
        /// Optional raw bytes.
        opt_bytes, Vec<u8>, "string", |v| match v {
            Value::String(s) => Some(s.as_bytes().to_vec()),
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    );
    typed!(
        /// A required integer (a float with an integer value counts).
        int,
        /// An optional integer.
        opt_int, i64, "integer", Value::as_i64
    );
    typed!(
        /// A required number.
        number,
        /// An optional number.
        opt_number, f64, "number", Value::as_f64
    );
    typed!(
        /// A required boolean.
        boolean,
        /// An optional boolean.
        opt_boolean, bool, "boolean", Value::as_bool
    );
    typed!(
        /// A required table with string keys (an empty table counts).
        map,
        /// An optional table with string keys.
        opt_map, BTreeMap<String, Value>, "table", |v| match v {
            Value::Map(m) => Some(m.clone()),
            Value::Array(a) if a.is_empty() => Some(BTreeMap::new()),
            _ => None,
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_arguments_name_function_position_and_types() {
        let args = Args::new("greet.hello".into(), vec![Value::Int(1)]);
        let e = args.string(0).unwrap_err().into_error();
        assert_eq!(
            e.to_string(),
            "INVALID: greet.hello: argument #1 expected string, got integer"
        );
        let e = args.int(1).unwrap_err().into_error();
        assert_eq!(
            e.message(),
            "greet.hello: argument #2 expected integer, got nil"
        );
        assert_eq!(args.opt_string(1).unwrap(), None);
        assert_eq!(args.int(0).unwrap(), 1);
        assert_eq!(args.number(0).unwrap(), 1.0);
    }
}
