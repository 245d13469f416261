//! `dbstash prune [--job J] [--dry-run]`: apply retention now.

use super::{CliError, ExitCode, LoadOptions};
use crate::catalog::retention;
use crate::error::exit;
use crate::storage::AnyStorage;
use std::path::Path;

pub fn run(config: &Path, job: Option<&str>, dry_run: bool) -> Result<ExitCode, CliError> {
    let jobs: Vec<String> = job.into_iter().map(str::to_string).collect();
    let opts = LoadOptions {
        warnings: false,
        logging: true,
    };
    let (m, plans) = super::load_plans(config, &jobs, opts)?;
    let rt = super::runtime()?;
    if !dry_run {
        crate::run::stale::sweep_logged(&m.settings.temp_dir);
    }
    Ok(rt.block_on(async {
        let now = jiff::Timestamp::now();
        let mut code = exit::OK;
        let plans: Vec<_> = plans.iter().flat_map(|p| p.per_remote()).collect();
        for p in &plans {
            let store = AnyStorage::for_plan(p);
            match retention::apply(p, &store, now, dry_run).await {
                Ok(r) => {
                    outln!(
                        "job {} ({})",
                        p.job,
                        crate::catalog::keep::describe(p.retention)
                    );
                    for v in &r.verdicts {
                        let action = match (v.keep, dry_run) {
                            (true, _) => "keep",
                            (false, true) => "would delete",
                            (false, false) => "deleted",
                        };
                        outln!("  {action:<13} {}  ({})", v.id, v.reason);
                    }
                    for l in &r.stale {
                        let action = if dry_run { "would delete" } else { "deleted" };
                        outln!("  {action:<13} {}  ({})", l.name, l.why);
                    }
                    for e in &r.errors {
                        errln!("job {}: {e}", p.job);
                        code = exit::FAILED;
                    }
                    if p.pitr.is_some() {
                        let kept = r
                            .verdicts
                            .iter()
                            .filter(|v| v.keep)
                            .map(|v| v.id.clone())
                            .collect();
                        code = code.max(prune_wal(p, &store, &kept, dry_run).await);
                    }
                }
                Err(e) => {
                    errln!("job {}: cannot list remote `{}`: {e}", p.job, p.remote.name);
                    code = exit::FAILED;
                }
            }
        }
        code
    }))
}

/// `pitr` jobs: the WAL segments no kept base backup needs go with the base backups.
async fn prune_wal(
    p: &crate::plan::JobPlan,
    store: &AnyStorage,
    kept: &std::collections::BTreeSet<String>,
    dry_run: bool,
) -> i32 {
    let archive = match crate::pitr::window::read(p, store).await {
        Ok(a) => a,
        Err(e) => {
            errln!("job {}: cannot read the WAL archive: {e}", p.job);
            return 1;
        }
    };
    let r = crate::pitr::retention::prune(store, &archive, kept, dry_run).await;
    let action = if dry_run { "would delete" } else { "deleted" };
    for s in &r.segments {
        let why = if p.pitr.as_ref().is_some_and(|x| x.binlog) {
            "binlog before the oldest kept dump's position"
        } else {
            "WAL older than the oldest kept base backup"
        };
        outln!("  {action:<13} {s}  ({why})");
    }
    for e in &r.errors {
        errln!("job {}: {e}", p.job);
    }
    i32::from(!r.errors.is_empty())
}
