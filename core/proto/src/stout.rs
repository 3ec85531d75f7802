//! Durations and byte sizes as Mesos writes them in flags, environment
//! variables and endpoints: `5secs`, `1.5mins`, `100ms`; `512MB`, `1GB`.
//!
//! These are the text forms of stout's `Duration` and `Bytes`, and every
//! Pando binary (master, agent, executors, CLI, simulator) reads them here,
//! so the same text means the same thing everywhere.
//!
//! # Durations
//!
//! A duration is a number (digits with an optional `.`, no sign, no
//! exponent) followed at once by one of the units `ns`, `us`, `ms`, `secs`,
//! `mins`, `hrs`, `days` or `weeks`. The value is truncated to whole
//! nanoseconds and must stay under 2^63 ns, as in stout. There is no
//! default unit: `5` is refused, and so are other spellings (`5s`, `5sec`,
//! `5m`, `5min`, `5h`), exactly as a Mesos master or agent refuses them.
//! (Pando's master once took a bare number as seconds and a few short
//! units; no test, document or flag default used them, so they went when
//! the four parsers became this one.) Whitespace around the text is
//! ignored; whitespace inside it is not.
//!
//! [`format_duration`] writes the form Mesos prints: the largest unit the
//! duration reaches, or the next smaller one when that one gives a whole
//! number (`90secs`, not `1.5mins`), with up to 15 significant digits.
//!
//! # Byte sizes
//!
//! A size is a whole number followed at once by `B`, `KB`, `MB`, `GB` or
//! `TB` in any letter case, in powers of 1024. Fractions (`1.5GB`) and bare
//! numbers are refused. [`format_bytes`] uses the largest unit that loses
//! nothing (`1536MB`, `2GB`, `1000B`).

use std::time::Duration;

/// The duration units stout knows, smallest first, in nanoseconds.
const DURATION_UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("secs", 1_000_000_000),
    ("mins", 60 * 1_000_000_000),
    ("hrs", 3_600 * 1_000_000_000),
    ("days", 86_400 * 1_000_000_000),
    ("weeks", 604_800 * 1_000_000_000),
];

/// The byte-size units stout knows, smallest first, in bytes.
const BYTES_UNITS: [(&str, u64); 5] = [
    ("B", 1),
    ("KB", 1 << 10),
    ("MB", 1 << 20),
    ("GB", 1 << 30),
    ("TB", 1 << 40),
];

/// Why a duration or a byte size did not parse. The messages say what the
/// text should look like; callers add which flag or variable held it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoutError {
    /// A duration without a unit, such as `5` (or nothing at all).
    #[error(
        "missing a unit: a duration is a number followed by ns, us, ms, secs, mins, hrs, \
         days or weeks, e.g. 5secs"
    )]
    DurationWithoutUnit,
    /// What comes before the unit is not a number (`secs`, `-5secs`, `1.2.3secs`).
    #[error("a duration starts with a number (digits and at most one '.'), e.g. 5secs or 1.5mins")]
    DurationNumber,
    /// The unit is not one stout knows.
    #[error("unknown duration unit '{unit}': use ns, us, ms, secs, mins, hrs, days or weeks")]
    DurationUnit {
        /// The unit as given.
        unit: String,
    },
    /// 2^63 nanoseconds (about 292 years) or more.
    #[error("too long: a duration must be under 2^63 nanoseconds (about 292 years)")]
    DurationRange,
    /// A size without a unit, such as `512`.
    #[error(
        "missing a unit: a size is a whole number followed by B, KB, MB, GB or TB, e.g. 512MB"
    )]
    BytesWithoutUnit,
    /// A size with a fractional part, such as `1.5GB`.
    #[error("fractional sizes are not allowed: use a whole number of a smaller unit, e.g. 1536MB rather than 1.5GB")]
    FractionalBytes,
    /// What comes before the unit is not a whole number (`MB`, `-1MB`).
    #[error("a size starts with a whole number, e.g. 512MB")]
    BytesNumber,
    /// The unit is not one stout knows.
    #[error("unknown size unit '{unit}': use B, KB, MB, GB or TB")]
    BytesUnit {
        /// The unit as given.
        unit: String,
    },
    /// 2^64 bytes or more.
    #[error("too large: a size must be under 2^64 bytes (16 exbibytes)")]
    BytesRange,
}

