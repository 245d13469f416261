//! pg_dump: plain SQL by default, custom format (`-Fc -Z0`, compressed by dbstash) with `native`.
//! The password travels in PGPASSWORD on the child only; TLS options become libpq env vars.

use crate::manifest::model::{DumpFormat, Job};
use crate::plan::command::{CommandSpec, EnvValue};

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
    match job.format {
        DumpFormat::Custom => {
            c.arg("--format=custom");
            c.arg("--compress=0");
        }
        _ => {
            c.arg("--format=plain");
        }
    }
    super::push_user_args(&mut c, job);
    c.arg(format!(
        "--dbname={}",
        job.connection.database.clone().unwrap_or_default()
    ));
    c
}
