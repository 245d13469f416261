//! mysql/mariadb: the long-lived binlog stream of one `pitr` job. `mariadb-binlog
//! --read-from-remote-server --raw --stop-never` copies the server's binlog files as they are
//! written into a private spool folder; a file is complete once a later one exists, and then
//! goes through the relay to `{job folder}/binlog/`, its record written last, and is removed
//! locally. When the reader ends it is restarted with a bounded backoff from the newest file in
//! the spool (rewritten from its start), else the newest archived one, else the oldest kept
//! dump's, else the server's current file. Status, metrics and notifications are the WAL
//! stream's (`super::stream`).

use super::error::{io, PitrError};
use super::segment::wal_folder;
use super::stream::{mark, set_status};
use super::window::Archive;
use crate::catalog::record::{self, complete_backups, Backup, Record};
use crate::domain::command::CommandSpec;
use crate::engine::mysql_pitr::{self, order_key, FIRST_FILE};
use crate::plan::pitr::PitrPlan;
use crate::plan::JobPlan;
use crate::proc::{self, ProcGroup, StderrTail};
use crate::secret::Secret;
use crate::storage::{join_key, AnyStorage, Storage};
use jiff::Timestamp;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// `dump_format` of an archived binlog file's record.
pub const BINLOG_FORMAT: &str = "binlog";

const SWEEP: Duration = Duration::from_secs(1);
/// `SHOW MASTER STATUS` and reading the archive before a start: short, bounded.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the server's binlog files are asked for the lag in bytes (as for the WAL).
const LAG_POLL: Duration = Duration::from_secs(10);

/// The binlog file an archived object holds: its name without dbstash's suffixes.
pub fn binlog_name(object: &str) -> &str {
    let mut name = object;
    for suffix in [".age", ".zst", ".gz"] {
        name = name.strip_suffix(suffix).unwrap_or(name);
    }
    name
}

fn secrets_of(plan: &JobPlan) -> Vec<Secret> {
    plan.job()
        .map(|j| j.secrets().into_iter().cloned().collect())
        .unwrap_or_default()
}

/// One life of the reader: where to start, then `mariadb-binlog` until it exits, the spool swept
/// every second meanwhile.
pub(super) async fn receive(
    plan: &JobPlan,
    p: &PitrPlan,
    spool: &Path,
    stores: &[(bool, AnyStorage)],
    started: &mut (dyn FnMut() + Send),
) -> Result<String, PitrError> {
    crate::run::dump::make_private_dir(spool).map_err(io(format!("create {}", spool.display())))?;
    let secrets = secrets_of(plan);
    // The grants and the server's binlog, checked before every start (a clear error, no hang).
    private_files(spool, &p.create_slot)?;
    let (current, _) = server_position(&p.create_slot, spool, &secrets).await?;
    let (first, archived) = match spooled(spool)?.pop() {
        Some(newest) => (newest, None),
        None => match tokio::time::timeout(PROBE_TIMEOUT, archived_start(plan, p, stores)).await {
            Ok(Some(start)) => start,
            _ => (current, None),
        },
    };
    // What the lag in bytes counts from (see `mysql_pitr::unarchived_bytes`).
    set_status(&plan.job, |s| {
        let b = s.binlog.get_or_insert_with(Default::default);
        b.from = Some(first.clone());
        if archived.is_some() {
            b.archived = archived;
        }
    });
    let spec = with_first(&p.stream, &first);
    private_files(spool, &spec)?;
    let group = ProcGroup::new();
    let mut cmd = proc::command(&spec, Some(spool));
    cmd.current_dir(spool);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    proc::private_umask(&mut cmd);
    let mut child = group
        .spawn(&mut cmd)
        .map_err(io(format!("start {}", spec.program)))?;
    let tail = child.stderr.take().map_or_else(StderrTail::empty, |e| {
        StderrTail::spawn_redacted(e, "mariadb-binlog", secrets.clone())
    });
    mark(&plan.job, true, None);
    started();
    tracing::info!(event = "stream_up", job = %plan.job, from = %first, "binlog stream running");
    let mut tick = tokio::time::interval(SWEEP);
    let mut poll = tokio::time::interval(LAG_POLL);
    // The server's files are asked beside the sweeps, never in their way.
    let mut asking: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> =
        None;
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            _ = tick.tick() => archive_now(plan, p, spool, stores).await,
            _ = poll.tick(), if asking.is_none() => asking = Some(Box::pin(poll_server(plan, spool, &secrets))),
            () = async { if let Some(f) = asking.as_mut() { f.await } }, if asking.is_some() => asking = None,
        }
    };
    let status = status.map_err(io(format!("wait for {}", spec.program)))?;
    Ok(super::stream::how_it_ended(status, tail).await)
}

