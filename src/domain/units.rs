//! Durations (`30s`, `1h30m`, `1d12h`, `2 hours 30 minutes`) and sizes (`200GiB`, `5MB`).

use regex::Regex;
use std::sync::LazyLock;
use std::time::Duration;

/// Every duration the manifest accepts, and nothing else (the JSON Schema's `pattern` for duration
/// settings): one or more `NUMBER UNIT` parts, largest unit first, each unit at most once, parts
/// optionally separated by spaces or `, `. Units, as jiff's friendly format spells them: weeks
/// (`w`, `wk`, `week`, …), days (`d`, `day`, `days`), hours (`h`, `hr`, `hour`, …), minutes (`m`,
/// `min`, `minute`, …), seconds (`s`, `sec`, `second`, …), milliseconds (`ms`, `msec`, `milli`, …).
/// Whole numbers only (`90m`, not `1.5h`); no sign (a duration is never negative), no `ago`, no
/// months or years (their length varies). A day is 24 hours. Leading and trailing spaces are allowed.
///
/// The pattern is the syntax: a value it accepts may still be too large (more than ~20,000 years),
/// which `parse_duration` reports as out of range.
/// The alternatives of the duration syntax, unanchored: shared by `DURATION_PATTERN` and the
/// schema's pattern (`manifest::types`), so the two cannot drift apart.
macro_rules! duration_syntax {
    () => {
        concat!(
            "[0-9]+ *(?:weeks|week|wks|wk|w)(?:(?:, +| *)[0-9]+ *(?:days|day|d))?(?:(?:, +| *)[0-9]+ *(?:hours|hour|hrs|hr|h))?(?:(?:, +| *)[0-9]+ *(?:minutes|minute|mins|min|m))?(?:(?:, +| *)[0-9]+ *(?:seconds|second|secs|sec|s))?(?:(?:, +| *)[0-9]+ *(?:milliseconds|millisecond|millis|milli|msecs|msec|ms))?",
            "|[0-9]+ *(?:days|day|d)(?:(?:, +| *)[0-9]+ *(?:hours|hour|hrs|hr|h))?(?:(?:, +| *)[0-9]+ *(?:minutes|minute|mins|min|m))?(?:(?:, +| *)[0-9]+ *(?:seconds|second|secs|sec|s))?(?:(?:, +| *)[0-9]+ *(?:milliseconds|millisecond|millis|milli|msecs|msec|ms))?",
            "|[0-9]+ *(?:hours|hour|hrs|hr|h)(?:(?:, +| *)[0-9]+ *(?:minutes|minute|mins|min|m))?(?:(?:, +| *)[0-9]+ *(?:seconds|second|secs|sec|s))?(?:(?:, +| *)[0-9]+ *(?:milliseconds|millisecond|millis|milli|msecs|msec|ms))?",
            "|[0-9]+ *(?:minutes|minute|mins|min|m)(?:(?:, +| *)[0-9]+ *(?:seconds|second|secs|sec|s))?(?:(?:, +| *)[0-9]+ *(?:milliseconds|millisecond|millis|milli|msecs|msec|ms))?",
            "|[0-9]+ *(?:seconds|second|secs|sec|s)(?:(?:, +| *)[0-9]+ *(?:milliseconds|millisecond|millis|milli|msecs|msec|ms))?",
            "|[0-9]+ *(?:milliseconds|millisecond|millis|milli|msecs|msec|ms)",
        )
    };
}
pub(crate) use duration_syntax;

pub const DURATION_PATTERN: &str = concat!("^ *(?:", duration_syntax!(), ") *$");

/// `DURATION_PATTERN` gates jiff's friendly parser: jiff alone would also take `1.5h`, `-1h`,
/// `1h ago`, `01:30:00` and months, none of which the schema can describe or a timeout should be.
static DURATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(DURATION_PATTERN).expect("DURATION_PATTERN is a valid regex"));

/// The one duration parser of the manifest (timeouts, `stale_after`, `shutdown_grace`, …).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim_matches(' ');
    if t.starts_with('-') {
        return Err(format!("duration `{t}` must not be negative"));
    }
    let bad = || format!("invalid duration `{t}` (use e.g. `30s`, `15m`, `1h30m`, `2d`)");
    if !DURATION.is_match(t) {
        return Err(bad());
    }
    let too_large = || format!("duration `{t}` is out of range");
    let span = jiff::fmt::friendly::SpanParser::new()
        .parse_span(t)
        .map_err(|_| too_large())?;
    let d = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| too_large())?;
    Duration::try_from(d).map_err(|_| too_large())
}

/// A size: a number (a decimal fraction allowed) and a unit, with or without a space: `200GiB`,
/// `5MB`, `1.5 GiB`, `512 kB`; a bare number is bytes. Units are case-insensitive; an `i` makes
/// them binary (`KiB` = 1024, `kB` = 1000), up to exabytes. Parsed by the `bytesize` crate.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let size: bytesize::ByteSize = t.parse().map_err(|_| size_error(t))?;
    // bytesize saturates: the largest value is what too large a size becomes.
    match size.as_u64() {
        u64::MAX => Err(format!("size `{t}` is out of range")),
        n => Ok(n),
    }
}

