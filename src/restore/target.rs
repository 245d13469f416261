//! Where a restore goes: the job's own database or `--to URI` (any URI form of the manifest, or a
//! bare database name on the job's server), and running what the engine says checks, creates and
//! drops it (`engine::restore`).

use super::run_dir::{self};
use super::{RestoreError, TargetProblem, UsageError};
use crate::domain::command::CommandSpec;
use crate::engine::mysql::DbCharset;
use crate::engine::postgres::{self, Owners};
use crate::engine::restore::{self, DropStep, ExistsCheck};
use crate::engine::uri::parse_uri;
use crate::engine::{caps, mongo};
use crate::model::{Engine, Job};
use crate::secret::{redact, Secret};
use std::collections::BTreeSet;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A resolved restore target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The job, with its connection replaced by the target's.
    pub job: Job,
    /// The job's own database (or the same server and name).
    pub own: bool,
    /// For people: engine, host, port, database; never a password.
    pub label: String,
    /// postgres: recreate the backup's owners and privileges, or leave them out (`--no-owner`).
    pub owners: Owners,
}

impl Target {
    pub fn database(&self) -> &str {
        self.job.connection.database.as_deref().unwrap_or("")
    }

    /// `restore --no-owner` / `verify.no_owner`: restore without the backup's owners and
    /// privileges (into a server that does not have its roles).
    pub fn without_owners(mut self, yes: bool) -> Self {
        if yes {
            self.owners = Owners::Skip;
        }
        self
    }

    /// Every secret involved, for scrubbing tool output.
    pub fn secrets(&self) -> Vec<Secret> {
        self.job.secrets().into_iter().cloned().collect()
    }
}

fn describe(job: &Job) -> String {
    let c = &job.connection;
    let db = c.database.as_deref().unwrap_or("");
    if caps(job.engine).file_database {
        return format!("{} {db}", job.engine.as_str());
    }
    let host = c.host.as_deref().unwrap_or("localhost");
    let hp = match c.port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let user = c
        .user
        .as_deref()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    format!("{} {user}{hp}/{db}", job.engine.as_str())
}

/// A bare database name (not a URI, DSN or path)?
fn bare_name(engine: Engine, s: &str) -> bool {
    !caps(engine).file_database
        && !s.is_empty()
        && !s.contains("://")
        && !s.contains(['@', '/', '('])
}

/// Resolve `--to` (or the job's own database when absent).
pub fn resolve(job: &Job, to: Option<&str>) -> Result<Target, RestoreError> {
    let Some(to) = to else {
        return Ok(Target {
            job: job.clone(),
            own: true,
            label: describe(job),
            owners: Owners::Keep,
        });
    };
    let mut j = job.clone();
    if bare_name(job.engine, to) {
        j.connection.database = Some(to.to_string());
    } else {
        let conn = parse_uri(job.engine, to).map_err(|e| UsageError::BadTo {
            reason: e.to_string(),
        })?;
        j.auth_source = conn.params.get("authSource").cloned();
        j.connection = conn;
    }
    if j.connection.database.as_deref().unwrap_or("").is_empty()
        && restore::target_needs_database(job.engine)
    {
        return Err(UsageError::ToNamesNoDatabase.into());
    }
    let same_server = j.connection.host == job.connection.host
        && (j.connection.port == job.connection.port
            || j.connection.port.is_none()
            || job.connection.port.is_none());
    let own = j.connection.database == job.connection.database
        && (caps(job.engine).file_database || same_server);
    Ok(Target {
        label: describe(&j),
        job: j,
        own,
        owners: Owners::Keep,
    })
}

