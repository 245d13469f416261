//! The manifest as written: serde + schemars types. `schema/dbstash.schema.json` is generated from
//! these, and the loader validates documents against that schema, so the two cannot drift.
//!
//! Every job key is optional here because `defaults`, `templates` and `jobs` share one type
//! (`JobDoc`): precedence is defaults < template < job, key by key. Whether the merged job is
//! complete is checked in `resolve`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A dbstash manifest (version 1).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "dbstash manifest")]
pub struct ManifestDoc {
    /// Manifest format version; always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    #[serde(default)]
    pub settings: SettingsDoc,
    /// Inherited by every job; a template or the job itself may override any key.
    #[serde(default)]
    pub defaults: JobDoc,
    /// Named job presets: a job says `template: NAME`.
    #[serde(default)]
    pub templates: BTreeMap<String, JobDoc>,
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteDoc>,
    #[serde(default)]
    pub notifiers: BTreeMap<String, NotifierDoc>,
    #[serde(default)]
    pub jobs: BTreeMap<String, JobDoc>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsDoc {
    /// IANA time zone for schedules and `{date}`/`{time}` (default UTC).
    pub timezone: Option<String>,
    /// Jobs running at the same time (default 2).
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
    /// Work folder: locks, option files, directory/tar modes (default /tmp/dbstash).
    pub temp_dir: Option<String>,
    /// Serve /healthz, /readyz and /metrics; absent = off.
    pub health: Option<HealthDoc>,
    pub log: Option<LogDoc>,
    pub rclone: Option<RcloneDoc>,
    /// How long running backups may finish after SIGTERM (default 30s).
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthDoc {
    /// `HOST:PORT` to listen on, e.g. `0.0.0.0:8080`.
    pub listen: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogDoc {
    pub level: Option<LogLevel>,
    pub format: Option<LogFormat>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RcloneDoc {
    /// rclone.conf to use (default: rclone's own lookup, which honours RCLONE_CONFIG_* variables).
    pub config_file: Option<String>,
    /// Extra flags for every rclone call, e.g. `["--s3-upload-concurrency=8"]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// The rclone program (default `rclone` on PATH).
    pub binary: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    Postgis,
    Mysql,
    Mariadb,
    Mongo,
    Redis,
    Sqlite,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Postgis => "postgis",
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
            Engine::Mongo => "mongo",
            Engine::Redis => "redis",
            Engine::Sqlite => "sqlite",
        }
    }

    pub fn is_postgres(self) -> bool {
        matches!(self, Engine::Postgres | Engine::Postgis)
    }

    pub fn is_mysql(self) -> bool {
        matches!(self, Engine::Mysql | Engine::Mariadb)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Stream,
    Directory,
    Tar,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::Directory => "directory",
            Mode::Tar => "tar",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compress {
    #[default]
    None,
    Gzip,
    Zstd,
    /// The dump tool's own format/compression (postgres custom format, mongodump --gzip).
    Native,
}

/// Output format of the dump where an engine has a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    /// postgres: plain SQL (`.sql`).
    Plain,
    /// postgres: custom archive for pg_restore (`.dump`).
    Custom,
    /// sqlite: a consistent binary snapshot taken in-process (default; `.sqlite3`).
    Snapshot,
    /// sqlite: SQL text from the `sqlite3` CLI's `.dump` (`.sql`).
    Sql,
}

/// One name, or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A remote reference in a job's `remote:` list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RemoteRef {
    Name(String),
    Entry(RemoteRefEntry),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteRefEntry {
    pub name: String,
    /// A failed upload to an optional remote does not fail the run.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionDoc {
    /// Keep at most this many complete backups (0 = unlimited).
    pub max_files: Option<u32>,
    /// Delete complete backups older than this many days (0 = unlimited).
    pub max_days: Option<u32>,
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HooksDoc {
    /// `sh -c` before the dump; non-zero exit aborts the run as a failure.
    pub pre: Option<String>,
    /// `sh -c` after every run, with DBSTASH_STATUS set.
    pub post: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyDoc {
    /// When to run the test-restore drill.
    pub schedule: Option<String>,
    /// Scratch database the drill restores into (dropped afterwards).
    pub restore_to: Option<String>,
    /// age identity file, for drills of an encrypted job (keep it off the backup host otherwise).
    pub identity_file: Option<String>,
    /// postgres: drills restore without the backup's owners and privileges (`restore --no-owner`),
    /// for a scratch server that does not have the backup's roles (default false).
    pub no_owner: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptDoc {
    /// age public keys (`age1...`); every backup can be read by any of them.
    #[serde(default)]
    pub age_recipients: Vec<String>,
    /// A file of age public keys, one per line (`#` comments allowed).
    pub age_recipients_file: Option<String>,
}

/// A backup job (also the shape of `defaults` and of each template).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobDoc {
    /// Name of a preset under `templates`.
    pub template: Option<String>,
    pub engine: Option<Engine>,
    /// Connection URI (a secret: it may hold the password).
    pub uri: Option<String>,
    /// File holding the connection URI.
    pub uri_file: Option<String>,
    pub host: Option<String>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    /// Database name; `"*"` or a list backs up several (one backup each).
    pub database: Option<OneOrMany<String>>,
    /// Glob patterns of databases to skip when `database` is `"*"` or a list.
    pub exclude: Option<Vec<String>>,
    /// postgres: also store `pg_dumpall --globals-only` (roles, tablespaces).
    pub globals: Option<bool>,
    /// mongo: authentication database (default `admin`).
    pub auth_source: Option<String>,
    /// Remote name, or a list of remotes (one dump, several uploads).
    pub remote: Option<OneOrMany<RemoteRef>>,
    /// Folder under the remote; name tokens allowed.
    pub path: Option<String>,
    /// Cron: 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly.
    pub schedule: Option<String>,
    /// IANA time zone for this job (default: settings.timezone).
    pub timezone: Option<String>,
    pub mode: Option<Mode>,
    /// Object name template: {job} {db} {engine} {date} {time} {ts} {uuid}; the extension is added.
    pub name: Option<String>,
    pub compress: Option<Compress>,
    /// Compression level (gzip 1-9, zstd 1-19).
    pub compress_level: Option<i32>,
    pub format: Option<DumpFormat>,
    /// Kill the run after this long, e.g. `1h`.
    pub timeout: Option<String>,
    pub retention: Option<RetentionDoc>,
    /// Notifier names.
    pub notify: Option<Vec<String>>,
    /// Run once right when the supervisor starts.
    pub run_on_start: Option<bool>,
    pub hooks: Option<HooksDoc>,
    /// Extra arguments for the dump tool.
    pub dump_args: Option<Vec<String>>,
    /// Extra arguments for the restore tool.
    pub restore_args: Option<Vec<String>>,
    /// postgis: role that creates the extension before a restore.
    pub admin_user: Option<String>,
    /// /healthz reports the job when it has not succeeded for this long, e.g. `8h`.
    pub stale_after: Option<String>,
    pub verify: Option<VerifyDoc>,
    pub encrypt: Option<EncryptDoc>,
    /// Accept an empty or tiny dump as a success (default false).
    pub allow_empty: Option<bool>,
    /// Expected size of one backup (e.g. `200GiB`): sizes rclone's S3 chunks for very large streams.
    pub expected_size: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteDoc {
    /// Any rclone remote path, e.g. `s3-crypt:backups`.
    pub rclone: Option<String>,
    /// A local folder (no rclone needed).
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    Slack,
    Discord,
    Email,
    Webhook,
    Healthchecks,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    Failure,
    Success,
    Always,
    Start,
    ConfigError,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpDoc {
    pub host: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    pub security: Option<SmtpSecurity>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    /// Extra CA certificate (PEM) to trust, e.g. for a private relay.
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifierDoc {
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    /// Webhook / healthchecks URL (a secret: it often carries a token).
    pub url: Option<String>,
    pub url_file: Option<String>,
    /// failure | success | always | start | config_error, or a list (default failure).
    pub on: Option<OneOrMany<NotifyOn>>,
    /// Handlebars text replacing the default message.
    pub message: Option<String>,
    /// Seconds before one delivery attempt is abandoned (default 10s).
    pub timeout: Option<String>,
    /// email: sender.
    pub from: Option<String>,
    /// email: recipients.
    pub to: Option<Vec<String>>,
    pub smtp: Option<SmtpDoc>,
    /// webhook: extra HTTP headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// webhook: HMAC-SHA256 key; the body's signature goes in `X-Dbstash-Signature`.
    pub secret: Option<String>,
    pub secret_file: Option<String>,
}
