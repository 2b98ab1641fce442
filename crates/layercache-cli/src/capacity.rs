//! Parsing of `--capacity` lists: `1000`, `10k`, `128MiB`, `1GiB`, and ranges `START..END:STEP`.

use anyhow::{bail, Context, Result};

/// Parses one size: a non-negative integer with an optional unit. `k`/`m`/`g` are powers of
/// ten (entries), `KiB`/`MiB`/`GiB` (or `KB`/`MB`/`GB`, meant as the same binary units, since
/// that is how trace tools quote them) are powers of 1024.
pub(crate) fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        bail!("capacity {s:?} does not start with a number");
    }
    let n: u64 = digits
        .parse()
        .with_context(|| format!("capacity {s:?} is too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "kib" | "kb" => 1 << 10,
        "mib" | "mb" => 1 << 20,
        "gib" | "gb" => 1 << 30,
        other => bail!("capacity {s:?} has an unknown unit {other:?} (use k, m, g, KiB, MiB, GiB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("capacity {s:?} overflows 64 bits"))
}

/// Parses a comma-separated list of sizes and inclusive ranges `START..END:STEP`.
pub(crate) fn parse_capacities(list: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((start, rest)) = item.split_once("..") {
            let (end, step) = rest
                .split_once(':')
                .with_context(|| format!("range {item:?} needs a step: START..END:STEP"))?;
            let (start, end, step) = (parse_size(start)?, parse_size(end)?, parse_size(step)?);
            if step == 0 || start > end {
                bail!("range {item:?} is empty or has a zero step");
            }
            let mut c = start;
            while c <= end {
                out.push(c);
                c += step;
            }
        } else {
            out.push(parse_size(item)?);
        }
    }
    if out.is_empty() {
        bail!("no capacity given");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ranges() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("10k").unwrap(), 10_000);
        assert_eq!(parse_size("128MiB").unwrap(), 128 << 20);
        assert_eq!(
            parse_capacities("128MiB..512MiB:128MiB").unwrap(),
            vec![128 << 20, 256 << 20, 384 << 20, 512 << 20]
        );
        assert_eq!(
            parse_capacities("250, 500,1000").unwrap(),
            vec![250, 500, 1000]
        );
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_capacities("5..1:1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }
}
