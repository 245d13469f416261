//! Test-restore drills: restore a backup into a scratch database that the drill creates, count
//! what arrived, drop it again. Redis cannot be restored from a client, so its drill checks the
//! RDB file instead (signature, EOF marker, CRC-64) and says so.

use super::pipeline::Source;
use super::target::{self, Target};
use super::{
    apply, job_of, layout_of, select, CheckError, Occupied, RestoreError, TargetProblem,
    Unsupported, UsageError,
};
use crate::catalog::record::Backup;
use crate::engine::restore::{self, Counting, ScratchCheck};
use crate::engine::sqlite;
use crate::plan::JobPlan;
use crate::secret::Secret;
use crate::storage::AnyStorage;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCount {
    /// `schema.table` (PostgreSQL), `table` (MySQL, SQLite), collection (MongoDB).
    pub name: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub job: String,
    pub backup: String,
    pub engine: String,
    /// The scratch database (no password).
    pub target: String,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
    pub tables: Vec<TableCount>,
    pub total_rows: u64,
    /// What the drill could not do, or checked instead (Redis).
    pub note: Option<String>,
    /// The scratch database was dropped again.
    pub dropped: bool,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl DrillReport {
    /// One line for logs and notifications.
    pub fn summary(&self) -> String {
        let what = if self.engine == "redis" {
            self.note.clone().unwrap_or_default()
        } else {
            let unit = if self.engine == "mongo" {
                "collections"
            } else {
                "tables"
            };
            let rows = if self.engine == "mongo" {
                "documents"
            } else {
                "rows"
            };
            format!(
                "{} {unit}, {} {rows} restored into {}{}",
                self.tables.len(),
                self.total_rows,
                self.target,
                if self.dropped { " (dropped again)" } else { "" }
            )
        };
        format!(
            "drill of job {} backup {}: {what} in {:.1}s",
            self.job,
            self.backup,
            self.duration.as_secs_f64()
        )
    }
}

/// The scheduled drill: the newest complete backup into `target`, temp files under the system
/// temp folder.
pub async fn drill(plan: &JobPlan, target: &Secret) -> Result<DrillReport, RestoreError> {
    let mut plan = plan.clone();
    if plan.identities.is_none() {
        if let Some(f) = plan
            .job()
            .and_then(|j| j.verify.as_ref()?.identity_file.clone())
        {
            plan.identities = Some(crate::crypt::Identities::load(&f).map_err(UsageError::from)?);
        }
    }
    let store = AnyStorage::for_plan(&plan);
    // Several databases: the newest backup of any database (never the roles-only `_globals`).
    let which = if plan.databases.is_many() {
        "all"
    } else {
        "latest"
    };
    let backup = select(&plan, &store, which)
        .await?
        .into_iter()
        .find(|b| b.record.database != crate::plan::GLOBALS_DB)
        .ok_or_else(|| RestoreError::NoBackups {
            job: plan.job.clone(),
            remote: plan.remote.name.clone(),
        })?;
    if plan.databases.is_many() {
        plan = plan.for_database(&backup.record.database);
    }
    drill_backup(
        &plan,
        &store,
        &backup,
        target,
        &crate::run::stale::system_temp_dir(),
    )
    .await
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Drill one backup into `target` (a URI or bare database name), with private files under `base`.
pub async fn drill_backup(
    plan: &JobPlan,
    store: &AnyStorage,
    backup: &Backup,
    target_uri: &Secret,
    base: &Path,
) -> Result<DrillReport, RestoreError> {
    let clock = Instant::now();
    let job = job_of(plan)?;
    let mut report = DrillReport {
        job: plan.job.clone(),
        backup: backup.id.clone(),
        engine: job.engine.as_str().to_string(),
        target: String::new(),
        stored_bytes: 0,
        raw_bytes: 0,
        tables: Vec::new(),
        total_rows: 0,
        note: None,
        dropped: false,
        duration: Duration::ZERO,
    };
    if !restore::restores_from_client(job.engine) {
        let v = super::verify(plan, store, backup).await?;
        report.target = "(none: RDB checked instead)".into();
        report.stored_bytes = v.stored_bytes;
        report.raw_bytes = v.raw_bytes;
        report.note = Some(format!(
            "Redis cannot be restored from a client, so the drill checked the RDB instead: {}",
            v.note.unwrap_or_default()
        ));
        report.duration = clock.elapsed();
        return Ok(report);
    }
    let layout = layout_of(job, backup)?;
    let no_owner = job.verify.as_ref().is_some_and(|v| v.no_owner);
    let target = target::resolve(job, Some(target_uri.expose()))?.without_owners(no_owner);
    report.target = target.label.clone();
    if target.own {
        return Err(UsageError::DrillIntoOwn {
            target: target.label.clone(),
        }
        .into());
    }
    if restore::drill_client(job.engine).is_some_and(|p| !on_path(p)) {
        return Err(Unsupported::DrillNeedsMongosh.into());
    }
    super::run_dir::sweep_dead(base).await;
    refuse_existing(&target, base).await?;
    let src = Source {
        store,
        backup,
        layout,
        progress: None,
        identities: plan.identities.clone(),
    };
    super::roles::check(&target, &src, base, super::roles::Hint::Drill(&plan.job)).await?;
    target::create(&target, base, backup.record.charset.as_ref()).await?;
    let result = async {
        target::postgis(&target, base).await?;
        // The drill made the target: nothing of value there, no first pass needed.
        let done = apply(job, &target, &src, base, true).await?;
        let tables = counts(&target, base).await?;
        Ok::<_, RestoreError>((done, tables))
    }
    .await;
    // Always drop the scratch database (the drill made it), whatever happened.
    let dropped = target::drop_database(&target, base).await;
    let (done, tables) = match (result, dropped) {
        (Ok(x), Ok(())) => x,
        (Err(e), Ok(())) => return Err(e),
        (Err(e), Err(de)) => {
            tracing::warn!(job = %plan.job, event = "drill_cleanup_failed", target = %target.label, error = %de);
            return Err(e);
        }
        (Ok(_), Err(de)) => {
            return Err(TargetProblem::DrillDrop {
                target: target.label.clone(),
                source: Box::new(de),
            }
            .into())
        }
    };
    report.dropped = true;
    report.stored_bytes = done.pumped.stored;
    report.raw_bytes = done.pumped.raw;
    report.total_rows = tables.iter().map(|t| t.rows).sum();
    report.tables = tables;
    report.duration = clock.elapsed();
    Ok(report)
}

/// A drill restores only into a database it creates, so that it may drop it afterwards: an
/// existing target is refused before anything is restored or dropped (how "existing" is told is
/// the engine's: `engine::restore::scratch_check`).
async fn refuse_existing(target: &Target, base: &Path) -> Result<(), RestoreError> {
    let existing = match restore::scratch_check(target.job.engine) {
        ScratchCheck::NoCollections => {
            let names = target::mongo_collections(target, base).await?;
            (!names.is_empty()).then_some(Occupied::Collections(names.len()))
        }
        ScratchCheck::Missing => {
            (target::exists(target, base).await? != Some(false)).then_some(Occupied::Exists)
        }
    };
    match existing {
        Some(occupied) => Err(TargetProblem::ScratchInUse {
            target: target.label.clone(),
            occupied,
        }
        .into()),
        None => Ok(()),
    }
}

/// Count what arrived, the way the engine says (`engine::restore::counting`).
async fn counts(t: &Target, base: &Path) -> Result<Vec<TableCount>, RestoreError> {
    let secrets = t.secrets();
    let counted = match restore::counting(&t.job, t.database()) {
        Counting::Query { admin, sql, parse } => {
            let out = target::admin_sql(&admin, &sql, &secrets, base).await?;
            parse(&out, &[])
        }
        Counting::ListThenCount {
            admin,
            list,
            names,
            count,
            parse,
        } => {
            let out = target::admin_sql(&admin, &list, &secrets, base).await?;
            let names = names(&out);
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let out =
                target::admin_sql(&admin, &count(t.database(), &names), &secrets, base).await?;
            parse(&out, &names)
        }
        Counting::SqliteFile(path) => {
            return tokio::task::spawn_blocking(move || sqlite_counts(&path.to_string_lossy()))
                .await
                .map_err(|e| CheckError::task("sqlite counts", e))?
        }
        Counting::Nothing => Vec::new(),
    };
    Ok(counted
        .into_iter()
        .map(|(name, rows)| TableCount { name, rows })
        .collect())
}

fn sqlite_counts(path: &str) -> Result<Vec<TableCount>, RestoreError> {
    let err = |source: rusqlite::Error| CheckError::Count {
        path: path.to_string(),
        source,
    };
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    let mut stmt = c.prepare(sqlite::TABLES_SQL).map_err(err)?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let mut out = Vec::new();
    for n in names {
        let rows: i64 = c
            .query_row(&sqlite::count_sql(&n), [], |r| r.get(0))
            .map_err(err)?;
        out.push(TableCount {
            name: n,
            rows: u64::try_from(rows).unwrap_or(0),
        });
    }
    Ok(out)
}
