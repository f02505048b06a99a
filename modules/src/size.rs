//! Sizes in bytes as people write them: `10MB`, `512KiB`, `1GiB`.

use std::num::NonZeroUsize;

/// Parses a size: a whole number and an optional unit (B; KB, MB, GB are
/// powers of 1000; KiB, MiB, GiB of 1024; case does not matter). Zero, an
/// unknown unit and a size past `usize` are errors naming the problem.
pub fn parse_size(text: &str) -> Result<NonZeroUsize, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a size such as 10MB, got {text:?}"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = n
        .checked_mul(scale)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("size {text:?} is too large"))?;
    NonZeroUsize::new(bytes).ok_or_else(|| "must be greater than zero".to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn units_scale_and_bad_sizes_say_why() {
        let n = |t| parse_size(t).map(|n| n.get());
        assert_eq!(n("10MB"), Ok(10_000_000));
        assert_eq!(n(" 512KiB "), Ok(512 << 10));
        assert_eq!(n("1gib"), Ok(1 << 30));
        assert_eq!(n("7"), Ok(7));
        assert!(n("0").unwrap_err().contains("greater than zero"));
        assert!(n("5 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(n("99999999999999999999").is_err());
        assert!(n("MB").is_err() && n("-1").is_err());
        assert!(
            n("18446744073709551615GiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
