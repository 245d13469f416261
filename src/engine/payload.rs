//! What each engine's dump files are: the payload an object's extensions name, and the bytes
//! a payload starts with. `restore` reads objects by these facts (`restore::layout`).

use crate::model::Engine;

/// The dump format inside the (decompressed) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// PostgreSQL plain SQL (`psql`), MySQL SQL (`mysql`), SQLite `.dump` SQL (`sqlite3`).
    Sql,
    /// pg_dump custom format (`pg_restore`).
    PgCustom,
    /// mongodump archive; `gzip` when mongodump compressed it itself (`--gzip`).
    MongoArchive { gzip: bool },
    /// A Redis RDB snapshot.
    Rdb,
    /// A SQLite database file.
    SqliteFile,
    /// `tar` mode: a tar of the dump tool's folder.
    Tar,
    /// `directory` mode: the dump tool's folder, stored file by file.
    Directory,
}

impl Payload {
    /// Bytes the (decompressed) stream starts with, when the format has a signature.
    pub fn magic(self) -> Option<&'static [u8]> {
        match self {
            Payload::PgCustom => Some(b"PGDMP"),
            Payload::Rdb => Some(b"REDIS"),
            Payload::SqliteFile => Some(b"SQLite format 3\0"),
            Payload::MongoArchive { .. } => Some(&[0x6d, 0xe2, 0x99, 0x81]),
            _ => None,
        }
    }
}

/// The dump-format extensions of every engine (dbstash's own `.tar`, `.gz`, `.zst`, `.age` aside).
pub const EXTENSIONS: &[&str] = &["sql", "dump", "archive", "rdb", "sqlite3", "sqlite", "db"];

/// Is the outermost `.gz` of `exts` the dump tool's own (mongodump `--gzip`: `.archive.gz`)
/// rather than dbstash's?
pub fn tool_compressed(engine: Engine, exts: &[&str]) -> bool {
    engine == Engine::Mongo && exts.ends_with(&["archive", "gz"])
}

/// The payload that `exts` (outermost last, dbstash's compression and encryption removed) names
/// for an `engine` job; `None` when the engine writes no such file.
pub fn of(engine: Engine, exts: &[&str]) -> Option<Payload> {
    Some(match (engine, exts) {
        (_, [.., "tar"]) => Payload::Tar,
        (Engine::Postgres | Engine::Postgis, [.., "dump"]) => Payload::PgCustom,
        (Engine::Postgres | Engine::Postgis, [.., "sql"]) => Payload::Sql,
        (Engine::Mysql | Engine::Mariadb, [.., "sql"]) => Payload::Sql,
        (Engine::Mongo, [.., "archive", "gz"]) => Payload::MongoArchive { gzip: true },
        (Engine::Mongo, [.., "archive"]) => Payload::MongoArchive { gzip: false },
        (Engine::Redis, [.., "rdb"]) => Payload::Rdb,
        (Engine::Sqlite, [.., "sql"]) => Payload::Sql,
        (Engine::Sqlite, [.., "sqlite3" | "sqlite" | "db"]) => Payload::SqliteFile,
        _ => return None,
    })
}
