//! mysqldump / mariadb-dump. The password goes in a 0600 `--defaults-extra-file` (MYSQL_PWD is
//! deprecated in MySQL 8); `--no-tablespaces` avoids the PROCESS-privilege error on MySQL 8.

use crate::domain::command::{CommandSpec, PrivateFile, RUN_DIR};
use crate::model::{Engine, Job};
use crate::secret::Secret;

pub const OPTION_FILE: &str = "client.cnf";

pub(crate) fn option_file(pw: &Secret) -> PrivateFile {
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
    if job.pitr.is_some() {
        // The snapshot's binlog position, as a comment in the dump's head (read as it passes).
        c.arg(super::mysql_pitr::POSITION_FLAG);
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

/// A database's default character set and collation, read at backup time and recorded with the
/// backup: a single-database dump has no `CREATE DATABASE`, so without it a database that a
/// restore creates would get the server's defaults instead of the source's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbCharset {
    pub character_set: String,
    pub collation: String,
}

impl DbCharset {
    /// `CHARACTER SET cs COLLATE co` for `CREATE DATABASE`; none when a name is not a plain
    /// identifier (a record is read from a remote: nothing in it is interpolated unchecked).
    pub fn create_options(&self) -> Option<String> {
        let plain =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        (plain(&self.character_set) && plain(&self.collation)).then(|| {
            format!(
                "CHARACTER SET {} COLLATE {}",
                self.character_set, self.collation
            )
        })
    }

    /// The client's batch output: `charset\tcollation`.
    fn parse(out: &str) -> Option<Self> {
        let (cs, co) = out.lines().next()?.split_once('\t')?;
        let c = DbCharset {
            character_set: cs.trim().to_string(),
            collation: co.trim().to_string(),
        };
        c.create_options().map(|_| c)
    }
}

/// The SQL reading `database`'s defaults (the name as a hex literal: never interpolated raw).
pub fn charset_sql(database: &str) -> String {
    format!(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE CAST(SCHEMA_NAME AS BINARY) = X'{}';\n",
        hex::encode(database)
    )
}

/// Read the job's database defaults (option file in `dir`, a private folder this creates).
/// Best effort: `None` (and a warning) when the server does not answer; the backup goes on and a
/// restore then creates its target with the server's defaults, as before.
pub async fn source_charset(job: &Job, dir: &std::path::Path) -> Option<DbCharset> {
    if !matches!(job.engine, Engine::Mysql | Engine::Mariadb) {
        return None;
    }
    let db = job.connection.database.as_deref()?;
    let mut spec = admin(job);
    spec.arg(format!("--execute={}", charset_sql(db)));
    match query(&spec, dir).await {
        Ok(out) => DbCharset::parse(&out),
        Err(e) => {
            tracing::warn!(job = %job.name, event = "charset_unknown", error = %e, "cannot read the database's default character set; a restore that creates its target uses the server's");
            None
        }
    }
}

async fn query(spec: &CommandSpec, dir: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    let out = async {
        crate::proc::write_private_files(dir, spec)?;
        let mut cmd = crate::proc::command(spec, Some(dir));
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let group = crate::proc::ProcGroup::new();
        let child = group.spawn(&mut cmd)?;
        let waited =
            tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
                .await;
        group.kill();
        let out = waited.map_err(|_| std::io::Error::other("no answer within 30 seconds"))??;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{} {}",
                crate::proc::describe_status(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
    .await;
    let _ = std::fs::remove_dir_all(dir);
    out
}

/// A MySQL identifier, backquoted.
pub fn quote_mysql_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A MySQL binary string literal.
pub fn mysql_bytes(value: &str) -> String {
    if value.is_empty() {
        "''".into()
    } else {
        format!("X'{}'", hex::encode(value))
    }
}

/// The base tables of `database`, hex-encoded (a name may hold any byte), for drills.
pub fn tables_sql(database: &str) -> String {
    format!(
        "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE CAST(TABLE_SCHEMA AS BINARY) = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;\n",
        mysql_bytes(database)
    )
}

/// [`tables_sql`]'s answer: the table names.
pub fn parse_tables(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|h| hex::decode(h.trim()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// One query counting every table of `names`, answering `index TAB rows` lines.
pub fn counts_sql(database: &str, names: &[String]) -> String {
    let qdb = quote_mysql_ident(database);
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("SELECT {i}, COUNT(*) FROM {qdb}.{}", quote_mysql_ident(n)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + ";\n"
}

/// [`counts_sql`]'s answer as `(table, rows)`.
pub fn parse_counts(out: &str, names: &[String]) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let (i, c) = l.split_once('\t')?;
            let name = names.get(i.trim().parse::<usize>().ok()?)?.clone();
            Some((name, c.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_charsets_reach_create_database_only_as_plain_names() {
        let c = DbCharset::parse("utf8mb4\tutf8mb4_unicode_520_ci\n").unwrap();
        assert_eq!(
            c.create_options().as_deref(),
            Some("CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci")
        );
        assert_eq!(DbCharset::parse(""), None);
        let evil = DbCharset {
            character_set: "utf8mb4".into(),
            collation: "x; DROP DATABASE y".into(),
        };
        assert_eq!(evil.create_options(), None);
        assert!(charset_sql("a'b").contains(&format!("X'{}'", hex::encode("a'b"))));
    }
}
