//! pg_dump: plain SQL by default, custom format (`-Fc -Z0`, compressed by dbstash) with `native`.
//! The password travels in PGPASSWORD on the child only; TLS options become libpq env vars.

use crate::domain::command::{CommandSpec, EnvValue};
use crate::model::{Compress, DumpFormat, Job, Mode};

/// URI query options → the libpq environment variable that carries them.
pub const LIBPQ_PARAMS: &[(&str, &str)] = &[
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslcrl", "PGSSLCRL"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
];

/// Connection flags and env shared by pg_dump, psql and pg_restore.
pub fn connect(c: &mut CommandSpec, job: &Job) {
    let conn = &job.connection;
    c.arg("--no-password");
    if let Some(h) = &conn.host {
        c.arg(format!("--host={h}"));
    }
    if let Some(p) = conn.port {
        c.arg(format!("--port={p}"));
    }
    if let Some(u) = &conn.user {
        c.arg(format!("--username={u}"));
    }
    if let Some(pw) = &conn.password {
        c.env("PGPASSWORD", EnvValue::Secret(pw.clone()));
    }
    for (param, var) in LIBPQ_PARAMS {
        if let Some(v) = conn.params.get(*param) {
            c.env(var, EnvValue::Plain(v.clone()));
        }
    }
    if !conn.params.contains_key("connect_timeout") {
        // An unreachable server should fail the run in seconds, not hang until the job timeout.
        c.env("PGCONNECT_TIMEOUT", EnvValue::Plain("30".into()));
    }
}

pub fn dump(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("pg_dump");
    connect(&mut c, job);
    match (job.mode, job.format) {
        (Mode::Directory | Mode::Tar, _) => {
            // pg_dump writes the folder (in parallel with `--jobs` in dump_args); it compresses
            // each file itself only with `compress: native`.
            c.arg("--format=directory");
            if job.compress != Compress::Native {
                c.arg("--compress=0");
            }
            c.arg(format!("--file={}", super::dump_dir()));
        }
        (_, DumpFormat::Custom) => {
            c.arg("--format=custom");
            c.arg("--compress=0");
        }
        _ => {
            c.arg("--format=plain");
        }
    }
    super::push_user_args(&mut c, job);
    c.arg(dbname_arg(
        job.connection.database.as_deref().unwrap_or_default(),
    ));
    c
}

/// `pg_dumpall --globals-only`: roles and tablespaces (never passwords in argv: PGPASSWORD).
pub fn globals(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("pg_dumpall");
    connect(&mut c, job);
    c.arg("--globals-only");
    c.arg(format!(
        "--database={}",
        job.connection.database.as_deref().unwrap_or(MAINTENANCE_DB)
    ));
    c
}

/// Where a connection goes when no database is named (listing, globals).
pub const MAINTENANCE_DB: &str = "postgres";

/// Every database that accepts connections, templates excluded, one per line.
pub fn list_databases(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("psql");
    connect(&mut c, job);
    for flag in ["-X", "--no-align", "--tuples-only", "--set=ON_ERROR_STOP=1"] {
        c.arg(flag);
    }
    c.arg("--command=SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1");
    c.arg(dbname_arg(MAINTENANCE_DB));
    c
}

/// `--dbname=` value: the bare name, or a quoted conninfo string when the name would otherwise be
/// read as one (libpq expands a dbname containing `=` or starting with a URI prefix).
pub fn dbname_arg(name: &str) -> String {
    let needs_conninfo = name.contains('=')
        || name.starts_with("postgresql://")
        || name.starts_with("postgres://")
        || name.is_empty();
    if needs_conninfo {
        let escaped = name.replace('\\', "\\\\").replace('\'', "\\'");
        format!("--dbname=dbname='{escaped}'")
    } else {
        format!("--dbname={name}")
    }
}

/// Whether a restore recreates the backup's owners and privileges (GRANT/REVOKE, default
/// privileges, large-object ACLs), as a plain-format restore always does, or leaves everything
/// owned by the restoring role (`--no-owner`: for servers that do not have the backup's roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Owners {
    #[default]
    Keep,
    Skip,
}

/// Restore into `job`'s database (already retargeted by the caller): plain SQL through
/// `psql --single-transaction`, custom format through `pg_restore --single-transaction`.
/// The dump arrives on stdin; the password travels in PGPASSWORD as on the dump side.
/// `owners` applies to pg_restore only: plain SQL sets its owners in statements of its own.
pub fn restore(job: &Job, format: DumpFormat, owners: Owners) -> CommandSpec {
    let db = job.connection.database.clone().unwrap_or_default();
    let mut c = match format {
        DumpFormat::Custom => {
            let mut c = CommandSpec::new("pg_restore");
            connect(&mut c, job);
            if owners == Owners::Skip {
                c.arg("--no-owner").arg("--no-acl");
            }
            for flag in [
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
            ] {
                c.arg(flag);
            }
            c
        }
        _ => {
            let mut c = CommandSpec::new("psql");
            connect(&mut c, job);
            for flag in [
                "-X",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
            ] {
                c.arg(flag);
            }
            c
        }
    };
    for a in &job.restore_args {
        c.arg(a.clone());
    }
    c.arg(dbname_arg(&db));
    c
}

