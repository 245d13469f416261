//! The closed sets of names a manifest chooses from (engine, mode, compression, dump format,
//! log settings, notifier kinds and events). serde + schemars like `manifest::types`, which reads
//! them; kept here so that the model and the engines below `manifest` can name them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
// The aliases are valid values too (serde accepts them; schemars lists only the names).
#[schemars(extend("enum" = [
    "postgres", "pg", "postgresql", "postgis", "mysql", "mariadb", "mongo", "mongodb", "redis",
    "sqlite"
]))]
pub enum Engine {
    #[serde(alias = "pg", alias = "postgresql")]
    Postgres,
    Postgis,
    Mysql,
    Mariadb,
    #[serde(alias = "mongodb")]
    Mongo,
    Redis,
    Sqlite,
}

impl Engine {
    /// Every engine, in declaration order.
    pub const ALL: [Engine; 7] = [
        Engine::Postgres,
        Engine::Postgis,
        Engine::Mysql,
        Engine::Mariadb,
        Engine::Mongo,
        Engine::Redis,
        Engine::Sqlite,
    ];

    /// The engine a manifest's `engine:` value names (aliases included), as serde reads it.
    pub fn from_name(name: &str) -> Option<Engine> {
        use serde::de::value::{Error, StrDeserializer};
        Engine::deserialize(StrDeserializer::<Error>::new(name)).ok()
    }

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
    /// A `pitr` job's WAL stream went down (once, not per retry).
    StreamFailure,
    /// A `pitr` job's WAL stream runs again after a `stream_failure`.
    StreamRecovered,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}
