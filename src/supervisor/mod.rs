//! `dbstash run`: the long-lived supervisor. Each job has its own loop on its own schedule; runs
//! are separate tasks (so a reload that replaces a job's loop never interrupts its running
//! backup); `max_parallel` bounds concurrent backups through a fair semaphore.

pub mod diff;
mod pending;
pub mod reaper;
pub mod state;
mod streams;
pub mod tracked;
pub mod watch;

use crate::domain::schedule::Schedule;
use crate::manifest::{self, Manifest};
use crate::notify::event::Event;
use crate::notify::Dispatcher;
use crate::plan::{self, JobPlan};
use crate::run::{self, RunEnv, Status};
use crate::secret::Secret;
use crate::signals;
use jiff::Timestamp;
use state::{Current, Shared};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// Longest single sleep: wall-clock jumps and suspend/resume are noticed at least this often.
const MAX_NAP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_secs(30);

/// The supervisor on `runtime` (which `cli` builds: the supervisor imports nothing above it).
pub fn run(config: &Path, runtime: tokio::runtime::Runtime) -> i32 {
    let mut signals = {
        let _in_runtime = runtime.enter();
        (signals::Stop::install(), signals::Hangup::install())
    };
    // A first load that fails does not end `run`: it waits, not ready, for a valid manifest, then
    // loads it again to note the secret files it reads.
    let (mut m, seen) = loop {
        match first_load(config) {
            Ok(x) => break x,
            Err(e) => {
                if runtime
                    .block_on(pending::wait_for_manifest(config, &e, &mut signals))
                    .is_none()
                {
                    return 2;
                }
            }
        }
    };
    let plans = match plans_of(&mut m) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                eprintln!("{}: {e}", config.display());
            }
            return 2;
        }
    };
    crate::logging::init(m.settings.log_level, m.settings.log_format);
    runtime.block_on(Supervisor::start(
        config.to_path_buf(),
        m,
        plans,
        seen,
        signals,
    ))
}

/// The first load (warnings on stderr, as every command shows them), remembering which secret
/// files it read.
fn first_load(config: &Path) -> Result<(Manifest, Seen), manifest::LoadError> {
    let text =
        manifest::limits::read_manifest(config).map_err(|source| manifest::LoadError::Read {
            path: config.display().to_string(),
            source,
        })?;
    let t = tracked::load(config, text.as_bytes());
    let seen = Seen {
        fingerprint: t.fingerprint,
        files: t.files,
    };
    let m = t.result?;
    crate::logging::print_diagnostics(&m.warnings, Some(m.settings.log_format));
    Ok((m, seen))
}

