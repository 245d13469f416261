//! `dbstash validate`: exit 0 when valid, 2 when not.

use super::{CliError, ExitCode, ValidateFormat};
use crate::domain::diag::Diagnostic;
use crate::error::exit;
use std::path::Path;

pub fn run(
    config: &Path,
    format: ValidateFormat,
    deny_warnings: bool,
    online: bool,
) -> Result<ExitCode, CliError> {
    let loaded = crate::manifest::load(config);
    let (diags, jobs): (Vec<Diagnostic>, usize) = match &loaded {
        Ok(m) => (m.warnings.clone(), m.jobs.len()),
        Err(e) => (e.diagnostics(), 0),
    };
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let valid = errors == 0 && !(deny_warnings && warnings > 0);
    match format {
        ValidateFormat::Text => {
            for d in &diags {
                eprintln!("{d}");
            }
            if valid {
                outln!(
                    "{}: valid ({jobs} job{})",
                    config.display(),
                    if jobs == 1 { "" } else { "s" }
                );
            } else if errors == 0 {
                eprintln!(
                    "{}: {warnings} warning{} and --deny-warnings",
                    config.display(),
                    if warnings == 1 { "" } else { "s" }
                );
            }
        }
        ValidateFormat::Github => {
            for d in &diags {
                outln!("{}", d.github());
            }
        }
        ValidateFormat::Json => {
            let out = serde_json::json!({
                "file": config.display().to_string(),
                "valid": valid,
                "jobs": jobs,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diags,
            });
            outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
    }
    if !valid {
        return Ok(exit::INVALID);
    }
    match loaded {
        Ok(m) if online => online_checks(config, &m, format),
        _ => Ok(exit::OK),
    }
}

/// `--online`: each `pitr` job's log stream can work: postgres, the replication connection
/// (REPLICATION role, a `replication` line in pg_hba.conf); mysql/mariadb, the server's binlog
/// and the grants to read it. One line per job; exit 1 when any fails.
fn online_checks(
    config: &Path,
    m: &crate::manifest::Manifest,
    format: ValidateFormat,
) -> Result<ExitCode, CliError> {
    let plans = crate::plan::build_all(m, &[]).map_err(|source| CliError::Plan {
        config: config.to_path_buf(),
        source,
    })?;
    let rt = super::runtime()?;
    let mut failed = 0;
    // Text only: the other formats' stdout is one document.
    let text = format == ValidateFormat::Text;
    for p in &plans {
        let Some(pitr) = &p.pitr else {
            continue;
        };
        if pitr.binlog {
            // The client's option file (the password) goes in a private folder, removed after.
            let dir =
                m.settings
                    .temp_dir
                    .join(format!("validate-{}-{}", p.job, std::process::id()));
            match rt.block_on(crate::pitr::binlog::check_binlog(p, &dir)) {
                Ok((file, position)) if text => outln!(
                    "job {}: binlog ok (file {file}, position {position})",
                    p.job
                ),
                Ok(_) => {}
                Err(e) => {
                    failed += 1;
                    eprintln!("dbstash: job {}: the binlog stream cannot work: {e}", p.job);
                }
            }
            continue;
        }
        match rt.block_on(crate::pitr::stream::check_replication(p)) {
            Ok(id) if text => outln!(
                "job {}: replication connection ok (timeline {}, WAL at {})",
                p.job,
                id.timeline,
                id.wal_position
            ),
            Ok(_) => {}
            Err(e) => {
                failed += 1;
                eprintln!("dbstash: job {}: the WAL stream cannot connect: {e}", p.job);
            }
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}
