//! mysqldump / mariadb-dump. The password goes in a 0600 `--defaults-extra-file` (MYSQL_PWD is
//! deprecated in MySQL 8); `--no-tablespaces` avoids the PROCESS-privilege error on MySQL 8.

use crate::manifest::model::{Engine, Job};
use crate::plan::command::{CommandSpec, PrivateFile, RUN_DIR};
use crate::secret::Secret;

pub const OPTION_FILE: &str = "client.cnf";

fn option_file(pw: &Secret) -> PrivateFile {
    let escaped = pw.expose().replace('\\', "\\\\").replace('"', "\\\"");
    PrivateFile {
        name: OPTION_FILE.into(),
        contents: Secret::new(format!("[client]\npassword=\"{escaped}\"\n")),
    }
}

/// Connection flags for the dump and the client (the option file must come first).
pub fn connect(c: &mut CommandSpec, job: &Job) {
    let conn = &job.connection;
    if let Some(pw) = &conn.password {
        c.arg(format!("--defaults-extra-file={RUN_DIR}/{OPTION_FILE}"));
        c.files.push(option_file(pw));
    }
    if let Some(sock) = conn.params.get("socket") {
        c.arg(format!("--socket={sock}"));
    } else {
        if let Some(h) = &conn.host {
            c.arg(format!("--host={h}"));
        }
        if let Some(p) = conn.port {
            c.arg(format!("--port={p}"));
        }
    }
    if let Some(u) = &conn.user {
        c.arg(format!("--user={u}"));
    }
    for (param, flag) in [
        ("ssl-ca", "--ssl-ca"),
        ("ssl-cert", "--ssl-cert"),
        ("ssl-key", "--ssl-key"),
        ("ssl-mode", "--ssl-mode"),
    ] {
        if let Some(v) = conn.params.get(param) {
            c.arg(format!("{flag}={v}"));
        }
    }
    if conn.tls && !conn.params.contains_key("ssl-mode") {
        c.arg("--ssl");
    }
}

pub fn program(engine: Engine, mariadb: &str, mysql: &str) -> String {
    if engine == Engine::Mariadb {
        mariadb
    } else {
        mysql
    }
    .to_string()
}

pub fn dump(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new(program(job.engine, "mariadb-dump", "mysqldump"));
    connect(&mut c, job);
    for flag in [
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--no-tablespaces",
    ] {
        c.arg(flag);
    }
    super::push_user_args(&mut c, job);
    c.arg("--");
    c.arg(job.connection.database.clone().unwrap_or_default());
    c
}

/// The `mysql`/`mariadb` client restoring a dump read from stdin into `job`'s database.
pub fn restore(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new(program(job.engine, "mariadb", "mysql"));
    connect(&mut c, job);
    c.arg("--binary-mode");
    for a in &job.restore_args {
        c.arg(a.clone());
    }
    c.arg(format!(
        "--database={}",
        job.connection.database.clone().unwrap_or_default()
    ));
    c
}

/// The client in batch mode (tab-separated, no headers) for short SQL read from stdin.
pub fn admin(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new(program(job.engine, "mariadb", "mysql"));
    connect(&mut c, job);
    c.arg("--batch").arg("--skip-column-names");
    c
}

/// Schemas that are the server's own, never backed up by `database: "*"`.
pub const SYSTEM_SCHEMAS: &[&str] = &["information_schema", "performance_schema", "mysql", "sys"];

/// `SHOW DATABASES`, one name per line.
pub fn list_databases(job: &Job) -> CommandSpec {
    let mut c = admin(job);
    c.arg("--execute=SHOW DATABASES");
    c
}
