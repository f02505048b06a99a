//! Serde for [`Value`]: it serializes to the natural form of any format
//! (JSON objects, MessagePack maps and bin), and typed Rust data converts to
//! and from it with [`to_value`] / [`from_value`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Value};

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key::<MapKey>()? {
            if out.is_empty() && k.0 == JSON_NUMBER_TOKEN {
                let text: String = map.next_value()?;
                return json_number(&text);
            }
            out.insert(k.0, map.next_value()?);
        }
        Ok(Value::Map(out))
    }
}

/// The map key serde_json's `arbitrary_precision` feature wraps a number's
/// text in. A dependency (starlark) turns the feature on for the whole
/// build, so `Value` reads such numbers back as numbers.
const JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A number's JSON text: an integer when it fits, else a float.
fn json_number<E: de::Error>(text: &str) -> Result<Value, E> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    text.parse::<f64>()
        .map(Value::Float)
        .map_err(|_| E::custom(format!("bad JSON number {text:?}")))
}

/// A map key: text, or a number/bool rendered as text (MessagePack allows
/// non-string keys; `Value` maps do not).
struct MapKey(String);

impl<'de> Deserialize<'de> for MapKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(MapKey(s)),
            Value::Int(i) => Ok(MapKey(i.to_string())),
            Value::Bool(b) => Ok(MapKey(b.to_string())),
            Value::Bytes(b) => String::from_utf8(b)
                .map(MapKey)
                .map_err(|_| de::Error::custom("map key is not UTF-8")),
            other => Err(de::Error::custom(format!(
                "unsupported map key: {}",
                other.type_name()
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Converts typed data into a [`Value`] (structs become maps with field names).
pub fn to_value<T: Serialize + ?Sized>(data: &T) -> Result<Value, Error> {
    let bytes = rmp_serde::to_vec_named(data)
        .map_err(|e| Error::invalid(format!("cannot convert to a value: {e}")))?;
    Value::from_msgpack(&bytes)
}

/// Converts a [`Value`] into typed data; a shape mismatch is `INVALID`.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    rmp_serde::from_slice(&value.to_msgpack())
        .map_err(|e| Error::invalid(format!("unexpected value shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value;

    fn every_variant() -> Value {
        let mut m = BTreeMap::new();
        m.insert("nil".into(), Value::Nil);
        m.insert("bool".into(), Value::Bool(true));
        m.insert("int".into(), Value::Int(-7));
        m.insert("big".into(), Value::Int(i64::MAX));
        m.insert("float".into(), Value::Float(1.5));
        m.insert("string".into(), Value::from("héllo"));
        m.insert("bytes".into(), Value::Bytes(vec![0, 159, 255]));
        m.insert(
            "array".into(),
            Value::Array(vec![Value::Int(1), Value::from("two")]),
        );
        m.insert("empty".into(), Value::Map(BTreeMap::new()));
        Value::Map(m)
    }

    #[test]
    fn every_variant_round_trips_through_msgpack() {
        let v = every_variant();
        assert_eq!(Value::from_msgpack(&v.to_msgpack()).unwrap(), v);
    }

    #[test]
    fn json_round_trips_everything_but_bytes() {
        let mut v = every_variant();
        if let Value::Map(m) = &mut v {
            m.remove("bytes");
        }
        assert_eq!(Value::from_json(&v.to_json()).unwrap(), v);
        assert_eq!(
            value!({"a": [1, 2.5, null]}).to_json(),
            r#"{"a":[1,2.5,null]}"#
        );
    }

    #[test]
    fn typed_data_converts_both_ways() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Job {
            name: String,
            n: i64,
            tags: Vec<String>,
            extra: Option<Value>,
        }
        let job = Job {
            name: "x".into(),
            n: 3,
            tags: vec!["a".into()],
            extra: Some(Value::Int(1)),
        };
        let v = to_value(&job).unwrap();
        assert_eq!(v.get("n"), Some(&Value::Int(3)));
        assert_eq!(from_value::<Job>(&v).unwrap(), job);
        let err = from_value::<Job>(&Value::Int(1)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
    }

    #[test]
    fn garbage_msgpack_is_an_error_not_a_panic() {
        for bytes in [
            &[0xc1u8][..],
            &[0x92, 0x01][..],
            &[0xdb, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(Value::from_msgpack(bytes).is_err());
        }
    }
}
