//! Per-engine dump (and later restore) commands, built as pure data from a validated job.

mod caps;
pub mod dump_args;
pub mod mongo;
pub mod mysql;
pub mod mysql_pitr;
pub mod payload;
pub mod pg_wrapper;
pub mod postgres;
pub mod redis;
pub mod restore;
pub mod sqlite;
pub mod uri;

pub use caps::{caps, Caps};

use crate::domain::command::CommandSpec;
use crate::model::{Compress, DumpFormat, Engine, Job, Mode};
use serde::Serialize;
use std::path::PathBuf;

/// How the dump's bytes are produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DumpSpec {
    /// An external tool writing the dump to stdout.
    Command(CommandSpec),
    /// SQLite: a consistent copy taken in-process with SQLite's online backup API.
    SqliteSnapshot { path: PathBuf },
}

/// Compression applied in-process by dbstash's relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "codec", rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip { level: u32 },
    Zstd { level: i32 },
}

impl Codec {
    pub fn extension(self) -> &'static str {
        match self {
            Codec::None => "",
            Codec::Gzip { .. } => ".gz",
            Codec::Zstd { .. } => ".zst",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip { .. } => "gzip",
            Codec::Zstd { .. } => "zstd",
        }
    }

    /// The codec a record's `compression` names, for reading (the level does not matter to a
    /// decoder); anything else reads as stored.
    pub fn for_reading(name: &str) -> Codec {
        match name {
            "zstd" => Codec::Zstd { level: 3 },
            "gzip" => Codec::Gzip { level: 6 },
            _ => Codec::None,
        }
    }
}

pub fn dump(job: &Job) -> DumpSpec {
    match job.engine {
        Engine::Postgres | Engine::Postgis => DumpSpec::Command(postgres::dump(job)),
        Engine::Mysql | Engine::Mariadb => DumpSpec::Command(mysql::dump(job)),
        Engine::Mongo => DumpSpec::Command(mongo::dump(job)),
        Engine::Redis => DumpSpec::Command(redis::dump(job)),
        Engine::Sqlite => sqlite::dump(job),
    }
}

/// The folder a `directory`/`tar` dump writes into (inside the run's private folder).
pub fn dump_dir() -> String {
    format!("{}/dump", crate::domain::command::RUN_DIR)
}

/// Does the engine's restore apply a backup all-or-nothing? psql and pg_restore run with
/// `--single-transaction`, and SQLite and Redis restores write a new file that is renamed into
/// place only when complete, so a damaged stream changes nothing. `mysql`/`mariadb` (DDL commits
/// implicitly, every statement autocommits) and `mongorestore --drop` apply what they read as they
/// read it: into a database that already exists they must see nothing before the whole backup has
/// been checked.
pub fn restore_is_atomic(engine: Engine) -> bool {
    match engine {
        Engine::Postgres | Engine::Postgis | Engine::Sqlite | Engine::Redis => true,
        Engine::Mysql | Engine::Mariadb | Engine::Mongo => false,
    }
}

/// The command listing the server's databases, for `database: "*"`.
pub fn list_databases(job: &Job) -> Option<CommandSpec> {
    match job.engine {
        Engine::Postgres | Engine::Postgis => Some(postgres::list_databases(job)),
        Engine::Mysql | Engine::Mariadb => Some(mysql::list_databases(job)),
        Engine::Mongo => Some(mongo::list_databases(job)),
        Engine::Redis | Engine::Sqlite => None,
    }
}

/// Databases that `database: "*"` never includes.
pub fn system_databases(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::Mysql | Engine::Mariadb => mysql::SYSTEM_SCHEMAS,
        Engine::Mongo => mongo::SYSTEM_DATABASES,
        _ => &[],
    }
}

/// The tool's `--version` call, recorded in each backup's record.
/// `PROGRAM --version` of the tool that `dump` runs (a pitr job's base backup is pg_basebackup, so
/// the version asked is the one of the tool that writes the bytes, never a sibling's).
pub fn version_command(dump: &DumpSpec) -> Option<CommandSpec> {
    let program = match dump {
        DumpSpec::Command(c) => c.program.clone(),
        DumpSpec::SqliteSnapshot { .. } => return None,
    };
    let mut c = CommandSpec::new(program);
    c.arg("--version");
    Some(c)
}

