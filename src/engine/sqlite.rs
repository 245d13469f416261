//! SQLite: by default a consistent snapshot taken in-process (bundled SQLite, online backup API,
//! see `run::sqlite`), so no `sqlite3` binary is needed; `format: sql` streams the `sqlite3` CLI's
//! `.dump` instead, followed by the header values `.dump` leaves out.

use super::DumpSpec;
use crate::domain::command::CommandSpec;
use crate::model::{DumpFormat, Job};
use std::path::PathBuf;

/// Prints `PRAGMA user_version=N;` and `PRAGMA application_id=M;`: `.dump` omits both, and
/// migration tools read `user_version` to know which migrations a database has had.
const HEADER_PRAGMAS: &str =
    "SELECT 'PRAGMA user_version=' || user_version || ';' FROM pragma_user_version \
     UNION ALL SELECT 'PRAGMA application_id=' || application_id || ';' FROM pragma_application_id";

pub fn dump(job: &Job) -> DumpSpec {
    let path = PathBuf::from(job.connection.database.clone().unwrap_or_default());
    match job.format {
        DumpFormat::Sql => {
            let mut c = CommandSpec::new("sqlite3");
            c.arg("-readonly");
            super::push_user_args(&mut c, job);
            c.arg(path.to_string_lossy().into_owned());
            // One read transaction around the dump and the pragmas, so both describe one version
            // of the database. The pragmas come after `.dump`'s COMMIT as plain SQL lines; list
            // mode without headers whatever `dump_args` chose, so they print as written.
            for a in [
                "BEGIN",
                ".dump",
                ".mode list",
                ".headers off",
                HEADER_PRAGMAS,
                "COMMIT",
            ] {
                c.arg(a);
            }
            DumpSpec::Command(c)
        }
        _ => DumpSpec::SqliteSnapshot { path },
    }
}

/// `sqlite3 -bail FILE` reading SQL (a `.dump`) from stdin into a new database file.
pub fn restore_sql(job: &Job, file: &std::path::Path) -> CommandSpec {
    let mut c = CommandSpec::new("sqlite3");
    c.arg("-bail");
    for a in &job.restore_args {
        c.arg(a.clone());
    }
    c.arg(file.to_string_lossy().into_owned());
    c
}

/// The user tables of a SQLite database, for drills.
pub const TABLES_SQL: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";

/// Count one table's rows (the name quoted).
pub fn count_sql(table: &str) -> String {
    format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""))
}
