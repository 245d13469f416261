//! Retention of the WAL archive: a segment goes only when no kept base backup needs it, i.e. it
//! was archived before the oldest kept base backup started. Deleted like a backup: its record
//! first, then its object, so a half-deleted segment is never taken for a complete one.

use super::window::Archive;
use crate::catalog::record::{self, Backup};
use crate::storage::{AnyStorage, Storage};
use jiff::SignedDuration;
use std::collections::BTreeSet;

/// Slack for the clocks of the host that streamed and the host that took the base backup.
pub const CLOCK_MARGIN: SignedDuration = SignedDuration::from_mins(5);

/// Segments no base backup in `kept` needs (none when nothing is kept). History files stay: they
/// are tiny and every later timeline needs them.
pub fn expired<'a>(archive: &'a Archive, kept: &BTreeSet<String>) -> Vec<&'a Backup> {
    let Some(oldest) = archive
        .bases
        .iter()
        .filter(|b| kept.contains(&b.id))
        .map(|b| b.record.started)
        .min()
    else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::record::Record;

    fn item(id: &str, started: &str, finished: &str, format: &str) -> Backup {
        Backup {
            id: id.into(),
            key: format!("app/{id}"),
            record: Record {
                format: record::FORMAT.into(),
                job: "app".into(),
                engine: "postgres".into(),
                database: "postgres".into(),
                object: id.into(),
                run_id: "r".into(),
                started: started.parse().unwrap(),
                finished: finished.parse().unwrap(),
                size: 1,
                raw_size: 1,
                sha256: String::new(),
                compression: "zstd".into(),
                dump_format: format.into(),
                mode: "stream".into(),
                encryption: "none".into(),
                files: Vec::new(),
                tool_versions: Default::default(),
                dbstash_version: String::new(),
                host: String::new(),
                charset: None,
                base_wal: None,
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
}
