//! What can go wrong in archiving and in a restore to an instant, one variant each.

use crate::restore::pump::PumpError;
use crate::restore::RestoreError;
use crate::storage::StorageError;
use jiff::Timestamp;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PitrError {
    #[error("job `{0}` has no `pitr: {{ enabled: true }}`: use `restore` without `--at`")]
    NotPitr(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{program} failed ({status}): {tail}")]
    Tool {
        program: String,
        status: String,
        tail: String,
    },
    #[error("the server writes no binary log (log_bin is OFF): start it with --log-bin and a --server-id")]
    NoBinlog,
    #[error("{program} did not finish within {seconds}s")]
    ToolTimeout { program: String, seconds: u64 },
    #[error("job `{job}` has no complete base backup yet: run `dbstash backup {job}` (with the stream running)")]
    NoBaseBackup { job: String },
    #[error(
        "{at} is outside the recoverable window of job `{job}` ({window}); nothing was written"
    )]
    OutsideWindow {
        job: String,
        at: Timestamp,
        window: String,
    },
    #[error("--to-dir {0}: not an empty folder (a restore never writes over anything)")]
    NotEmpty(PathBuf),
    #[error("base backup {0}: no readable backup_label in it (not a pg_basebackup tar?)")]
    NoLabel(String),
    #[error("WAL segment {key}: {source}")]
    Segment {
        key: String,
        #[source]
        source: PumpError,
    },
    #[error(
        "the archive lacks WAL segment {0}, which the restore needs (a gap: see `dbstash verify`)"
    )]
    Missing(String),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error("--to names job `{job}`'s own database `{database}`: a restore to an instant never touches the source; give another database name")]
    OwnDatabase { job: String, database: String },
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PitrError {
    let what = what.into();
    move |source| PitrError::Io { what, source }
}
