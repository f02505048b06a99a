use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use troupe_dispatcher::{Error, Value};

use crate::types::{Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

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
        .function("encode", |_cx, args| {
            Ok(Ret::Value(Value::from(args.get(0).to_json())))
        })
        .function("decode", |_cx, args| {
            let text = args.string(0)?;
            Ok(Ret::Value(Value::from_json(&text)?))
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
        .function("encode", |_cx, args| {
            Ok(Ret::Value(Value::from(STANDARD.encode(args.bytes(0)?))))
        })
        .function("decode", |_cx, args| {
            let decoded = STANDARD
                .decode(args.bytes(0)?)
                .map_err(|e| Error::invalid(format!("base64.decode: {e}")))?;
            Ok(Ret::Value(match String::from_utf8(decoded) {
                Ok(s) => Value::String(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            }))
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
        .function("sha256", |_cx, args| {
            Ok(Ret::Value(Value::from(hex::encode(Sha256::digest(
                args.bytes(0)?,
            )))))
        })
}
