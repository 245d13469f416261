//! `retention:`: how many backups to keep, by count, by age and grandfather-father-son.

use crate::domain::gfs::Gfs;
use crate::manifest::types::RetentionDoc;
use crate::model::Retention;

/// Unset means unlimited (0) for every rule: a job without `retention` keeps everything.
pub(super) fn retention(r: &RetentionDoc) -> Retention {
    Retention {
        max_files: r.max_files.unwrap_or(0),
        max_days: r.max_days.unwrap_or(0),
        gfs: Gfs {
            last: r.keep_last.unwrap_or(0),
            hourly: r.keep_hourly.unwrap_or(0),
            daily: r.keep_daily.unwrap_or(0),
            weekly: r.keep_weekly.unwrap_or(0),
            monthly: r.keep_monthly.unwrap_or(0),
            yearly: r.keep_yearly.unwrap_or(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_is_unlimited() {
        assert!(retention(&RetentionDoc::default()).is_unlimited());
    }

    #[test]
    fn each_key_lands_in_its_rule() {
        let r = retention(&RetentionDoc {
            max_files: Some(1),
            max_days: Some(2),
            keep_last: Some(3),
            keep_hourly: Some(4),
            keep_daily: Some(5),
            keep_weekly: Some(6),
            keep_monthly: Some(7),
            keep_yearly: Some(8),
        });
        assert_eq!((r.max_files, r.max_days), (1, 2));
        let g = r.gfs;
        assert_eq!(
            (g.last, g.hourly, g.daily, g.weekly, g.monthly, g.yearly),
            (3, 4, 5, 6, 7, 8)
        );
        assert!(!r.is_unlimited());
    }
}
