//! What the archive of a `pitr` job holds on one remote: its base backups and WAL segments, the
//! recoverable window they give, and the gaps in the WAL since the oldest base backup.

use super::error::PitrError;
use super::{label, segment};
use crate::catalog::record::{complete_backups, Backup};
use crate::plan::JobPlan;
use crate::storage::AnyStorage;
use jiff::Timestamp;

pub struct Archive {
    /// Base backups (tar), newest first.
    pub bases: Vec<Backup>,
    /// Archived WAL segments and history files, in WAL order.
    pub wal: Vec<Backup>,
}

/// The earliest and latest instant a restore can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub earliest: Timestamp,
    pub latest: Timestamp,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} … {}", self.earliest, self.latest)
    }
}

pub async fn read(plan: &JobPlan, store: &AnyStorage) -> Result<Archive, PitrError> {
    let p = plan
        .pitr
        .as_ref()
        .ok_or_else(|| PitrError::NotPitr(plan.job.clone()))?;
    if p.binlog {
        return super::binlog::read_archive(plan, p, store).await;
    }
    let folder = crate::catalog::retention::folder(plan, Timestamp::now());
    let (all, _) = complete_backups(store, &folder, &plan.job).await?;
    let bases = all
        .into_iter()
        .filter(|b| b.record.dump_format.starts_with(".tar"))
        .collect();
    let (mut wal, _) = complete_backups(store, &segment::wal_folder(plan, p), &plan.job).await?;
    wal.retain(|b| b.record.dump_format == segment::WAL_FORMAT);
    wal.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Archive { bases, wal })
}

impl Archive {
    /// Segments (not history files), in WAL order.
    pub fn segments(&self) -> impl Iterator<Item = &Backup> {
        self.wal.iter().filter(|b| {
            b.record.dump_format == super::binlog::BINLOG_FORMAT
                || label::is_segment(segment::wal_name(&b.id))
        })
    }

    /// From the end of the oldest base backup to the archiving of the newest segment; `None`
    /// while there is no base backup or no segment.
    pub fn window(&self) -> Option<Window> {
        let earliest = self.bases.iter().map(base_end).min()?;
        let latest = self.segments().map(|b| b.record.finished).max()?;
        (latest >= earliest).then_some(Window { earliest, latest })
    }

    /// The newest base backup that ended at or before `at` (any, for `None` = latest).
    pub fn base_for(&self, at: Option<Timestamp>) -> Option<&Backup> {
        self.bases
            .iter()
            .find(|b| at.is_none_or(|t| base_end(b) <= t))
    }

    /// The size of the archive's WAL segments (`initdb --wal-segsize`): an archived segment's
    /// raw size (pg_receivewal writes them whole), 16 MiB when there is none.
    pub fn segment_size(&self) -> u64 {
        self.segments()
            .map(|b| b.record.raw_size)
            .find(|s| s.is_power_of_two() && *s >= 1 << 20)
            .unwrap_or(DEFAULT_SEGMENT)
    }

    /// Segments missing between the oldest and the newest archived one of each timeline
    /// (a gap makes every instant after it unreachable).
    pub fn gaps(&self) -> Vec<String> {
        if self
            .wal
            .iter()
            .any(|b| b.record.dump_format == super::binlog::BINLOG_FORMAT)
        {
            return super::binlog::gaps(&self.bases, &self.wal);
        }
        let mut missing = Vec::new();
        let names: Vec<&str> = self.segments().map(|b| segment::wal_name(&b.id)).collect();
        let per_log = 0x1_0000_0000 / self.segment_size();
        for pair in names.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a[..8] != b[..8] {
                continue;
            }
            let (Some(x), Some(y)) = (number(a, per_log), number(b, per_log)) else {
                continue;
            };
            for n in x + 1..y {
                missing.push(format!("{}{}", &a[..8], name_of(n, per_log)));
            }
        }
        missing
    }
}

/// PostgreSQL's default WAL segment size.
pub const DEFAULT_SEGMENT: u64 = 16 << 20;

/// The end of a base backup: the server's stop as its tar showed it, else the end of the run.
pub fn base_end(b: &Backup) -> Timestamp {
    b.record
        .base_wal
        .as_ref()
        .map_or(b.record.finished, |w| w.stop_time)
}

/// A segment's number along its timeline (`per_log` segments per log file: 256 of 16 MiB).
fn number(segment: &str, per_log: u64) -> Option<u64> {
    let log = u64::from_str_radix(&segment[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&segment[16..24], 16).ok()?;
    (seg < per_log).then_some(log * per_log + seg)
}

fn name_of(n: u64, per_log: u64) -> String {
    format!("{:08X}{:08X}", n / per_log, n % per_log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, raw: u64) -> Backup {
        Backup {
            id: format!("{name}.zst"),
            key: format!("app/wal/{name}.zst"),
            record: crate::catalog::record::Record {
                raw_size: raw,
                ..crate::catalog::record::Record::sample(
                    "postgres",
                    &format!("{name}.zst"),
                    segment::WAL_FORMAT,
                )
            },
        }
    }

    #[test]
    fn gaps_across_a_log_file_boundary_with_1_mib_segments() {
        // `initdb --wal-segsize=1`: 4096 segments per log file, 0..FFF, then the next log.
        let mib = 1 << 20;
        let whole = Archive {
            bases: Vec::new(),
            wal: vec![
                seg("000000010000000000000FFE", mib),
                seg("000000010000000000000FFF", mib),
                seg("000000010000000100000000", mib),
            ],
        };
        assert_eq!(whole.segment_size(), mib);
        assert!(whole.gaps().is_empty(), "{:?}", whole.gaps());
        let holed = Archive {
            bases: Vec::new(),
            wal: vec![
                seg("000000010000000000000FFE", mib),
                seg("000000010000000100000000", mib),
            ],
        };
        assert_eq!(holed.gaps(), ["000000010000000000000FFF"]);
    }

    #[test]
    fn segment_numbers_round_trip_across_log_files() {
        assert_eq!(number("0000000100000000000000FF", 0x100), Some(0xFF));
        assert_eq!(name_of(0x100, 0x100), "0000000100000000");
        assert_eq!(number("000000010000000100000000", 0x100), Some(0x100));
        // 1 MiB segments (`initdb --wal-segsize=1`): 4096 per log file.
        assert_eq!(number("000000010000000000000FFF", 0x1000), Some(0xFFF));
        assert_eq!(name_of(0x1000, 0x1000), "0000000100000000");
        assert_eq!(number("000000010000000100000000", 0x1000), Some(0x1000));
    }
}
