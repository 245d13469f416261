//! `dbstash plan`: the `JobPlan` of each selected job. Runs no dump, uploads and deletes nothing.

use super::OutputFormat;
use crate::plan;

pub mod render;
use std::path::Path;

pub fn run(config: &Path, jobs: &[String], format: OutputFormat, offline: bool) -> i32 {
    let Some(m) = super::load_and_warn(config) else {
        return 2;
    };
    let plans = match plan::build_all(&m, jobs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return 2;
        }
    };
    let now = match now() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dbstash: {e}");
            return 2;
        }
    };
    let deletions: Vec<Option<Result<Vec<String>, String>>> = plans
        .iter()
        .map(|p| if offline { None } else { would_delete(p, now) })
        .collect();
    // `database: "*"`: which databases a run would back up now (asks the server).
    let found: Vec<Option<Result<Vec<String>, String>>> = plans
        .iter()
        .map(|p| {
            if offline || !p.databases.is_many() {
                return None;
            }
            let rt = super::runtime()?;
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
            let rt = super::runtime()?;
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
                                Err(e) => serde_json::json!({ "error": e }),
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
    0
}

/// The instant the plan is computed for: the clock, or — hidden, for tests and reproducible
/// output — `DBSTASH_NOW=2026-03-01T01:59:00Z` (any RFC 3339 timestamp jiff reads). It fixes the
/// rendered object names, the next run times and the retention cut-off; nothing else reads it.
fn now() -> Result<jiff::Timestamp, String> {
    match std::env::var("DBSTASH_NOW") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e| {
            format!("DBSTASH_NOW `{v}` is not a timestamp like 2026-03-01T01:59:00Z ({e})")
        }),
        _ => Ok(jiff::Timestamp::now()),
    }
}

/// What retention would delete at `now`: lists the remote, deletes nothing.
fn would_delete(p: &plan::JobPlan, now: jiff::Timestamp) -> Option<Result<Vec<String>, String>> {
    let rt = super::runtime()?;
    let store = crate::storage::AnyStorage::for_plan(p);
    Some(rt.block_on(async {
        let (_, report) = crate::catalog::retention::evaluate(p, &store, now)
            .await
            .map_err(|e| e.to_string())?;
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
