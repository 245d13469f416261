//! Point-in-time recovery (PostgreSQL; mysql/mariadb in `binlog` and `binlog_restore`): the WAL stream the supervisor keeps running for each
//! `pitr` job (`stream`), the archiving of each completed segment (`segment`), the recoverable
//! window over the archive (`window`) and `restore --at` into a data directory (`restore_at`).
//! The base backups themselves are ordinary runs of the job (its plan's dump is `pg_basebackup`).

pub mod archive;
pub mod binlog;
pub mod binlog_restore;
pub mod error;
pub mod label;
pub mod restore_at;
pub mod retention;
pub mod segment;
pub mod stream;
pub mod verify;
pub mod window;

pub use error::PitrError;