/// Plans of every job; the manifest's own job list is dropped afterwards (the plans carry it).
/// A job whose plan cannot be built makes the whole revision an error: dropping the job would
/// silently stop its backups.
fn plans_of(m: &mut Manifest) -> Result<BTreeMap<String, Arc<JobPlan>>, Vec<String>> {
    let mut plans = BTreeMap::new();
    let mut errors = Vec::new();
    for j in m.jobs.values() {
        match plan::build(m, j) {
            Ok(p) => {
                plans.insert(p.job.clone(), Arc::new(p));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    m.jobs.clear();
    Ok(plans)
}

/// What the last load looked at: the fingerprint of the manifest text and of the secret files it
/// read (see `tracked`), and those files.
struct Seen {
    fingerprint: String,
    files: Vec<PathBuf>,
}

/// What a reload found.
enum Revision {
    /// Neither the manifest nor a secret file it reads changed.
    Unchanged,
    /// A revision that cannot be applied, with its errors (one line each).
    Broken(Vec<String>),
    /// A valid revision and its plans.
    Valid(Box<Manifest>, BTreeMap<String, Arc<JobPlan>>),
}

struct Supervisor {
    path: PathBuf,
    shared: Arc<Shared>,
    env: RunEnv,
    sem: Arc<Semaphore>,
    loops: HashMap<String, JoinHandle<()>>,
    seen: Seen,
    watcher: Option<watch::Watcher>,
    /// Folders of secret files being watched (besides the manifest's own).
    watched: std::collections::BTreeSet<PathBuf>,
}

impl Supervisor {
    async fn start(
        path: PathBuf,
        m: Manifest,
        plans: BTreeMap<String, Arc<JobPlan>>,
        seen: Seen,
        (mut stop, mut hup): (signals::Stop, signals::Hangup),
    ) -> i32 {
        let dispatcher = dispatcher_for(&m, None);
        let settings = m.settings.clone();
        let shared = Arc::new(Shared::new(Current {
            manifest: m,
            plans: plans.clone(),
            dispatcher,
        }));
        let (env, stop_runs) = RunEnv::new(settings.temp_dir.clone());
        let (stop_server_tx, stop_server_rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(listen) = &settings.health_listen {
            let stop = async move {
                let _ = stop_server_rx.await;
            };
            if let Err(e) = crate::server::serve(listen, shared.clone(), stop).await {
                tracing::error!(event = "health_failed", error = %e);
                eprintln!("dbstash: {e}");
                return 1;
            }
        }
        reaper::spawn_if_pid1();
        crate::run::stale::sweep_logged(&settings.temp_dir);
        trim_heap();
        let mut sup = Supervisor {
            path: path.clone(),
            shared: shared.clone(),
            env,
            sem: Arc::new(Semaphore::new(settings.max_parallel.max(1))),
            loops: HashMap::new(),
            seen,
            watcher: None,
            watched: Default::default(),
        };
        for p in plans.values() {
            sup.start_loop(p.clone(), p.run_on_start);
        }
        shared.set_ready(true);
        tracing::info!(event = "supervisor_started", jobs = plans.len(), manifest = %path.display(), "scheduling {} job(s)", plans.len());

        // Reload triggers: directory watcher, SIGHUP, slow poll.
        let (tx, mut rx) = mpsc::channel::<()>(8);
        sup.watcher = match watch::start(&path, tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(event = "watch_failed", error = %e, "falling back to polling and SIGHUP");
                None
            }
        };
        sup.watch_secret_folders();
        let mut poll = tokio::time::interval(POLL);
        let mut beat = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                // A stop wins over a reload or tick that is ready at the same moment.
                biased;
                _ = stop.recv() => break,
                _ = rx.recv() => sup.reload("watch").await,
                _ = hup.recv() => sup.reload("sighup").await,
                _ = poll.tick() => sup.reload("poll").await,
                _ = beat.tick() => shared.beat(),
            }
        }
        sup.shutdown(settings.shutdown_grace, stop_runs).await;
        let _ = stop_server_tx.send(());
        tracing::info!(event = "supervisor_stopped", "stopped cleanly");
        0
    }

    fn start_loop(&mut self, plan: Arc<JobPlan>, run_now: bool) {
        let name = plan.job.clone();
        let ctx = RunCtx {
            shared: self.shared.clone(),
            env: self.env.clone(),
            sem: self.sem.clone(),
        };
        let drill = plan
            .job()
            .and_then(|j| j.verify.as_ref())
            .and_then(|v| Some((v.schedule.clone()?, v.restore_to.clone()?)));
        if let Some((schedule, target)) = drill {
            let handle = tokio::spawn(drill_loop(ctx.clone(), plan.clone(), schedule, target));
            if let Some(old) = self.loops.insert(format!("{name}#verify"), handle) {
                old.abort();
            }
        } else if let Some(old) = self.loops.remove(&format!("{name}#verify")) {
            old.abort();
        }
        // pitr: the WAL stream lives beside the job's loop, replaced and stopped with it.
        let stream = plan
            .pitr
            .is_some()
            .then(|| streams::start(self.shared.clone(), plan.clone(), self.env.temp_dir.clone()));
        if let Some(old) = match stream {
            Some(h) => self.loops.insert(format!("{name}#pitr"), h),
            None => self.loops.remove(&format!("{name}#pitr")),
        } {
            old.abort();
        }
        let handle = tokio::spawn(job_loop(ctx, plan, run_now));
        if let Some(old) = self.loops.insert(name, handle) {
            old.abort();
        }
    }

    fn stop_loop(&mut self, name: &str) {
        crate::pitr::stream::forget(name);
        for key in [
            name.to_string(),
            format!("{name}#verify"),
            format!("{name}#pitr"),
        ] {
            if let Some(h) = self.loops.remove(&key) {
                h.abort();
            }
        }
    }

    /// Re-read the manifest; apply it by job name if it is valid and it or a secret file it reads
    /// changed: load, then diff and apply.
    async fn reload(&mut self, trigger: &'static str) {
        let started = std::time::Instant::now();
        match self.load() {
            Revision::Unchanged => {}
            Revision::Broken(errors) => self.reject(trigger, errors),
            Revision::Valid(m, plans) => self.apply(trigger, *m, plans, started),
        }
    }

    /// Load the manifest if its text or a secret file it reads changed since the last load.
    /// Remembers what it saw whatever the outcome: the same broken revision is not re-reported
    /// on every poll, and a rotated file is noticed again after a rejected revision.
    fn load(&mut self) -> Revision {
        // A manifest deleted or replaced by a folder is a broken revision like any other: counted,
        // logged and notified once (its "hash" is the error), the old one kept.
        let text = match manifest::limits::read_manifest(&self.path) {
            Ok(text) => text,
            Err(source) => {
                let fingerprint = format!("unreadable: {source}");
                if self.seen.fingerprint == fingerprint {
                    return Revision::Unchanged;
                }
                self.seen = Seen {
                    fingerprint,
                    files: Vec::new(),
                };
                let e = manifest::LoadError::Read {
                    path: self.path.display().to_string(),
                    source,
                };
                return Revision::Broken(e.diagnostics().iter().map(ToString::to_string).collect());
            }
        };
        if tracked::fingerprint(text.as_bytes(), &self.seen.files) == self.seen.fingerprint {
            return Revision::Unchanged;
        }
        let t = tracked::load(&self.path, text.as_bytes());
        self.seen = Seen {
            fingerprint: t.fingerprint,
            files: t.files,
        };
        self.watch_secret_folders();
        match t.result {
            Err(e) => Revision::Broken(e.diagnostics().iter().map(ToString::to_string).collect()),
            Ok(mut m) => match plans_of(&mut m) {
                Err(errors) => {
                    let file = self.path.display();
                    Revision::Broken(errors.iter().map(|e| format!("{file}: {e}")).collect())
                }
                Ok(plans) => Revision::Valid(Box::new(m), plans),
            },
        }
    }

    /// A revision that cannot be applied: log it, count it, tell the notifiers; keep the old one.
    fn reject(&self, trigger: &'static str, errors: Vec<String>) {
        for d in &errors {
            tracing::error!(event = "config_rejected", trigger, "{d}");
        }
        self.shared.metrics.count_reload("error");
        if let Some(d) = self.shared.dispatcher() {
            let names: Vec<String> = self
                .shared
                .current
                .read()
                .map(|c| c.manifest.notifiers.keys().cloned().collect())
                .unwrap_or_default();
            let ev = Event::config_error(errors.join("\n"));
            let metrics = self.shared.clone();
            tokio::spawn(async move {
                for del in d.send(&names, &ev).await {
                    metrics.metrics.count_notification(&del.notifier, del.ok);
                }
            });
        }
    }

    /// Apply a valid revision by job name: diff it against the running one, restart the loops
    /// of jobs that changed, then make it current.
    fn apply(
        &mut self,
        trigger: &'static str,
        m: Manifest,
        new_plans: BTreeMap<String, Arc<JobPlan>>,
        started: std::time::Instant,
    ) {
        let (d, restart) = match self.shared.current.read() {
            Ok(c) => (
                diff::jobs(&c.plans, &new_plans),
                diff::needs_restart(&c.manifest.settings, &m.settings),
            ),
            Err(_) => return,
        };
        self.apply_loops(&d, &new_plans);
        self.make_current(m, new_plans);
        for s in &restart {
            tracing::warn!(
                event = "restart_needed",
                setting = s,
                "{s} changed; it takes effect after a restart"
            );
        }
        tracing::info!(
            event = "config_reloaded", trigger, added = ?d.added, removed = ?d.removed, changed = ?d.changed,
            apply_ms = started.elapsed().as_millis() as u64,
            "manifest reloaded"
        );
    }

    /// Stop the loops of removed jobs; (re)start those of added and changed ones. A running
    /// backup is a task of its own and is never interrupted.
    fn apply_loops(&mut self, d: &diff::Diff, new_plans: &BTreeMap<String, Arc<JobPlan>>) {
        for name in &d.removed {
            self.stop_loop(name);
        }
        for name in d.added.iter().chain(&d.changed) {
            if let Some(p) = new_plans.get(name) {
                self.start_loop(p.clone(), false);
            }
        }
    }

    /// The revision runs, metrics and notifications use from now on.
    fn make_current(&mut self, m: Manifest, plans: BTreeMap<String, Arc<JobPlan>>) {
        let dispatcher = dispatcher_for(&m, self.shared.dispatcher());
        self.shared.metrics.set_manifest(&m.hash);
        if let Ok(mut c) = self.shared.current.write() {
            *c = Current {
                manifest: m,
                plans,
                dispatcher,
            };
        }
        // Every job of the new revision has its series; a removed job's go away.
        self.shared.sync_metrics();
        self.shared.metrics.count_reload("success");
        trim_heap();
    }

    /// Watch the folders of the secret files the manifest reads, so a rotation is noticed within
    /// the watcher's debounce (the 30 s poll and SIGHUP catch it too).
    fn watch_secret_folders(&mut self) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        let manifest_dir = self.path.parent().map(Path::to_path_buf);
        let wanted: std::collections::BTreeSet<PathBuf> = tracked::folders(&self.seen.files)
            .into_iter()
            .filter(|d| Some(d) != manifest_dir.as_ref())
            .collect();
        for gone in self.watched.difference(&wanted) {
            let _ = watch::unwatch(w, gone);
        }
        for dir in wanted.difference(&self.watched) {
            if let Err(e) = watch::add(w, dir) {
                tracing::warn!(event = "watch_failed", error = %e, "secret file changes are seen by polling and SIGHUP");
            }
        }
        self.watched = wanted;
    }

    /// Stop scheduling; let running backups finish within `grace`; then stop them and clean up.
    async fn shutdown(&mut self, grace: Duration, stop_runs: tokio::sync::watch::Sender<bool>) {
        self.shared.begin_shutdown();
        let running = self.shared.active.load(Ordering::SeqCst);
        tracing::info!(
            event = "shutdown",
            running,
            grace_seconds = grace.as_secs(),
            "stopping: no new runs; running backups get the grace period"
        );
        for (_, h) in self.loops.drain() {
            h.abort();
        }
        if !wait_idle(&self.shared, grace).await {
            tracing::warn!(
                event = "shutdown_grace_exceeded",
                "stopping running backups"
            );
            let _ = stop_runs.send(true);
            // Runs now kill their process groups and delete partial objects.
            wait_idle(&self.shared, Duration::from_secs(30)).await;
        }
    }
}

