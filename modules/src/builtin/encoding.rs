use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use troupe_dispatcher::{Error, Value};

use crate::types::{Signature, Type, Types};
use crate::{Bytes, Class, ModuleDef};

/// `json`: `encode(v)` and `decode(s)`.
pub(super) fn json() -> ModuleDef {
    ModuleDef::new("json")
        .describe("JSON encoding and decoding")
        .with_classes(&[Class::Deterministic, Class::Encoding])
        .types(
            Types::new()
                .function(
                    "encode",
                    Signature::new(
                        "Encodes a value as JSON text. Sequences become arrays, other tables objects.",
                    )
                    .param("value", Type::Any)
                    .returns(Type::String),
                )
                .function(
                    "decode",
                    Signature::new("Parses JSON text; `nil, err` (INVALID) if it is not JSON.")
                        .param("text", Type::String)
                        .returns(Type::Any)
                        .fallible(),
                ),
        )
        .typed_function("encode", |_cx, (value,): (Value,)| Ok(value.to_json()))
        .typed_function("decode", |_cx, (text,): (String,)| {
            Ok(Value::from_json(&text)?)
        })
}

/// `base64`: `encode(s)` and `decode(s)` (standard alphabet, padded).
pub(super) fn base64() -> ModuleDef {
    ModuleDef::new("base64")
        .describe("Base64 encoding (standard alphabet, padded)")
        .with_classes(&[Class::Deterministic, Class::Encoding])
        .types(
            Types::new()
                .function(
                    "encode",
                    Signature::new("Encodes a string (text or binary) as base64.")
                        .param("data", Type::String)
                        .returns(Type::String),
                )
                .function(
                    "decode",
                    Signature::new(
                        "Decodes base64 text; `nil, err` (INVALID) if it is not base64.",
                    )
                    .param("text", Type::String)
                    .returns(Type::String)
                    .fallible(),
                ),
        )
        .typed_function("encode", |_cx, (data,): (Bytes,)| {
            Ok(STANDARD.encode(data.0))
        })
        .typed_function("decode", |_cx, (text,): (Bytes,)| {
            let decoded = STANDARD
                .decode(text.0)
                .map_err(|e| Error::invalid(format!("base64.decode: {e}")))?;
            Ok(match String::from_utf8(decoded) {
                Ok(s) => Value::String(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            })
        })
}

/// `hash`: `sha256(s)` as lowercase hex.
pub(super) fn hash() -> ModuleDef {
    ModuleDef::new("hash")
        .describe("Cryptographic hashes, hex-encoded")
        .with_classes(&[Class::Deterministic, Class::Encoding])
        .types(
            Types::new().function(
                "sha256",
                Signature::new("The SHA-256 digest of a string, as 64 lowercase hex digits.")
                    .param("data", Type::String)
                    .returns(Type::String),
            ),
        )
        .typed_function("sha256", |_cx, (data,): (Bytes,)| {
            Ok(hex::encode(Sha256::digest(data.0)))
        })
}