/// The command's option file (0600), written afresh: the last start left its own.
fn private_files(spool: &Path, spec: &CommandSpec) -> Result<(), PitrError> {
    for f in &spec.files {
        match std::fs::remove_file(spool.join(&f.name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("remove old {}", f.name))(e));
            }
            _ => {}
        }
    }
    proc::write_private_files(spool, spec)
        .map_err(io(format!("write option file in {}", spool.display())))
}

/// The stream command starting at `file`.
fn with_first(spec: &CommandSpec, file: &str) -> CommandSpec {
    let mut s = spec.clone();
    for a in &mut s.args {
        if a == FIRST_FILE {
            *a = file.to_string();
        }
    }
    s
}

/// What one short query of the job's client said.
struct Answer {
    ok: bool,
    status: String,
    stdout: String,
    /// Redacted.
    stderr: String,
}

/// Run `spec` (its option file already in `dir`), bounded by [`PROBE_TIMEOUT`].
async fn ask(
    spec: &CommandSpec,
    dir: &Path,
    what: &str,
    secrets: &[Secret],
) -> Result<Answer, PitrError> {
    let group = ProcGroup::new();
    let mut cmd = proc::command(spec, Some(dir));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = group
        .spawn(&mut cmd)
        .map_err(io(format!("start {}", spec.program)))?;
    let out = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| PitrError::ToolTimeout {
            program: what.into(),
            seconds: PROBE_TIMEOUT.as_secs(),
        })?
        .map_err(io(format!("wait for {}", spec.program)))?;
    let refs: Vec<&Secret> = secrets.iter().collect();
    Ok(Answer {
        ok: out.status.success(),
        status: proc::describe_status(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: crate::secret::redact(&String::from_utf8_lossy(&out.stderr), &refs),
    })
}

/// The client's `ERROR …` lines (it frames a failed statement with `--------------` lines and
/// echoes it; the tools add warnings), else its whole brief tail.
fn errors_of(stderr: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ERROR"))
        .collect();
    if errors.is_empty() {
        proc::tail::brief(stderr)
    } else {
        errors.join(" | ")
    }
}

/// `SHOW BINARY LOG STATUS` (MySQL; `SHOW MASTER STATUS` when the server does not know it, and
/// on MariaDB): the server's current binlog file and position. Without the grant, or without a
/// binlog, a clear error.
async fn server_position(
    spec: &CommandSpec,
    dir: &Path,
    secrets: &[Secret],
) -> Result<(String, u64), PitrError> {
    let tool = "SHOW MASTER STATUS";
    let mut a = ask(spec, dir, tool, secrets).await?;
    if !a.ok {
        if let Some(old) = mysql_pitr::status_fallback(spec, &a.stderr) {
            a = ask(&old, dir, tool, secrets).await?;
        }
    }
    if !a.ok {
        return Err(PitrError::Tool {
            program: tool.into(),
            status: a.status,
            tail: format!(
                "{} (the stream needs REPLICATION SLAVE, REPLICATION CLIENT)",
                errors_of(&a.stderr)
            ),
        });
    }
    mysql_pitr::parse_master_status(&a.stdout).ok_or(PitrError::NoBinlog)
}

