//! Retention of the WAL archive: a segment goes only when no kept base backup needs it, i.e. it
//! was archived before the oldest kept base backup started. Deleted like a backup: its record
//! first, then its object, so a half-deleted segment is never taken for a complete one.

use super::window::Archive;
use super::{label, segment};
use crate::catalog::record::{self, Backup};
use crate::storage::{AnyStorage, Storage};
use jiff::SignedDuration;
use std::collections::BTreeSet;

/// Slack for the clocks of the host that streamed and the host that took the base backup.
pub const CLOCK_MARGIN: SignedDuration = SignedDuration::from_mins(5);

/// Segments no base backup in `kept` needs (none when nothing is kept). History files stay: they
/// are tiny and every later timeline needs them.
/// A kept base backup whose record says where its WAL starts (`base_wal`) needs nothing before
/// that segment: the position decides, with no clock in it. Without one, the times do.
pub fn expired<'a>(archive: &'a Archive, kept: &BTreeSet<String>) -> Vec<&'a Backup> {
    if archive
        .wal
        .iter()
        .any(|b| b.record.dump_format == super::binlog::BINLOG_FORMAT)
    {
        return super::binlog::expired(archive, kept);
    }
    let kept_bases: Vec<&Backup> = archive
        .bases
        .iter()
        .filter(|b| kept.contains(&b.id))
        .collect();
    let starts: Option<Vec<&str>> = kept_bases
        .iter()
        .map(|b| {
            b.record
                .base_wal
                .as_ref()
                .map(|w| label::position(&w.start_segment))
        })
        .collect();
    if let Some(first) = starts.and_then(|s| s.into_iter().min()) {
        return archive
            .segments()
            .filter(|s| label::position(segment::wal_name(&s.id)) < first)
            .collect();
    }
    let Some(oldest) = kept_bases.iter().map(|b| b.record.started).min() else {
        return Vec::new();
    };
    let Ok(before) = oldest.checked_sub(CLOCK_MARGIN) else {
        return Vec::new();
    };
    archive
        .segments()
        .filter(|s| s.record.finished < before)
        .collect()
}

/// What pruning the archive did (or, dry, would do).
#[derive(Debug, Default)]
pub struct WalPruned {
    pub segments: Vec<String>,
    pub errors: Vec<String>,
}

pub async fn prune(
    store: &AnyStorage,
    archive: &Archive,
    kept: &BTreeSet<String>,
    dry_run: bool,
) -> WalPruned {
    let mut out = WalPruned::default();
    for s in expired(archive, kept) {
        if !dry_run {
            let gone = async {
                store.delete(&record::record_key(&s.key)).await?;
                store.delete(&s.key).await
            };
            if let Err(e) = gone.await {
                out.errors.push(format!("{}: {e}", s.key));
                continue;
            }
        }
        out.segments.push(s.key.clone());
    }
    out
}

