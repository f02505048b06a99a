//! `rand` and `uuid`. Every function is a typed command with its handler
//! beside it (answered inside the script's call where it can, on the
//! calling worker otherwise), so a journaling host records the values it
//! handed out and a replay sees the same ones.

use rand::RngExt;
use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Error, Value};

use super::commands::{command, unit_command};
use crate::types::{Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

/// `rand.int(a, b)`: a random integer in `lo..=hi` (`lo <= hi`, checked by
/// the function).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Int {
    /// The smallest value.
    pub lo: i64,
    /// The largest value.
    pub hi: i64,
}

command!(Int, RAND_INT, "rand.int", i64);

unit_command!(
    /// `rand.float()`: a random number in `[0, 1)`.
    Float, RAND_FLOAT, "rand.float", f64
);

/// `rand.choice(list)`: a random item of a non-empty list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Choice(pub Vec<Value>);

command!(Choice, RAND_CHOICE, "rand.choice", Value);

unit_command!(
    /// `uuid.v4()`: a random UUID.
    UuidV4, UUID_V4, "uuid.v4", String
);

unit_command!(
    /// `uuid.v7()`: a time-ordered UUID.
    UuidV7, UUID_V7, "uuid.v7", String
);

/// `rand`: `int(a, b)` (inclusive), `float()` in `[0, 1)`, `choice(list)`.
pub(super) fn rand_module() -> ModuleDef {
    ModuleDef::new("rand")
        .describe("Random numbers (not for cryptography)")
        .class(Class::Nondeterministic)
        .types(
            Types::new()
                .function(
                    "int",
                    Signature::new("A random integer between `a` and `b`, both included.")
                        .param("a", Type::Integer)
                        .param("b", Type::Integer)
                        .returns(Type::Integer),
                )
                .function(
                    "float",
                    Signature::new("A random number in [0, 1).").returns(Type::Number),
                )
                .function(
                    "choice",
                    Signature::new("A random item of a non-empty list.")
                        .param("list", Type::array(Type::Any))
                        .returns(Type::Any),
                ),
        )
        .command("int", |_cx, args| {
            let (lo, hi) = (args.int(0)?, args.int(1)?);
            if lo > hi {
                return Err(args.error(1, "integer >= argument #1").into());
            }
            Ok(Ret::Call(Call::typed(Int { lo, hi })))
        })
        .command("float", |_cx, _args| Ok(Ret::Call(Call::typed(Float))))
        .command("choice", |_cx, mut args| match args.take(0) {
            Value::Array(items) if !items.is_empty() => Ok(Ret::Call(Call::typed(Choice(items)))),
            _ => Err(args.error(0, "non-empty list").into()),
        })
        .immediate::<Int, _>(|_, Int { lo, hi }| {
            if lo <= hi {
                Ok(rand::rng().random_range(lo..=hi))
            } else {
                Err(Error::invalid("rand.int: bad range"))
            }
        })
        .immediate::<Float, _>(|_, Float| Ok(rand::rng().random::<f64>()))
        .immediate::<Choice, _>(|_, Choice(mut items)| {
            if items.is_empty() {
                return Err(Error::invalid("rand.choice: expected a non-empty list"));
            }
            let i = rand::rng().random_range(0..items.len());
            Ok(items.swap_remove(i))
        })
}

/// `uuid`: `v4()` (random) and `v7()` (time-ordered), as lowercase text.
pub(super) fn uuid_module() -> ModuleDef {
    ModuleDef::new("uuid")
        .describe("UUIDs: v4 (random), v7 (time-ordered)")
        .class(Class::Nondeterministic)
        .types(
            Types::new()
                .function(
                    "v4",
                    Signature::new("A random UUID (version 4) as lowercase text.")
                        .returns(Type::String),
                )
                .function(
                    "v7",
                    Signature::new("A time-ordered UUID (sorts by creation time).")
                        .returns(Type::String),
                ),
        )
        .command("v4", |_cx, _args| Ok(Ret::Call(Call::typed(UuidV4))))
        .command("v7", |_cx, _args| Ok(Ret::Call(Call::typed(UuidV7))))
        .immediate::<UuidV4, _>(|_, UuidV4| Ok(uuid::Uuid::new_v4().to_string()))
        .immediate::<UuidV7, _>(|_, UuidV7| Ok(uuid::Uuid::now_v7().to_string()))
}
