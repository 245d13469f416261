//! The validated manifest: every value parsed, every reference checked, every secret wrapped.
//! Built only by `resolve`; everything downstream (plans, runs, notifications) reads this.

pub mod connection;
pub mod kinds;

use crate::domain::schedule::Schedule;
use crate::secret::Secret;
pub use connection::Connection;
pub use kinds::{
    Compress, DumpFormat, Engine, LogFormat, LogLevel, Mode, NotifierKind, NotifyOn, SmtpSecurity,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    /// sha256 of the manifest text, for reload detection and /metrics.
    pub hash: String,
    pub settings: Settings,
    pub remotes: BTreeMap<String, Remote>,
    pub notifiers: BTreeMap<String, Notifier>,
    pub jobs: BTreeMap<String, Job>,
    pub warnings: Vec<crate::domain::diag::Diagnostic>,
}

/// An IANA zone with its name (jiff's `TimeZone` has no stable name for comparisons).
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub tz: jiff::tz::TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Zone {
    pub fn utc() -> Self {
        Zone {
            name: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    pub fn get(name: &str) -> Result<Self, String> {
        jiff::tz::TimeZone::get(name)
            .map(|tz| Zone {
                name: name.to_string(),
                tz,
            })
            .map_err(|_| format!("unknown time zone `{name}` (use an IANA name such as `Europe/Berlin` or `UTC`)"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub timezone: Zone,
    pub max_parallel: usize,
    pub temp_dir: PathBuf,
    pub health_listen: Option<String>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    pub rclone: RcloneSettings,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RcloneSettings {
    pub binary: String,
    pub config_file: Option<PathBuf>,
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RemoteKind {
    /// `remote:path` handed to rclone.
    Rclone(String),
    /// A local folder written natively.
    Local(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub name: String,
    pub kind: RemoteKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTarget {
    pub name: String,
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    pub max_files: u32,
    pub max_days: u32,
    /// keep_last/hourly/daily/weekly/monthly/yearly, in the job's time zone.
    pub gfs: crate::domain::gfs::Gfs,
}

impl Retention {
    pub fn is_unlimited(&self) -> bool {
        self.max_files == 0 && self.max_days == 0 && !self.gfs.is_set()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub pre: Option<String>,
    pub post: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verify {
    pub schedule: Option<Schedule>,
    pub restore_to: Option<Secret>,
    /// age identity file for drills of encrypted backups.
    pub identity_file: Option<PathBuf>,
    /// postgres: drills restore without owners and privileges.
    pub no_owner: bool,
}

/// `pitr:` of an enabled job: the stream's slot and how long it may be down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pitr {
    pub slot: String,
    pub max_lag: Duration,
}

/// Where a resolved job value came from (`plan` shows it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "name")]
pub enum Origin {
    Builtin,
    Defaults,
    Template(String),
    Job,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::Defaults => f.write_str("defaults"),
            Origin::Template(t) => write!(f, "template {t}"),
            Origin::Job => f.write_str("job"),
        }
    }
}

/// Which databases a job backs up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "select", content = "names")]
pub enum Databases {
    /// The one in `connection.database` (or the engine's whole server for redis/sqlite/mongo).
    #[default]
    One,
    /// Every database the server lists (minus system ones and `exclude`), found at run time.
    All,
    /// These, minus `exclude`.
    List(Vec<String>),
}

impl Databases {
    pub fn is_many(&self) -> bool {
        !matches!(self, Databases::One)
    }
}

/// `encrypt:` — age recipients (public keys; nothing secret lives on the backup host).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Encrypt {
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub engine: Engine,
    pub connection: Connection,
    pub auth_source: Option<String>,
    pub remotes: Vec<RemoteTarget>,
    /// Folder template under the remote.
    pub path: String,
    /// None: the job runs only when asked (`dbstash backup`).
    pub schedule: Option<Schedule>,
    pub timezone: Zone,
    pub mode: Mode,
    /// Object name template, without extension.
    pub name_template: String,
    pub compress: Compress,
    pub compress_level: Option<i32>,
    pub format: DumpFormat,
    pub timeout: Duration,
    pub retention: Retention,
    pub notify: Vec<String>,
    pub run_on_start: bool,
    pub hooks: Hooks,
    pub dump_args: Vec<String>,
    pub restore_args: Vec<String>,
    pub admin_user: Option<String>,
    pub stale_after: Option<Duration>,
    pub verify: Option<Verify>,
    pub allow_empty: bool,
    pub expected_size: Option<u64>,
    pub databases: Databases,
    /// Glob patterns (`*`, `?`) of databases to skip when several are backed up.
    pub exclude: Vec<String>,
    /// postgres: also store `pg_dumpall --globals-only`.
    pub globals: bool,
    /// Several databases: how many are backed up at the same time (1 = one after another).
    pub parallel: usize,
    pub encrypt: Option<Encrypt>,
    /// Continuous archiving (`pitr.enabled: true`).
    pub pitr: Option<Pitr>,
    /// Top-level key → where its value came from.
    pub origins: BTreeMap<String, Origin>,
}

impl Job {
    /// Every secret this job carries (for scrubbing tool output).
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut s: Vec<&Secret> = self.connection.password.iter().collect();
        if let Some(v) = &self.verify {
            s.extend(v.restore_to.iter());
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
    pub url: Option<Secret>,
    pub on: BTreeSet<NotifyOn>,
    pub message: Option<String>,
    pub timeout: Duration,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub smtp: Option<Smtp>,
    pub headers: BTreeMap<String, String>,
    pub secret: Option<Secret>,
}

impl Notifier {
    /// Does this notifier want to hear about `event`?
    pub fn wants(&self, event: NotifyOn) -> bool {
        self.on.contains(&event)
            || (self.on.contains(&NotifyOn::Always)
                && matches!(event, NotifyOn::Success | NotifyOn::Failure))
    }
}
