//! One run of a job: lock → dead runs' temp folders removed (run::stale) → the run's own folder →
//! pre-hook → which databases → one backup each (run::unit) → post-hook, all under the job's
//! timeout and dbstash's shutdown. Anything a cut-short run left on a remote without its record is
//! deleted here; whatever the hooks left running dies with the run's process group.

use super::claim_ahead::{self, Ahead};
use super::dump;
use super::error::{ExitReason, RunError};
use super::ledger::Ledger;
use super::stale::{self, RunFolder, RunFolderError};
use super::unit::{self, Ctx, Done};
use super::{hooks, lock, Part, RunEnv, RunOutcome, Status};
use crate::catalog::retention;
use crate::plan::databases;
use crate::plan::JobPlan;
use crate::proc::{self, ProcGroup, StderrTail};
use crate::secret::{redact, Secret};
use crate::storage::AnyStorage;
use jiff::Timestamp;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// SIGTERM → SIGKILL grace when a run is cut short.
const KILL_GRACE: Duration = Duration::from_secs(5);
const POST_HOOK_LIMIT: Duration = Duration::from_secs(300);

/// The job's secrets, for scrubbing tool output (the `Redactor` also covers their percent-encoded
/// forms, as they appear inside the connection URIs that tools echo in their errors).
fn secrets(plan: &JobPlan) -> Vec<Secret> {
    plan.job()
        .map(|j| j.secrets().into_iter().cloned().collect())
        .unwrap_or_default()
}