/// Parses a Mesos duration such as `5secs`, `1.5mins` or `100ms`.
pub fn parse_duration(text: &str) -> Result<Duration, StoutError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or(StoutError::DurationWithoutUnit)?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| StoutError::DurationNumber)?;
    let (_, nanos_per_unit) = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(|| StoutError::DurationUnit { unit: unit.into() })?;
    // Like stout: a double times the unit, truncated to whole nanoseconds.
    let nanos = value * *nanos_per_unit as f64;
    // `i64::MAX as f64` is 2^63, the first value stout cannot hold; an
    // overlong number parses as infinity and lands here too.
    if nanos >= i64::MAX as f64 {
        return Err(StoutError::DurationRange);
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Writes a duration the way Mesos prints one: `0ns`, `250ms`, `15secs`,
/// `90secs`, `10mins`, `2weeks`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    // The largest unit the duration reaches (nanoseconds below 1us).
    let reached = DURATION_UNITS
        .iter()
        .rposition(|(_, unit)| nanos >= *unit)
        .unwrap_or(0);
    // One unit down when the reached unit gives a fraction but that one
    // gives a whole number.
    let index = if reached > 0
        && !nanos.is_multiple_of(DURATION_UNITS[reached].1)
        && nanos.is_multiple_of(DURATION_UNITS[reached - 1].1)
    {
        reached - 1
    } else {
        reached
    };
    let (name, unit) = DURATION_UNITS[index];
    if index == 0 {
        return format!("{nanos}{name}");
    }
    format!("{}{name}", significant(nanos as f64 / unit as f64))
}

/// Parses a Mesos byte size such as `512MB`, `1GB` or `4096B`, in bytes.
pub fn parse_bytes(text: &str) -> Result<u64, StoutError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or(StoutError::BytesWithoutUnit)?;
    let (number, unit) = text.split_at(split);
    if unit.starts_with('.') {
        return Err(StoutError::FractionalBytes);
    }
    if number.is_empty() {
        return Err(StoutError::BytesNumber);
    }
    let value: u64 = number.parse().map_err(|_| StoutError::BytesRange)?;
    let (_, bytes_per_unit) = BYTES_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .ok_or_else(|| StoutError::BytesUnit { unit: unit.into() })?;
    value
        .checked_mul(*bytes_per_unit)
        .ok_or(StoutError::BytesRange)
}

/// Writes a byte size the way Mesos prints one, in the largest unit that
/// loses nothing: `0B`, `1000B`, `1536MB`, `2GB`.
pub fn format_bytes(bytes: u64) -> String {
    let (name, unit) = BYTES_UNITS
        .iter()
        .rev()
        .find(|(_, unit)| bytes != 0 && bytes.is_multiple_of(*unit))
        .copied()
        .unwrap_or(BYTES_UNITS[0]);
    format!("{}{name}", bytes / unit)
}