/// Notifications for this manifest: none without notifiers (no HTTP client, no CA store in memory);
/// the previous dispatcher's client is reused (building one loads the CA store, ~50 ms).
fn dispatcher_for(m: &Manifest, previous: Option<Dispatcher>) -> Option<Dispatcher> {
    if m.notifiers.is_empty() {
        return None;
    }
    match previous {
        Some(d) => Some(Dispatcher::with_client(
            m.notifiers.clone(),
            d.client().clone(),
        )),
        None => Dispatcher::new(m.notifiers.clone()).ok(),
    }
}

/// Give the parse-time garbage of a (large) manifest back to the OS; glibc keeps freed memory.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn wait_idle(shared: &Shared, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if shared.active.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let notified = shared.idle.notified();
        if shared.active.load(Ordering::SeqCst) == 0 {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return shared.active.load(Ordering::SeqCst) == 0;
        }
    }
}

#[derive(Clone)]
struct RunCtx {
    shared: Arc<Shared>,
    env: RunEnv,
    sem: Arc<Semaphore>,
}

/// One job's schedule: sleep until the next run (re-checking the wall clock at least every 30 s),
/// fire, repeat. Next times are computed from the later of the last fired instant and now, so a
/// clock that jumps back never runs a slot twice, and one that jumps forward runs once, not N times.
/// Sleep until each run time of `schedule` (re-checking the wall clock at least every 30 s) and
/// call `on_tick`. Next times are computed from the later of the last fired instant and now, so a
/// clock that jumps back never runs a slot twice, and one that jumps forward runs once, not N times.
async fn schedule_loop(
    schedule: Schedule,
    tz: jiff::tz::TimeZone,
    mut on_next: impl FnMut(Timestamp),
    on_tick: impl Fn(),
) {
    let mut last = Timestamp::now();
    loop {
        let from = last.max(Timestamp::now());
        let Some(next) = schedule.next_after(from, &tz) else {
            tracing::warn!(
                event = "schedule_exhausted",
                schedule = schedule.expr(),
                "no future run time"
            );
            return;
        };
        let next = next.timestamp();
        on_next(next);
        loop {
            let now = Timestamp::now();
            if now >= next {
                break;
            }
            let wait =
                Duration::from_millis((next.as_millisecond() - now.as_millisecond()).max(1) as u64);
            tokio::time::sleep(wait.min(MAX_NAP)).await;
        }
        last = next;
        on_tick();
    }
}

