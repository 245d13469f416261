//! How a backup fails: `RunError` (one variant per way, each carrying what its message needs) and
//! `ExitReason`, the typed status of a process that ended. The messages are the contract's text:
//! tests and users read them, so a variant's `Display` is the whole line dbstash has always shown.
//!
//! Secrets: text from a tool (a stderr tail, an upload's error) is redacted where it is captured,
//! before it is put in a variant; `backup` redacts the whole line once more before it leaves.

pub use crate::proc::status::ExitReason;
use crate::storage::StorageError;
use std::fmt;
use std::time::Duration;

/// Why the producer of a backup's bytes (the dump tool, the tar writer) did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("{0}")]
    Exited(ExitReason),
    #[error("{0}")]
    Wait(#[source] std::io::Error),
    #[error("writing the tar stream: {0}")]
    Tar(#[source] std::io::Error),
    #[error("tar task: {0}")]
    TarTask(#[source] tokio::task::JoinError),
}

impl ProducerError {
    /// It died of a broken pipe (see `ExitReason::is_broken_pipe`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ProducerError::Exited(r) if r.is_broken_pipe())
    }
}

/// What the uploads' tools said while being aborted (`remote: tail`), for the end of a message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tails(pub Vec<String>);

impl fmt::Display for Tails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.0.join("; "))
        }
    }
}

/// A tool's stderr tail as shown at the end of a message.
pub fn tail_or(t: &str) -> String {
    if t.is_empty() {
        "(no output on stderr)".into()
    } else {
        t.to_string()
    }
}

/// One backup (or a run around it) failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create run folder {path}: {source}")]
    UnitFolder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    ListFolder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    RunFolder(#[from] super::stale::RunFolderError),
    #[error("cannot write option file: {0}")]
    OptionFile(#[source] std::io::Error),
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the tool failed (not its exit status: the wait itself).
    #[error("{program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dump has no stdout")]
    NoStdout,
    #[error("dump stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// The dump (or the tar writer, or the snapshot) failed; `tail` is its redacted stderr.
    #[error("{program} failed ({how}): {}", tail_or(tail))]
    Tool {
        program: String,
        how: ProducerError,
        tail: String,
    },
    #[error("listing the databases with {program} failed ({how}): {tail}")]
    Listing {
        program: String,
        how: ExitReason,
        tail: String,
    },
    #[error("no databases to back up (the server listed none that are not excluded)")]
    NoDatabases,
    #[error("{program} wrote only {size} bytes into its folder. {}", tail_or(tail))]
    FolderTooSmall {
        program: String,
        size: u64,
        tail: String,
    },
    #[error("{program} produced only {raw} bytes (an empty database still dumps at least {min}); set `allow_empty: true` if this is expected. {}", tail_or(tail))]
    TooSmall {
        program: String,
        raw: u64,
        min: u64,
        tail: String,
    },
    #[error(transparent)]
    Space(#[from] super::folder::SpaceError),
    #[error(transparent)]
    Claim(#[from] super::claim::ClaimError),
    #[error(transparent)]
    Snapshot(#[from] super::sqlite::SnapshotError),
    #[error(transparent)]
    Hook(#[from] super::hooks::HookError),
    #[error("cannot start upload to `{remote}`: {source}")]
    UploadStart {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("upload: {0}")]
    UploadWriter(#[source] std::io::Error),
    #[error("cannot start the tar stream: {0}")]
    TarStart(#[source] std::io::Error),
    #[error("cannot read the dump's head for its binlog position: {0}")]
    BinlogHead(#[source] std::io::Error),
    /// A required upload exited on its own while the dump still ran.
    #[error("upload to `{remote}` failed: the upload ended before the dump did ({how}){tails}")]
    UploadEnded {
        remote: String,
        how: String,
        tails: Tails,
    },
    /// The relay failed (a write to an upload, compression, encryption); `message` is redacted.
    #[error("upload failed: {message}{tails}")]
    Relay { message: String, tails: Tails },
    #[error("relay: {source}{tails}")]
    RelayTask {
        source: tokio::task::JoinError,
        tails: Tails,
    },
    /// A required upload could not be made durable; `message` is redacted.
    #[error("upload to `{remote}` failed: {message}")]
    Commit { remote: String, message: String },
    #[error("copy to `{remote}` failed: {source}")]
    Copy {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("hashing task: {0}")]
    HashTask(#[source] tokio::task::JoinError),
    #[error("cannot read the dump folder: {0}")]
    ReadFolder(#[source] std::io::Error),
    #[error("record: {0}")]
    RecordBody(#[source] serde_json::Error),
    #[error("cannot write the record on `{remote}`: {source}")]
    Record {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("timed out after {}", crate::domain::units::human_duration(*.0))]
    TimedOut(Duration),
    #[error("stopped: dbstash is shutting down")]
    ShuttingDown,
    /// A step that cannot fail unless dbstash itself is wrong.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_text() {
        let e = RunError::Tool {
            program: "pg_dump".into(),
            how: ProducerError::Exited(ExitReason::Code(1)),
            tail: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "pg_dump failed (exit 1): (no output on stderr)"
        );
        let e = RunError::UploadEnded {
            remote: "s3".into(),
            how: "exit 1".into(),
            tails: Tails(vec!["s3: boom".into()]),
        };
        assert_eq!(
            e.to_string(),
            "upload to `s3` failed: the upload ended before the dump did (exit 1): s3: boom"
        );
        assert_eq!(
            RunError::TimedOut(Duration::from_secs(90)).to_string(),
            format!(
                "timed out after {}",
                crate::domain::units::human_duration(Duration::from_secs(90))
            )
        );
    }
}
