//! Applying retention: after a successful backup, and by `dbstash prune`. Only complete backups of
//! this job are candidates, the newest is never deleted, and a record is deleted before its object
//! (so an interruption leaves an unlisted leftover, never a listed backup without data).

use super::leftovers;
use super::record::{self, Backup};
use crate::catalog::keep::{choose, Candidate, Verdict};
use crate::model::Mode;
use crate::plan::JobPlan;
use crate::storage::{join_key, AnyStorage, Storage, StorageError};
use jiff::Timestamp;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PruneReport {
    pub verdicts: Vec<Verdict>,
    /// What crashed runs left (objects an intent marker names, record temp files).
    pub leftovers: Vec<String>,
    pub deleted: Vec<String>,
    pub errors: Vec<String>,
    /// The leftovers with what removing each takes.
    #[serde(skip)]
    pub stale: Vec<leftovers::Stale>,
}

impl PruneReport {
    fn with_stale(stale: Vec<leftovers::Stale>) -> Self {
        PruneReport {
            leftovers: stale.iter().map(|s| s.name.clone()).collect(),
            stale,
            ..Default::default()
        }
    }

    /// Remove the leftovers found, recording what was deleted and what failed.
    async fn clear_leftovers(&mut self, plan: &JobPlan, store: &AnyStorage, folder: &str) {
        let (deleted, errors) = leftovers::remove(store, folder, &self.stale).await;
        for key in &deleted {
            tracing::info!(job = %plan.job, event = "leftover_deleted", object = %key);
        }
        self.deleted.extend(deleted);
        self.errors.extend(errors);
    }
}

/// Delete a backup's object: a file, or a `directory`-mode folder.
async fn delete_object(plan: &JobPlan, store: &AnyStorage, key: &str) -> Result<(), StorageError> {
    if plan.mode == Mode::Directory {
        store.delete_dir(key).await
    } else {
        store.delete(key).await
    }
}

/// The folder retention looks at: the job's folder rendered for `now`.
pub fn folder(plan: &JobPlan, now: Timestamp) -> String {
    plan.object_for(&plan.name_vars(now)).folder
}

pub async fn evaluate(
    plan: &JobPlan,
    store: &AnyStorage,
    now: Timestamp,
) -> Result<(Vec<Backup>, PruneReport), StorageError> {
    let folder = folder(plan, now);
    let (backups, entries) = record::complete_backups(store, &folder, &plan.job).await?;
    // Several databases share the folder: each database's backups are a history of their own
    // (its own newest is kept, its own counts apply).
    let mut groups: std::collections::BTreeMap<&str, Vec<Candidate>> = Default::default();
    for b in &backups {
        let g = if plan.per_database {
            b.record.database.as_str()
        } else {
            ""
        };
        groups.entry(g).or_default().push(Candidate {
            id: b.id.clone(),
            time: b.record.finished,
        });
    }
    let verdicts = groups
        .values()
        .flat_map(|c| choose(c, plan.retention, now, &plan.zone().tz))
        .collect();
    let stale = leftovers::find(plan, store, &folder, &entries, now).await;
    Ok((
        backups,
        PruneReport {
            verdicts,
            ..PruneReport::with_stale(stale)
        },
    ))
}

pub async fn apply(
    plan: &JobPlan,
    store: &AnyStorage,
    now: Timestamp,
    dry_run: bool,
) -> Result<PruneReport, StorageError> {
    let folder = folder(plan, now);
    let (_, mut report) = evaluate(plan, store, now).await?;
    if dry_run {
        return Ok(report);
    }
    let doomed: Vec<String> = report
        .verdicts
        .iter()
        .filter(|v| !v.keep)
        .map(|v| v.id.clone())
        .collect();
    for id in doomed {
        let key = join_key(&folder, &id);
        let result = async {
            store.delete(&record::record_key(&key)).await?;
            delete_object(plan, store, &key).await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(job = %plan.job, event = "retention_deleted", object = %key);
                report.deleted.push(key);
            }
            Err(e) => report.errors.push(format!("{key}: {e}")),
        }
    }
    report.clear_leftovers(plan, store, &folder).await;
    Ok(report)
}

/// Retention right after a successful backup. With an unlimited policy nothing can be due, so
/// the records are not read at all (one rclone call per record on a remote): only the listing, for
/// leftovers of crashed runs (an object with a record file is never a leftover).
///
/// `listed` is the folder's listing taken when the run started, if the caller has it: leftovers
/// of earlier crashed runs are in it already (this run's marker is too, but its run is live).
pub async fn apply_after_backup(
    plan: &JobPlan,
    store: &AnyStorage,
    now: Timestamp,
    listed: Option<Vec<crate::storage::Entry>>,
) -> Result<PruneReport, StorageError> {
    if !plan.retention.is_unlimited() {
        return apply(plan, store, now, false).await;
    }
    let folder = folder(plan, now);
    let entries = match listed {
        Some(l) => l,
        None => store.list(&folder).await?,
    };
    let mut report =
        PruneReport::with_stale(leftovers::find(plan, store, &folder, &entries, now).await);
    report.clear_leftovers(plan, store, &folder).await;
    Ok(report)
}
