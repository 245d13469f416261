//! `dbstash restore J [--backup ID|latest] [--to URI] [--to-file PATH] [--yes]`.

use crate::manifest::connection::parse_uri;
use crate::manifest::units::human_size;
use crate::plan::{self, JobPlan};
use crate::restore::{self, Consent, Request, RestoreError};
use crate::secret::{redact, Secret};
use std::io::IsTerminal;
use std::path::Path;

/// The one plan of `job`, or the exit code after printing why not.
pub(super) fn plan_of(
    config: &Path,
    job: &str,
) -> Result<(crate::manifest::Manifest, JobPlan), i32> {
    let Some(m) = super::load_or_report(config) else {
        return Err(2);
    };
    crate::logging::init(m.settings.log_level, m.settings.log_format);
    match plan::build_all(&m, &[job.to_string()]) {
        Ok(mut plans) if plans.len() == 1 => {
            let p = plans.remove(0);
            Ok((m, p))
        }
        Ok(_) => {
            eprintln!("{}: no job named `{job}` in the manifest", config.display());
            Err(2)
        }
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            Err(2)
        }
    }
}

/// The password inside a `--to`/`--restore-to` URI, for scrubbing messages.
pub(super) fn uri_secret(plan: &JobPlan, uri: Option<&str>) -> Option<Secret> {
    let uri = uri?;
    parse_uri(plan.engine, uri).ok().and_then(|c| c.password)
}

#[allow(clippy::too_many_arguments)] // the command's flags, one each
pub fn run(
    config: &Path,
    job: &str,
    backup: &str,
    to: Option<&str>,
    to_file: Option<&Path>,
    yes: bool,
    no_owner: bool,
    pick: &super::Pick,
) -> i32 {
    let (m, plan) = match plan_of(config, job) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let plan = match pick.apply(plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dbstash: {e}");
            return 2;
        }
    };
    if plan.databases.is_many() {
        eprintln!("dbstash: job {job} backs up several databases: pass --database NAME (see `dbstash list --job {job}`)");
        return 2;
    }
    if plan.database == crate::plan::GLOBALS_DB {
        eprintln!("dbstash: the {} backup holds roles and tablespaces, which belong to the whole server and usually exist already; download it (`dbstash verify` checks it) and apply what you need with `psql -f`", crate::plan::GLOBALS_DB);
        return 2;
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
    let Some(rt) = super::runtime() else { return 1 };
    match rt.block_on(restore::restore(&plan, &req)) {
        Ok(r) => {
            tracing::info!(
                job = %plan.job, event = "restore_succeeded", backup = %r.backup, target = %r.target,
                size = r.stored_bytes, raw_size = r.raw_bytes, sha256 = %r.sha256,
                duration_seconds = r.duration.as_secs_f64(), "restore complete"
            );
            println!(
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
            0
        }
        Err(e) => {
            let msg = redact(&e.to_string(), &refs);
            if !matches!(e, RestoreError::NotConfirmed(_) | RestoreError::Usage(_)) {
                tracing::error!(job = %plan.job, event = "restore_failed", error = %msg, "restore failed");
            }
            match e {
                RestoreError::NotConfirmed(_) | RestoreError::Usage(_) => {
                    eprintln!("dbstash: {msg}")
                }
                _ => eprintln!("dbstash: restore of job {} failed: {msg}", plan.job),
            }
            1
        }
    }
}