/// The extension the dump itself has, before dbstash's compression.
pub fn base_extension(job: &Job) -> &'static str {
    match (job.engine, job.format, job.compress) {
        (Engine::Postgres | Engine::Postgis, DumpFormat::Custom, _) => ".dump",
        (Engine::Postgres | Engine::Postgis, _, _) => ".sql",
        (Engine::Mysql | Engine::Mariadb, _, _) => ".sql",
        (Engine::Mongo, _, Compress::Native) => ".archive.gz",
        (Engine::Mongo, _, _) => ".archive",
        (Engine::Redis, _, _) => ".rdb",
        (Engine::Sqlite, DumpFormat::Sql, _) => ".sql",
        (Engine::Sqlite, _, _) => ".sqlite3",
    }
}

/// dbstash's in-process compression for this job. `native` on postgres is the custom format with
/// pg_dump's own (single-threaded) compression off and multi-threaded zstd in the relay instead.
pub fn codec(job: &Job) -> Codec {
    let level = job.compress_level;
    match (job.compress, job.engine) {
        (Compress::Gzip, _) => Codec::Gzip {
            level: level.map_or(6, |l| l.clamp(1, 9) as u32),
        },
        (Compress::Zstd, _) => Codec::Zstd {
            level: level.unwrap_or(3),
        },
        // In tar/directory modes `native` is pg_dump's own per-file compression.
        (Compress::Native, Engine::Postgres | Engine::Postgis) if job.mode == Mode::Stream => {
            Codec::Zstd {
                level: level.unwrap_or(3),
            }
        }
        (Compress::Native, _) | (Compress::None, _) => Codec::None,
    }
}

/// The object's full extension: dump format (or `.tar`), dbstash's compression, `.age`. A
/// `directory` backup is a folder named without an extension.
pub fn extension(job: &Job) -> String {
    let age = if job.encrypt.is_some() { ".age" } else { "" };
    match job.mode {
        Mode::Stream => format!("{}{}{age}", base_extension(job), codec(job).extension()),
        Mode::Tar => format!(".tar{}{age}", codec(job).extension()),
        Mode::Directory => String::new(),
    }
}

/// Dumps smaller than this (before compression) are suspicious: even an empty database's dump
/// has a header this long. Zero bytes is always a failure unless the job says `allow_empty`.
pub fn min_raw_bytes(job: &Job) -> u64 {
    if job.mode != Mode::Stream {
        // A tar of pg_dump's folder holds at least toc.dat; mongodump at least one metadata file.
        return 64;
    }
    match (job.engine, job.format) {
        (Engine::Postgres | Engine::Postgis, DumpFormat::Custom) => 5, // "PGDMP"
        (Engine::Postgres | Engine::Postgis, _) => 64,
        (Engine::Mysql | Engine::Mariadb, _) => 64,
        (Engine::Mongo, _) => 4,
        (Engine::Redis, _) => 9, // "REDIS0011"
        (Engine::Sqlite, DumpFormat::Sql) => 10,
        (Engine::Sqlite, _) => 512,
    }
}

/// The database name as used in `{db}`: the database, or the SQLite file stem, or the engine
/// (`redis`, `redis3` for database 3).
pub fn db_label(job: &Job) -> String {
    match (job.engine, &job.connection.database) {
        (Engine::Sqlite, Some(p)) => std::path::Path::new(p)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sqlite".into()),
        (Engine::Redis, Some(db)) => format!("redis{db}"),
        (Engine::Redis, None) => "redis".into(),
        (_, Some(db)) => db.clone(),
        (e, None) => e.as_str().to_string(),
    }
}

/// Append the user's extra arguments.
pub(crate) fn push_user_args(c: &mut CommandSpec, job: &Job) {
    for a in &job.dump_args {
        c.arg(a.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest::testing::job;

    #[test]
    fn db_labels_name_the_database_the_file_or_the_engine() {
        let pg = job("engine: postgres, uri: 'postgresql://app@db/shop'");
        assert_eq!(db_label(&pg), "shop");
        let lite = job("engine: sqlite, database: /data/app.db");
        assert_eq!(db_label(&lite), "app");
        let rd = job("engine: redis, uri: 'redis://db:6379/3'");
        assert_eq!(db_label(&rd), "redis3");
        let mut rd0 = rd.clone();
        rd0.connection.database = None;
        assert_eq!(db_label(&rd0), "redis");
        let mut mg = job("engine: mongo, uri: 'mongodb://db/shop'");
        mg.connection.database = None;
        assert_eq!(db_label(&mg), "mongo");
    }
}