/// The server's binlog files and sizes, for the lag in bytes (every [`LAG_POLL`]; a failure just
/// leaves the last answer). In a folder of its own: the stream's option file stays untouched.
async fn poll_server(plan: &JobPlan, spool: &Path, secrets: &[Secret]) {
    let Some(job) = plan.job() else {
        return;
    };
    let spec = mysql_pitr::binary_logs(job);
    let dir = spool.join("lag");
    let asked = async {
        crate::run::dump::make_private_dir(&dir).ok()?;
        proc::write_private_files(&dir, &spec).ok()?;
        ask(&spec, &dir, "SHOW BINARY LOGS", secrets).await.ok()
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(a) = asked.filter(|a| a.ok) {
        let files = mysql_pitr::parse_binary_logs(&a.stdout);
        // The lag is taken here, the server's files and the archive side by side: counted later
        // against a newer archive, a busy server's stale list would read as no lag at all.
        set_status(&plan.job, |s| {
            let b = s.binlog.get_or_insert_with(Default::default);
            b.lag = mysql_pitr::unarchived_bytes(&files, b.archived.as_deref(), b.from.as_deref());
        });
    }
}

/// `validate --online` for a mysql/mariadb `pitr` job, in the order a user fixes things: the
/// server writes a binlog (`log_bin`), the user may ask where it stands (`REPLICATION CLIENT`,
/// MariaDB `BINLOG MONITOR`), and may read it (`REPLICATION SLAVE`, tried with a read of the
/// current file's first event). The option file goes in `dir` (created private, removed after).
/// Returns the server's current file and position.
pub async fn check_binlog(plan: &JobPlan, dir: &Path) -> Result<(String, u64), PitrError> {
    let (Some(job), Some(p)) = (plan.job(), plan.pitr.as_ref()) else {
        return Err(PitrError::NotPitr(plan.job.clone()));
    };
    let secrets = secrets_of(plan);
    let checked = async {
        crate::run::dump::make_private_dir(dir).map_err(io(format!("create {}", dir.display())))?;
        let log_bin = mysql_pitr::log_bin(job);
        private_files(dir, &log_bin)?;
        let a = ask(&log_bin, dir, "SELECT @@log_bin", &secrets).await?;
        if !a.ok {
            return Err(PitrError::Tool {
                program: format!("{} (SELECT @@log_bin)", log_bin.program),
                status: a.status,
                tail: errors_of(&a.stderr),
            });
        }
        if a.stdout.trim() != "1" {
            return Err(PitrError::NoBinlog);
        }
        let (file, position) = match server_position(&p.create_slot, dir, &secrets).await {
            Err(PitrError::Tool {
                program,
                status,
                tail,
            }) => {
                return Err(PitrError::Tool {
                    program,
                    status,
                    tail: tail.replace(
                        "(the stream needs REPLICATION SLAVE, REPLICATION CLIENT)",
                        "(the stream needs REPLICATION CLIENT; MariaDB 10.5+: BINLOG MONITOR)",
                    ),
                })
            }
            other => other?,
        };
        let probe = mysql_pitr::read_probe(job, &file);
        let a = ask(&probe, dir, "binlog read", &secrets).await?;
        if !a.ok {
            return Err(PitrError::Tool {
                program: format!("{} --read-from-remote-server", probe.program),
                status: a.status,
                tail: format!(
                    "{} (the stream needs REPLICATION SLAVE)",
                    errors_of(&a.stderr)
                ),
            });
        }
        Ok((file, position))
    }
    .await;
    let _ = std::fs::remove_dir_all(dir);
    checked
}

/// Where a stream with an empty spool starts: the newest archived file (read again from its
/// start; not archived twice; also returned as the newest archived), else the oldest kept dump's
/// file.
async fn archived_start(
    plan: &JobPlan,
    p: &PitrPlan,
    stores: &[(bool, AnyStorage)],
) -> Option<(String, Option<String>)> {
    let (_, store) = stores.iter().find(|(optional, _)| !optional)?;
    let (files, _) = complete_backups(store, &wal_folder(plan, p), &plan.job)
        .await
        .ok()?;
    let newest = files
        .iter()
        .filter(|b| b.record.dump_format == BINLOG_FORMAT)
        .map(|b| binlog_name(&b.id).to_string())
        .max_by_key(|n| order_key(n));
    if let Some(newest) = newest {
        return Some((newest.clone(), Some(newest)));
    }
    let folder = crate::catalog::retention::folder(plan, Timestamp::now());
    let (dumps, _) = complete_backups(store, &folder, &plan.job).await.ok()?;
    dumps
        .iter()
        .filter_map(|b| b.record.binlog.as_ref())
        .map(|b| b.file.clone())
        .min_by_key(|n| order_key(n))
        .map(|f| (f, None))
}

/// The binlog files in the spool, in order (the last one is still being written).
fn spooled(spool: &Path) -> Result<Vec<String>, PitrError> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .map_err(io(format!("read {}", spool.display())))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| mysql_pitr::is_binlog_name(n))
        .collect();
    names.sort_by_key(|n| order_key(n));
    Ok(names)
}

