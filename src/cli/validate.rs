//! `dbstash validate`: exit 0 when valid, 2 when not.

use super::{CliError, ExitCode, ValidateFormat};
use crate::domain::diag::Diagnostic;
use crate::error::exit;
use std::path::Path;

pub fn run(
    config: &Path,
    format: ValidateFormat,
    deny_warnings: bool,
) -> Result<ExitCode, CliError> {
    let (diags, jobs): (Vec<Diagnostic>, usize) = match crate::manifest::load(config) {
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
    Ok(if valid { exit::OK } else { exit::INVALID })
}
