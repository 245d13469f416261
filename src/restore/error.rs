//! Why a restore, verify or drill failed (the rules are in `crate::error`): one variant per kind
//! of failure, each with its own typed detail, so `cli` chooses how to report by variant.

use super::layout::Payload;
use super::pump::PumpError;
use super::rdb::RdbProblem;
use crate::storage::StorageError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The command line asks for something that cannot be done; nothing was attempted.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// This kind of backup cannot be restored this way.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// Overwriting needed a confirmation that was not given.
    #[error(transparent)]
    NotConfirmed(#[from] NotConfirmed),
    #[error("job `{job}` has no complete backups on remote `{remote}`")]
    NoBackups { job: String, remote: String },
    #[error("job `{job}` has no complete backup `{id}` on remote `{remote}` (see `dbstash list --job {job}`)")]
    UnknownBackup {
        job: String,
        id: String,
        remote: String,
    },
    #[error("cannot list remote `{remote}`: {source}")]
    Storage {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("{key}: {source}")]
    Integrity {
        key: String,
        #[source]
        source: PumpError,
    },
    #[error("download of {key} failed: {source}")]
    Download {
        key: String,
        #[source]
        source: StorageError,
    },
    /// A tool exited non-zero; `tail` is its (redacted) stderr.
    #[error("{program} failed ({status}): {tail}")]
    Tool {
        program: String,
        status: ToolEnd,
        tail: String,
    },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The target database (or its server) is not in a state the restore can use.
    #[error(transparent)]
    Target(#[from] TargetProblem),
    /// What was read or restored is not what it should be.
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Folder(#[from] crate::run::stale::RunFolderError),
    #[error("interrupted (SIGINT or SIGTERM): the restore was stopped")]
    Stopped,
}

/// A request that cannot be carried out as given.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("job `{job}` has no resolved settings")]
    Unresolved { job: String },
    #[error("job `{job}` backs up several databases: pass --database NAME (or --backup ID)")]
    SeveralDatabases { job: String },
    #[error("--to-file is for redis jobs only; use --to for a database")]
    ToFileNotRedis,
    #[error("redis: use --to-file PATH, not --to")]
    RedisTo,
    /// `--to` is not a URI of the job's engine (the parser's reason).
    #[error("--to: {reason}")]
    BadTo { reason: String },
    #[error("--to names no database (give it as the URI's path, e.g. postgresql://host/NAME)")]
    ToNamesNoDatabase,
    #[error("{} is not a file path", .path.display())]
    NotAFilePath { path: PathBuf },
    #[error("backup {backup} is encrypted with age: pass --identity FILE (an age identity file)")]
    NeedsIdentity { backup: String },
    #[error(transparent)]
    Identity(#[from] crate::crypt::IdentityError),
    #[error("--no-owner (verify.no_owner) needs a custom, directory or tar backup: a plain SQL backup sets its owners and privileges in its own statements; restore it into a server that has the backup's roles")]
    NoOwnerPlainSql,
    #[error("the drill target {target} is the job's own database; give a scratch database")]
    DrillIntoOwn { target: String },
}

/// A backup this restore path cannot handle.
#[derive(Debug, thiserror::Error)]
pub enum Unsupported {
    #[error("cannot tell the format of `{name}` (extension `{chain}`) for a {engine} restore")]
    UnknownFormat {
        name: String,
        chain: String,
        engine: &'static str,
    },
    #[error("a {payload:?} backup cannot be restored by a {engine} job")]
    Payload {
        payload: Payload,
        engine: &'static str,
    },
    #[error("redis: a backup cannot be loaded into a running server from a client; use `--to-file PATH` to write the RDB file, then load it as the README describes")]
    RedisIntoServer,
    #[error("a MongoDB drill needs `mongosh` on PATH to count and drop its scratch database")]
    DrillNeedsMongosh,
}

/// Overwriting was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum NotConfirmed {
    #[error("refusing to {question} without confirmation: stdin is not a terminal (pass --yes)")]
    NoTerminal { question: String },
    #[error("restore cancelled")]
    Cancelled,
}

/// The target is not usable as it is.
#[derive(Debug, thiserror::Error)]
pub enum TargetProblem {
    #[error("{program} did not finish within {} minutes", .limit.as_secs() / 60)]
    AdminTimeout {
        program: String,
        limit: std::time::Duration,
    },
    #[error("CREATE EXTENSION postgis as `{admin}`: {source}")]
    Postgis {
        admin: String,
        #[source]
        source: Box<RestoreError>,
    },
    #[error("cannot tell whether {target} holds collections: mongosh did not list them")]
    MongoUnlisted { target: String },
    #[error("backup {backup} needs role{} that the server {server} does not have: {}; {hint}",
        if .missing.len() == 1 { "" } else { "s" }, .missing.join(", "))]
    MissingRoles {
        backup: String,
        server: String,
        missing: Vec<String>,
        /// How to get past it (create the roles, or restore with --no-owner).
        hint: String,
    },
    #[error("the scratch database {target} already {occupied}; a drill restores only into a database it creates (drop it first)")]
    ScratchInUse { target: String, occupied: Occupied },
    #[error("the drill restored fine but could not drop its scratch database {target}: {source}")]
    DrillDrop {
        target: String,
        #[source]
        source: Box<RestoreError>,
    },
}

