//! `restore J --at TIME|latest --to mysql://…/DB --yes` (mysql/mariadb). Stages: read the archive
//! and check the instant against its window (before anything is written); restore the newest
//! dump that ended before the instant into the target through the ordinary restore path (checked
//! before the client sees a byte); fetch the binlog files from the dump's position on, each
//! checked against its record, into a private folder; replay them with `mariadb-binlog
//! --start-position … --stop-datetime … --database SRC --rewrite-db 'SRC->DST'` (`TZ=UTC`) into
//! the target. The job's own database is refused as a target: it is never touched.

use super::error::{io, PitrError};
use super::restore_at::At;
use super::window::{self, Archive};
use crate::catalog::record::Backup;
use crate::engine::mysql_pitr::{self, order_key, BinlogPosition};
use crate::plan::JobPlan;
use crate::proc::{self, ProcGroup, StderrTail};
use crate::restore::{self, Consent, Request};
use crate::secret::Secret;
use crate::storage::AnyStorage;
use jiff::{SignedDuration, Timestamp};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[derive(Debug)]
pub struct Restored {
    pub dump: String,
    pub target: String,
    pub files: usize,
    /// `--stop-datetime` (UTC), none for `latest`.
    pub stop: Option<String>,
}

/// What the restore needs besides the plan.
pub struct Destination<'a> {
    pub to: &'a str,
    pub consent: Consent,
    pub temp_dir: &'a Path,
}

pub async fn restore_at(
    plan: &JobPlan,
    at: At,
    into: Destination<'_>,
) -> Result<Restored, PitrError> {
    let job = plan
        .job()
        .ok_or_else(|| PitrError::NotPitr(plan.job.clone()))?;
    let store = AnyStorage::for_plan(plan);
    let archive = window::read(plan, &store).await?;
    let dump = super::restore_at::choose(plan, &archive, at)?.clone();
    let pos = dump
        .record
        .binlog
        .clone()
        .ok_or_else(|| PitrError::NoBaseBackup {
            job: plan.job.clone(),
        })?;
    let wanted = needed(&archive, &pos)?;
    let target = restore::target::resolve(job, Some(into.to))?;
    if target.own {
        return Err(PitrError::OwnDatabase {
            job: plan.job.clone(),
            database: target.database().to_string(),
        });
    }
    let source_db = job.connection.database.clone().unwrap_or_default();
    let req = Request {
        backup: &dump.id,
        to: Some(into.to),
        to_file: None,
        consent: into.consent,
        temp_dir: into.temp_dir,
        progress: false,
        no_owner: false,
    };
    let restored = restore::restore(plan, &req).await?;
    let dir = into
        .temp_dir
        .join(format!("pitr-restore-{}-{}", plan.job, std::process::id()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(format!("create {}", dir.display())))?;
    let stop = match at {
        At::Latest => None,
        At::Time(t) => Some(stop_datetime(t)),
    };
    let replayed = async {
        let files = fetch(plan, &store, &wanted, &dir).await?;
        let spec = mysql_pitr::replay(
            plan.engine,
            pos.position,
            stop.as_deref(),
            &source_db,
            target.database(),
            &files,
        );
        let client = crate::engine::mysql::restore(&target.job);
        let mut secrets = target.secrets();
        secrets.extend(job.secrets().into_iter().cloned());
        replay(&spec, &client, &dir, &secrets, plan.timeout).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    replayed?;
    Ok(Restored {
        dump: dump.id,
        target: restored.target,
        files: wanted.len(),
        stop,
    })
}

/// The archived files from the dump's on, none missing.
fn needed<'a>(a: &'a Archive, pos: &BinlogPosition) -> Result<Vec<&'a Backup>, PitrError> {
    let start = order_key(&pos.file);
    let wanted: Vec<&Backup> = a
        .segments()
        .filter(|b| {
            let k = order_key(super::binlog::binlog_name(&b.id));
            k.0 == start.0 && k.1 >= start.1
        })
        .collect();
    let first = wanted.first().map(|b| super::binlog::binlog_name(&b.id));
    if first != Some(pos.file.as_str()) {
        return Err(PitrError::Missing(pos.file.clone()));
    }
    if let Some(gap) = a.gaps().into_iter().find(|g| order_key(g) >= start) {
        return Err(PitrError::Missing(gap));
    }
    Ok(wanted)
}

