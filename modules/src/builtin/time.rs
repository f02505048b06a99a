//! `time`: clocks and timers, with the typed commands its functions yield
//! (the runtime handles them; a workflow's journal answers them first).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe_dispatcher::{Call, Error, Value};

use super::commands::{command, unit_command};
use crate::types::{Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

unit_command!(
    /// `time.now()`: answered with milliseconds since the Unix epoch.
    Now, TIME_NOW, "time.now", f64
);

unit_command!(
    /// `time.monotonic()`: answered with milliseconds since the runtime
    /// started.
    Monotonic, TIME_MONOTONIC, "time.monotonic", f64
);

/// `time.sleep(duration)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sleep {
    /// How long, in ms (already checked: finite and not negative).
    pub ms: f64,
}

command!(Sleep, TIME_SLEEP, "time.sleep", ());

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

/// A duration of `ms` milliseconds (as [`parse_duration_ms`] gives them):
/// one too long for a `Duration` saturates at [`Duration::MAX`] (treat it
/// as "no deadline"), NaN or a negative is zero. Never panics.
pub fn duration_from_ms(ms: f64) -> Duration {
    if ms.is_nan() || ms <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(ms / 1e3).unwrap_or(Duration::MAX)
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
        .command("monotonic", |_cx, _args| Ok(Ret::Call(Call::typed(Monotonic))))
        .command("sleep", |_cx, args| {
            let ms = parse_duration_ms(args.get(0))
                .map_err(|_| args.error(0, "duration (ms or \"1.5s\")"))?;
            Ok(Ret::Call(Call::typed(Sleep { ms })))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands keep the value forms earlier builds journaled.
    #[test]
    fn value_forms_are_the_journaled_argument_maps() {
        use crate::builtin::ids;
        assert_eq!(Call::typed(Now), Call::new(ids::TIME_NOW, ()));
        assert_eq!(Call::typed(Monotonic), Call::new(ids::TIME_MONOTONIC, ()));
        let old = serde_json::json!({"ms": 5.0});
        assert_eq!(
            Call::typed(Sleep { ms: 5.0 }),
            Call::new(ids::TIME_SLEEP, Value::from(old))
        );
    }

    #[test]
    fn durations_too_long_saturate_instead_of_panicking() {
        for huge in [
            Value::from("99999999999999999999s"),
            Value::from("99999999999999999999h"),
            Value::Float(1e23),
            Value::Float(1e300),
        ] {
            let ms = parse_duration_ms(&huge).unwrap();
            assert_eq!(duration_from_ms(ms), Duration::MAX, "{huge:?}");
        }
        assert_eq!(
            duration_from_ms(1e22),
            Duration::from_secs(10_000_000_000_000_000_000)
        );
        assert_eq!(duration_from_ms(f64::NAN), Duration::ZERO);
        assert_eq!(duration_from_ms(1500.0), Duration::from_millis(1500));
        assert!(parse_duration_ms(&Value::from("inf s")).is_err());
    }

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
