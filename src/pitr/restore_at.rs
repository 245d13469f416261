//! `restore J --at TIME|latest --to-dir DIR`: a PostgreSQL data directory that recovers to TIME.
//! Stages: read the archive and check the instant against its window (before anything is
//! written), unpack the chosen base backup (checked as it arrives), fetch and check the WAL it
//! needs into `pg_wal`, write the recovery settings, hand the folder to its owner.

use super::error::{io, PitrError};
use super::window::{self, Archive};
use super::{label, segment};
use crate::cancel::{Cancel, StopReader};
use crate::catalog::record::Backup;
use crate::plan::JobPlan;
use crate::proc::ProcGroup;
use crate::restore::pipeline::{self, Source};
use crate::storage::AnyStorage;
use jiff::Timestamp;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where recovery should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Everything archived.
    Latest,
    Time(Timestamp),
}

impl std::str::FromStr for At {
    type Err = jiff::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            Ok(At::Latest)
        } else {
            s.parse().map(At::Time)
        }
    }
}

#[derive(Debug)]
pub struct Restored {
    pub base: String,
    pub segments: usize,
    pub window: Option<window::Window>,
    pub target: Option<String>,
    pub dir: PathBuf,
    /// What `pg_verifybackup` said of the folder (files and the backup's WAL).
    pub checked: super::verify::Checked,
}

pub async fn restore_at(plan: &JobPlan, at: At, dir: &Path) -> Result<Restored, PitrError> {
    let store = AnyStorage::for_plan(plan);
    let archive = window::read(plan, &store).await?;
    let base = choose(plan, &archive, at)?.clone();
    check_empty(dir)?;
    let written = build(plan, &store, &archive, &base, at, dir).await;
    if written.is_err() {
        // The folder was empty: everything in it is ours to take back.
        clear(dir);
    }
    let (segments, checked) = written?;
    Ok(Restored {
        checked,
        base: base.id,
        segments,
        window: archive.window(),
        target: match at {
            At::Latest => None,
            At::Time(t) => Some(target_time(t)),
        },
        dir: dir.to_path_buf(),
    })
}

/// The base backup (PostgreSQL) or dump with a binlog position (MariaDB/MySQL) for `at`: the
/// newest that ended at or before it. An instant outside the window is refused here, before any
/// write.
pub(super) fn choose<'a>(plan: &JobPlan, a: &'a Archive, at: At) -> Result<&'a Backup, PitrError> {
    let job = plan.job.clone();
    if a.bases.is_empty() {
        return Err(PitrError::NoBaseBackup { job });
    }
    let Some(w) = a.window() else {
        return Err(PitrError::OutsideWindow {
            job,
            at: match at {
                At::Time(t) => t,
                At::Latest => Timestamp::now(),
            },
            window: if plan.pitr.as_ref().is_some_and(|p| p.binlog) {
                "no binlog archived since the dumps: is the stream running?"
            } else {
                "no WAL archived since the base backups: is the stream running?"
            }
            .into(),
        });
    };
    match at {
        At::Latest => a.base_for(None),
        At::Time(t) if t < w.earliest || t > w.latest => None,
        At::Time(t) => a.base_for(Some(t)),
    }
    .ok_or_else(|| PitrError::OutsideWindow {
        job,
        at: match at {
            At::Time(t) => t,
            At::Latest => w.latest,
        },
        window: w.to_string(),
    })
}

fn check_empty(dir: &Path) -> Result<(), PitrError> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(PitrError::NotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(io(format!("create {}", dir.display()))),
        Err(e) => Err(io(format!("read {}", dir.display()))(e)),
    }
}

