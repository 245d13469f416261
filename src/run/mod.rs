//! Executing plans: one backup (`backup`), several in parallel (`run_many`), retention, records.

pub mod backup;
pub mod binlog_head;
pub mod claim;
mod claim_ahead;
pub mod commit;
pub mod ctx;
pub mod directory;
pub mod dump;
pub mod error;
pub mod folder;
pub mod hooks;
pub mod judge;
pub mod ledger;
pub mod lock;
mod markers;
pub mod notice;
pub mod producer;
pub mod progress;
pub mod pump;
pub mod relay;
pub mod sqlite;
pub use crate::proc::stale;
pub mod unit;
pub mod uploads;

use crate::plan::JobPlan;
use jiff::Timestamp;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Success,
    Failure,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Skipped => "skipped",
        }
    }
}

/// What a run did; logged as one JSON line and handed to notifiers and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub job: String,
    pub run_id: String,
    pub engine: String,
    pub database: String,
    pub remote: String,
    pub status: Status,
    /// Object key (relative to the remote root).
    pub object: Option<String>,
    pub size: Option<u64>,
    pub raw_size: Option<u64>,
    pub sha256: Option<String>,
    /// Redacted error text (with the tool's stderr tail).
    pub error: Option<String>,
    pub started: Timestamp,
    pub finished: Timestamp,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// One entry per backup the run made (one per database for several-database jobs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// Things that went wrong without failing the run (an optional remote that failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One backup object of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    pub database: String,
    pub object: Option<String>,
    pub size: u64,
    pub raw_size: u64,
    pub sha256: String,
    /// Remotes holding it complete.
    pub remotes: Vec<String>,
    pub error: Option<String>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RunOutcome {
    pub fn new(plan: &JobPlan, run_id: &str, started: Timestamp) -> Self {
        RunOutcome {
            job: plan.job.clone(),
            run_id: run_id.to_string(),
            engine: plan.engine.as_str().to_string(),
            database: plan.database.clone(),
            remote: plan
                .remotes
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            status: Status::Running,
            object: None,
            size: None,
            raw_size: None,
            sha256: None,
            error: None,
            started,
            finished: started,
            duration: Duration::ZERO,
            parts: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn fail(&mut self, error: impl Into<String>) {
        self.status = Status::Failure;
        self.error = Some(error.into());
    }

    pub fn log(&self) {
        for w in &self.warnings {
            tracing::warn!(job = %self.job, run_id = %self.run_id, event = "backup_warning", warning = %w);
        }
        match self.status {
            Status::Success => tracing::info!(
                job = %self.job, run_id = %self.run_id, event = "backup_succeeded",
                object = self.object.as_deref().unwrap_or(""), size = self.size.unwrap_or(0),
                raw_size = self.raw_size.unwrap_or(0), sha256 = self.sha256.as_deref().unwrap_or(""),
                duration_seconds = self.duration.as_secs_f64(),
                "backup complete"
            ),
            Status::Skipped => {
                tracing::warn!(job = %self.job, run_id = %self.run_id, event = "backup_skipped", "skipped: already running")
            }
            _ => tracing::error!(
                job = %self.job, run_id = %self.run_id, event = "backup_failed",
                error = self.error.as_deref().unwrap_or(""), duration_seconds = self.duration.as_secs_f64(),
                "backup failed"
            ),
        }
    }
}

pub type OnStart = Arc<dyn Fn(&RunOutcome) + Send + Sync>;

/// What runs need from their surroundings.
#[derive(Clone)]
pub struct RunEnv {
    pub temp_dir: PathBuf,
    /// Becomes `true` when running backups must stop now (shutdown grace exhausted).
    pub shutdown: watch::Receiver<bool>,
    /// Show a progress line (interactive terminal only).
    pub progress: bool,
    pub on_start: Option<OnStart>,
}

impl RunEnv {
    pub fn new(temp_dir: PathBuf) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        (
            RunEnv {
                temp_dir,
                shutdown: rx,
                progress: false,
                on_start: None,
            },
            tx,
        )
    }
}

/// Run every plan once, at most `max_parallel` at a time (FIFO: tokio's semaphore is fair).
pub async fn run_many(plans: Vec<JobPlan>, env: RunEnv, max_parallel: usize) -> Vec<RunOutcome> {
    let sem = Arc::new(Semaphore::new(max_parallel.max(1)));
    let mut tasks = Vec::new();
    for plan in plans {
        let sem = sem.clone();
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            backup::backup(&plan, &env).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(o) = t.await {
            out.push(o);
        }
    }
    out
}

/// A new run's id: 12 hex digits of a random UUID, in logs, records, intent markers and
/// notifications (short enough to read, random enough that two runs never share one).
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
