//! `dbstash restore J [--backup ID|latest] [--to URI] [--to-file PATH] [--yes]`.

use super::{CliError, ExitCode, LoadOptions, UsageError};
use crate::domain::units::human_size;
use crate::engine::uri::parse_uri;
use crate::error::exit;
use crate::model::Engine;
use crate::plan::JobPlan;
use crate::restore::{self, Consent, Request, RestoreError};
use crate::secret::{redact, Secret};
use std::io::{IsTerminal, Read};
use std::path::Path;

/// The one plan of `job` (logging set up from the manifest).
pub(super) fn plan_of(
    config: &Path,
    job: &str,
) -> Result<(crate::manifest::Manifest, JobPlan), CliError> {
    let opts = LoadOptions {
        warnings: false,
        logging: true,
    };
    let (m, mut plans) = super::load_plans(config, &[job.to_string()], opts)?;
    if plans.len() != 1 {
        return Err(CliError::NoSuchJob {
            config: config.to_path_buf(),
            job: job.to_string(),
        });
    }
    let p = plans.remove(0);
    Ok((m, p))
}

/// The password inside a `--to`/`--restore-to` URI, for scrubbing messages.
pub(super) fn uri_secret(plan: &JobPlan, uri: Option<&str>) -> Option<Secret> {
    let uri = uri?;
    parse_uri(plan.engine, uri).ok().and_then(|c| c.password)
}

/// A URI file holds one URI: anything bigger is a wrong path, not a secret.
const URI_FILE_CAP: u64 = 64 * 1024;

/// Why a restore target's URI could not be had. Never quotes the URI.
#[derive(Debug, thiserror::Error)]
pub enum TargetUriError {
    #[error("give either {flag} or {file_flag}, not both")]
    Both {
        flag: &'static str,
        file_flag: &'static str,
    },
    #[error("{flag}: {source}")]
    Expand {
        flag: &'static str,
        source: ExpandError,
    },
    #[error("{file_flag} {path}: {source}")]
    Read {
        file_flag: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file_flag} {path}: {problem}")]
    Unusable {
        file_flag: &'static str,
        path: String,
        problem: String,
    },
}

/// The two ways to name a restore target on the command line: a URI flag (`--to`,
/// `--restore-to`) and its file twin (`--to-uri-file`, `--restore-to-file`).
pub struct TargetFlags<'a> {
    pub flag: &'static str,
    pub value: Option<&'a str>,
    pub file_flag: &'static str,
    pub file: Option<&'a Path>,
}

impl<'a> TargetFlags<'a> {
    /// `restore --to URI | --to-uri-file PATH`.
    pub fn to(value: Option<&'a str>, file: Option<&'a Path>) -> Self {
        TargetFlags {
            flag: "--to",
            value,
            file_flag: "--to-uri-file",
            file,
        }
    }

    /// `verify --restore-to URI | --restore-to-file PATH`.
    pub fn restore_to(value: Option<&'a str>, file: Option<&'a Path>) -> Self {
        TargetFlags {
            flag: "--restore-to",
            value,
            file_flag: "--restore-to-file",
            file,
        }
    }

