//! `dbstash plan`: the `JobPlan` of each selected job. Runs no dump, uploads and deletes nothing.

use super::{CliError, ExitCode, LoadOptions, OutputFormat, UsageError};
use crate::error::exit;
use crate::plan;
use crate::storage::StorageError;

pub mod render;
use std::path::Path;

pub fn run(
    config: &Path,
    jobs: &[String],
    format: OutputFormat,
    offline: bool,
) -> Result<ExitCode, CliError> {
    let opts = LoadOptions {
        warnings: true,
        logging: false,
    };
    let (m, plans) = super::load_plans(config, jobs, opts)?;
    let now = now().map_err(UsageError::from)?;
    let deletions: Vec<Option<Result<Vec<String>, StorageError>>> = plans
        .iter()
        .map(|p| if offline { None } else { would_delete(p, now) })
        .collect();
    // `database: "*"`: which databases a run would back up now (asks the server).
    let found: Vec<Option<Result<Vec<String>, crate::run::error::RunError>>> = plans
        .iter()
        .map(|p| {
            if offline || !p.databases.is_many() {
                return None;
            }
            let rt = runtime_or_report()?;
            Some(rt.block_on(crate::run::backup::discover(p, &m.settings.temp_dir)))
        })
        .collect();
    // `pitr` jobs: the recoverable window on the plan's remote, as of now.
    let windows: Vec<Option<String>> = plans
        .iter()
        .map(|p| {
            if offline || p.pitr.is_none() {
                return None;
            }
            let rt = super::runtime().ok()?;
            let store = crate::storage::AnyStorage::for_plan(p);
            Some(match rt.block_on(crate::pitr::window::read(p, &store)) {
                Ok(a) => match a.window() {
                    Some(w) => w.to_string(),
                    None => "none yet (needs a base backup and archived WAL)".into(),
                },
                Err(e) => format!("(could not read the archive: {e})"),
            })
        })
        .collect();
    match format {
        OutputFormat::Text => {
            for (((p, d), f), w) in plans.iter().zip(&deletions).zip(&found).zip(&windows) {
                let mut text = render::text(p, now, d.as_ref());
                if let Some(w) = w {
                    text.push_str(&format!("  {:<13}{w}\n", "pitr window"));
                }
                if let Some(f) = f {
                    let line = match f {
                        Ok(dbs) if dbs.is_empty() => "(none)".to_string(),
                        Ok(dbs) => dbs.join(", "),
                        Err(e) => format!("(could not ask the server: {e})"),
                    };
                    text.push_str(&format!("  {:<13}{line}\n", "found now"));
                }
                outln!("{text}");
            }
        }
        OutputFormat::Json => {
            let all: Vec<_> = plans
                .iter()
                .zip(&deletions)
                .zip(&found)
                .zip(&windows)
                .map(|(((p, d), f), w)| {
                    let mut v = render::json(p, now, d.as_ref());
                    if let (Some(w), Some(o)) = (w, v.as_object_mut()) {
                        o.insert("pitr_window".into(), serde_json::json!(w));
                    }
                    if let (Some(f), Some(o)) = (f, v.as_object_mut()) {
                        o.insert(
                            "databases_found".into(),
                            match f {
                                Ok(dbs) => serde_json::json!(dbs),
                                Err(e) => serde_json::json!({ "error": e.to_string() }),
                            },
                        );
                    }
                    v
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "jobs": all }))
                    .unwrap_or_default()
            );
        }
    }
    Ok(exit::OK)
}

/// The runtime for one remote's listing; if it cannot start, the error is printed and that
/// plan shows no listing (as when offline).
fn runtime_or_report() -> Option<tokio::runtime::Runtime> {
    super::runtime().map_err(|e| e.report()).ok()
}

/// The instant the plan is computed for: the clock, or — hidden, for tests and reproducible
/// output — `DBSTASH_NOW=2026-03-01T01:59:00Z` (any RFC 3339 timestamp jiff reads). It fixes the
/// rendered object names, the next run times and the retention cut-off; nothing else reads it.
fn now() -> Result<jiff::Timestamp, NowError> {
    match std::env::var("DBSTASH_NOW") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|source| NowError {
            value: v.clone(),
            source,
        }),
        _ => Ok(jiff::Timestamp::now()),
    }
}

/// `DBSTASH_NOW` that is not a timestamp.
#[derive(Debug, thiserror::Error)]
#[error("DBSTASH_NOW `{value}` is not a timestamp like 2026-03-01T01:59:00Z ({source})")]
pub struct NowError {
    value: String,
    source: jiff::Error,
}

/// What retention would delete at `now`: lists the remote, deletes nothing.
fn would_delete(
    p: &plan::JobPlan,
    now: jiff::Timestamp,
) -> Option<Result<Vec<String>, StorageError>> {
    let rt = runtime_or_report()?;
    let store = crate::storage::AnyStorage::for_plan(p);
    Some(rt.block_on(async {
        let (_, report) = crate::catalog::retention::evaluate(p, &store, now).await?;
        let mut ids: Vec<String> = report
            .verdicts
            .iter()
            .filter(|v| !v.keep)
            .map(|v| v.id.clone())
            .collect();
        ids.extend(report.leftovers.iter().map(|l| format!("{l} (leftover)")));
        Ok(ids)
    }))
}
