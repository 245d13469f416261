//! Which complete backups retention deletes: a pure function of the backups, the policy, now and
//! the job's time zone. The newest complete backup is never deleted, whatever the policy says.
//!
//! With any `keep_*` rule set, a backup survives only if one of those rules keeps it (see `gfs`);
//! `max_files` and `max_days` then still act as hard caps. Without `keep_*`, `max_files` keeps the
//! N newest and `max_days` deletes older ones.

use crate::model::Retention;
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub id: String,
    pub time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub id: String,
    pub time: Timestamp,
    pub keep: bool,
    pub reason: String,
}

pub fn choose(
    backups: &[Candidate],
    policy: Retention,
    now: Timestamp,
    tz: &jiff::tz::TimeZone,
) -> Vec<Verdict> {
    let mut sorted: Vec<&Candidate> = backups.iter().collect();
    // Newest first; ties broken by id so the answer never depends on listing order.
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let times: Vec<Timestamp> = sorted.iter().map(|c| c.time).collect();
    let gfs = policy
        .gfs
        .is_set()
        .then(|| crate::domain::gfs::reasons(&times, &policy.gfs, tz));
    let cutoff = (policy.max_days > 0)
        .then(|| now - jiff::SignedDuration::from_hours(24 * i64::from(policy.max_days)));
    sorted
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (keep, reason) = if i == 0 {
                (true, "newest complete backup".to_string())
            } else if policy.max_files > 0 && i >= policy.max_files as usize {
                (false, format!("beyond max_files {}", policy.max_files))
            } else if cutoff.is_some_and(|cut| c.time < cut) {
                (false, format!("older than max_days {}", policy.max_days))
            } else if let Some(g) = &gfs {
                match g.get(i).filter(|r| !r.is_empty()) {
                    Some(r) => (true, format!("kept by {}", r.join(", "))),
                    None => (false, "no keep_* rule keeps it".to_string()),
                }
            } else if policy.is_unlimited() {
                (true, "retention is unlimited".to_string())
            } else {
                (true, "within policy".to_string())
            };
            Verdict {
                id: c.id.clone(),
                time: c.time,
                keep,
                reason,
            }
        })
        .collect()
}

pub fn describe(policy: Retention) -> String {
    let caps = describe_caps(policy);
    match (policy.gfs.is_set(), policy.max_files, policy.max_days) {
        (false, _, _) => caps,
        (true, 0, 0) => format!("{} (the newest is always kept)", policy.gfs.describe()),
        (true, _, _) => format!("{}; and at most: {caps}", policy.gfs.describe()),
    }
}