/// Remove what a failed restore put into `dir` (never `dir` itself).
fn clear(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

async fn build(
    plan: &JobPlan,
    store: &AnyStorage,
    archive: &Archive,
    base: &Backup,
    at: At,
    dir: &Path,
) -> Result<(usize, super::verify::Checked), PitrError> {
    unpack(plan, store, base, dir).await?;
    let label_text = std::fs::read_to_string(dir.join("backup_label"))
        .map_err(|_| PitrError::NoLabel(base.id.clone()))?;
    let start =
        label::start_segment(&label_text).ok_or_else(|| PitrError::NoLabel(base.id.clone()))?;
    if let Some(stop) = stop_segment(archive, base) {
        // Recovery is consistent only once it has replayed to the backup's end.
        if !archive.segments().any(|s| segment::wal_name(&s.id) == stop) {
            return Err(PitrError::Missing(stop));
        }
    }
    let n = fetch_wal(plan, store, archive, &start, &dir.join("pg_wal")).await?;
    // The files against the manifest, and the backup's WAL now in pg_wal, before any setting
    // is written: a damaged base backup fails here, not at PostgreSQL's start.
    let checked = super::verify::verify_dir(dir, true, plan.timeout).await?;
    write_recovery(dir, at)?;
    hand_over(dir)?;
    Ok((n, checked))
}

/// The segment that holds the base backup's stop LSN, when its record has one.
fn stop_segment(archive: &Archive, base: &Backup) -> Option<String> {
    let w = base.record.base_wal.as_ref()?;
    let lsn = crate::engine::postgres::base::lsn(w.stop_lsn.as_deref()?)?;
    Some(crate::engine::postgres::base::segment_of(
        w.timeline,
        lsn,
        archive.segment_size(),
    ))
}

/// The base backup's tar, checked (size, sha256) as it is unpacked into `dir`.
pub(super) async fn unpack(
    plan: &JobPlan,
    store: &AnyStorage,
    base: &Backup,
    dir: &Path,
) -> Result<(), PitrError> {
    let layout = crate::restore::layout::detect(plan.engine, &base.id, Some(&base.record))?;
    let src = Source {
        store,
        backup: base,
        layout,
        progress: None,
        identities: plan.identities.clone(),
    };
    let (r, w) = crate::proc::pipe().map_err(io("pipe"))?;
    let dest = dir.to_path_buf();
    let cancel = Cancel::new();
    let _stop = cancel.on_drop();
    let unpack = tokio::task::spawn_blocking(move || {
        let mut a = tar::Archive::new(StopReader {
            inner: File::from(r),
            cancel,
        });
        // PostgreSQL's own modes (0600/0700) as pg_basebackup wrote them.
        a.set_preserve_permissions(true);
        a.set_overwrite(false);
        a.unpack(&dest)
    });
    let group = ProcGroup::new();
    let pumped = pipeline::transfer(&src, &group, File::from(w)).await;
    let unpacked = unpack
        .await
        .map_err(|e| io("unpack task")(std::io::Error::other(e.to_string())))?;
    pumped?;
    unpacked.map_err(io(format!("unpack {}", base.id)))?;
    Ok(())
}

/// Every history file, and every segment from the base backup's first one on, checked against
/// its record into `pg_wal`. Segments before the first one are not needed; a hole after it is.
async fn fetch_wal(
    plan: &JobPlan,
    store: &AnyStorage,
    archive: &Archive,
    start: &str,
    pg_wal: &Path,
) -> Result<usize, PitrError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(pg_wal)
        .map_err(io("create pg_wal"))?;
    let wanted: Vec<&Backup> = archive
        .wal
        .iter()
        .filter(|b| {
            let name = segment::wal_name(&b.id);
            label::is_history(name)
                || (label::is_segment(name) && label::position(name) >= label::position(start))
        })
        .collect();
    if !wanted.iter().any(|b| segment::wal_name(&b.id) == start) {
        return Err(PitrError::Missing(start.to_string()));
    }
    if let Some(gap) = archive
        .gaps()
        .into_iter()
        .find(|g| label::position(g) >= label::position(start))
    {
        return Err(PitrError::Missing(gap));
    }
    for b in &wanted {
        let name = segment::wal_name(&b.id);
        super::archive::fetch(plan, store, b, &pg_wal.join(name)).await?;
    }
    Ok(wanted.len())
}

/// PostgreSQL 15 reads `recovery_target_time` as a timestamptz and rejects RFC 3339's `T…Z`.
pub fn target_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// `recovery.signal`, and the settings that make recovery stop at the instant and promote.
/// `restore_command = 'false'`: the WAL is already in `pg_wal`, but PostgreSQL ≥ 12 will not
/// start an archive recovery without a restore_command; a failing one sends it to `pg_wal`.
fn write_recovery(dir: &Path, at: At) -> Result<(), PitrError> {
    let mut lines = String::from("\n# dbstash restore --at\nrestore_command = 'false'\n");
    if let At::Time(t) = at {
        lines.push_str(&format!(
            "recovery_target_time = '{}'\nrecovery_target_action = 'promote'\n",
            target_time(t)
        ));
    }
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(dir.join("postgresql.auto.conf"))
        .map_err(io("open postgresql.auto.conf"))?;
    conf.write_all(lines.as_bytes())
        .map_err(io("write postgresql.auto.conf"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join("recovery.signal"))
        .map_err(io("write recovery.signal"))?;
    Ok(())
}

/// PostgreSQL starts only from a 0700 folder owned by the user it runs as. Run as root, dbstash
/// gives everything to the owner of `--to-dir` (create it beforehand, owned by `postgres`).
fn hand_over(dir: &Path) -> Result<(), PitrError> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", dir.display())))?;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let meta = std::fs::metadata(dir).map_err(io(format!("stat {}", dir.display())))?;
    if meta.uid() == 0 {
        return Ok(());
    }
    chown_tree(dir, meta.uid(), meta.gid()).map_err(io(format!("chown {}", dir.display())))
}

fn chown_tree(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_time_is_what_postgres_15_reads() {
        let t: Timestamp = "2026-12-01T10:15:00.5Z".parse().unwrap();
        assert_eq!(target_time(t), "2026-12-01 10:15:00.500000+00");
    }
}
