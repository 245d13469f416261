//! The command line: one file per subcommand, each returning its exit code.

/// `println!`/`print!` for command output: a reader that went away (`dbstash list | head`) ends
/// the command like any Unix tool whose pipe closed — exit 141, nothing on stderr — where
/// `println!` would panic. SIGPIPE itself stays ignored, so a child's closed stdin is an error
/// the pipeline handles, not the death of dbstash.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::out_result(writeln!(std::io::stdout().lock(), $($t)*));
    }};
}
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::out_result(write!(std::io::stdout().lock(), $($t)*));
    }};
}

/// A command's own error line after logging is set up: `dbstash: …` for people, or an ERROR log
/// line when logs are JSON (so `2>&1 | jq` reads every line).
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::logging::print_error(&format!($($t)*))
    };
}

/// Exit code of a process killed by SIGPIPE (128 + 13), which is what scripts expect.
const EXIT_PIPE_CLOSED: i32 = 141;

#[doc(hidden)]
pub fn out_result(r: std::io::Result<()>) {
    match r {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(EXIT_PIPE_CLOSED)
        }
        Err(e) => {
            eprintln!("dbstash: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

mod backup;
mod completions;
mod error;
mod health;
mod list;
mod malloc;
mod notify;
mod plan;
mod prune;
mod render;
mod restore;
mod run;
mod schema;
mod validate;
mod verify;

pub use error::{CliError, ExitCode, UsageError};

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "dbstash",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DBSTASH_GIT_COMMIT"), ")"),
    about = "Back up many databases from one YAML manifest"
)]
pub struct Cli {
    /// The manifest (default ./dbstash.yaml, then /config/dbstash.yaml).
    #[arg(
        short,
        long,
        global = true,
        env = "DBSTASH_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Log format; overrides `settings.log.format` in the manifest.
    #[arg(
        long,
        global = true,
        env = "DBSTASH_LOG_FORMAT",
        value_enum,
        value_name = "FORMAT"
    )]
    pub log_format: Option<crate::model::LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ValidateFormat {
    Text,
    Json,
    Github,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, schema-check and semantically check the manifest; touches nothing.
    Validate {
        #[arg(long, value_enum, default_value = "text")]
        format: ValidateFormat,
        /// Fail (exit 2) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Also check what needs the servers (exit 1 when a check fails): the replication
        /// connection of each `pitr` job.
        #[arg(long)]
        online: bool,
    },
    /// Show what each job would do: commands, object names, next runs, retention. Runs nothing.
    Plan {
        #[arg(long = "job", value_name = "J")]
        jobs: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
        /// Do not list remotes (no "would delete").
        #[arg(long)]
        offline: bool,
    },
    /// Print the manifest's JSON Schema.
    Schema,
    /// The supervisor: schedule every job, hot-reload the manifest, serve health/metrics.
    Run {
        /// Run every selected job once, then exit (0 when all succeeded).
        #[arg(long)]
        once: bool,
        #[arg(long = "job", value_name = "J")]
        jobs: Vec<String>,
    },
    /// Back up the named jobs now (same as `run --once --job J...`).
    Backup {
        #[arg(required = true, value_name = "J")]
        jobs: Vec<String>,
    },
    /// Complete backups on the remote, newest first.
    List {
        #[arg(long, value_name = "J")]
        job: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Stream a backup back into a database.
    Restore {
        #[arg(value_name = "J")]
        job: String,
        /// Backup id (its object name) or `latest`.
        #[arg(long, default_value = "latest")]
        backup: String,
        /// Restore into this database URI instead of the job's own (`${VAR}` is expanded from
        /// the environment: keep passwords out of the process list).
        #[arg(long, value_name = "URI")]
        to: Option<String>,
        /// Read the `--to` URI from this file (one line).
        #[arg(long, value_name = "PATH", conflicts_with = "to")]
        to_uri_file: Option<PathBuf>,
        /// Redis: write the RDB file here (atomically) instead.
        #[arg(long, value_name = "PATH")]
        to_file: Option<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// PostgreSQL: leave out the backup's owners and privileges (everything is owned by the
        /// restoring role), for a server that does not have the backup's roles.
        #[arg(long)]
        no_owner: bool,
        /// `pitr` jobs: recover to this instant (RFC 3339, e.g. 2026-12-01T10:15:00Z) or
        /// `latest` (everything archived).
        /// postgres: with `--to-dir`; mysql/mariadb: with `--to URI` (another database than the
        /// job's: the newest dump before TIME, then the binlog replayed up to TIME) and `--yes`.
        #[arg(long, value_name = "TIME", conflicts_with_all = ["to_file", "no_owner"])]
        at: Option<String>,
        /// postgres `--at`: build a data directory here (absent or empty) that PostgreSQL starts
        /// from, recovers to `--at` and promotes. Run as root, its contents get its owner.
        #[arg(long, value_name = "DIR", requires = "at", conflicts_with_all = ["to", "to_uri_file"])]
        to_dir: Option<PathBuf>,
        #[command(flatten)]
        pick: Pick,
    },
    /// Apply retention now.
    Prune {
        #[arg(long, value_name = "J")]
        job: Option<String>,
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-read a backup and check its size and sha256 against its record.
    Verify {
        #[arg(value_name = "J")]
        job: String,
        /// Backup id, `latest` or `all`.
        #[arg(long, default_value = "latest")]
        backup: String,
        /// Drill: restore into this scratch database, report counts, drop it (`${VAR}` is
        /// expanded from the environment).
        #[arg(long, value_name = "URI")]
        restore_to: Option<String>,
        /// Read the `--restore-to` URI from this file (one line).
        #[arg(long, value_name = "PATH", conflicts_with = "restore_to")]
        restore_to_file: Option<PathBuf>,
        #[command(flatten)]
        pick: Pick,
    },
    /// Notifier tools.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Ask a running supervisor's /healthz (for container health checks).
    Health {
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Emit deployment objects.
    Render {
        #[command(subcommand)]
        command: RenderCommand,
    },
    /// Shell completions.
    Completions { shell: clap_complete::Shell },
    /// Write the man page (roff) to stdout.
    #[command(hide = true)]
    Man,
    /// Names from the manifest for the completion scripts: `jobs` or `notifiers`.
    #[command(name = "__complete", hide = true)]
    Complete { what: String },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through notifier N.
    Test {
        #[arg(value_name = "N")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// A CronJob per job plus the manifest ConfigMap.
    Kubernetes {
        #[arg(long = "job", value_name = "J")]
        jobs: Vec<String>,
        /// Container image for the CronJobs.
        #[arg(long, default_value = "ghcr.io/dbstash/dbstash:all")]
        image: String,
    },
}

pub fn main() -> i32 {
    malloc::tune();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    crate::logging::set_format_override(cli.log_format);
    // Commands that log follow `settings.log.format`; report commands keep text diagnostics.
    crate::logging::set_command_logs(matches!(
        cli.command,
        Command::Run { .. }
            | Command::Backup { .. }
            | Command::Prune { .. }
            | Command::Restore { .. }
            | Command::Notify { .. }
    ));
    let config = crate::manifest::find(cli.config.as_deref());
    let code = match dispatch(cli.command, &config) {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    };
    // The shared `rclone rcd`, if one was started (it would also die with us: PDEATHSIG).
    crate::storage::rcd::shutdown();
    code
}

/// The subcommand, with its flags.
fn dispatch(command: Command, config: &std::path::Path) -> Result<ExitCode, CliError> {
    let config = config.to_path_buf();
    match command {
        Command::Validate {
            format,
            deny_warnings,
            online,
        } => validate::run(&config, format, deny_warnings, online),
        Command::Plan {
            jobs,
            format,
            offline,
        } => plan::run(&config, &jobs, format, offline),
        Command::Schema => schema::run(),
        Command::Run { once, jobs } => run::run(&config, once, &jobs),
        Command::Backup { jobs } => backup::run(&config, &jobs),
        Command::List { job, format } => list::run(&config, job.as_deref(), format),
        Command::Restore {
            job,
            at: Some(at),
            to_dir,
            to,
            to_uri_file,
            yes,
            pick,
            ..
        } => restore::run_at(
            &config,
            &job,
            &at,
            restore::AtTarget {
                dir: to_dir.as_deref(),
                uri: restore::TargetFlags::to(to.as_deref(), to_uri_file.as_deref()),
                yes,
            },
            &pick,
        ),
        Command::Restore {
            job,
            backup,
            to,
            to_uri_file,
            to_file,
            yes,
            no_owner,
            pick,
            ..
        } => restore::run(
            &config,
            &job,
            &backup,
            restore::TargetFlags::to(to.as_deref(), to_uri_file.as_deref()),
            to_file.as_deref(),
            yes,
            no_owner,
            &pick,
        ),
        Command::Prune { job, dry_run } => prune::run(&config, job.as_deref(), dry_run),
        Command::Verify {
            job,
            backup,
            restore_to,
            restore_to_file,
            pick,
        } => verify::run(
            &config,
            &job,
            &backup,
            restore::TargetFlags::restore_to(restore_to.as_deref(), restore_to_file.as_deref()),
            &pick,
        ),
        Command::Notify {
            command: NotifyCommand::Test { name },
        } => notify::test(&config, &name),
        Command::Health { url } => health::run(&config, url.as_deref()),
        Command::Render {
            command: RenderCommand::Kubernetes { jobs, image },
        } => render::kubernetes(&config, &jobs, &image),
        // Shell helpers: their output is the result, and they have no error to report.
        Command::Completions { shell } => Ok(completions::completions(shell)),
        Command::Man => Ok(completions::man()),
        Command::Complete { what } => Ok(completions::names(&config, &what)),
    }
}

/// Which copy of which backup `restore`/`verify` read, and how to decrypt it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Pick {
    /// Read from this remote of the job (default: its first).
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Several-database jobs: the database whose backups to use (`_globals` for roles).
    #[arg(long, value_name = "DB")]
    pub database: Option<String>,
    /// age identity file for encrypted backups (`AGE-SECRET-KEY-1...` lines).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// Why `--remote`/`--database`/`--identity` do not fit the job.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    #[error("job `{job}` has no remote `{remote}` (its remotes: {known})")]
    NoRemote {
        job: String,
        remote: String,
        known: String,
    },
    #[error("job `{job}` backs up one database; --database is for `database: \"*\"`, lists and `globals`")]
    OneDatabase { job: String },
    #[error(transparent)]
    Identity(#[from] crate::crypt::IdentityError),
}

impl Pick {
    /// The plan narrowed to the chosen remote and database, with the identities loaded.
    pub fn apply(&self, plan: crate::plan::JobPlan) -> Result<crate::plan::JobPlan, PickError> {
        let mut plan = match &self.remote {
            Some(r) => plan.on_remote(r).ok_or_else(|| PickError::NoRemote {
                job: plan.job.clone(),
                remote: r.clone(),
                known: plan
                    .remotes
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
            None => plan,
        };
        if let Some(db) = &self.database {
            if !plan.per_database {
                return Err(PickError::OneDatabase { job: plan.job });
            }
            plan = plan.for_database(db);
        }
        if let Some(f) = &self.identity {
            plan.identities = Some(crate::crypt::Identities::load(f)?);
        }
        Ok(plan)
    }
}

/// How a command loads its manifest: the one loader every command that needs plans goes through.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LoadOptions {
    /// Print the manifest's warnings (one line each): the commands about the manifest itself
    /// (`plan`, `run`) do; `list`, `restore`, `prune`, … would repeat every job's advice on each
    /// call.
    pub warnings: bool,
    /// Set up logging from `settings.log` (the commands that log).
    pub logging: bool,
}

/// The manifest, as `opts` says; its errors come back to be printed once by `main`.
pub(crate) fn load(
    config: &std::path::Path,
    opts: LoadOptions,
) -> Result<crate::manifest::Manifest, CliError> {
    let m = crate::manifest::load(config).map_err(|source| CliError::Manifest {
        source,
        code: crate::error::exit::INVALID,
    })?;
    if opts.warnings {
        crate::logging::print_diagnostics(&m.warnings, Some(m.settings.log_format));
    }
    if opts.logging {
        crate::logging::init(m.settings.log_level, m.settings.log_format);
    }
    crate::storage::rcd::set_temp_dir(&m.settings.temp_dir);
    Ok(m)
}

/// `load`, and the plans of `jobs` (every job when empty).
pub(crate) fn load_plans(
    config: &std::path::Path,
    jobs: &[String],
    opts: LoadOptions,
) -> Result<(crate::manifest::Manifest, Vec<crate::plan::JobPlan>), CliError> {
    let m = load(config, opts)?;
    let plans = crate::plan::build_all(&m, jobs).map_err(|source| CliError::Plan {
        config: config.to_path_buf(),
        source,
    })?;
    Ok((m, plans))
}

/// A small runtime for commands that do a little I/O.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}