pub async fn backup(plan: &JobPlan, env: &RunEnv) -> RunOutcome {
    let run_id = super::new_run_id();
    let started = Timestamp::now();
    let clock = Instant::now();
    let mut outcome = RunOutcome::new(plan, &run_id, started);
    let _lock = match lock::try_lock(&env.temp_dir, &plan.job) {
        Ok(l) => l,
        Err(e @ lock::LockError::Busy { .. }) => {
            tracing::warn!(job = %plan.job, run_id, event = "backup_skipped", reason = %e, "job is already running; this run is skipped");
            outcome.status = Status::Skipped;
            // "job `J` is already running (lock PATH is held by pid N)"
            outcome.error = Some(e.to_string());
            return outcome;
        }
        Err(e) => {
            outcome.fail(e.to_string());
            return outcome;
        }
    };
    tracing::info!(job = %plan.job, run_id, event = "backup_started", engine = plan.engine.as_str(), remote = %outcome.remote);
    let stores: Vec<AnyStorage> = plan.remotes.iter().map(AnyStorage::for_remote).collect();
    // The rclone daemon starts (~50 ms) while the run folder is made and the dump starts.
    stores.iter().for_each(AnyStorage::warm_up);
    if let Some(n) = &env.on_start {
        n(&outcome);
    }
    let secrets = secrets(plan);
    let secret_refs: Vec<&Secret> = secrets.iter().collect();
    // Kept until the end of the run (dropping it removes the folder); the attempt gets its path
    // or why it could not be made.
    let (folder, run_dir) = match sweep_then_create_folder(&env.temp_dir, &run_id).await {
        Ok(f) => {
            let dir = f.path().to_path_buf();
            (Some(f), Ok(dir))
        }
        Err(e) => (None, Err(e)),
    };
    let group = ProcGroup::new();
    // The uploads run in a group of their own: when the dump fails, its whole family is SIGKILLed
    // at once, while rclone is stopped by `Upload::abort` (SIGTERM first, so it can abort its S3
    // multipart upload instead of leaving the parts behind; its stdin stays open, so it never
    // completes the object).
    let upload_group = ProcGroup::new();
    // One process group per concurrent database (`parallel:`): a database whose dump fails
    // SIGKILLs its own group, never a sibling's dump.
    let slots: Vec<ProcGroup> = (0..plan.parallel.max(1))
        .map(|_| ProcGroup::new())
        .collect();
    let partial = Ledger::default();
    let claims = super::claim::Claims::default();
    let ctx = Ctx {
        env,
        stores: &stores,
        group: &group,
        upload_group: &upload_group,
        started,
        partial: &partial,
        run_id: &run_id,
        secrets: &secrets,
        claims: &claims,
    };

    let result = {
        let work = attempt(plan, &ctx, run_dir, &slots);
        tokio::pin!(work);
        let mut shutdown = env.shutdown.clone();
        let stop = async move {
            loop {
                if *shutdown.borrow_and_update() {
                    return;
                }
                if shutdown.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            r = &mut work => r,
            _ = tokio::time::sleep(plan.timeout) => {
                terminate_all(&group, &slots, &upload_group).await;
                Err(RunError::TimedOut(plan.timeout))
            }
            _ = stop => {
                terminate_all(&group, &slots, &upload_group).await;
                Err(RunError::ShuttingDown)
            }
        }
    };
    // Anything still running belongs to an abandoned attempt.
    group.kill();
    slots.iter().for_each(ProcGroup::kill);
    upload_group.kill();
    let partial_keys = super::claim::clean_up(&ctx, &plan.job).await;
    match result {
        Ok(parts) => outcome.settle(parts, plan.per_database, &secret_refs),
        Err(e) => {
            if let Some(p) = partial_keys.first() {
                outcome.object = Some(p.key.clone());
            }
            outcome.fail(redact(&e.to_string(), &secret_refs));
        }
    }
    outcome.finished = Timestamp::now();
    outcome.duration = clock.elapsed();
    if let Some(post) = &plan.hooks.post {
        let status = if outcome.status == Status::Success {
            "success"
        } else {
            "failure"
        };
        let henv = hooks::HookEnv {
            job: &plan.job,
            run_id: &run_id,
            status,
            file: outcome.object.as_deref().unwrap_or(""),
            size: outcome.size.unwrap_or(0),
            error: outcome.error.as_deref().unwrap_or(""),
        };
        // In the run's process group, like the pre-hook: what it leaves running in the
        // background dies with the run below.
        if let Err(e) = hooks::run(post, "post", &henv, &secret_refs, &group, POST_HOOK_LIMIT).await
        {
            tracing::warn!(job = %plan.job, run_id, event = "hook_failed", hook = "post", error = %e);
        }
        group.kill();
    }
    // The run folder goes while the job's lock is still held.
    drop(folder);
    dump::forget_tool_versions(&run_id);
    outcome.log();
    outcome
}

/// SIGTERM to every group of the run at once (hooks, each database's dump, the uploads), then
/// SIGKILL after the grace.
async fn terminate_all(group: &ProcGroup, slots: &[ProcGroup], uploads: &ProcGroup) {
    let dumps = futures_util::future::join_all(slots.iter().map(|s| s.terminate(KILL_GRACE)));
    tokio::join!(
        group.terminate(KILL_GRACE),
        dumps,
        uploads.terminate(KILL_GRACE)
    );
}

/// The run's private folder `<temp_dir>/runs/<run_id>`, after removing the folders dead runs
/// left there (this run holds the job's lock, so none of this job's is live; other jobs' live
/// folders are told apart by their owner lock).
async fn sweep_then_create_folder(
    temp_dir: &Path,
    run_id: &str,
) -> Result<RunFolder, RunFolderError> {
    let (temp, id) = (temp_dir.to_path_buf(), run_id.to_string());
    // Blocking file system work (a dead tar-mode run may have left gigabytes).
    tokio::task::spawn_blocking(move || {
        stale::sweep_logged(&temp);
        RunFolder::create(&temp, &id)
    })
    .await
    .unwrap_or_else(|e| {
        Err(RunFolderError::Create {
            path: temp_dir.join("runs").join(run_id).display().to_string(),
            source: std::io::Error::other(e),
        })
    })
}

/// Pre-hook, then every database's backup. One database failing does not stop the others.
async fn attempt(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    run_dir: Result<std::path::PathBuf, RunFolderError>,
    slots: &[ProcGroup],
) -> Result<Vec<(String, Result<Done, RunError>)>, RunError> {
    let secret_refs: Vec<&Secret> = ctx.secrets.iter().collect();
    let run_dir = run_dir?;
    if let Some(pre) = &plan.hooks.pre {
        let henv = hooks::HookEnv {
            job: &plan.job,
            run_id: ctx.run_id,
            status: "running",
            file: "",
            size: 0,
            error: "",
        };
        hooks::run(pre, "pre", &henv, &secret_refs, ctx.group, plan.timeout).await?;
    }
    let mut units: Vec<JobPlan> = match &plan.list_databases {
        None if !plan.databases.is_many() => vec![plan.clone()],
        listing => {
            let listed = match listing {
                Some(spec) if matches!(plan.databases, crate::model::Databases::All) => {
                    list_databases(spec, ctx.group, ctx.secrets, &run_dir.join("list")).await?
                }
                _ => String::new(),
            };
            let names = select(plan, &listed);
            if names.is_empty() {
                return Err(RunError::NoDatabases);
            }
            tracing::info!(job = %plan.job, run_id = ctx.run_id, event = "databases_found", databases = ?names);
            names.iter().map(|db| plan.for_database(db)).collect()
        }
    };
    if let Some(g) = plan.for_globals() {
        units.push(g);
    }
    let out = back_up_units(plan, &units, ctx, &run_dir, slots).await;
    if plan.per_database && out.iter().any(|(_, r)| r.is_ok()) {
        // Once per remote for the whole job: each database's history is judged on its own
        // (retention groups by the records' database), and every record is read once.
        let now = Timestamp::now();
        for (i, remote) in plan.remotes.iter().enumerate() {
            let on = plan.on_remote(&remote.name).unwrap_or_else(|| plan.clone());
            match retention::apply_after_backup(&on, &ctx.stores[i], now, None).await {
                Ok(r) if !r.errors.is_empty() => {
                    tracing::warn!(job = %plan.job, remote = %remote.name, event = "retention_failed", errors = ?r.errors)
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(job = %plan.job, remote = %remote.name, event = "retention_failed", error = %e)
                }
            }
        }
    }
    Ok(out)
}

/// Each unit's backup, up to one per slot at a time (`parallel:`), results in the units' order.
/// A worker per slot takes the next unit when its last one is done, so a slow database holds
/// one slot, not a whole batch.
async fn back_up_units(
    plan: &JobPlan,
    units: &[JobPlan],
    ctx: &Ctx<'_>,
    run_dir: &Path,
    slots: &[ProcGroup],
) -> Vec<(String, Result<Done, RunError>)> {
    let workers = slots.len().clamp(1, units.len().max(1));
    // Several progress lines would overwrite each other on one terminal: only a lone backup
    // shows one.
    let env = RunEnv {
        progress: ctx.env.progress && workers == 1,
        ..ctx.env.clone()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Done, RunError>>>> =
        Mutex::new(units.iter().map(|_| None).collect());
    // Several databases: their names are claimed ahead, in batches sharing one listing.
    let cctx = Ctx { env: &env, ..*ctx };
    let (aheads, claimer) = match claim_ahead::channels(units) {
        Some((rxs, txs)) => (
            rxs.into_iter().map(Some).collect(),
            Some(claim_ahead::claim_all(units, &cctx, workers, txs)),
        ),
        None => (units.iter().map(|_| None).collect(), None),
    };
    let aheads = Mutex::new(aheads);
    let workers = slots[..workers].iter().map(|group| {
        let uctx = Ctx {
            env: &env,
            group,
            ..*ctx
        };
        work_through(plan, units, uctx, run_dir, &next, &aheads, &results)
    });
    let claimer = async {
        if let Some(c) = claimer {
            c.await;
        }
    };
    tokio::join!(futures_util::future::join_all(workers), claimer);
    let results = results.into_inner().unwrap_or_default();
    units
        .iter()
        .zip(results)
        .map(|(u, r)| {
            let r = r.unwrap_or(Err(RunError::Internal("the backup did not run")));
            (u.database.clone(), r)
        })
        .collect()
}

/// One slot's worker: the next unit not yet taken, until none is left. The slot bounds the dumps
/// (`parallel:` is how hard the database server is worked): the next unit's dump starts as soon
/// as this one's is over, while this one still commits its uploads and writes its records (tens
/// of milliseconds a database, which a job of many small databases otherwise waits out one after
/// another). At most one unit of the slot is past its dump and not yet done.
async fn work_through(
    plan: &JobPlan,
    units: &[JobPlan],
    ctx: Ctx<'_>,
    run_dir: &Path,
    next: &AtomicUsize,
    aheads: &Mutex<Vec<Option<Ahead>>>,
    results: &Mutex<Vec<Option<Result<Done, RunError>>>>,
) {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let ctx = &ctx;
    let one = |i: usize, dumped| async move {
        let u = &units[i];
        let ahead = aheads.lock().ok().and_then(|mut a| a.get_mut(i)?.take());
        let dir = run_dir.join(format!("u{i}"));
        let r = back_up_unit(plan, u, ctx, &dir, ahead, Some(dumped)).await;
        if let Ok(mut all) = results.lock() {
            all[i] = Some(r);
        }
    };
    let mut in_flight = FuturesUnordered::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= units.len() {
            break;
        }
        let (dumped, mut over) = tokio::sync::oneshot::channel();
        in_flight.push(one(i, dumped));
        // Until this unit's dump is over (told, or the unit ended and dropped the sender),
        // driving the one before it meanwhile.
        loop {
            tokio::select! {
                _ = &mut over => break,
                Some(()) = in_flight.next() => {}
            }
        }
        // The one before must be done before a third starts.
        while in_flight.len() > 1 {
            in_flight.next().await;
        }
    }
    while in_flight.next().await.is_some() {}
}

/// One database's backup in its own folder (removed after), its failure logged at once.
async fn back_up_unit(
    plan: &JobPlan,
    u: &JobPlan,
    ctx: &Ctx<'_>,
    dir: &Path,
    ahead: Option<Ahead>,
    dumped: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Done, RunError> {
    let r = unit::backup_one(u, ctx, dir, ahead, dumped).await;
    if let Err(e) = &r {
        let refs: Vec<&Secret> = ctx.secrets.iter().collect();
        tracing::error!(job = %plan.job, run_id = ctx.run_id, database = %u.database, event = "database_failed", error = %redact(&e.to_string(), &refs));
    }
    let _ = std::fs::remove_dir_all(dir);
    r
}

fn select(plan: &JobPlan, listed: &str) -> Vec<String> {
    databases::select(
        &plan.databases,
        listed,
        crate::engine::system_databases(plan.engine),
        &plan.exclude,
    )
}

/// The databases a several-database job would back up now (`plan` shows them): the server is
/// asked for `database: "*"`; a list needs no server.
pub async fn discover(plan: &JobPlan, temp_dir: &Path) -> Result<Vec<String>, RunError> {
    let listed = match &plan.list_databases {
        Some(spec) if matches!(plan.databases, crate::model::Databases::All) => {
            let id = format!("plan-{}", uuid::Uuid::new_v4().simple());
            let folder = RunFolder::create(temp_dir, &id)?;
            let group = ProcGroup::new();
            let r = list_databases(spec, &group, &secrets(plan), &folder.path().join("list")).await;
            group.kill();
            r?
        }
        _ => String::new(),
    };
    Ok(select(plan, &listed))
}

/// The server's databases, one per line, from the engine's listing command.
async fn list_databases(
    spec: &crate::domain::command::CommandSpec,
    group: &ProcGroup,
    secrets: &[Secret],
    dir: &Path,
) -> Result<String, RunError> {
    let refs: Vec<&Secret> = secrets.iter().collect();
    dump::make_private_dir(dir).map_err(|source| RunError::ListFolder {
        path: dir.display().to_string(),
        source,
    })?;
    dump::write_private_files(dir, spec).map_err(RunError::OptionFile)?;
    let mut cmd = proc::command(&crate::engine::pg_wrapper::direct(spec), Some(dir));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = group.spawn(&mut cmd).map_err(|source| RunError::Start {
        program: spec.program.clone(),
        source,
    })?;
    let mut tail = child.stderr.take().map_or_else(StderrTail::empty, |e| {
        StderrTail::spawn_redacted(e, "list", secrets.to_vec())
    });
    let out = child.wait_with_output().await;
    let tail = redact(&tail.finish().await, &refs);
    let _ = std::fs::remove_dir_all(dir);
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(RunError::Listing {
            program: spec.program.clone(),
            how: ExitReason::of(o.status),
            tail,
        }),
        Err(source) => Err(RunError::Wait {
            program: spec.program.clone(),
            source,
        }),
    }
}

impl RunOutcome {
    /// Fold the per-database results into the run's outcome.
    fn settle(
        &mut self,
        results: Vec<(String, Result<Done, RunError>)>,
        per_database: bool,
        secrets: &[&Secret],
    ) {
        let mut errors = Vec::new();
        for (db, r) in results {
            match r {
                Ok(d) => {
                    self.warnings
                        .extend(d.dropped.iter().map(|w| format!("optional remote {w}")));
                    self.parts.push(Part {
                        database: db,
                        object: Some(d.key),
                        size: d.stats.stored_bytes,
                        raw_size: d.stats.raw_bytes,
                        sha256: d.stats.sha256,
                        remotes: d.remotes,
                        error: None,
                    });
                }
                Err(e) => {
                    let e = redact(&e.to_string(), secrets);
                    errors.push(if per_database {
                        format!("{db}: {e}")
                    } else {
                        e.clone()
                    });
                    self.parts.push(Part {
                        database: db,
                        object: None,
                        size: 0,
                        raw_size: 0,
                        sha256: String::new(),
                        remotes: Vec::new(),
                        error: Some(e),
                    });
                }
            }
        }
        if per_database {
            // Several databases: name them all (the plan's `{db}` placeholder says nothing).
            self.database = self
                .parts
                .iter()
                .map(|p| p.database.as_str())
                .collect::<Vec<_>>()
                .join(", ");
        }
        let ok: Vec<&Part> = self.parts.iter().filter(|p| p.error.is_none()).collect();
        if ok.len() == 1 && self.parts.len() == 1 {
            let p = ok[0];
            self.object = p.object.clone();
            self.size = Some(p.size);
            self.raw_size = Some(p.raw_size);
            self.sha256 = Some(p.sha256.clone());
        } else if !ok.is_empty() {
            self.size = Some(ok.iter().map(|p| p.size).sum());
            self.raw_size = Some(ok.iter().map(|p| p.raw_size).sum());
            self.object = Some(
                ok.iter()
                    .filter_map(|p| p.object.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if errors.is_empty() {
            self.status = Status::Success;
        } else if per_database {
            let n = self.parts.len();
            self.fail(format!(
                "{} of {n} backups failed: {}",
                errors.len(),
                errors.join("; ")
            ));
        } else {
            self.fail(errors.join("; "));
        }
    }
}