fn describe_caps(policy: Retention) -> String {
    match (policy.max_files, policy.max_days) {
        (0, 0) => "unlimited (keep everything)".into(),
        (n, 0) => format!("keep the {n} newest"),
        (0, d) => format!("delete backups older than {d} days (the newest is always kept)"),
        (n, d) => format!(
            "keep the {n} newest, and delete any older than {d} days (the newest is always kept)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::gfs::Gfs;
    use jiff::tz::TimeZone;

    fn c(id: &str, t: &str) -> Candidate {
        Candidate {
            id: id.into(),
            time: t.parse().unwrap(),
        }
    }

    fn deleted(b: &[Candidate], policy: Retention, now: &str, tz: &str) -> Vec<String> {
        let tz = TimeZone::get(tz).unwrap();
        let mut d: Vec<String> = choose(b, policy, now.parse().unwrap(), &tz)
            .into_iter()
            .filter(|v| !v.keep)
            .map(|v| v.id)
            .collect();
        d.sort();
        d
    }

    fn caps(max_files: u32, max_days: u32) -> Retention {
        Retention {
            max_files,
            max_days,
            ..Default::default()
        }
    }

    #[test]
    fn max_files_and_max_days() {
        let b = [
            c("a", "2026-01-01T00:00:00Z"),
            c("c", "2026-01-03T00:00:00Z"),
            c("b", "2026-01-02T00:00:00Z"),
        ];
        assert_eq!(
            deleted(&b, caps(2, 0), "2026-01-04T00:00:00Z", "UTC"),
            ["a"]
        );
        let old = [
            c("old1", "2025-01-01T00:00:00Z"),
            c("old2", "2025-01-02T00:00:00Z"),
        ];
        // max_days never deletes the newest
        assert_eq!(
            deleted(&old, caps(0, 7), "2026-01-04T00:00:00Z", "UTC"),
            ["old1"]
        );
        let b = [
            c("a", "2026-01-01T00:00:00Z"),
            c("b", "2026-01-09T00:00:00Z"),
            c("c", "2026-01-10T00:00:00Z"),
        ];
        let now = "2026-01-10T12:00:00Z";
        assert!(deleted(&b, Retention::default(), now, "UTC").is_empty());
        assert_eq!(deleted(&b, caps(5, 3), now, "UTC"), ["a"]);
        assert_eq!(deleted(&b, caps(1, 30), now, "UTC"), ["a", "b"]);
    }

    /// A synthetic history: two backups a day (01:30 and 13:30 UTC) from 2026-03-20 to 2026-03-31,
    /// across Europe/Berlin's switch to summer time on 2026-03-29.
    fn history() -> Vec<Candidate> {
        let mut v = Vec::new();
        for day in 20..=31 {
            for hm in ["01:30", "13:30"] {
                let id = format!("d{day}-{}", &hm[..2]);
                v.push(c(&id, &format!("2026-03-{day}T{hm}:00Z")));
            }
        }
        v
    }

    fn kept(policy: Retention, tz: &str) -> Vec<String> {
        let all: Vec<String> = history().into_iter().map(|c| c.id).collect();
        let gone = deleted(&history(), policy, "2026-04-01T00:00:00Z", tz);
        all.into_iter().filter(|id| !gone.contains(id)).collect()
    }

    fn gfs(g: Gfs) -> Retention {
        Retention {
            gfs: g,
            ..Default::default()
        }
    }

    #[test]
    fn gfs_table() {
        let cases: &[(&str, Retention, &str, &[&str])] = &[
            (
                "last 3",
                gfs(Gfs {
                    last: 3,
                    ..Default::default()
                }),
                "UTC",
                &["d30-13", "d31-01", "d31-13"],
            ),
            (
                "daily 3",
                gfs(Gfs {
                    daily: 3,
                    ..Default::default()
                }),
                "UTC",
                &["d29-13", "d30-13", "d31-13"],
            ),
            // 2026-03-29 is a Sunday: ISO weeks 13 (23-29) and 14 (30-31) and 12 (20-22)
            (
                "weekly 3",
                gfs(Gfs {
                    weekly: 3,
                    ..Default::default()
                }),
                "UTC",
                &["d22-13", "d29-13", "d31-13"],
            ),
            (
                "monthly 5 (one month exists)",
                gfs(Gfs {
                    monthly: 5,
                    ..Default::default()
                }),
                "UTC",
                &["d31-13"],
            ),
            (
                "last 1 + daily 2",
                gfs(Gfs {
                    last: 1,
                    daily: 2,
                    ..Default::default()
                }),
                "UTC",
                &["d30-13", "d31-13"],
            ),
            (
                "daily 2 capped by max_files 1",
                Retention {
                    max_files: 1,
                    gfs: Gfs {
                        daily: 2,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "UTC",
                &["d31-13"],
            ),
            // In Tokyo (UTC+9) 13:30Z is 22:30 local, 01:30Z is 10:30 local: the same local day
            // holds the UTC day's two backups, so the newest of each is 13:30Z as in UTC.
            (
                "daily 2 in Asia/Tokyo",
                gfs(Gfs {
                    daily: 2,
                    ..Default::default()
                }),
                "Asia/Tokyo",
                &["d30-13", "d31-13"],
            ),
            // In Los Angeles (UTC-7 after its DST change) 01:30Z is still the previous local day:
            // 03-31 06:30 PDT is the newest of the 31st, 03-31 01:30Z (18:30 on the 30th) of the 30th.
            (
                "daily 2 in America/Los_Angeles",
                gfs(Gfs {
                    daily: 2,
                    ..Default::default()
                }),
                "America/Los_Angeles",
                &["d31-01", "d31-13"],
            ),
        ];
        for (name, policy, tz, want) in cases {
            let mut got = kept(*policy, tz);
            got.sort();
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn gfs_verdicts_say_which_rule_kept_what() {
        let tz = TimeZone::UTC;
        let v = choose(
            &history(),
            gfs(Gfs {
                daily: 2,
                weekly: 1,
                ..Default::default()
            }),
            "2026-04-01T00:00:00Z".parse().unwrap(),
            &tz,
        );
        let newest = v.iter().find(|v| v.id == "d31-13").unwrap();
        assert!(newest.keep);
        let d30 = v.iter().find(|v| v.id == "d30-13").unwrap();
        assert_eq!(d30.reason, "kept by daily 2026-03-30");
        let dropped = v.iter().find(|v| v.id == "d30-01").unwrap();
        assert!(!dropped.keep && dropped.reason.contains("no keep_* rule"));
        assert_eq!(
            describe(Retention {
                max_files: 30,
                gfs: Gfs {
                    daily: 7,
                    weekly: 4,
                    ..Default::default()
                },
                ..Default::default()
            }),
            "keep 7 daily, 4 weekly; and at most: keep the 30 newest"
        );
    }
}
