//! `dbstash list`: complete backups (object + record), newest first.

use super::{CliError, ExitCode, LoadOptions, OutputFormat};
use crate::catalog::{record, retention};
use crate::domain::units::human_size;
use crate::error::exit;
use crate::storage::AnyStorage;
use std::path::Path;

pub fn run(config: &Path, job: Option<&str>, format: OutputFormat) -> Result<ExitCode, CliError> {
    let jobs: Vec<String> = job.into_iter().map(str::to_string).collect();
    let (_, plans) = super::load_plans(config, &jobs, LoadOptions::default())?;
    let rt = super::runtime()?;
    Ok(rt.block_on(async {
        let now = jiff::Timestamp::now();
        let mut rows = Vec::new();
        let mut failed = false;
        let plans: Vec<_> = plans.iter().flat_map(|p| p.per_remote()).collect();
        for p in &plans {
            let store = AnyStorage::for_plan(p);
            match record::complete_backups(&store, &retention::folder(p, now), &p.job).await {
                Ok((backups, _)) => rows.extend(backups.into_iter().map(|b| (p.clone(), b))),
                Err(e) => {
                    eprintln!("dbstash: job {}: cannot list remote `{}`: {e}", p.job, p.remote.name);
                    failed = true;
                }
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.record.finished));
        let mut windows = Vec::new();
        for p in plans.iter().filter(|p| p.pitr.is_some()) {
            match crate::pitr::window::read(p, &AnyStorage::for_plan(p)).await {
                Ok(a) => windows.push(WindowRow::of(p, &a)),
                Err(e) => {
                    eprintln!("dbstash: job {}: cannot read the WAL archive on `{}`: {e}", p.job, p.remote.name);
                    failed = true;
                }
            }
        }
        match format {
            OutputFormat::Json => {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(p, b)| {
                        serde_json::json!({
                            "job": p.job, "id": b.id, "key": b.key, "remote": p.remote.name,
                            "time": b.record.finished, "size": b.record.size, "sha256": b.record.sha256,
                            "compression": b.record.compression, "engine": b.record.engine, "database": b.record.database,
                        })
                    })
                    .chain(windows.iter().map(WindowRow::json))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            OutputFormat::Text => {
                // After a listing error, "none" would be a claim about a remote we could not read.
                if rows.is_empty() && !failed {
                    outln!("no complete backups");
                }
                for (p, b) in &rows {
                    let t = b.record.finished.to_zoned(p.zone().tz).strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
                    let on = if p.remotes.len() > 1 { format!("  on {}", p.remote.name) } else { String::new() };
                    outln!("{:<16} {:<48} {}  {:>10}  {}{on}", p.job, b.id, t, human_size(b.record.size), b.record.sha256);
                }
                for w in &windows {
                    outln!("{}", w.text());
                }
            }
        }
        if failed {
            exit::FAILED
        } else {
            exit::OK
        }
    }))
}

/// A `pitr` job's recoverable window on one remote.
struct WindowRow {
    job: String,
    remote: String,
    zone: jiff::tz::TimeZone,
    window: Option<crate::pitr::window::Window>,
    segments: usize,
    gaps: Vec<String>,
    /// ("WAL", "segments") or ("binlog", "files").
    words: (&'static str, &'static str),
}

impl WindowRow {
    fn of(p: &crate::plan::JobPlan, a: &crate::pitr::window::Archive) -> Self {
        WindowRow {
            job: p.job.clone(),
            remote: p.remote.name.clone(),
            zone: p.zone().tz,
            window: a.window(),
            segments: a.segments().count(),
            gaps: a.gaps(),
            words: p
                .pitr
                .as_ref()
                .map_or(("WAL", "segments"), |x| x.log_words()),
        }
    }

    fn text(&self) -> String {
        let at = |t: jiff::Timestamp| {
            t.to_zoned(self.zone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        let window = match self.window {
            Some(w) => format!("recoverable {} … {}", at(w.earliest), at(w.latest)),
            None if self.words.0 == "binlog" => {
                "not recoverable yet (needs a dump with its binlog position and archived binlog)"
                    .into()
            }
            None => "not recoverable yet (needs a base backup and archived WAL)".into(),
        };
        let (log, pieces) = self.words;
        let gaps = if self.gaps.is_empty() {
            String::new()
        } else {
            format!("; MISSING {} {}", log.to_uppercase(), self.gaps.join(", "))
        };
        format!(
            "{:<16} {window} on {} ({} {log} {pieces}{gaps})",
            self.job, self.remote, self.segments
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "job": self.job, "remote": self.remote, "kind": "pitr_window",
            "earliest": self.window.map(|w| w.earliest), "latest": self.window.map(|w| w.latest),
            "wal_segments": self.segments, "missing_wal": self.gaps,
        })
    }
}