/// `mariadb-binlog --stop-datetime` for `t`: UTC, whole seconds (the binlog's resolution),
/// rounded up so that an event in the second of `t` but before it is replayed.
pub fn stop_datetime(t: Timestamp) -> String {
    let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
    let up = if whole < t {
        whole.checked_add(SignedDuration::from_secs(1)).unwrap_or(t)
    } else {
        whole
    };
    up.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Each file, checked (size, sha256) against its record, into `dir`; their paths in order.
async fn fetch(
    plan: &JobPlan,
    store: &AnyStorage,
    wanted: &[&Backup],
    dir: &Path,
) -> Result<Vec<String>, PitrError> {
    let mut paths = Vec::new();
    for b in wanted {
        let path: PathBuf = dir.join(super::binlog::binlog_name(&b.id));
        super::archive::fetch(plan, store, b, &path).await?;
        paths.push(path.display().to_string());
    }
    Ok(paths)
}

/// `mariadb-binlog … | mariadb --database=DST`, both in one process group, bounded by the job's
/// timeout. Either failing fails the restore with its own words.
async fn replay(
    spec: &crate::domain::command::CommandSpec,
    client: &crate::domain::command::CommandSpec,
    dir: &Path,
    secrets: &[Secret],
    timeout: std::time::Duration,
) -> Result<(), PitrError> {
    proc::write_private_files(dir, client).map_err(io("write the client's option file"))?;
    let group = ProcGroup::new();
    let mut reader = proc::command(spec, Some(dir));
    reader.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut binlog = group
        .spawn(&mut reader)
        .map_err(io(format!("start {}", spec.program)))?;
    let out: Stdio = binlog
        .stdout
        .take()
        .ok_or_else(|| io("binlog output")(std::io::Error::other("no stdout")))?
        .try_into()
        .map_err(io("binlog output"))?;
    let mut writer = proc::command(client, Some(dir));
    writer
        .stdin(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut mysql = group
        .spawn(&mut writer)
        .map_err(io(format!("start {}", client.program)))?;
    let [t0, t1] = [
        binlog.stderr.take().map_or_else(StderrTail::empty, |e| {
            StderrTail::spawn_redacted(e, "mariadb-binlog", secrets.to_vec())
        }),
        mysql.stderr.take().map_or_else(StderrTail::empty, |e| {
            StderrTail::spawn_redacted(e, "mariadb", secrets.to_vec())
        }),
    ];
    let both = async { (binlog.wait().await, mysql.wait().await) };
    let (b, m) = tokio::time::timeout(timeout, both)
        .await
        .map_err(|_| PitrError::ToolTimeout {
            program: format!("{} | {}", spec.program, client.program),
            seconds: timeout.as_secs(),
        })?;
    for (status, program, mut tail) in [(b, &spec.program, t0), (m, &client.program, t1)] {
        let status = status.map_err(io(format!("wait for {program}")))?;
        let text = tail.finish().await;
        if !status.success() {
            return Err(PitrError::Tool {
                program: program.clone(),
                status: proc::describe_status(status),
                tail: proc::tail::brief(&text),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_datetime_is_utc_whole_seconds_rounded_up() {
        let t: Timestamp = "2026-12-01T10:15:00Z".parse().unwrap();
        assert_eq!(stop_datetime(t), "2026-12-01 10:15:00");
        let t: Timestamp = "2026-12-01T10:15:00.2+01:00".parse().unwrap();
        assert_eq!(stop_datetime(t), "2026-12-01 09:15:01");
    }
}