/// After a base backup (or positioned dump) run and the retention it applied: on each remote, the
/// WAL or binlog files that no backup still there needs go too, in the same run rather than at
/// the next `prune` (`expired` applies each engine's rule). Failures are logged; the backup
/// stands.
pub async fn after_backup(plan: &crate::plan::JobPlan) {
    for p in plan.per_remote() {
        let store = AnyStorage::for_plan(&p);
        let archive = match super::window::read(&p, &store).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(job = %p.job, remote = %p.remote.name, event = "wal_prune_failed", error = %e);
                continue;
            }
        };
        let kept: BTreeSet<String> = archive.bases.iter().map(|b| b.id.clone()).collect();
        let r = prune(&store, &archive, &kept, false).await;
        if !r.segments.is_empty() {
            tracing::info!(job = %p.job, remote = %p.remote.name, event = "wal_pruned", segments = r.segments.len(), first = %r.segments[0]);
        }
        if !r.errors.is_empty() {
            tracing::warn!(job = %p.job, remote = %p.remote.name, event = "wal_prune_failed", errors = ?r.errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::record::Record;

    fn item(id: &str, started: &str, finished: &str, format: &str) -> Backup {
        Backup {
            id: id.into(),
            key: format!("app/{id}"),
            record: Record {
                started: started.parse().unwrap(),
                finished: finished.parse().unwrap(),
                ..Record::sample("postgres", id, format)
            },
        }
    }

    #[test]
    fn only_wal_archived_before_the_oldest_kept_base_backup_goes() {
        let a = Archive {
            bases: vec![
                item(
                    "new.tar.zst",
                    "2026-12-02T03:00:00Z",
                    "2026-12-02T03:01:00Z",
                    ".tar.zst",
                ),
                item(
                    "old.tar.zst",
                    "2026-12-01T03:00:00Z",
                    "2026-12-01T03:01:00Z",
                    ".tar.zst",
                ),
            ],
            wal: vec![
                item(
                    "00000001.history.zst",
                    "2026-11-30T00:00:00Z",
                    "2026-11-30T00:00:00Z",
                    "wal",
                ),
                item(
                    "000000010000000000000001.zst",
                    "2026-12-01T01:00:00Z",
                    "2026-12-01T01:00:00Z",
                    "wal",
                ),
                item(
                    "000000010000000000000002.zst",
                    "2026-12-01T02:58:00Z",
                    "2026-12-01T02:58:00Z",
                    "wal",
                ),
                item(
                    "000000010000000000000003.zst",
                    "2026-12-01T04:00:00Z",
                    "2026-12-01T04:00:00Z",
                    "wal",
                ),
                item(
                    "000000010000000000000004.zst",
                    "2026-12-02T04:00:00Z",
                    "2026-12-02T04:00:00Z",
                    "wal",
                ),
            ],
        };
        let ids = |v: Vec<&Backup>| v.into_iter().map(|b| b.id.clone()).collect::<Vec<_>>();
        // Both kept: only what was archived before the old one started (minus the margin).
        let both: BTreeSet<String> = ["new.tar.zst".into(), "old.tar.zst".into()].into();
        assert_eq!(ids(expired(&a, &both)), ["000000010000000000000001.zst"]);
        // The old one goes: WAL up to the new one's start goes with it, never the history.
        let new: BTreeSet<String> = ["new.tar.zst".into()].into();
        assert_eq!(
            ids(expired(&a, &new)),
            [
                "000000010000000000000001.zst",
                "000000010000000000000002.zst",
                "000000010000000000000003.zst"
            ]
        );
        // Nothing kept: nothing to measure against, nothing deleted.
        assert!(expired(&a, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn a_base_backup_that_knows_its_first_segment_keeps_exactly_the_wal_from_it_on() {
        let mut base = item(
            "new.tar.zst",
            "2026-12-02T03:00:00Z",
            "2026-12-02T03:01:00Z",
            ".tar.zst",
        );
        base.record.base_wal = Some(crate::engine::postgres::base::BaseWal {
            start_lsn: "0/3000028".into(),
            start_segment: "000000010000000000000003".into(),
            stop_lsn: Some("0/3000100".into()),
            timeline: 1,
            start_time: "2026-12-02 03:00:00 UTC".into(),
            stop_time: "2026-12-02T03:00:30Z".parse().unwrap(),
            manifest: true,
        });
        // Segment 2 was archived a minute before the base backup started (inside the clock
        // margin) but lies before its first segment: it goes. 3 and later stay.
        let seg = |n: u32, at: &str| item(&format!("0000000100000000{n:08X}.zst"), at, at, "wal");
        let a = Archive {
            bases: vec![base],
            wal: vec![
                seg(1, "2026-12-02T02:00:00Z"),
                seg(2, "2026-12-02T02:59:00Z"),
                seg(3, "2026-12-02T03:00:10Z"),
                seg(4, "2026-12-02T04:00:00Z"),
            ],
        };
        let kept: BTreeSet<String> = ["new.tar.zst".into()].into();
        let ids: Vec<String> = expired(&a, &kept)
            .into_iter()
            .map(|b| b.id.clone())
            .collect();
        assert_eq!(
            ids,
            [
                "000000010000000000000001.zst",
                "000000010000000000000002.zst"
            ]
        );
    }
}
