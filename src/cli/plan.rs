//! `dbstash plan`: the `JobPlan` of each selected job. Runs no dump, uploads and deletes nothing.

use super::OutputFormat;
use crate::plan::{self, render};
use std::path::Path;

pub fn run(config: &Path, jobs: &[String], format: OutputFormat, offline: bool) -> i32 {
    let Some(m) = super::load_or_report(config) else {
        return 2;
    };
    let plans = match plan::build_all(&m, jobs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return 2;
        }
    };
    let now = jiff::Timestamp::now();
    let deletions: Vec<Option<Result<Vec<String>, String>>> = plans
        .iter()
        .map(|p| if offline { None } else { would_delete(p) })
        .collect();
    match format {
        OutputFormat::Text => {
            for (p, d) in plans.iter().zip(&deletions) {
                println!("{}", render::text(p, now, d.as_ref()));
            }
        }
        OutputFormat::Json => {
            let all: Vec<_> = plans
                .iter()
                .zip(&deletions)
                .map(|(p, d)| render::json(p, now, d.as_ref()))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "jobs": all }))
                    .unwrap_or_default()
            );
        }
    }
    0
}

/// What retention would delete now: lists the remote, deletes nothing.
fn would_delete(p: &plan::JobPlan) -> Option<Result<Vec<String>, String>> {
    let rt = super::runtime()?;
    let store = crate::storage::AnyStorage::for_plan(p);
    Some(rt.block_on(async {
        let (_, report) = crate::run::retention::evaluate(p, &store, jiff::Timestamp::now())
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
