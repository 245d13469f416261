//! What the supervisor shares between its job loops, reloads and the health endpoint.

use crate::manifest::Manifest;
use crate::notify::Dispatcher;
use crate::plan::JobPlan;
use crate::server::metrics::{JobSeries, Metrics};
use crate::server::Health;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The active manifest and what was derived from it.
pub struct Current {
    pub manifest: Manifest,
    /// Shared with the job loops and runs: one copy per job.
    pub plans: BTreeMap<String, Arc<JobPlan>>,
    pub dispatcher: Option<Dispatcher>,
}

pub struct Shared {
    pub metrics: Metrics,
    pub current: RwLock<Current>,
    heartbeat: AtomicI64,
    /// A valid manifest is loaded and the scheduler runs (false until the job loops start and
    /// again from the start of shutdown).
    ready: AtomicBool,
    /// Jobs with a run queued or running (a tick finding its job here is skipped).
    pub running: Mutex<HashSet<String>>,
    pub last_success: Mutex<HashMap<String, Timestamp>>,
    pub started_at: Timestamp,
    /// Backups and drills in flight, for shutdown: counted by `InFlight` guards only.
    pub active: AtomicUsize,
    pub idle: tokio::sync::Notify,
    /// Shutdown has begun: a run still waiting for a `max_parallel` slot must not start.
    stopping: AtomicBool,
}

/// One backup or drill in flight. Dropping it (also when the task panics) uncounts it and wakes
/// the shutdown wait, so the count can never be left wrong.
pub struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.idle.notify_waiters();
    }
}

impl Shared {
    pub fn new(current: Current) -> Self {
        let s = Shared {
            metrics: Metrics::new(),
            current: RwLock::new(current),
            heartbeat: AtomicI64::new(Timestamp::now().as_second()),
            ready: AtomicBool::new(false),
            running: Mutex::new(HashSet::new()),
            last_success: Mutex::new(HashMap::new()),
            started_at: Timestamp::now(),
            active: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
        };
        if let Ok(c) = s.current.read() {
            s.metrics.set_manifest(&c.manifest.hash);
        }
        s.sync_metrics();
        s
    }

    /// Count one more backup or drill in flight until the guard is dropped.
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// From now on, queued runs do not start (running ones get the grace period).
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.set_ready(false);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Give every job of the current manifest its series and drop those of removed jobs.
    pub fn sync_metrics(&self) {
        let Ok(c) = self.current.read() else {
            return;
        };
        let jobs = c
            .plans
            .values()
            .map(|p| (p.job.clone(), series_of(p)))
            .collect();
        self.metrics.sync_jobs(jobs);
    }

    pub fn beat(&self) {
        self.heartbeat
            .store(Timestamp::now().as_second(), Ordering::Relaxed);
    }

    pub fn plan(&self, job: &str) -> Option<Arc<JobPlan>> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.plans.get(job).cloned())
    }

    pub fn dispatcher(&self) -> Option<Dispatcher> {
        self.current.read().ok().and_then(|c| c.dispatcher.clone())
    }

    /// Claim the job for one run; false when it is already queued or running.
    pub fn claim(&self, job: &str) -> bool {
        self.running
            .lock()
            .map(|mut r| r.insert(job.to_string()))
            .unwrap_or(false)
    }

    pub fn release(&self, job: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(job);
        }
    }
}

/// What a job's plan means for its metrics.
fn series_of(plan: &JobPlan) -> JobSeries {
    JobSeries {
        drill: drill_scheduled(plan),
        stale_after: plan.stale_after,
    }
}

/// A restore drill runs on a schedule: `verify` has both `schedule` and `restore_to`.
pub fn drill_scheduled(plan: &JobPlan) -> bool {
    plan.job()
        .and_then(|j| j.verify.as_ref())
        .is_some_and(|v| v.schedule.is_some() && v.restore_to.is_some())
}

impl Health for Shared {
    fn metrics(&self) -> &Metrics {
        self.metrics.set_streams(crate::pitr::stream::series());
        &self.metrics
    }

    fn alive(&self) -> Result<(), String> {
        let age = Timestamp::now().as_second() - self.heartbeat.load(Ordering::Relaxed);
        if age > 60 {
            Err(format!("the scheduler loop has not run for {age}s"))
        } else {
            Ok(())
        }
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn stale_jobs(&self) -> Vec<String> {
        let now = Timestamp::now();
        let Ok(cur) = self.current.read() else {
            return Vec::new();
        };
        let last = self
            .last_success
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        cur.plans
            .values()
            .filter_map(|p| {
                let limit = p.stale_after?;
                let since = last.get(&p.job).copied().unwrap_or(self.started_at);
                let age = (now.as_second() - since.as_second()).max(0) as u64;
                (age > limit.as_secs()).then(|| p.job.clone())
            })
            .chain(crate::pitr::stream::down_too_long(&cur.plans, now))
            .collect()
    }
}
