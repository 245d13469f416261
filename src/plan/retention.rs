//! Which complete backups retention deletes: a pure function of the backups, the policy and now.
//! The newest complete backup is never deleted, whatever the policy says.

use crate::manifest::model::Retention;
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

pub fn choose(backups: &[Candidate], policy: Retention, now: Timestamp) -> Vec<Verdict> {
    let mut sorted: Vec<&Candidate> = backups.iter().collect();
    // Newest first; ties broken by id so the answer never depends on listing order.
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
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

    fn c(id: &str, t: &str) -> Candidate {
        Candidate {
            id: id.into(),
            time: t.parse().unwrap(),
        }
    }

    fn deleted(v: &[Verdict]) -> Vec<&str> {
        let mut d: Vec<&str> = v
            .iter()
            .filter(|v| !v.keep)
            .map(|v| v.id.as_str())
            .collect();
        d.sort();
        d
    }

    #[test]
    fn max_files_keeps_newest_n() {
        let b = [
            c("a", "2026-01-01T00:00:00Z"),
            c("c", "2026-01-03T00:00:00Z"),
            c("b", "2026-01-02T00:00:00Z"),
        ];
        let v = choose(
            &b,
            Retention {
                max_files: 2,
                max_days: 0,
            },
            "2026-01-04T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(deleted(&v), ["a"]);
    }

    #[test]
    fn max_days_never_deletes_the_newest() {
        let b = [
            c("old1", "2025-01-01T00:00:00Z"),
            c("old2", "2025-01-02T00:00:00Z"),
        ];
        let v = choose(
            &b,
            Retention {
                max_files: 0,
                max_days: 7,
            },
            "2026-01-04T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(deleted(&v), ["old1"]);
    }

    #[test]
    fn unlimited_deletes_nothing_and_both_rules_combine() {
        let b = [
            c("a", "2026-01-01T00:00:00Z"),
            c("b", "2026-01-09T00:00:00Z"),
            c("c", "2026-01-10T00:00:00Z"),
        ];
        let now = "2026-01-10T12:00:00Z".parse().unwrap();
        assert!(deleted(&choose(&b, Retention::default(), now)).is_empty());
        assert_eq!(
            deleted(&choose(
                &b,
                Retention {
                    max_files: 5,
                    max_days: 3
                },
                now
            )),
            ["a"]
        );
        assert_eq!(
            deleted(&choose(
                &b,
                Retention {
                    max_files: 1,
                    max_days: 30
                },
                now
            )),
            ["a", "b"]
        );
    }
}
