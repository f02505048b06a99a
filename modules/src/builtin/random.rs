//! `rand` and `uuid`. Every function is a command (handled inline, on the
//! calling worker) so a journaling host records the values it handed out and
//! a replay sees the same ones.

use rand::RngExt;
use troupe_dispatcher::{Call, DispatcherBuilder, Error, Value};

use super::ids;
use crate::types::{Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

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
            let range: Value = [("lo", lo), ("hi", hi)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::Int(v)))
                .collect();
            Ok(Ret::Call(Call::new(ids::RAND_INT, range)))
        })
        .command("float", |_cx, _args| {
            Ok(Ret::Call(Call::new(ids::RAND_FLOAT, ())))
        })
        .command("choice", |_cx, mut args| match args.take(0) {
            Value::Array(items) if !items.is_empty() => {
                Ok(Ret::Call(Call::new(ids::RAND_CHOICE, Value::Array(items))))
            }
            _ => Err(args.error(0, "non-empty list").into()),
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
        .command("v4", |_cx, _args| {
            Ok(Ret::Call(Call::new(ids::UUID_V4, ())))
        })
        .command("v7", |_cx, _args| {
            Ok(Ret::Call(Call::new(ids::UUID_V7, ())))
        })
}

/// Registers the handlers of the `rand` and `uuid` commands.
pub fn register(b: &mut DispatcherBuilder) -> Result<(), Error> {
    b.immediate(ids::RAND_INT, "rand.int", |_, args| {
        let bound = |k| args.get(k).and_then(Value::as_i64);
        match (bound("lo"), bound("hi")) {
            (Some(lo), Some(hi)) if lo <= hi => Ok(Value::Int(rand::rng().random_range(lo..=hi))),
            _ => Err(Error::invalid("rand.int: bad range")),
        }
    })?;
    b.immediate(ids::RAND_FLOAT, "rand.float", |_, _| {
        Ok(Value::Float(rand::rng().random::<f64>()))
    })?;
    b.immediate(ids::RAND_CHOICE, "rand.choice", |_, args| match args {
        Value::Array(mut items) if !items.is_empty() => {
            let i = rand::rng().random_range(0..items.len());
            Ok(items.swap_remove(i))
        }
        _ => Err(Error::invalid("rand.choice: expected a non-empty list")),
    })?;
    b.immediate(ids::UUID_V4, "uuid.v4", |_, _| {
        Ok(Value::from(uuid::Uuid::new_v4().to_string()))
    })?;
    b.immediate(ids::UUID_V7, "uuid.v7", |_, _| {
        Ok(Value::from(uuid::Uuid::now_v7().to_string()))
    })?;
    Ok(())
}
