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

/// A job (or a job's drill, `JOB#verify`) claimed for one run. Dropping it (also when the task
/// holding it panics or is aborted) releases the job, so a tick can never find it "still in
/// progress" for ever.
pub struct Claim {
    shared: Arc<Shared>,
    key: String,
}

impl Claim {
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.shared.release(&self.key);
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

    /// Claim the job for one run until the guard is dropped; `None` when it is already queued
    /// or running.
    pub fn claim(self: &Arc<Self>, job: &str) -> Option<Claim> {
        let inserted = self
            .running
            .lock()
            .map(|mut r| r.insert(job.to_string()))
            .unwrap_or(false);
        inserted.then(|| Claim {
            shared: self.clone(),
            key: job.to_string(),
        })
    }

    fn release(&self, job: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(job);
        }
    }
}

/// Run `work` as a task holding `claim` and counted in flight until it ends. Both are guards the
/// task owns: whether it returns, panics or is aborted, the job is released and the count
/// that shutdown waits on goes down. `work` gets the claim so it can release the job early
/// (before notifying, say) by dropping it.
pub fn spawn_tracked<F>(claim: Claim, work: impl FnOnce(Claim) -> F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let in_flight = claim.shared.in_flight();
    let work = work(claim);
    tokio::spawn(async move {
        let _in_flight = in_flight;
        work.await;
    })
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

    fn alive(&self) -> Result<(), crate::server::Stuck> {
        let age = Timestamp::now().as_second() - self.heartbeat.load(Ordering::Relaxed);
        if age > 60 {
            Err(crate::server::Stuck { seconds: age })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        let text = "version: 1\nremotes: { l: { path: /tmp/x } }\njobs:\n  a: { engine: redis, host: h, remote: l }\n";
        let m = crate::manifest::load_str(std::path::Path::new("m.yaml"), text, &|_| None, &|p| {
            crate::manifest::limits::read_secret_file(p)
        })
        .expect("a valid manifest");
        Arc::new(Shared::new(Current {
            manifest: m,
            plans: BTreeMap::new(),
            dispatcher: None,
        }))
    }

    #[tokio::test]
    async fn a_panicking_task_releases_its_job_and_its_in_flight_count() {
        let s = shared();
        let claim = s.claim("a").expect("free");
        assert!(s.claim("a").is_none(), "claimed twice");
        let h = spawn_tracked(claim, |_claim| async { panic!("boom") });
        assert!(h.await.unwrap_err().is_panic());
        assert_eq!(s.active.load(Ordering::SeqCst), 0);
        assert!(
            s.claim("a").is_some(),
            "a panicked run left its job claimed"
        );
    }

    #[tokio::test]
    async fn an_aborted_task_releases_its_job_and_an_early_release_frees_the_job_only() {
        let s = shared();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let h = spawn_tracked(s.claim("a").unwrap(), |claim| async move {
            drop(claim);
            let _ = rx.await;
        });
        // The task drops its claim first thing: wait (bounded) until the job is free.
        let mut freed = false;
        for _ in 0..1000 {
            if s.claim("a").is_some() {
                freed = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(freed, "the task's early release did not free the job");
        // Released early, still in flight.
        assert_eq!(s.active.load(Ordering::SeqCst), 1);
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert_eq!(s.active.load(Ordering::SeqCst), 0);
        drop(tx);
    }
}