    /// The target URI: the flag's value with `${VAR}`/`${VAR:-default}` expanded from the
    /// environment (as in the manifest), or the file's contents. Warns (one line on stderr, naming
    /// the flag) when a password stands literally in the flag's value, where `ps` shows it.
    pub(super) fn resolve(&self, engine: Engine) -> Result<Option<Secret>, TargetUriError> {
        match (self.value, self.file) {
            (Some(_), Some(_)) => Err(TargetUriError::Both {
                flag: self.flag,
                file_flag: self.file_flag,
            }),
            (Some(raw), None) => {
                if literal_password(engine, raw) {
                    eprintln!(
                        "dbstash: warning: {} holds a password in plain text, which every user of this host can read in the process list; use ${{VAR}} or {} PATH instead",
                        self.flag, self.file_flag
                    );
                }
                expand_env(raw)
                    .map(|uri| Some(Secret::new(uri)))
                    .map_err(|source| TargetUriError::Expand {
                        flag: self.flag,
                        source,
                    })
            }
            (None, Some(path)) => read_uri_file(self.file_flag, path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// Why a flag's `${VAR}` did not expand; names a variable, never the value.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("invalid `${{...}}`: a variable name is letters, digits and `_` (write `$${{` for a literal `${{`)")]
    BadName,
    /// The expander's own message (an unset variable, by name).
    #[error("{0}")]
    Variable(String),
}

/// `${VAR}` expansion with the manifest's rules.
fn expand_env(raw: &str) -> Result<String, ExpandError> {
    crate::manifest::interp::expand(raw, &|k| std::env::var(k).ok()).map_err(|e| {
        if e.starts_with("invalid variable name") {
            ExpandError::BadName
        } else {
            ExpandError::Variable(e)
        }
    })
}

/// Would a password remain in `raw` if every `${VAR}` in it were empty? Then it is in argv.
fn literal_password(engine: Engine, raw: &str) -> bool {
    let Ok(bare) = crate::manifest::interp::expand(raw, &|_| Some(String::new())) else {
        return false;
    };
    parse_uri(engine, &bare)
        .ok()
        .and_then(|c| c.password)
        .is_some_and(|p| !p.is_empty())
}

/// A small regular file holding the URI; one trailing newline (as `echo` writes) is dropped.
fn read_uri_file(file_flag: &'static str, path: &Path) -> Result<Secret, TargetUriError> {
    let shown = path.display().to_string();
    let unusable = |problem: &str| TargetUriError::Unusable {
        file_flag,
        path: shown.clone(),
        problem: problem.to_string(),
    };
    let read_err = |source| TargetUriError::Read {
        file_flag,
        path: shown.clone(),
        source,
    };
    // Looked at before opening: opening a FIFO would block.
    if !std::fs::metadata(path).map_err(read_err)?.is_file() {
        return Err(unusable("not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(URI_FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > URI_FILE_CAP {
        return Err(unusable(&format!(
            "larger than {URI_FILE_CAP} bytes (it should hold one URI)"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| unusable("not UTF-8 text"))?;
    let uri = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if uri.trim().is_empty() {
        return Err(unusable("empty"));
    }
    Ok(Secret::new(uri))
}

#[allow(clippy::too_many_arguments)] // the command's flags, one each
pub fn run(
    config: &Path,
    job: &str,
    backup: &str,
    to: TargetFlags<'_>,
    to_file: Option<&Path>,
    yes: bool,
    no_owner: bool,
    pick: &super::Pick,
) -> Result<ExitCode, CliError> {
    let (m, plan) = plan_of(config, job)?;
    let plan = pick.apply(plan).map_err(UsageError::from)?;
    let to = to.resolve(plan.engine).map_err(UsageError::from)?;
    let to = to.as_ref().map(Secret::expose);
    // A mysql/mariadb pitr job's dumps are ordinary dumps (with their binlog position).
    if plan.pitr.as_ref().is_some_and(|p| !p.binlog) {
        return Err(UsageError::PitrJob {
            job: job.to_string(),
        }
        .into());
    }
    if plan.databases.is_many() {
        return Err(UsageError::SeveralDatabases {
            job: job.to_string(),
        }
        .into());
    }
    if plan.database == crate::plan::GLOBALS_DB {
        return Err(UsageError::Globals.into());
    }
    let consent = if yes {
        Consent::Given
    } else if std::io::stdin().is_terminal() {
        Consent::Ask
    } else {
        Consent::NoTerminal
    };
    let req = Request {
        backup,
        to,
        to_file,
        consent,
        temp_dir: &m.settings.temp_dir,
        progress: std::io::stderr().is_terminal(),
        no_owner,
    };
    let secrets = restore::secrets_of(&plan, uri_secret(&plan, to).as_ref());
    let refs: Vec<&Secret> = secrets.iter().collect();
    let rt = super::runtime()?;
    Ok(match rt.block_on(restore::restore(&plan, &req)) {
        Ok(r) => {
            tracing::info!(
                job = %plan.job, event = "restore_succeeded", backup = %r.backup, target = %r.target,
                size = r.stored_bytes, raw_size = r.raw_bytes, sha256 = %r.sha256,
                duration_seconds = r.duration.as_secs_f64(), "restore complete"
            );
            outln!(
                "restored backup {} of job {} into {}{}: {} read (sha256 {} matches its record), {} restored, in {:.1}s",
                r.backup,
                plan.job,
                r.target,
                if r.created && to_file.is_none() { " (created)" } else { "" },
                human_size(r.stored_bytes),
                r.sha256,
                human_size(r.raw_bytes),
                r.duration.as_secs_f64()
            );
            exit::OK
        }
        Err(e) => {
            let msg = redact(&e.to_string(), &refs);
            if !matches!(e, RestoreError::NotConfirmed(_) | RestoreError::Usage(_)) {
                tracing::error!(job = %plan.job, event = "restore_failed", error = %msg, "restore failed");
            }
            match e {
                RestoreError::NotConfirmed(_) | RestoreError::Usage(_) => {
                    errln!("{msg}")
                }
                _ => errln!("restore of job {} failed: {msg}", plan.job),
            }
            exit::FAILED
        }
    })
}

/// Where `restore --at` goes: a data directory (postgres) or a database URI (mysql/mariadb).
pub struct AtTarget<'a> {
    pub dir: Option<&'a Path>,
    pub uri: TargetFlags<'a>,
    pub yes: bool,
}

/// `restore J --at TIME|latest --to-dir DIR` (postgres: a data directory that recovers to TIME)
/// or `--to URI` (mysql/mariadb: the dump and the binlog replayed into that database).
pub fn run_at(
    config: &Path,
    job: &str,
    at: &str,
    target: AtTarget<'_>,
    pick: &super::Pick,
) -> Result<ExitCode, CliError> {
    use crate::pitr::restore_at::{restore_at, At};
    let (m, plan) = plan_of(config, job)?;
    if plan.pitr.as_ref().is_some_and(|p| p.binlog) {
        return run_at_binlog(&m, plan, at, target, pick);
    }
    let Some(dir) = target.dir else {
        return Err(UsageError::AtTarget {
            job: plan.job.clone(),
            engine: plan.engine.as_str(),
            needs: "needs --to-dir DIR (an absent or empty folder for the data directory)",
        }
        .into());
    };
    let plan = pick.apply(plan).map_err(UsageError::from)?;
    let at: At = at.parse().map_err(|source| UsageError::Instant {
        at: at.to_string(),
        source,
    })?;
    if plan.pitr.is_none() {
        return Err(UsageError::NotPitr {
            job: plan.job.clone(),
        }
        .into());
    }
    let secrets = restore::secrets_of(&plan, None);
    let refs: Vec<&Secret> = secrets.iter().collect();
    let rt = super::runtime()?;
    Ok(match rt.block_on(restore_at(&plan, at, dir)) {
        Ok(r) => {
            tracing::info!(job = %plan.job, event = "restore_succeeded", backup = %r.base, segments = r.segments, dir = %r.dir.display(), "restore to an instant prepared");
            outln!(
                "job {}: base backup {} and {} WAL file(s) (each checked against its record) in {}; {}; start PostgreSQL on it to recover",
                plan.job,
                r.base,
                r.segments,
                r.dir.display(),
                match &r.target {
                    Some(t) => format!("recovery stops at {t} and promotes"),
                    None => "recovery replays everything archived".into(),
                }
            );
            outln!("pg_verifybackup: {}", r.checked.describe(true));
            exit::OK
        }
        Err(e) => {
            let msg = redact(&e.to_string(), &refs);
            tracing::error!(job = %plan.job, event = "restore_failed", error = %msg, "restore failed");
            errln!("restore of job {} failed: {msg}", plan.job);
            exit::FAILED
        }
    })
}

/// `restore J --at TIME|latest --to URI --yes` of a mysql/mariadb `pitr` job.
fn run_at_binlog(
    m: &crate::model::Manifest,
    plan: crate::plan::JobPlan,
    at: &str,
    target: AtTarget<'_>,
    pick: &super::Pick,
) -> Result<ExitCode, CliError> {
    use crate::pitr::binlog_restore::{restore_at, Destination};
    use crate::pitr::restore_at::At;
    let plan = pick.apply(plan).map_err(UsageError::from)?;
    let at: At = at.parse().map_err(|source| UsageError::Instant {
        at: at.to_string(),
        source,
    })?;
    let needs = UsageError::AtTarget {
        job: plan.job.clone(),
        engine: plan.engine.as_str(),
        needs: "needs --to URI (or --to-uri-file): a database other than the job's own, which it never touches",
    };
    if target.dir.is_some() {
        return Err(needs.into());
    }
    let to = target
        .uri
        .resolve(plan.engine)
        .map_err(UsageError::from)?
        .ok_or(needs)?;
    let consent = if target.yes {
        Consent::Given
    } else if std::io::stdin().is_terminal() {
        Consent::Ask
    } else {
        Consent::NoTerminal
    };
    let secrets = restore::secrets_of(&plan, uri_secret(&plan, Some(to.expose())).as_ref());
    let refs: Vec<&Secret> = secrets.iter().collect();
    let rt = super::runtime()?;
    let dest = Destination {
        to: to.expose(),
        consent,
        temp_dir: &m.settings.temp_dir,
    };
    Ok(match rt.block_on(restore_at(&plan, at, dest)) {
        Ok(r) => {
            tracing::info!(job = %plan.job, event = "restore_succeeded", backup = %r.dump, binlog_files = r.files, target = %r.target, "restore to an instant complete");
            outln!(
                "job {}: dump {} restored into {}, then {} binlog file(s) (each checked against its record) replayed {}",
                plan.job,
                r.dump,
                r.target,
                r.files,
                match &r.stop {
                    Some(t) => format!("up to {t} UTC"),
                    None => "to the end of the archive".into(),
                }
            );
            exit::OK
        }
        Err(e) => {
            let msg = redact(&e.to_string(), &refs);
            match e {
                crate::pitr::PitrError::Restore(
                    RestoreError::NotConfirmed(_) | RestoreError::Usage(_),
                ) => errln!("{msg}"),
                _ => {
                    tracing::error!(job = %plan.job, event = "restore_failed", error = %msg, "restore failed");
                    errln!("restore of job {} failed: {msg}", plan.job)
                }
            }
            exit::FAILED
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_counts_as_literal_only_when_it_survives_empty_variables() {
        let pg = Engine::Postgres;
        assert!(literal_password(pg, "postgresql://u:hunter2@h/db"));
        assert!(literal_password(pg, "postgresql://u@h/db?password=hunter2"));
        assert!(literal_password(pg, "postgresql://u:pre${PW}@h/db"));
        assert!(literal_password(pg, "postgresql://u:${PW:-fallback}@h/db"));
        assert!(!literal_password(pg, "postgresql://u:${PW}@h/db"));
        assert!(!literal_password(pg, "${TARGET_URI}"));
        assert!(!literal_password(pg, "postgresql://u@h/db"));
        assert!(!literal_password(pg, "app_copy"));
        assert!(literal_password(Engine::Mariadb, "u:se:cret@tcp(h:3307)/x"));
        assert!(!literal_password(Engine::Mariadb, "u:${PW}@tcp(h:3307)/x"));
    }

    #[test]
    fn expansion_errors_never_quote_the_value() {
        let e = expand_env("postgresql://u:hun${ter-2}@h/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("ter-2") && !e.contains("hun"), "{e}");
        let e = expand_env("postgresql://u:${DBSTASH_UNIT_UNSET_VAR}@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("DBSTASH_UNIT_UNSET_VAR"), "{e}");
        assert_eq!(expand_env("a$${b}").unwrap(), "a${b}");
    }

    #[test]
    fn uri_files_are_small_regular_files_with_one_trailing_newline_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("uri");
        std::fs::write(&f, "postgresql://u:p w@h/db\r\n").unwrap();
        assert_eq!(
            read_uri_file("--to-uri-file", &f).unwrap().expose(),
            "postgresql://u:p w@h/db"
        );
        std::fs::write(&f, "x\n\n").unwrap();
        assert_eq!(read_uri_file("--to-uri-file", &f).unwrap().expose(), "x\n");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_uri_file("--to-uri-file", &f).is_err());
        std::fs::write(&f, vec![b'a'; URI_FILE_CAP as usize + 1]).unwrap();
        let e = read_uri_file("--to-uri-file", &f).unwrap_err().to_string();
        assert!(
            e.starts_with("--to-uri-file ") && e.contains("larger than"),
            "{e}"
        );
        let e = read_uri_file("--to-uri-file", dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(read_uri_file("--to-uri-file", &dir.path().join("none")).is_err());
    }
}
