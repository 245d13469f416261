//! SQLite: by default a consistent snapshot taken in-process (bundled SQLite, online backup API),
//! so no `sqlite3` binary is needed; `format: sql` streams the `sqlite3` CLI's `.dump` instead.

use super::DumpSpec;
use crate::manifest::model::{DumpFormat, Job};
use crate::plan::command::CommandSpec;
use std::path::PathBuf;

pub fn dump(job: &Job) -> DumpSpec {
    let path = PathBuf::from(job.connection.database.clone().unwrap_or_default());
    match job.format {
        DumpFormat::Sql => {
            let mut c = CommandSpec::new("sqlite3");
            c.arg("-readonly");
            super::push_user_args(&mut c, job);
            c.arg(path.to_string_lossy().into_owned());
            c.arg(".dump");
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
