//! Grandfather-father-son retention: `keep_last`, `keep_hourly`, `keep_daily`, `keep_weekly`,
//! `keep_monthly`, `keep_yearly`, counted in the job's time zone. For each rule, walking from the
//! newest backup back, the newest backup of each distinct hour/day/ISO week/month/year is kept,
//! until the rule has kept its count. A backup is kept if any rule keeps it.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Gfs {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Gfs {
    pub fn is_set(&self) -> bool {
        *self != Gfs::default()
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
        format!("keep {}", parts.join(", "))
    }
}

/// For each backup (given newest first), the reasons it is kept (empty: no rule keeps it).
pub fn reasons(times_newest_first: &[Timestamp], g: &Gfs, tz: &TimeZone) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); times_newest_first.len()];
    for r in out.iter_mut().take(g.last as usize) {
        r.push("keep_last".to_string());
    }
    type Key = fn(&jiff::Zoned) -> String;
    let rules: [(&str, u32, Key); 5] = [
        ("hourly", g.hourly, |z| {
            z.strftime("%Y-%m-%d %H:00").to_string()
        }),
        ("daily", g.daily, |z| z.strftime("%Y-%m-%d").to_string()),
        ("weekly", g.weekly, |z| {
            let w = z.date().iso_week_date();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", g.monthly, |z| z.strftime("%Y-%m").to_string()),
        ("yearly", g.yearly, |z| z.strftime("%Y").to_string()),
    ];
    for (name, count, key) in rules {
        if count == 0 {
            continue;
        }
        let mut seen: Option<String> = None;
        let mut kept = 0;
        for (i, t) in times_newest_first.iter().enumerate() {
            if kept == count {
                break;
            }
            let k = key(&t.to_zoned(tz.clone()));
            if seen.as_deref() != Some(k.as_str()) {
                out[i].push(format!("{name} {k}"));
                seen = Some(k);
                kept += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn kept(times: &[&str], g: Gfs, tz: &str) -> Vec<String> {
        let tz = TimeZone::get(tz).unwrap();
        let mut t: Vec<Timestamp> = times.iter().map(|s| ts(s)).collect();
        t.sort_by(|a, b| b.cmp(a));
        let r = reasons(&t, &g, &tz);
        t.iter()
            .zip(r)
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, _)| t.to_string())
            .collect()
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let times = [
            "2026-01-01T01:00:00Z",
            "2026-01-01T13:00:00Z",
            "2026-01-02T01:00:00Z",
            "2026-01-02T13:00:00Z",
            "2026-01-03T01:00:00Z",
        ];
        let k = kept(
            &times,
            Gfs {
                daily: 2,
                ..Default::default()
            },
            "UTC",
        );
        assert_eq!(k, ["2026-01-03T01:00:00Z", "2026-01-02T13:00:00Z"]);
    }

    #[test]
    fn rules_combine_and_last_counts_first() {
        let times = [
            "2025-12-31T23:00:00Z",
            "2026-01-05T10:00:00Z",
            "2026-01-12T10:00:00Z",
            "2026-02-01T10:00:00Z",
            "2026-02-02T10:00:00Z",
        ];
        let g = Gfs {
            last: 1,
            weekly: 2,
            monthly: 3,
            yearly: 2,
            ..Default::default()
        };
        let k = kept(&times, g, "UTC");
        // last: 02-02; weekly: 02-02 (W06), 02-01 (W05); monthly: 02-02, 01-12, 12-31; yearly: 02-02, 12-31
        assert_eq!(
            k,
            [
                "2026-02-02T10:00:00Z",
                "2026-02-01T10:00:00Z",
                "2026-01-12T10:00:00Z",
                "2025-12-31T23:00:00Z"
            ]
        );
    }

    #[test]
    fn days_follow_the_job_time_zone_across_dst() {
        // Europe/Berlin switches to CEST on 2026-03-29. 23:30Z on 28th is already 00:30 local on the
        // 29th; 22:30Z on the 29th is 00:30 CEST on the 30th.
        let times = [
            "2026-03-28T22:30:00Z",
            "2026-03-28T23:30:00Z",
            "2026-03-29T21:30:00Z",
            "2026-03-29T22:30:00Z",
        ];
        let utc = kept(
            &times,
            Gfs {
                daily: 3,
                ..Default::default()
            },
            "UTC",
        );
        assert_eq!(utc, ["2026-03-29T22:30:00Z", "2026-03-28T23:30:00Z"]);
        let berlin = kept(
            &times,
            Gfs {
                daily: 3,
                ..Default::default()
            },
            "Europe/Berlin",
        );
        // local days: 30th (22:30Z), 29th (21:30Z = 23:30 CEST), 28th... 23:30Z is 29th 00:30 CET -> same day as 21:30Z;
        // 22:30Z on the 28th is 23:30 CET on the 28th.
        assert_eq!(
            berlin,
            [
                "2026-03-29T22:30:00Z",
                "2026-03-29T21:30:00Z",
                "2026-03-28T22:30:00Z"
            ]
        );
    }

    #[test]
    fn nothing_set_keeps_nothing_by_itself() {
        assert!(kept(&["2026-01-01T00:00:00Z"], Gfs::default(), "UTC").is_empty());
        assert!(!Gfs::default().is_set());
        assert_eq!(
            Gfs {
                daily: 7,
                weekly: 4,
                ..Default::default()
            }
            .describe(),
            "keep 7 daily, 4 weekly"
        );
    }
}
