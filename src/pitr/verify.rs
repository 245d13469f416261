//! `pg_verifybackup` over a base backup: every file of the restored folder against the tar's own
//! `backup_manifest` (sizes and checksums), and with the WAL fetched, that WAL too. `verify`
//! unpacks the base backup into a private folder under `temp_dir` for it; `restore --at` runs it
//! on the folder it built.

use super::error::{io, PitrError};
use super::restore_at;
use crate::catalog::record::Backup;
use crate::engine::postgres::pitr as pg;
use crate::plan::JobPlan;
use crate::proc::{self, ProcGroup};
use crate::storage::AnyStorage;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// What checking a base backup came to (a failure is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// pg_verifybackup found every file (and the WAL, when parsed) as the manifest says.
    Verified,
    /// The tar holds no `backup_manifest` (taken with `--no-manifest` or before PostgreSQL 13).
    NoManifest,
    /// pg_verifybackup is not installed (neither on `PATH` nor in `/usr/lib/postgresql/N/bin`).
    NoTool,
}

impl Checked {
    /// One line for the user; `wal`: the WAL was checked too.
    pub fn describe(self, wal: bool) -> &'static str {
        match (self, wal) {
            (Checked::Verified, true) => {
                "every file and the backup's WAL match its backup_manifest"
            }
            (Checked::Verified, false) => "every file matches its backup_manifest",
            (Checked::NoManifest, _) => "skipped: the base backup holds no backup_manifest",
            (Checked::NoTool, _) => {
                "skipped: pg_verifybackup not found (PATH, /usr/lib/postgresql/N/bin)"
            }
        }
    }
}

/// `pg_verifybackup` on `dir`, bounded by `timeout`.
pub async fn verify_dir(
    dir: &Path,
    parse_wal: bool,
    timeout: Duration,
) -> Result<Checked, PitrError> {
    if !dir.join("backup_manifest").is_file() {
        return Ok(Checked::NoManifest);
    }
    let Some(spec) = pg::verify_backup(dir, parse_wal) else {
        return Ok(Checked::NoTool);
    };
    let group = ProcGroup::new();
    let mut cmd = proc::command(&spec, None);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = group
        .spawn(&mut cmd)
        .map_err(io(format!("start {}", spec.program)))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| PitrError::ToolTimeout {
            program: "pg_verifybackup".into(),
            seconds: timeout.as_secs(),
        })?
        .map_err(io("wait for pg_verifybackup"))?;
    if out.status.success() {
        return Ok(Checked::Verified);
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(PitrError::Tool {
        program: "pg_verifybackup".into(),
        status: proc::describe_status(out.status),
        tail: proc::tail::brief(&text),
    })
}

/// Unpack `base` (checked as it arrives) into a private folder under `temp_dir`, run
/// `pg_verifybackup --no-parse-wal` on it (the WAL is archived apart and checked by the gap
/// check), and remove the folder whatever happened.
pub async fn check_base(
    plan: &JobPlan,
    store: &AnyStorage,
    base: &Backup,
    temp_dir: &Path,
) -> Result<Checked, PitrError> {
    if base.record.base_wal.as_ref().is_some_and(|w| !w.manifest) {
        return Ok(Checked::NoManifest);
    }
    if pg::tool_path("pg_verifybackup").is_none() {
        return Ok(Checked::NoTool);
    }
    let dir = temp_dir.join(format!(
        "pitr-verify-{}-{}-{}",
        plan.job,
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    crate::run::dump::make_private_dir(&dir).map_err(io(format!("create {}", dir.display())))?;
    let checked = async {
        restore_at::unpack(plan, store, base, &dir).await?;
        verify_dir(&dir, false, plan.timeout).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    checked
}