/// `pg_restore` reading an archive without a server: its table of contents (`--list`), or with
/// `use_list` the SQL of the entries that list selects (`--file=-`). `archive` is a custom-format
/// file or a directory-format folder; none means stdin.
pub fn archive_text(archive: Option<&str>, use_list: Option<&str>) -> CommandSpec {
    let mut c = CommandSpec::new("pg_restore");
    match use_list {
        None => c.arg("--list"),
        Some(l) => c.arg(format!("--use-list={l}")).arg("--file=-"),
    };
    if let Some(a) = archive {
        c.arg(a);
    }
    c
}

/// Every role of the server, for comparing with the roles a backup names.
pub const ROLES_SQL: &str = "SELECT rolname FROM pg_catalog.pg_roles ORDER BY 1;\n";

/// psql for short administrative SQL read from stdin (unaligned, tuples only), connected to
/// `database` with the job's connection — or, for postgis, as `user` when given.
pub fn admin(job: &Job, database: &str, user: Option<&str>) -> CommandSpec {
    let mut j = job.clone();
    if let Some(u) = user {
        if j.connection.user.as_deref() != Some(u) {
            // Another role: its password is not ours to send (libpq's .pgpass or trust decide).
            j.connection.password = None;
        }
        j.connection.user = Some(u.to_string());
    }
    let mut c = CommandSpec::new("psql");
    connect(&mut c, &j);
    for flag in [
        "-X",
        "--quiet",
        "--no-align",
        "--tuples-only",
        "--set=ON_ERROR_STOP=1",
        "--field-separator=\u{1f}",
        "--record-separator=\u{1e}",
    ] {
        c.arg(flag);
    }
    c.arg(dbname_arg(database));
    c
}

/// A PostgreSQL identifier, double-quoted.
pub fn quote_pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL text value without any quoting rules to get wrong.
pub fn pg_text(value: &str) -> String {
    format!(
        "convert_from(decode('{}', 'hex'), 'UTF8')",
        hex::encode(value)
    )
}

/// Every user table's row count, as `schema.table` US rows RS (psql's admin field and record
/// separators), for drills.
pub const COUNTS_SQL: &str = "SELECT n.nspname || '.' || c.relname, \
     (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
     ORDER BY 1;\n";

/// [`COUNTS_SQL`]'s answer as `(schema.table, rows)`.
pub fn parse_counts(out: &str) -> Vec<(String, u64)> {
    out.split('\u{1e}')
        .filter_map(|rec| {
            let (name, rows) = rec.trim_matches('\n').split_once('\u{1f}')?;
            Some((name.to_string(), rows.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_str;

    #[test]
    fn pg_restore_keeps_owners_and_acls_unless_asked_not_to() {
        let text = "version: 1\nremotes: { l: { path: /tmp/x } }\njobs:\n  j: { remote: l, engine: postgres, uri: 'postgresql://u@h/db' }\n";
        let m = load_str(std::path::Path::new("t.yaml"), text, &|_| None, &|_| {
            Err(std::io::Error::other("no files"))
        })
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics()));
        let job = &m.jobs["j"];
        let skips = |c: &CommandSpec| {
            ["--no-owner", "--no-acl"]
                .iter()
                .filter(|f| c.args.iter().any(|a| a == *f))
                .count()
        };
        assert_eq!(skips(&restore(job, DumpFormat::Custom, Owners::Keep)), 0);
        assert_eq!(skips(&restore(job, DumpFormat::Custom, Owners::Skip)), 2);
        assert_eq!(skips(&restore(job, DumpFormat::Plain, Owners::Skip)), 0);
    }
}

/// Point-in-time recovery: the base backup and the WAL stream.
pub mod pitr {
    use super::connect;
    use crate::domain::command::{CommandSpec, RUN_DIR};
    use crate::model::Job;

    /// `pg_basebackup` of the whole cluster as one tar on stdout. `--wal-method=none`: the WAL it
    /// needs comes from the archive the stream keeps; more tablespaces than one make
    /// pg_basebackup refuse to write to stdout (its own clear error).
    pub fn base_backup(job: &Job) -> CommandSpec {
        let mut c = CommandSpec::new("pg_basebackup");
        connect(&mut c, job);
        for a in [
            "--format=tar",
            "--wal-method=none",
            "--pgdata=-",
            "--checkpoint=fast",
            "--label=dbstash",
        ] {
            c.arg(a);
        }
        c
    }

    /// Create the physical slot the stream reads from, if it is missing.
    pub fn create_slot(job: &Job, slot: &str) -> CommandSpec {
        let mut c = CommandSpec::new("pg_receivewal");
        connect(&mut c, job);
        c.arg(format!("--slot={slot}"));
        c.arg("--create-slot");
        c.arg("--if-not-exists");
        c
    }

    /// Stream WAL from `slot` into the stream's private folder (`{run_dir}`). `--no-loop`: a lost
    /// connection ends the process, and dbstash restarts it with its own bounded backoff.
    pub fn receive(job: &Job, slot: &str) -> CommandSpec {
        let mut c = CommandSpec::new("pg_receivewal");
        connect(&mut c, job);
        c.arg(format!("--slot={slot}"));
        c.arg(format!("--directory={RUN_DIR}"));
        c.arg("--no-loop");
        c
    }
}