/// One job's backups on its schedule (and once at start with `run_on_start`).
async fn job_loop(ctx: RunCtx, plan: Arc<JobPlan>, run_now: bool) {
    let name = plan.job.clone();
    if run_now {
        fire(&ctx, &name);
    }
    let Some(schedule) = plan.job().and_then(|j| j.schedule.clone()) else {
        return;
    };
    let shared = ctx.shared.clone();
    let job = name.clone();
    let on_next = move |t: Timestamp| shared.metrics.set_next_run(&job, t.as_second());
    schedule_loop(schedule, plan.zone().tz, on_next, || fire(&ctx, &name)).await;
}

/// One job's test-restore drill (`verify: { schedule, restore_to }`).
async fn drill_loop(ctx: RunCtx, plan: Arc<JobPlan>, schedule: Schedule, target: Secret) {
    let tz = plan.zone().tz;
    schedule_loop(
        schedule,
        tz,
        |_| {},
        || fire_drill(&ctx, plan.clone(), target.clone()),
    )
    .await;
}

/// Run a drill unless the previous one is still going; notify like a backup run.
fn fire_drill(ctx: &RunCtx, plan: Arc<JobPlan>, target: Secret) {
    let shared = ctx.shared.clone();
    let Some(claim) = shared.claim(&format!("{}#verify", plan.job)) else {
        tracing::warn!(job = %plan.job, event = "drill_skipped", "previous drill still in progress");
        shared.metrics.record_drill(&plan.job, &skipped_result());
        return;
    };
    state::spawn_tracked(claim, |claim| drill(shared, plan, target, claim));
}