/// How long a short administrative command may take.
const ADMIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Run a short administrative command with `sql` on stdin; its stdout on success.
pub async fn admin_sql(
    spec: &CommandSpec,
    sql: &str,
    secrets: &[Secret],
    base: &std::path::Path,
) -> Result<String, RestoreError> {
    let run_dir::Started {
        dir: _dir, // keeps the option files until the tool is done
        group,
        mut child,
        mut tail,
    } = run_dir::start(spec, base, Stdio::piped(), "restore-admin")?;
    let mut stdout = child.stdout.take();
    let stdin = child.stdin.take();
    let work = async {
        if let Some(mut w) = stdin {
            w.write_all(sql.as_bytes()).await?;
            w.shutdown().await?;
        }
        let mut out = Vec::new();
        if let Some(o) = stdout.as_mut() {
            o.read_to_end(&mut out).await?;
        }
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out))
    };
    let result = tokio::time::timeout(ADMIN_LIMIT, work).await;
    group.kill();
    let refs: Vec<&Secret> = secrets.iter().collect();
    let (status, out) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(RestoreError::Io {
                what: spec.program.clone(),
                source: e,
            })
        }
        Err(_) => {
            return Err(TargetProblem::AdminTimeout {
                program: spec.program.clone(),
                limit: ADMIN_LIMIT,
            }
            .into())
        }
    };
    let tail = redact(&tail.finish().await, &refs);
    if !status.success() {
        return Err(RestoreError::Tool {
            program: spec.program.clone(),
            status: super::error::ToolEnd::of(status),
            tail: if tail.is_empty() {
                "(no output on stderr)".into()
            } else {
                tail
            },
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Does the target database exist? `None` when dbstash cannot tell (MongoDB).
pub async fn exists(t: &Target, base: &std::path::Path) -> Result<Option<bool>, RestoreError> {
    match restore::exists_check(&t.job, t.database()) {
        ExistsCheck::Sql { admin, sql, answer } => {
            let out = admin_sql(&admin, &sql, &t.secrets(), base).await?;
            Ok(Some(answer(&out)))
        }
        ExistsCheck::File(path) => Ok(Some(path.exists())),
        ExistsCheck::Unknown => Ok(None),
    }
}

/// What the target server said before the restore: does the database exist (`None`: dbstash
/// cannot tell), and, for PostgreSQL, its roles (for the roles check).
#[derive(Debug, Clone)]
pub struct Probe {
    pub exists: Option<bool>,
    pub roles: Option<BTreeSet<String>>,
}

/// [`exists`], and for PostgreSQL the server's roles too, in one psql.
pub async fn probe(t: &Target, base: &std::path::Path) -> Result<Probe, RestoreError> {
    if !restore::names_roles(t.job.engine) {
        return Ok(Probe {
            exists: exists(t, base).await?,
            roles: None,
        });
    }
    let spec = postgres::admin(&t.job, postgres::MAINTENANCE_DB, None);
    let out = admin_sql(
        &spec,
        &postgres::probe_sql(t.database()),
        &t.secrets(),
        base,
    )
    .await?;
    // No count at all: taken as "exists" (never created over, always confirmed), as `exists` does.
    let mut found = None;
    let mut roles = BTreeSet::new();
    for r in postgres::records(&out) {
        if let Some(n) = r.strip_prefix('d') {
            found = Some(n != "0");
        } else if let Some(role) = r.strip_prefix('r') {
            roles.insert(role.to_string());
        }
    }
    Ok(Probe {
        exists: Some(found.unwrap_or(true)),
        roles: Some(roles),
    })
}

/// Create the target database. mysql/mariadb: with the source's default character set and
/// collation when the backup's record has them (`charset`), else the server's defaults.
pub async fn create(
    t: &Target,
    base: &std::path::Path,
    charset: Option<&DbCharset>,
) -> Result<(), RestoreError> {
    let db = t.database();
    let secrets = t.secrets();
    // mongorestore creates databases itself; SQLite files are created by the restore.
    if let Some(spec) = restore::server_admin(&t.job) {
        if let Some(o) = charset.and_then(DbCharset::create_options) {
            let sql = restore::create_sql(t.job.engine, db, Some(&o));
            match admin_sql(&spec, &sql, &secrets, base).await {
                Ok(_) => return created(t, Some(&o)),
                // Another server (MySQL vs MariaDB, an older version) may not know the
                // collation: the data still restores, with the server's defaults.
                Err(e) => {
                    tracing::warn!(job = %t.job.name, event = "restore_charset_unavailable", target = %t.label, charset = %o, error = %e);
                }
            }
        }
        let sql = restore::create_sql(t.job.engine, db, None);
        admin_sql(&spec, &sql, &secrets, base).await?;
    }
    created(t, None)
}

fn created(t: &Target, charset: Option<&str>) -> Result<(), RestoreError> {
    match charset {
        Some(c) => {
            tracing::info!(job = %t.job.name, event = "restore_target_created", target = %t.label, charset = %c)
        }
        None => {
            tracing::info!(job = %t.job.name, event = "restore_target_created", target = %t.label)
        }
    }
    Ok(())
}

/// postgis: `CREATE EXTENSION IF NOT EXISTS postgis` as the job's `admin_user` (skipped when unset).
pub async fn postgis(t: &Target, base: &std::path::Path) -> Result<(), RestoreError> {
    let Some((spec, sql)) = restore::postgis_extension(&t.job, t.database()) else {
        return Ok(());
    };
    admin_sql(&spec, sql, &t.secrets(), base)
        .await
        .map_err(|e| TargetProblem::Postgis {
            admin: t.job.admin_user.clone().unwrap_or_default(),
            source: Box::new(e),
        })?;
    Ok(())
}

pub async fn drop_database(t: &Target, base: &std::path::Path) -> Result<(), RestoreError> {
    let secrets = t.secrets();
    match restore::drop_step(&t.job, t.database()) {
        DropStep::Sql { admin, attempts } => {
            // Each statement a fallback for the one before; the last one's failure is the drop's.
            let mut attempts = attempts.iter().peekable();
            while let Some(sql) = attempts.next() {
                match admin_sql(&admin, sql, &secrets, base).await {
                    Ok(_) => break,
                    Err(e) if attempts.peek().is_none() => return Err(e),
                    Err(_) => {}
                }
            }
        }
        DropStep::Script(spec) => {
            admin_sql(&spec, "", &secrets, base).await?;
        }
        DropStep::Files(paths) => {
            for p in paths {
                if let Err(e) = std::fs::remove_file(&p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(RestoreError::Io {
                            what: format!("remove {p}"),
                            source: e,
                        });
                    }
                }
            }
        }
        DropStep::Nothing => {}
    }
    tracing::info!(job = %t.job.name, event = "restore_target_dropped", target = %t.label);
    Ok(())
}

/// The target database's collections (`listCollections`) through mongosh.
pub async fn mongo_collections(
    t: &Target,
    base: &std::path::Path,
) -> Result<Vec<String>, RestoreError> {
    let spec = restore::mongo_collections(&t.job);
    let out = admin_sql(&spec, "", &t.secrets(), base).await?;
    mongo::parse_collections(&out).ok_or_else(|| {
        TargetProblem::MongoUnlisted {
            target: t.label.clone(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mysql::{mysql_bytes, quote_mysql_ident};
    use crate::engine::postgres::{pg_text, quote_pg_ident};

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_pg_ident("na\"me"), "\"na\"\"me\"");
        assert_eq!(quote_pg_ident("x; drop"), "\"x; drop\"");
        assert_eq!(quote_mysql_ident("a`b"), "`a``b`");
        assert_eq!(
            pg_text("a'b"),
            "convert_from(decode('61276', 'hex'), 'UTF8')".replace("61276", &hex::encode("a'b"))
        );
        assert_eq!(mysql_bytes("ab"), "X'6162'");
    }

    #[test]
    fn mongo_collection_listing_must_be_positive() {
        let listed = mongo::parse_collections("dbstash-collections 2\norders\nusers\n");
        assert_eq!(
            listed,
            Some(vec!["orders".to_string(), "users".to_string()])
        );
        let noise = mongo::parse_collections("Current Mongosh Log ID: x\ndbstash-collections 0\n");
        assert_eq!(noise, Some(vec![]));
        assert_eq!(mongo::parse_collections(""), None);
        assert_eq!(
            mongo::parse_collections("dbstash-collections 2\norders\n"),
            None
        );
    }

    #[test]
    fn bare_names_and_uris() {
        assert!(bare_name(Engine::Postgres, "app_restored"));
        assert!(!bare_name(Engine::Postgres, "postgresql://h/db"));
        assert!(!bare_name(Engine::Mysql, "u:p@tcp(h:3306)/db"));
        assert!(!bare_name(Engine::Sqlite, "app.db"));
    }

    /// A restore tool that echoes its connection URI: the password comes back percent-encoded,
    /// and must be scrubbed from the error all the same.
    #[tokio::test]
    async fn percent_encoded_password_in_tool_stderr_is_scrubbed() {
        let base = tempfile::tempdir().unwrap();
        let password = Secret::new("p@ss/w0rd");
        let mut spec = CommandSpec::new("sh");
        spec.arg("-c").arg(
            "echo 'psql: error: connection to postgres://app:p%40ss%2Fw0rd@db:5432/app failed' >&2; exit 2",
        );
        let err = admin_sql(&spec, "", &[password], base.path())
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("p%40ss"), "{err}");
        assert!(err.contains("postgres://app:***@db:5432/app"), "{err}");
    }
}