/// `value` with at most 15 significant digits and no trailing zeros, as a
/// C++ stream prints a double at `digits10` precision (`1.5`, `90`).
fn significant(value: f64) -> String {
    let rounded: f64 = format!("{value:.14e}").parse().unwrap_or(value);
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: u64 = 1;
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const SECS: u64 = 1_000_000_000;

    #[test]
    fn durations_parse_as_in_stout() {
        let cases: &[(&str, u64)] = &[
            ("0ns", 0),
            ("7ns", 7 * NS),
            ("3us", 3 * US),
            ("100ms", 100 * MS),
            ("5secs", 5 * SECS),
            ("1.5secs", 1_500 * MS),
            ("0.1secs", 100 * MS),
            (".5secs", 500 * MS),
            ("2.secs", 2 * SECS),
            ("1.5mins", 90 * SECS),
            ("15mins", 900 * SECS),
            ("1.5hrs", 5_400 * SECS),
            ("2days", 172_800 * SECS),
            ("2weeks", 1_209_600 * SECS),
            ("  10mins\n", 600 * SECS),
            // Truncated to whole nanoseconds, as stout does.
            ("1.9ns", 1),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_nanos(*nanos)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn durations_refuse_what_stout_refuses_and_say_why() {
        let unit = |u: &str| StoutError::DurationUnit { unit: u.into() };
        let cases: &[(&str, StoutError)] = &[
            ("5", StoutError::DurationWithoutUnit),
            ("1.5", StoutError::DurationWithoutUnit),
            ("", StoutError::DurationWithoutUnit),
            ("secs", StoutError::DurationNumber),
            ("-5secs", StoutError::DurationNumber),
            ("1.2.3secs", StoutError::DurationNumber),
            (".secs", StoutError::DurationNumber),
            ("5s", unit("s")),
            ("5sec", unit("sec")),
            ("5m", unit("m")),
            ("5min", unit("min")),
            ("5h", unit("h")),
            ("5hr", unit("hr")),
            ("1day", unit("day")),
            ("1week", unit("week")),
            ("5SECS", unit("SECS")),
            ("5 secs", unit(" secs")),
            ("1e3secs", unit("e3secs")),
            ("3parsecs", unit("parsecs")),
            ("15251weeks", StoutError::DurationRange),
            (
                "99999999999999999999999999999999999999999999999999weeks",
                StoutError::DurationRange,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(parse_duration(text).as_ref(), Err(error), "{text:?}");
        }
        assert_eq!(
            StoutError::DurationWithoutUnit.to_string(),
            "missing a unit: a duration is a number followed by ns, us, ms, secs, mins, hrs, \
             days or weeks, e.g. 5secs"
        );
        assert_eq!(
            unit("parsecs").to_string(),
            "unknown duration unit 'parsecs': use ns, us, ms, secs, mins, hrs, days or weeks"
        );
        assert_eq!(
            StoutError::DurationNumber.to_string(),
            "a duration starts with a number (digits and at most one '.'), e.g. 5secs or 1.5mins"
        );
    }

    #[test]
    fn durations_print_as_mesos_prints_them() {
        let cases: &[(u64, &str)] = &[
            (0, "0ns"),
            (999 * NS, "999ns"),
            (1_500 * NS, "1500ns"),
            (2 * US, "2us"),
            (1_500 * US, "1500us"),
            (250 * MS, "250ms"),
            (1_234_567 * NS, "1.234567ms"),
            (SECS, "1secs"),
            (1_500 * MS, "1500ms"),
            (15 * SECS, "15secs"),
            (90 * SECS, "90secs"),
            (600 * SECS, "10mins"),
            (5_400 * SECS, "90mins"),
            (3_600 * SECS, "1hrs"),
            (86_400 * SECS, "1days"),
            (1_209_600 * SECS, "2weeks"),
            (864_000 * SECS, "10days"),
            (SECS / 3, "333.333333ms"),
            (10 * SECS + 1, "10.000000001secs"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_duration(Duration::from_nanos(*nanos)), *text);
        }
    }

    #[test]
    fn printed_durations_parse_back_to_themselves() {
        for nanos in [
            0,
            1,
            999,
            1_000,
            1_500_000,
            5 * SECS,
            90 * SECS,
            7_200 * SECS,
        ] {
            let d = Duration::from_nanos(nanos);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{nanos}ns");
        }
    }

    #[test]
    fn sizes_parse_as_in_stout() {
        let cases: &[(&str, u64)] = &[
            ("0B", 0),
            ("1000B", 1000),
            ("1KB", 1024),
            ("512MB", 512 << 20),
            ("512mb", 512 << 20),
            ("2Gb", 2 << 30),
            ("3TB", 3 << 40),
            (" 64MB ", 64 << 20),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_bytes(text), Ok(*bytes), "{text:?}");
        }
    }

    #[test]
    fn sizes_refuse_what_stout_refuses_and_say_why() {
        let unit = |u: &str| StoutError::BytesUnit { unit: u.into() };
        let cases: &[(&str, StoutError)] = &[
            ("512", StoutError::BytesWithoutUnit),
            ("", StoutError::BytesWithoutUnit),
            ("1.5GB", StoutError::FractionalBytes),
            ("MB", StoutError::BytesNumber),
            ("-1MB", StoutError::BytesNumber),
            ("5PB", unit("PB")),
            ("5 MB", unit(" MB")),
            ("5M", unit("M")),
            ("5MiB", unit("MiB")),
            ("16777216TB", StoutError::BytesRange),
            ("99999999999999999999B", StoutError::BytesRange),
        ];
        for (text, error) in cases {
            assert_eq!(parse_bytes(text).as_ref(), Err(error), "{text:?}");
        }
        assert_eq!(
            StoutError::FractionalBytes.to_string(),
            "fractional sizes are not allowed: use a whole number of a smaller unit, \
             e.g. 1536MB rather than 1.5GB"
        );
        assert_eq!(
            unit("PB").to_string(),
            "unknown size unit 'PB': use B, KB, MB, GB or TB"
        );
    }

    #[test]
    fn sizes_print_in_the_largest_unit_that_loses_nothing() {
        let cases: &[(u64, &str)] = &[
            (0, "0B"),
            (1000, "1000B"),
            (1024, "1KB"),
            (1536 << 20, "1536MB"),
            (2 << 30, "2GB"),
            (1 << 40, "1TB"),
            (1 << 50, "1024TB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(format_bytes(*bytes), *text);
            assert_eq!(parse_bytes(text), Ok(*bytes));
        }
    }
}