/// One drill: restore the latest backup into `target` and check it, under the job's timeout.
async fn drill(shared: Arc<Shared>, plan: Arc<JobPlan>, target: Secret, claim: state::Claim) {
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    let mut outcome = run::RunOutcome::new(&plan, &run::new_run_id(), started);
    tracing::info!(job = %plan.job, run_id = %outcome.run_id, event = "drill_started");
    let mut restore_time = None;
    match tokio::time::timeout(plan.timeout, crate::restore::drill(&plan, &target)).await {
        Ok(Ok(report)) => {
            restore_time = Some(report.duration);
            outcome.status = Status::Success;
            outcome.object = Some(report.backup.clone());
            outcome.size = Some(report.stored_bytes);
            tracing::info!(job = %plan.job, run_id = %outcome.run_id, event = "drill_succeeded", "{}", report.summary());
        }
        Ok(Err(e)) => outcome.fail(format!("restore drill failed: {e}")),
        Err(_) => outcome.fail(format!(
            "restore drill timed out after {}",
            crate::domain::units::human_duration(plan.timeout)
        )),
    }
    outcome.finished = Timestamp::now();
    outcome.duration = clock.elapsed();
    if let Some(e) = &outcome.error {
        tracing::error!(job = %plan.job, run_id = %outcome.run_id, event = "drill_failed", error = %e);
    }
    // The restore SLO: how long the drill's restore and checks took.
    let mut result = result_of(&outcome);
    result.duration = restore_time.unwrap_or(outcome.duration);
    shared.metrics.record_drill(&plan.job, &result);
    drop(claim);
    notify_finished(&shared, &plan, &outcome).await;
}

