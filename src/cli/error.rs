//! The command line's one error path: a command returns `Result<ExitCode, CliError>`; an `Ok`
//! code is the command's own outcome (it has printed what happened, e.g. which jobs failed), a
//! `CliError` is why it could not do its work, printed once by `cli::main` with its exit code.

use crate::error::exit;
use crate::manifest::LoadError;
use crate::plan::PlanError;
use std::path::PathBuf;

/// A process exit code: one of `crate::error::exit` (0 ok, 1 failed, 2 invalid input).
pub type ExitCode = i32;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The manifest did not load: its diagnostics, one line each at their place.
    #[error("{source}")]
    Manifest {
        source: LoadError,
        /// `notify test` has always answered a broken manifest with 1, the others with 2.
        code: ExitCode,
    },
    /// The jobs asked for cannot be planned (`-j` names no job, …): `CONFIG: message`.
    #[error("{}: {source}", .config.display())]
    Plan {
        config: PathBuf,
        #[source]
        source: PlanError,
    },
    /// `restore`/`verify` name one job that the manifest does not have.
    #[error("{}: no job named `{job}` in the manifest", .config.display())]
    NoSuchJob { config: PathBuf, job: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A command line that cannot be carried out (exit 2); the message names the flag.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// `dbstash health`: why the endpoint is not healthy or cannot be asked (exit 1).
    #[error("{0}")]
    Health(#[from] super::health::HealthError),
}

/// Flags that do not fit the manifest or each other.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Pick(#[from] super::PickError),
    #[error("{0}")]
    Target(#[from] super::restore::TargetUriError),
    #[error("{0}")]
    Now(#[from] super::plan::NowError),
    #[error("job {job} backs up several databases: pass --database NAME (see `dbstash list --job {job}`)")]
    SeveralDatabases { job: String },
    #[error("the {db} backup holds roles and tablespaces, which belong to the whole server and usually exist already; download it (`dbstash verify` checks it) and apply what you need with `psql -f`", db = crate::plan::GLOBALS_DB)]
    Globals,
    #[error("job {job} has `pitr`: its backups are base backups of the whole server, restored with `dbstash restore {job} --at TIME|latest --to-dir DIR`")]
    PitrJob { job: String },
    #[error("job `{job}` has no `pitr: {{ enabled: true }}`: use `restore` without `--at`")]
    NotPitr { job: String },
    #[error("restore --at of job {job} ({engine}) {needs}")]
    AtTarget {
        job: String,
        engine: &'static str,
        needs: &'static str,
    },
    #[error(
        "--at {at}: not an instant (RFC 3339 such as 2026-12-01T10:15:00Z, or `latest`): {source}"
    )]
    Instant {
        at: String,
        #[source]
        source: jiff::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Manifest { code, .. } => *code,
            CliError::Plan { .. } | CliError::NoSuchJob { .. } | CliError::Usage(_) => {
                exit::INVALID
            }
            CliError::Runtime(_) | CliError::Health(_) => exit::FAILED,
        }
    }

    /// Print the error the way its kind always has: manifest diagnostics one per line, plan
    /// errors as `CONFIG: message`, `dbstash health: …` for the health check, and the rest as a
    /// command error line (`dbstash: …`, or an ERROR log line when the logs are JSON).
    pub fn report(&self) {
        match self {
            CliError::Manifest { source, .. } => {
                crate::logging::print_diagnostics(&source.diagnostics(), None)
            }
            CliError::Plan { .. } | CliError::NoSuchJob { .. } => eprintln!("{self}"),
            CliError::Runtime(_) => eprintln!("dbstash: {self}"),
            CliError::Health(e) => eprintln!("dbstash health: {e}"),
            CliError::Usage(_) => crate::logging::print_error(&self.to_string()),
        }
    }
}
