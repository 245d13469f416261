//! `dbstash verify J [--backup ID|latest|all] [--restore-to URI | --restore-to-file PATH]`.

use super::{CliError, ExitCode, UsageError};
use crate::domain::units::human_size;
use crate::restore;
use crate::secret::{redact, Secret};
use crate::storage::AnyStorage;
use std::path::Path;

pub fn run(
    config: &Path,
    job: &str,
    backup: &str,
    restore_to: super::restore::TargetFlags<'_>,
    pick: &super::Pick,
) -> Result<ExitCode, CliError> {
    let (m, plan) = super::restore::plan_of(config, job)?;
    let plan = pick.apply(plan).map_err(UsageError::from)?;
    let restore_to = restore_to.resolve(plan.engine).map_err(UsageError::from)?;
    let secrets = restore::secrets_of(
        &plan,
        super::restore::uri_secret(&plan, restore_to.as_ref().map(Secret::expose)).as_ref(),
    );
    let refs: Vec<&Secret> = secrets.iter().collect();
    let rt = super::runtime()?;
    Ok(rt.block_on(async {
        let store = AnyStorage::for_plan(&plan);
        if let Some(target) = restore_to {
            if backup == "all" {
                eprintln!("dbstash: a drill restores one backup; use --backup ID or latest with --restore-to");
                return 1;
            }
            let chosen = match restore::select(&plan, &store, backup).await {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("dbstash: {}", redact(&e.to_string(), &refs));
                    return 1;
                }
            };
            let Some(b) = chosen.first() else { return 1 };
            return match restore::drill_backup(&plan, &store, b, &target, &m.settings.temp_dir).await {
                Ok(r) => {
                    for t in &r.tables {
                        outln!("  {:<48} {:>12}", t.name, t.rows);
                    }
                    if let Some(n) = &r.note {
                        outln!("note: {n}");
                    }
                    outln!("{}", r.summary());
                    tracing::info!(job = %plan.job, event = "drill_succeeded", backup = %r.backup, tables = r.tables.len(), rows = r.total_rows, "{}", r.summary());
                    0
                }
                Err(e) => {
                    let msg = redact(&e.to_string(), &refs);
                    tracing::error!(job = %plan.job, event = "drill_failed", backup = %b.id, error = %msg, "drill failed");
                    eprintln!("dbstash: drill of job {} failed: {msg}", plan.job);
                    1
                }
            };
        }
        let backups = match restore::select(&plan, &store, backup).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("dbstash: {}", redact(&e.to_string(), &refs));
                return 1;
            }
        };
        let mut failed = 0;
        for b in &backups {
            match restore::verify(&plan, &store, b).await {
                Ok(v) => {
                    outln!(
                        "ok      {}  {}  sha256 {}  ({}, {} decompressed){}",
                        v.id,
                        human_size(v.stored_bytes),
                        v.sha256,
                        v.codec.name(),
                        human_size(v.raw_bytes),
                        v.note.map(|n| format!("; {n}")).unwrap_or_default()
                    );
                    tracing::info!(job = %plan.job, event = "verify_succeeded", backup = %v.id, size = v.stored_bytes, sha256 = %v.sha256);
                    if plan.pitr.is_some()
                        && plan.engine.is_postgres()
                        && !pitr_base_verified(&plan, &store, b, &m.settings.temp_dir, &refs).await
                    {
                        failed += 1;
                    }
                }
                Err(e) => {
                    failed += 1;
                    let msg = redact(&e.to_string(), &refs);
                    outln!("FAILED  {}: {msg}", b.id);
                    tracing::error!(job = %plan.job, event = "verify_failed", backup = %b.id, error = %msg);
                }
            }
        }
        if plan.pitr.is_some() && !pitr_archive_whole(&plan, &store).await {
            failed += 1;
        }
        if failed > 0 {
            eprintln!(
                "dbstash: {failed} of {} backup(s) of job {} failed verification",
                backups.len(),
                plan.job
            );
            1
        } else {
            0
        }
    }))
}

/// A postgres `pitr` base backup: unpacked under `temp_dir` and checked by `pg_verifybackup`
/// against its own manifest. Prints its own line.
async fn pitr_base_verified(
    plan: &crate::plan::JobPlan,
    store: &AnyStorage,
    b: &crate::catalog::record::Backup,
    temp_dir: &Path,
    refs: &[&Secret],
) -> bool {
    match crate::pitr::verify::check_base(plan, store, b, temp_dir).await {
        Ok(c) => {
            outln!("ok      {}  pg_verifybackup: {}", b.id, c.describe(false));
            true
        }
        Err(e) => {
            let msg = redact(&e.to_string(), refs);
            outln!("FAILED  {}: {msg}", b.id);
            tracing::error!(job = %plan.job, event = "verify_failed", backup = %b.id, error = %msg);
            false
        }
    }
}

/// `pitr` jobs: the WAL archive has no gap (a missing segment makes every later instant
/// unreachable). Prints its own line.
async fn pitr_archive_whole(plan: &crate::plan::JobPlan, store: &AnyStorage) -> bool {
    let (log, pieces) = plan
        .pitr
        .as_ref()
        .map_or(("WAL", "segments"), |p| p.log_words());
    match crate::pitr::window::read(plan, store).await {
        Ok(a) => {
            let gaps = a.gaps();
            if gaps.is_empty() {
                outln!(
                    "ok      {log} archive: {} {pieces}, no gap",
                    a.segments().count()
                );
                true
            } else {
                outln!("FAILED  {log} archive: missing {}", gaps.join(", "));
                tracing::error!(job = %plan.job, event = "verify_failed", missing_wal = ?gaps);
                false
            }
        }
        Err(e) => {
            outln!("FAILED  {log} archive: {e}");
            false
        }
    }
}
