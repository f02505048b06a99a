use std::collections::BTreeMap;
use std::fmt;

/// The neutral value every engine, message, command and journal entry uses.
///
/// Maps have string keys and a deterministic (sorted) order, so a value
/// serializes the same way every time: that is what lets a workflow replay
/// compare commands byte for byte. `Bytes` is for binary data that is not
/// UTF-8; engines map both `String` and `Bytes` to their native string type
/// where they have only one.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// Absence of a value (`nil`, `null`, `None`).
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    String(String),
    /// Binary data.
    Bytes(Vec<u8>),
    /// An ordered sequence.
    Array(Vec<Value>),
    /// String-keyed entries in key order.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// The name of this value's type as scripts know it: `nil`, `boolean`,
    /// `integer`, `number`, `string`, `bytes`, `array`, `map`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// `true` for `Nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The text, if this is a `String` (or `Bytes` holding UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The integer, if this is an `Int` or a `Float` with an exact integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
                Some(f as i64)
            }
            _ => None,
        }
    }

    /// The number as a float, if this is an `Int` or a `Float`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The entries, if this is a `Map`.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Looks up `key` in a `Map`; `None` for other variants or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// A rough count of the bytes this value occupies, used to bound message
    /// sizes without serializing.
    pub fn approx_size(&self) -> usize {
        const SLOT: usize = std::mem::size_of::<Value>();
        SLOT + match self {
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Array(a) => a.iter().map(Value::approx_size).sum(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| k.len() + SLOT + v.approx_size())
                .sum(),
            _ => 0,
        }
    }

    /// Encodes as MessagePack, the on-disk form of journals.
    pub fn to_msgpack(&self) -> Vec<u8> {
        // Serializing a Value into a Vec cannot fail: every variant maps to a
        // MessagePack type and the writer is infallible.
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    /// Decodes MessagePack produced by [`Value::to_msgpack`] (or any other
    /// MessagePack with string map keys).
    pub fn from_msgpack(bytes: &[u8]) -> Result<Value, crate::Error> {
        rmp_serde::from_slice(bytes)
            .map_err(|e| crate::Error::invalid(format!("bad MessagePack value: {e}")))
    }

    /// Renders as compact JSON. Bytes become an array of numbers, non-finite
    /// floats become `null`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    /// Parses JSON text.
    pub fn from_json(text: &str) -> Result<Value, crate::Error> {
        serde_json::from_str(text).map_err(|e| crate::Error::invalid(format!("bad JSON: {e}")))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(v as i64) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or(Value::Float(v as f64), Value::Int)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl From<()> for Value {
    fn from(_: ()) -> Self {
        Value::Nil
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Nil, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value
where
    T: NotBytes,
{
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>, const N: usize> From<[T; N]> for Value {
    fn from(v: [T; N]) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<V: Into<Value>> From<BTreeMap<String, V>> for Value {
    fn from(v: BTreeMap<String, V>) -> Self {
        Value::Map(v.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

/// A map; a later duplicate key wins.
impl<V: Into<Value>> FromIterator<(String, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        // One insert per entry: for the small maps of command arguments and
        // messages, much cheaper than `BTreeMap`'s collect, which buffers,
        // sorts and bulk-builds.
        let mut m = BTreeMap::new();
        for (k, v) in iter {
            m.insert(k, v.into());
        }
        Value::Map(m)
    }
}

/// Marker for element types whose `Vec` becomes an array (a `Vec<u8>` is bytes).
#[doc(hidden)]
pub trait NotBytes {}
impl NotBytes for Value {}
impl NotBytes for String {}
impl NotBytes for &str {}
impl NotBytes for i64 {}
impl NotBytes for i32 {}
impl NotBytes for f64 {}
impl NotBytes for bool {}

#[cfg(test)]
mod tests {
    use super::Value;

    /// Found by the `value_json` fuzz target: a float printed as JSON
    /// must parse back to the same float, or a message that crosses JSON
    /// twice changes.
    #[test]
    fn json_floats_round_trip_exactly() {
        let v = Value::from_json("10111110111111111111111111111144444").unwrap();
        let once = v.to_json();
        assert_eq!(Value::from_json(&once).unwrap().to_json(), once);
        assert_eq!(
            Value::from_json("1.0111110111111111e+34").unwrap(),
            Value::Float(1.0111110111111111e34)
        );
    }
}