/// Start a run of `job` unless one is queued or running (then the tick is skipped and counted).
fn fire(ctx: &RunCtx, job: &str) {
    let shared = ctx.shared.clone();
    let Some(claim) = shared.claim(job) else {
        tracing::warn!(
            job,
            event = "backup_skipped",
            "previous run still in progress; this tick is skipped"
        );
        shared.metrics.record_backup(job, &skipped_result());
        return;
    };
    // The plan as of now: a reload changes the next run, never a running one.
    let Some(plan) = shared.plan(job) else {
        return;
    };
    let ctx = ctx.clone();
    state::spawn_tracked(claim, |claim| backup_run(ctx, plan, claim));
}

/// One backup run: wait for a `max_parallel` slot, run, record, release the job, notify.
async fn backup_run(ctx: RunCtx, plan: Arc<JobPlan>, claim: state::Claim) {
    let shared = ctx.shared.clone();
    let job = plan.job.clone();
    let _permit = ctx.sem.clone().acquire_owned().await;
    // Shutdown began while this run waited for a slot: it never starts.
    if shared.is_stopping() {
        tracing::warn!(job = %job, event = "backup_not_started", "shutting down: a run waiting for a free slot is not started");
        shared.metrics.record_backup(&job, &skipped_result());
        return;
    }
    shared.metrics.set_running(&job, true);
    let mut env = ctx.env.clone();
    if let Some(d) = shared.dispatcher() {
        env.on_start = Some(run::notice::start_hook(
            &d,
            std::slice::from_ref(plan.as_ref()),
        ));
    }
    let outcome = run::backup::backup(&plan, &env).await;
    shared.metrics.set_running(&job, false);
    shared.metrics.record_backup(&job, &result_of(&outcome));
    if outcome.status == Status::Success {
        if let Ok(mut l) = shared.last_success.lock() {
            l.insert(job.clone(), outcome.finished);
        }
        if plan.pitr.is_some() {
            // Still under the job's claim: the WAL only removed base backups needed goes now.
            crate::pitr::retention::after_backup(&plan).await;
        }
    }
    // The next tick may start a run while this one's notifications are sent.
    drop(claim);
    notify_finished(&shared, &plan, &outcome).await;
}

/// Tell the job's notifiers how a run or drill ended, counting each delivery.
async fn notify_finished(shared: &Shared, plan: &JobPlan, outcome: &run::RunOutcome) {
    if let Some(d) = shared.dispatcher() {
        for del in run::notice::finished(&d, &plan.notify, outcome).await {
            shared.metrics.count_notification(&del.notifier, del.ok);
        }
    }
}

/// How a run or drill ended, for the metrics.
fn result_of(outcome: &run::RunOutcome) -> crate::server::metrics::RunResult<'static> {
    crate::server::metrics::RunResult {
        status: outcome.status.as_str(),
        finished: outcome.finished.as_second(),
        duration: outcome.duration,
        size: outcome.size,
    }
}

/// A tick that found the previous run (or drill) still going.
fn skipped_result() -> crate::server::metrics::RunResult<'static> {
    crate::server::metrics::RunResult {
        status: "skipped",
        finished: Timestamp::now().as_second(),
        duration: Duration::ZERO,
        size: None,
    }
}