pub(super) async fn archive_now(
    plan: &JobPlan,
    p: &PitrPlan,
    spool: &Path,
    stores: &[(bool, AnyStorage)],
) {
    match sweep(plan, p, spool, stores).await {
        Ok(Some(at)) => set_status(&plan.job, |s| s.last_archived = Some(at)),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(event = "binlog_archive_failed", job = %plan.job, error = %e, "binlog file kept in the spool; retrying");
        }
    }
}

/// Archive every complete file of the spool (all but the newest), oldest first; stops at the
/// first failure. A file already archived (the stream re-read it after a restart) is not
/// uploaded again.
async fn sweep(
    plan: &JobPlan,
    p: &PitrPlan,
    spool: &Path,
    stores: &[(bool, AnyStorage)],
) -> Result<Option<Timestamp>, PitrError> {
    let mut names = spooled(spool)?;
    names.pop();
    let mut last = None;
    for name in names {
        let path = spool.join(&name);
        if !already_archived(plan, p, stores, &name).await {
            let rec = archive(plan, p, &path, &name, stores).await?;
            tracing::info!(event = "binlog_archived", job = %plan.job, file = %name, size = rec.size);
            last = Some(rec.finished);
        }
        std::fs::remove_file(&path).map_err(io(format!("remove spooled {name}")))?;
        set_status(&plan.job, |s| {
            s.binlog.get_or_insert_with(Default::default).archived = Some(name.clone());
        });
    }
    Ok(last)
}

/// The file's record is on the first required remote already.
async fn already_archived(
    plan: &JobPlan,
    p: &PitrPlan,
    stores: &[(bool, AnyStorage)],
    name: &str,
) -> bool {
    let Some((_, store)) = stores.iter().find(|(optional, _)| !optional) else {
        return false;
    };
    let key = join_key(
        &wal_folder(plan, p),
        &super::segment::object_name(plan, name),
    );
    store.read_small(&record::record_key(&key)).await.is_ok()
}

/// One binlog file onto every remote: the object, then its record.
async fn archive(
    plan: &JobPlan,
    p: &PitrPlan,
    path: &Path,
    name: &str,
    stores: &[(bool, AnyStorage)],
) -> Result<Record, PitrError> {
    // The file's last write (its rotate event): the newest instant it covers. The record's times
    // are that instant, so the window never reaches past what the archive holds (the next file,
    // still being written, is not in it).
    let written = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
        .unwrap_or_else(Timestamp::now);
    let object = super::segment::object_name(plan, name);
    let key = join_key(&wal_folder(plan, p), &object);
    let file = super::archive::LogFile {
        path,
        name,
        key: &key,
        format: BINLOG_FORMAT,
        started: written,
        finished: written,
        failed_event: "binlog_upload_failed",
    };
    super::archive::store(plan, file, stores).await
}

/// The archive of a mysql/mariadb job on `store`: its dumps that state a binlog position (newest
/// first) and its archived binlog files (in binlog order).
pub async fn read_archive(
    plan: &JobPlan,
    p: &PitrPlan,
    store: &AnyStorage,
) -> Result<Archive, PitrError> {
    let folder = crate::catalog::retention::folder(plan, Timestamp::now());
    let (all, _) = complete_backups(store, &folder, &plan.job).await?;
    let bases = all
        .into_iter()
        .filter(|b| b.record.dump_format != BINLOG_FORMAT && b.record.binlog.is_some())
        .collect();
    let (mut wal, _) = complete_backups(store, &wal_folder(plan, p), &plan.job).await?;
    wal.retain(|b| b.record.dump_format == BINLOG_FORMAT);
    wal.sort_by_key(|b| order_key(binlog_name(&b.id)));
    Ok(Archive { bases, wal })
}

