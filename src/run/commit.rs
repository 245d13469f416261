//! The end of one backup, shared by the streaming (`unit`) and directory (`directory`) paths:
//! the record written beside the object on every remote — last, so a backup is complete only
//! once it exists — then retention; or the backup removed again when that fails.

use super::ctx::Ctx;
use super::error::RunError;
use crate::catalog::record::{self, Record};
use crate::catalog::retention;
use crate::model::Mode;
use crate::plan::{JobPlan, ObjectName};
use crate::storage::PendingSmall;
use crate::storage::{Entry, Storage};
use jiff::Timestamp;
use std::collections::BTreeMap;

/// An upload made durable, waiting for its record.
pub struct Committed {
    pub idx: usize,
    pub name: String,
    pub record: PendingSmall,
}

/// A remote that holds the complete backup (object and record).
pub struct OnRemote {
    pub idx: usize,
    pub name: String,
}

/// What every record says about the run; the caller fills in the object's sizes and format.
pub(super) fn base_record(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    obj: &ObjectName,
    finished: Timestamp,
    tool_versions: BTreeMap<String, String>,
) -> Record {
    Record {
        format: record::FORMAT.into(),
        job: plan.job.clone(),
        engine: plan.engine.as_str().into(),
        database: plan.database.clone(),
        object: obj.file.clone(),
        run_id: ctx.run_id.to_string(),
        started: ctx.started,
        finished,
        size: 0,
        raw_size: 0,
        sha256: String::new(),
        compression: "none".into(),
        dump_format: String::new(),
        files: Vec::new(),
        mode: plan.mode.as_str().into(),
        encryption: "none".into(),
        tool_versions,
        dbstash_version: env!("CARGO_PKG_VERSION").into(),
        host: crate::proc::hostname(),
        charset: None,
        base_wal: None,
        binlog: None,
    }
}

/// Remove a backup from remote `idx`: its record, then its object (a folder in directory mode).
pub(super) async fn remove_backup(plan: &JobPlan, ctx: &Ctx<'_>, idx: usize, key: &str) {
    let store = &ctx.stores[idx];
    let object = if plan.mode == Mode::Directory {
        store.delete_dir(key).await
    } else {
        store.delete(key).await
    };
    for r in [store.delete(&record::record_key(key)).await, object] {
        if let Err(e) = r {
            tracing::warn!(event = "cleanup_failed", key, error = %e);
        }
    }
    ctx.partial.forget(idx, key);
}

/// Write `rec` beside the object on every remote that holds it — last. A required remote that
/// cannot take it removes the backup everywhere (the run fails); an optional one is dropped.
pub(super) async fn write_records(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    key: &str,
    rec: &Record,
    committed: Vec<Committed>,
    dropped: &mut Vec<String>,
) -> Result<Vec<OnRemote>, RunError> {
    let body = serde_json::to_vec_pretty(rec).map_err(RunError::RecordBody)?;
    let rkey = record::record_key(key);
    let mut written: Vec<OnRemote> = Vec::new();
    for c in committed {
        let (i, name) = (c.idx, c.name);
        let store = &ctx.stores[i];
        match c.record.write(store, &rkey, &body).await {
            Ok(()) => {
                ctx.partial.forget(i, key);
                written.push(OnRemote { idx: i, name });
            }
            Err(e) if plan.remotes[i].optional => {
                remove_backup(plan, ctx, i, key).await;
                dropped.push(format!("{name}: cannot write the record: {e}"));
            }
            Err(source) => {
                remove_backup(plan, ctx, i, key).await;
                for w in &written {
                    remove_backup(plan, ctx, w.idx, key).await;
                }
                return Err(RunError::Record {
                    remote: name,
                    source,
                });
            }
        }
    }
    Ok(written)
}

/// Retention only after a complete backup, per remote; its failures are logged, not the backup's.
pub(super) async fn retain(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    written: &[OnRemote],
    finished: Timestamp,
    listed: &[Option<Vec<Entry>>],
) {
    if plan.per_database {
        // Several databases share the folder: the run applies retention once, after all of
        // them (see run::backup), instead of re-reading every record once per database.
        return;
    }
    for OnRemote { idx, name } in written {
        let on = plan.on_remote(name).unwrap_or_else(|| plan.clone());
        let pre = listed.get(*idx).cloned().flatten();
        match retention::apply_after_backup(&on, &ctx.stores[*idx], finished, pre).await {
            Ok(r) if !r.errors.is_empty() => {
                tracing::warn!(job = %plan.job, remote = %name, event = "retention_failed", errors = ?r.errors)
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(job = %plan.job, remote = %name, event = "retention_failed", error = %e)
            }
        }
    }
}