/// Why a drill's scratch database is not free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupied {
    Exists,
    Collections(usize),
}

impl std::fmt::Display for Occupied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Occupied::Exists => f.write_str("exists"),
            Occupied::Collections(n) => write!(f, "holds {n} collection(s)"),
        }
    }
}

/// A check of what was read or restored failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The backup object `key` (read from its remote) is not what its record says.
    #[error("{key}: {problem}")]
    Backup { key: String, problem: BackupProblem },
    /// A local RDB file (`--to-file`) is not a whole RDB file.
    #[error(transparent)]
    RdbFile(RdbProblem),
    #[error("the restored SQLite file {0}")]
    Sqlite(SqliteProblem),
    #[error("counting rows in {path}: {source}")]
    Count {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A blocking check task died (panicked or was cancelled), or its shared state did.
    #[error("{task}: {source}")]
    Task {
        task: &'static str,
        #[source]
        source: TaskFailure,
    },
}

/// How an in-process check task failed to finish.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    /// Another thread panicked while holding the check's state.
    #[error("its state was poisoned by a panic")]
    Poisoned,
}

/// How a restore tool ended, typed (shown as "exit 3", "killed by signal 9", …).
#[derive(Debug, thiserror::Error)]
pub enum ToolEnd {
    #[error("{0}")]
    Exited(crate::proc::status::ExitReason),
    /// It exited 0 while the restore was still writing to it: it did not take the whole stream.
    #[error("exit 0 before reading all of its input")]
    StoppedReading,
    /// Waiting for it failed.
    #[error("{0}")]
    Wait(#[source] std::io::Error),
}

impl ToolEnd {
    pub fn of(status: std::process::ExitStatus) -> Self {
        ToolEnd::Exited(crate::proc::status::ExitReason::of(status))
    }
}

/// How a backup object differs from its record.
#[derive(Debug, thiserror::Error)]
pub enum BackupProblem {
    #[error("the record's file list does not match its own digest")]
    RecordDigest,
    #[error("unsafe path `{path}` in the record")]
    UnsafePath { path: String },
    #[error(transparent)]
    Folder(#[from] FolderProblem),
    #[error("the data does not start with the {payload:?} signature")]
    Signature { payload: Payload },
    #[error(transparent)]
    Rdb(#[from] RdbProblem),
    #[error("does not match its record (corrupted or replaced)")]
    Mismatch,
    #[error("the tar holds no toc.dat (not a pg_dump folder)")]
    NoToc,
}

/// How a downloaded `directory` backup differs from its record's file list.
#[derive(Debug, thiserror::Error)]
pub enum FolderProblem {
    #[error("{path}: missing ({source})")]
    Missing {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has {size} bytes, its record says {expected} (truncated or replaced)")]
    Size {
        path: String,
        size: u64,
        expected: u64,
    },
    #[error(
        "{path}: sha256 {sha256} does not match its record's {expected} (corrupted or replaced)"
    )]
    Digest {
        path: String,
        sha256: String,
        expected: String,
    },
    #[error("{present} files in the folder, its record names {named}")]
    Count { present: usize, named: usize },
}

/// Why a restored SQLite file is refused.
#[derive(Debug, thiserror::Error)]
pub enum SqliteProblem {
    #[error("does not open: {0}")]
    Open(#[source] rusqlite::Error),
    #[error("is not a database: {0}")]
    NotADatabase(#[source] rusqlite::Error),
    #[error("fails its integrity check: {verdict}")]
    Integrity { verdict: String },
}

impl CheckError {
    pub(crate) fn backup(key: &str, problem: impl Into<BackupProblem>) -> Self {
        CheckError::Backup {
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn task(task: &'static str, e: impl Into<TaskFailure>) -> Self {
        CheckError::Task {
            task,
            source: e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts users and tests match stay word for word what they were.
    #[test]
    fn messages_read_as_before() {
        let e = RestoreError::from(NotConfirmed::NoTerminal {
            question: "overwrite db".into(),
        });
        assert_eq!(
            e.to_string(),
            "refusing to overwrite db without confirmation: stdin is not a terminal (pass --yes)"
        );
        let e = RestoreError::from(TargetProblem::MissingRoles {
            backup: "b1".into(),
            server: "pg:5432".into(),
            missing: vec!["app".into(), "ro".into()],
            hint: "create them".into(),
        });
        assert_eq!(
            e.to_string(),
            "backup b1 needs roles that the server pg:5432 does not have: app, ro; create them"
        );
        let e = RestoreError::from(CheckError::backup("k.sql.gz", BackupProblem::Mismatch));
        assert_eq!(
            e.to_string(),
            "k.sql.gz: does not match its record (corrupted or replaced)"
        );
        let e = RestoreError::from(TargetProblem::AdminTimeout {
            program: "psql".into(),
            limit: std::time::Duration::from_secs(300),
        });
        assert_eq!(e.to_string(), "psql did not finish within 5 minutes");
        let e = RestoreError::from(TargetProblem::ScratchInUse {
            target: "mongo x".into(),
            occupied: Occupied::Collections(2),
        });
        assert!(e
            .to_string()
            .contains("already holds 2 collection(s); a drill"));
    }
}