/// Binlog files missing from the archive: between the oldest kept dump's file (or the oldest
/// archived one) and the newest archived one, per base name.
pub fn gaps(bases: &[Backup], files: &[Backup]) -> Vec<String> {
    let names: Vec<&str> = files.iter().map(|b| binlog_name(&b.id)).collect();
    let Some(newest) = names.iter().max_by_key(|n| order_key(n)) else {
        return Vec::new();
    };
    let (base, last) = order_key(newest);
    let have: std::collections::BTreeSet<u64> = names
        .iter()
        .map(|n| order_key(n))
        .filter(|(b, _)| *b == base)
        .map(|(_, n)| n)
        .collect();
    let from_dump = bases
        .iter()
        .filter_map(|b| b.record.binlog.as_ref())
        .map(|pos| order_key(&pos.file))
        .filter(|(b, _)| *b == base)
        .map(|(_, n)| n)
        .min();
    let first = from_dump
        .or_else(|| have.iter().next().copied())
        .unwrap_or(last);
    let width = newest.len() - base.len() - 1;
    (first..last)
        .filter(|n| !have.contains(n))
        .map(|n| format!("{base}.{n:0width$}"))
        .collect()
}

/// Binlog files no kept dump needs: those before the oldest kept dump's file (by name, not by
/// time: the dump's record says where its replay starts). None when no kept dump states a
/// position.
pub fn expired<'a>(archive: &'a Archive, kept: &BTreeSet<String>) -> Vec<&'a Backup> {
    let Some((base, first)) = archive
        .bases
        .iter()
        .filter(|b| kept.contains(&b.id))
        .filter_map(|b| b.record.binlog.as_ref())
        .map(|p| order_key(&p.file))
        .min()
    else {
        return Vec::new();
    };
    archive
        .wal
        .iter()
        .filter(|b| {
            let (b_base, n) = order_key(binlog_name(&b.id));
            b_base == base && n < first
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mysql_pitr::BinlogPosition;

    fn item(id: &str, binlog: Option<&str>) -> Backup {
        Backup {
            id: id.into(),
            key: format!("app/{id}"),
            record: Record {
                dump_format: if binlog.is_some() {
                    ".sql.zst"
                } else {
                    BINLOG_FORMAT
                }
                .into(),
                binlog: binlog.map(|f| BinlogPosition {
                    file: f.into(),
                    position: 4,
                    gtid: None,
                }),
                ..Record::sample("mariadb", id, "")
            },
        }
    }

    #[test]
    fn only_files_before_the_oldest_kept_dumps_go() {
        let a = Archive {
            bases: vec![
                item("new.sql.zst", Some("binlog.000004")),
                item("old.sql.zst", Some("binlog.000002")),
            ],
            wal: [
                "binlog.000001.zst",
                "binlog.000002.zst",
                "binlog.000003.zst",
                "binlog.000004.zst",
            ]
            .into_iter()
            .map(|n| item(n, None))
            .collect(),
        };
        let ids = |v: Vec<&Backup>| v.into_iter().map(|b| b.id.clone()).collect::<Vec<_>>();
        let both: BTreeSet<String> = ["new.sql.zst".into(), "old.sql.zst".into()].into();
        assert_eq!(ids(expired(&a, &both)), ["binlog.000001.zst"]);
        let new: BTreeSet<String> = ["new.sql.zst".into()].into();
        assert_eq!(
            ids(expired(&a, &new)),
            [
                "binlog.000001.zst",
                "binlog.000002.zst",
                "binlog.000003.zst"
            ]
        );
        assert!(expired(&a, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn object_names_give_back_the_binlog_file() {
        assert_eq!(binlog_name("binlog.000002.zst"), "binlog.000002");
        assert_eq!(binlog_name("mysql-bin.000010.gz.age"), "mysql-bin.000010");
        assert_eq!(binlog_name("binlog.000002"), "binlog.000002");
    }

    #[test]
    fn gaps_from_the_oldest_dump_to_the_newest_file() {
        let dumps = [item("app-1.sql.zst", Some("binlog.000002"))];
        let files = [
            item("binlog.000003.zst", None),
            item("binlog.000005.zst", None),
        ];
        assert_eq!(gaps(&dumps, &files), ["binlog.000002", "binlog.000004"]);
        assert!(gaps(&[], &files[..1]).is_empty());
        assert_eq!(gaps(&[], &files), ["binlog.000004"]);
        assert!(gaps(&dumps, &[]).is_empty());
    }
}
