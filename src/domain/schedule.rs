//! Cron schedules: 5 fields, 6 with seconds first, and @hourly/@daily/@weekly/@monthly, evaluated
//! in a named time zone. DST gaps and overlaps follow croner's Vixie-cron rules: a fixed-time job
//! in a skipped hour runs right after the gap, and in a repeated hour runs once.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// croner's parser is the most expensive step of loading a large manifest (~150k instructions per
/// expression) and manifests repeat expressions (defaults, templates): parse each text once.
fn parse_cached(e: &str) -> Result<Arc<croner::Cron>, croner::errors::CronError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<croner::Cron>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(c) = cache.lock().ok().and_then(|m| m.get(e).cloned()) {
        return Ok(c);
    }
    let c = Arc::new(croner::Cron::from_str(e)?);
    if let Ok(mut m) = cache.lock() {
        if m.len() < 10_000 {
            m.insert(e.to_string(), c.clone());
        }
    }
    Ok(c)
}

#[derive(Clone)]
pub struct Schedule {
    expr: String,
    /// Shared: a parsed pattern holds bitmaps for every field (incl. years), ~10 KB.
    cron: Arc<croner::Cron>,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let e = expr.trim();
        let fields = e.split_whitespace().count();
        if !e.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "invalid schedule `{e}`: expected 5 fields (min hour day month weekday), 6 with seconds first, or @hourly/@daily/@weekly/@monthly"
            ));
        }
        if e.starts_with('@')
            && !matches!(
                e,
                "@yearly"
                    | "@annually"
                    | "@monthly"
                    | "@weekly"
                    | "@daily"
                    | "@midnight"
                    | "@hourly"
            )
        {
            return Err(format!("invalid schedule `{e}`: unknown shorthand (use @hourly, @daily, @weekly, @monthly or @yearly)"));
        }
        if !e.starts_with('@') {
            check_ranges(e)?;
        }
        let cron = parse_cached(e).map_err(|err| {
            let why = err.to_string();
            let why = why.strip_prefix("Component error: ").unwrap_or(&why);
            format!("invalid schedule `{e}`: {}", why.trim_end_matches('.'))
        })?;
        Ok(Schedule {
            expr: e.to_string(),
            cron,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first run strictly after `after`, in `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Zoned> {
        let z = after.to_zoned(tz.clone());
        self.cron.find_next_occurrence(&z, false).ok()
    }

    /// The next `n` runs strictly after `after`.
    pub fn upcoming(&self, after: Timestamp, tz: &TimeZone, n: usize) -> Vec<Zoned> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            match self.next_after(t, tz) {
                Some(z) => {
                    t = z.timestamp();
                    out.push(z);
                }
                None => break,
            }
        }
        out
    }

    /// Smallest gap between consecutive runs over the next few, to warn about timeouts.
    pub fn min_interval(&self, from: Timestamp, tz: &TimeZone) -> Option<std::time::Duration> {
        let runs = self.upcoming(from, tz, 6);
        runs.windows(2)
            .filter_map(|w| {
                let d = w[1].timestamp().as_second() - w[0].timestamp().as_second();
                u64::try_from(d).ok().map(std::time::Duration::from_secs)
            })
            .min()
    }
}

/// Name the field and its range when a number is out of bounds ("hour 25 is out of range 0-23"),
/// which croner reports only as "Number out of bounds".
fn check_ranges(e: &str) -> Result<(), String> {
    const FIVE: &[(&str, u32, u32)] = &[
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    let fields: Vec<&str> = e.split_whitespace().collect();
    let seconds = [("second", 0, 59)];
    let specs: Vec<(&str, u32, u32)> = if fields.len() == 6 {
        seconds.iter().chain(FIVE).copied().collect()
    } else {
        FIVE.to_vec()
    };
    for (field, (name, lo, hi)) in fields.iter().zip(specs) {
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(step) = step.and_then(|s| s.parse::<u32>().ok()) {
                if step == 0 {
                    return Err(format!(
                        "invalid schedule `{e}`: the {name} step must be at least 1"
                    ));
                }
            }
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    if a > b {
                        return Err(format!(
                            "invalid schedule `{e}`: the {name} range {a}-{b} runs backwards"
                        ));
                    }
                }
            }
            for bound in range.split('-') {
                // Names (JAN, MON), `*`, `?`, `L`, `W` and `#` are left to croner.
                if let Ok(n) = bound.parse::<u32>() {
                    if n < lo || n > hi {
                        return Err(format!(
                            "invalid schedule `{e}`: {name} {n} is out of range ({lo}-{hi})"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn five_six_and_shorthand() {
        let utc = TimeZone::UTC;
        let s = Schedule::parse("0 2 * * *").unwrap();
        let n = s.next_after(ts("2026-03-01T03:00:00Z"), &utc).unwrap();
        assert_eq!(n.timestamp(), ts("2026-03-02T02:00:00Z"));
        let s6 = Schedule::parse("*/10 * * * * *").unwrap();
        let n6 = s6.next_after(ts("2026-03-01T00:00:01Z"), &utc).unwrap();
        assert_eq!(n6.timestamp(), ts("2026-03-01T00:00:10Z"));
        let d = Schedule::parse("@daily").unwrap();
        assert_eq!(
            d.next_after(ts("2026-03-01T12:00:00Z"), &utc)
                .unwrap()
                .timestamp(),
            ts("2026-03-02T00:00:00Z")
        );
        assert!(Schedule::parse("0 2 * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("@sometimes").is_err());
        let e = Schedule::parse("0 25 * * *").unwrap_err();
        assert!(e.contains("hour 25 is out of range (0-23)"), "{e}");
        let e = Schedule::parse("60 0 0 * * *").unwrap_err();
        assert!(e.contains("second 60 is out of range (0-59)"), "{e}");
        assert!(Schedule::parse("0 0 0 * * 7").is_ok(), "7 is Sunday");
        let e = Schedule::parse("0 0 5-1 * *").unwrap_err();
        assert!(
            e.contains("the day of month range 5-1 runs backwards"),
            "{e}"
        );
        let never = Schedule::parse("0 0 31 4 *").unwrap();
        assert!(never.next_after(ts("2026-01-01T00:00:00Z"), &utc).is_none());
        let leap = Schedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            leap.next_after(ts("2026-01-01T00:00:00Z"), &utc)
                .unwrap()
                .timestamp(),
            ts("2028-02-29T00:00:00Z")
        );
    }

    #[test]
    fn dst_spring_forward_gap_runs_once_after_the_gap() {
        // Europe/Berlin skips 02:00-03:00 on 2026-03-29.
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let s = Schedule::parse("30 2 * * *").unwrap();
        let runs = s.upcoming(ts("2026-03-27T12:00:00Z"), &tz, 3);
        let local: Vec<String> = runs
            .iter()
            .map(|z| z.strftime("%Y-%m-%d %H:%M %Z").to_string())
            .collect();
        assert_eq!(local[0], "2026-03-28 02:30 CET");
        // the 02:30 that does not exist on the 29th runs once, at the end of the gap
        assert_eq!(local[1], "2026-03-29 03:00 CEST");
        assert_eq!(local[2], "2026-03-30 02:30 CEST");
    }

    #[test]
    fn dst_fall_back_overlap_runs_once() {
        // Europe/Berlin repeats 02:00-03:00 on 2026-10-25.
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let s = Schedule::parse("30 2 * * *").unwrap();
        let runs = s.upcoming(ts("2026-10-24T12:00:00Z"), &tz, 2);
        assert_eq!(
            runs[0].strftime("%Y-%m-%d %H:%M").to_string(),
            "2026-10-25 02:30"
        );
        assert_eq!(
            runs[1].strftime("%Y-%m-%d %H:%M").to_string(),
            "2026-10-26 02:30"
        );
        // hourly jobs keep running through the repeated hour: two distinct instants labelled 02:00
        let h = Schedule::parse("0 * * * *").unwrap();
        let hourly = h.upcoming(ts("2026-10-24T23:30:00Z"), &tz, 4);
        let secs: Vec<i64> = hourly.iter().map(|z| z.timestamp().as_second()).collect();
        assert!(secs.windows(2).all(|w| w[1] - w[0] == 3600), "{hourly:?}");
    }
}