/// Name the unit when the number is fine but the unit is not (`5 parsecs`).
fn size_error(t: &str) -> String {
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.parse::<f64>().is_ok() && unit.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("unknown size unit `{unit}` in `{t}`")
    } else {
        format!("invalid size `{t}` (use e.g. `500MiB`, `200GB`, `1.5 GiB`)")
    }
}

/// `1h 30m` style, for people.
pub fn human_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut parts = Vec::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            parts.push(format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    parts.join(" ")
}

pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn every_way_of_writing_a_day_and_a_half_is_the_same() {
        let day_and_a_half = Duration::from_secs(36 * 3600);
        for s in [
            "1d12h",
            "36h",
            "1 day 12 hours",
            "1 day, 12 hours",
            "1day12hours",
            "2160m",
            "2160 minutes",
            "129600s",
            " 36h ",
        ] {
            assert_eq!(parse_duration(s), Ok(day_and_a_half), "{s}");
        }
        assert_eq!(parse_duration("1 day"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            parse_duration("2 hours 30 minutes"),
            parse_duration("2h30m")
        );
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), parse_duration("90m"));
        assert_eq!(parse_duration("1s 500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_why() {
        for s in [
            "banana", "0x10", "10", "", "1.5h", "1h ago", "01:30:00", "1mo", "1y", "30m1h", "1h1h",
            "1H", "+1h", "1h,30m", "1 d a y",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("invalid duration"), "{s}: {e}");
        }
        assert!(parse_duration("-1h")
            .unwrap_err()
            .contains("must not be negative"));
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("out of range"));
    }

    /// The schema's pattern and the parser agree: every sample is accepted by both or by neither.
    #[test]
    fn the_pattern_is_exactly_what_the_parser_accepts() {
        let re = Regex::new(DURATION_PATTERN).unwrap();
        let accepted = [
            "0s",
            "30s",
            "15m",
            "36h",
            "1d12h",
            "1d 12h",
            "1d, 12h",
            "1 day",
            "2 days",
            "1w",
            "1 week 2 days",
            "2wks",
            "2 hours 30 minutes",
            "2hrs 30mins",
            "1h30m",
            "90s",
            "500ms",
            "1h 1m 1s 1ms",
            "1w1d1h1m1s1ms",
            "3 mins 34 secs",
            "10 millis",
            "  5m  ",
            "1 hr",
            "7 d",
            "1 second",
            "1 minute",
            "1 sec",
            "4 msec",
            "004h",
        ];
        let rejected = [
            "banana",
            "-1h",
            "0x10",
            "",
            " ",
            "10",
            "1.5h",
            "1,5h",
            "1h ago",
            "01:30:00",
            "1mo",
            "1 month",
            "1y",
            "30m1h",
            "1h1h",
            "1H",
            "+1h",
            "1h,30m",
            "1h ,30m",
            "h",
            "1 d a y",
            "1us",
            "1ns",
            "1d12",
            "1 days 1.5h",
            "P1D",
            "PT1H",
            "1h\n",
            "1\th",
        ];
        for s in accepted {
            assert!(re.is_match(s), "pattern rejects {s:?}");
            assert!(parse_duration(s).is_ok(), "parser rejects {s:?}");
        }
        for s in rejected {
            assert!(!re.is_match(s), "pattern accepts {s:?}");
            assert!(parse_duration(s).is_err(), "parser accepts {s:?}");
        }
    }

    /// Every string of up to four tokens the pattern accepts, jiff's parser accepts too: the gate
    /// never lets through something jiff would then call invalid.
    #[test]
    fn jiff_parses_whatever_the_pattern_lets_through() {
        let tokens = [
            "1", "12", " ", ", ", ",", "h", "m", "s", "ms", "d", "days", "w", "hours", "min", ".5",
            "-", "ago", ":",
        ];
        let re = Regex::new(DURATION_PATTERN).unwrap();
        let mut strings = vec![String::new()];
        let mut matched = 0;
        for _ in 0..4 {
            strings = strings
                .iter()
                .flat_map(|p| tokens.iter().map(move |t| format!("{p}{t}")))
                .collect();
            for s in &strings {
                if re.is_match(s) {
                    matched += 1;
                    assert!(parse_duration(s).is_ok(), "{s:?}: {:?}", parse_duration(s));
                }
            }
        }
        assert!(matched > 500, "{matched}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5MiB").unwrap(), 5 * 1024 * 1024);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(parse_size("200GiB"), Ok(200 << 30));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("512 kB"), Ok(512_000));
        assert_eq!(parse_size("1PiB"), Ok(1 << 50));
        assert_eq!(parse_size("2 pb"), Ok(2_000_000_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "GiB", "-5MB", "1.5.5GB"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.starts_with(&format!("invalid size `{bad}`")), "{e}");
        }
        for (bad, unit) in [
            ("5 MiBs", "MiBs"),
            ("1e3MB", "e3MB"),
            ("5 parsecs", "parsecs"),
        ] {
            let e = parse_size(bad).unwrap_err();
            assert_eq!(e, format!("unknown size unit `{unit}` in `{bad}`"));
        }
        assert!(parse_size("100000 EiB")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn human() {
        assert_eq!(human_duration(Duration::from_secs(3725)), "1h 2m 5s");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
