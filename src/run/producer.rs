//! What produces the bytes the relay reads: the dump tool itself (stream mode), the task writing a
//! tar of the dump's folder (tar mode), or nothing to wait for (a SQLite snapshot file).

use super::ctx::Ctx;
use super::error::{ExitReason, ProducerError, RunError};
use super::sqlite::StopReading;
use crate::cancel::Cancel;
use crate::engine::DumpSpec;
use crate::model::Mode;
use crate::plan::JobPlan;
use crate::proc::StderrTail;
use std::fs::File;
use std::path::{Path, PathBuf};

pub enum Producer {
    Child(tokio::process::Child),
    Tar(tokio::task::JoinHandle<std::io::Result<()>>),
    Done,
}

impl Producer {
    /// Ok(()) when it finished cleanly. Cancel-safe for `Child`.
    pub async fn wait(&mut self) -> Result<(), ProducerError> {
        match self {
            Producer::Child(c) => match c.wait().await {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(ProducerError::Exited(ExitReason::of(s))),
                Err(e) => Err(ProducerError::Wait(e)),
            },
            Producer::Tar(t) => {
                let r = t.await;
                *self = Producer::Done;
                match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(ProducerError::Tar(e)),
                    Err(e) => Err(ProducerError::TarTask(e)),
                }
            }
            Producer::Done => Ok(()),
        }
    }
}

/// A started dump in stream mode: its stdout, the child, its stderr tail.
pub type StartedDump = (File, tokio::process::Child, StderrTail);

/// What makes the bytes, while the relay reads them.
pub struct Source {
    pub producer: Producer,
    /// The dump tool's stderr (empty for tar and snapshots).
    pub tail: StderrTail,
    /// A SQLite snapshot's relay stops reading when this is dropped (a run cut short).
    _snapshot_stop: Option<StopReading>,
    /// mysql/mariadb `pitr` jobs: the binlog position read from the dump's head as it passed.
    pub binlog: Option<super::binlog_head::Found>,
}

/// A producer not started yet: the dump folder to tar (tar mode), or the dump started early
/// (stream mode); neither for a SQLite snapshot.
pub struct Pending {
    pub folder: Option<PathBuf>,
    pub early: Option<StartedDump>,
}

/// Start the producer: the tar of the dump folder (tar mode), the dump started early (stream
/// mode), or a SQLite snapshot. Returns the file the relay reads and what writes it; `cancel`
/// stops the tar writer when the run is cut short.
pub async fn start(
    plan: &JobPlan,
    pending: Pending,
    unit_dir: &Path,
    cancel: &Cancel,
) -> Result<(File, Source), RunError> {
    let source = |producer| Source {
        producer,
        tail: StderrTail::empty(),
        _snapshot_stop: None,
        binlog: None,
    };
    let Pending { folder, early } = pending;
    match (&plan.dump, folder) {
        (_, Some(dir)) => {
            let (file, task) =
                super::folder::tar_stream(dir, cancel.clone()).map_err(RunError::TarStart)?;
            Ok((file, source(Producer::Tar(task))))
        }
        (DumpSpec::Command(_), None) => {
            let (file, child, tail) =
                early.ok_or(RunError::Internal("the dump was not started"))?;
            let (file, binlog) = if plan.pitr.as_ref().is_some_and(|p| p.binlog) {
                let (file, found) =
                    super::binlog_head::watch(file).map_err(RunError::BinlogHead)?;
                (file, Some(found))
            } else {
                (file, None)
            };
            let started = Source {
                tail,
                binlog,
                ..source(Producer::Child(child))
            };
            Ok((file, started))
        }
        (DumpSpec::SqliteSnapshot { path }, None) => {
            let snap =
                super::sqlite::snapshot(path.clone(), unit_dir.join("snapshot.sqlite3")).await?;
            let started = Source {
                _snapshot_stop: Some(snap.stop),
                ..source(Producer::Done)
            };
            Ok((snap.file, started))
        }
    }
}

/// Stream mode: start the dump now, so its start-up (connecting, reading the catalog) overlaps
/// the name claim; it waits on its full pipe until the relay reads it. If anything fails before
/// the relay starts, dropping the child kills it (kill_on_drop).
/// `client` is the dump client's `--version` line when the position flag depends on it.
pub fn start_early(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
    client: Option<String>,
) -> Result<Option<StartedDump>, RunError> {
    match (plan.mode, &plan.dump) {
        (Mode::Stream, DumpSpec::Command(spec)) => {
            let spec = crate::engine::mysql_pitr::with_position_flag(spec, client.as_deref());
            Ok(Some(super::dump::start_dump(&spec, ctx, unit_dir)?))
        }
        _ => Ok(None),
    }
}

/// The name the messages give the producer.
pub fn program(plan: &JobPlan) -> String {
    match &plan.dump {
        DumpSpec::Command(c) if plan.mode == Mode::Stream => c.program.clone(),
        DumpSpec::Command(_) => "tar".into(),
        DumpSpec::SqliteSnapshot { .. } => "sqlite snapshot".into(),
    }
}
