use troupe_dispatcher::{Call, Error, Value};

use super::commands::{Now, Sleep};
use super::ids;
use crate::types::{Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

/// Parses a duration: a number of milliseconds, or text such as `"250ms"`,
/// `"1.5s"`, `"2m"`, `"1h"` (a bare number in text is milliseconds).
pub fn parse_duration_ms(v: &Value) -> Result<f64, Error> {
    let ms = match v {
        Value::Int(_) | Value::Float(_) => v.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: f64 = num
                .trim()
                .parse()
                .map_err(|_| Error::invalid(format!("bad duration {s:?}")))?;
            let scale = match unit.trim() {
                "" | "ms" => 1.0,
                "us" => 0.001,
                "s" => 1_000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                other => {
                    return Err(Error::invalid(format!(
                        "bad duration unit {other:?} in {s:?}"
                    )));
                }
            };
            n * scale
        }
        other => {
            return Err(Error::invalid(format!(
                "expected a duration, got {}",
                other.type_name()
            )));
        }
    };
    if ms.is_finite() && ms >= 0.0 {
        Ok(ms)
    } else {
        Err(Error::invalid(format!(
            "duration must be a finite, non-negative number, got {ms}"
        )))
    }
}

/// `time`: `now()`, `sleep(ms | "1.5s")`, `monotonic()`; all commands, so a
/// workflow journals them.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("time")
        .describe("Clocks and timers")
        .with_classes(&[Class::Time, Class::Nondeterministic])
        .types(
            Types::new()
                .function(
                    "now",
                    Signature::new("Wall-clock time in milliseconds since the Unix epoch.")
                        .returns(Type::Number),
                )
                .function(
                    "monotonic",
                    Signature::new("Milliseconds since the runtime started; never goes back.")
                        .returns(Type::Number),
                )
                .function(
                    "sleep",
                    Signature::new(
                        "Suspends the process (not a thread) for a duration: milliseconds or text such as \"250ms\", \"1.5s\", \"2m\".",
                    )
                    .param("duration", Type::union([Type::Number, Type::String])),
                ),
        )
        .command("now", |_cx, _args| Ok(Ret::Call(Call::typed(Now))))
        .command("monotonic", |_cx, _args| {
            Ok(Ret::Call(Call::new(ids::TIME_MONOTONIC, ())))
        })
        .command("sleep", |_cx, args| {
            let ms = parse_duration_ms(args.get(0))
                .map_err(|_| args.error(0, "duration (ms or \"1.5s\")"))?;
            Ok(Ret::Call(Call::typed(Sleep { ms })))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms(&Value::Int(10)).unwrap(), 10.0);
        assert_eq!(parse_duration_ms(&Value::from("1.5s")).unwrap(), 1500.0);
        assert_eq!(parse_duration_ms(&Value::from("250ms")).unwrap(), 250.0);
        assert_eq!(parse_duration_ms(&Value::from("2m")).unwrap(), 120_000.0);
        for bad in [
            Value::from("soon"),
            Value::from("3 days"),
            Value::Float(-1.0),
            Value::Nil,
        ] {
            assert!(parse_duration_ms(&bad).is_err(), "{bad:?}");
        }
    }
}
