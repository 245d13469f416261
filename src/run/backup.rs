//! One backup run: lock → pre-hook → dump ⇒ relay ⇒ upload → checks → commit → record (last) →
//! retention → post-hook. Any failure (dump, upload, checks, timeout, shutdown) aborts the upload
//! before it sees EOF and deletes what reached the remote.

use super::record::{self, Record};
use super::relay::{self, RelayStats};
use super::{hooks, lock, retention, RunEnv, RunOutcome, Status};
use crate::engine::DumpSpec;
use crate::plan::command::CommandSpec;
use crate::plan::{JobPlan, ObjectName};
use crate::proc::{self, ProcGroup, StderrTail};
use crate::secret::{redact, Secret};
use crate::storage::{join_key, AnyStorage, Storage, Upload};
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// SIGTERM → SIGKILL grace when a run is cut short.
const KILL_GRACE: Duration = Duration::from_secs(5);
const POST_HOOK_LIMIT: Duration = Duration::from_secs(300);

struct Done {
    key: String,
    stats: RelayStats,
}

/// The job's secrets, each also in its percent-encoded form (how a password appears inside the
/// connection URIs that tools echo in their errors), for scrubbing tool output.
fn secrets(plan: &JobPlan) -> Vec<Secret> {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let mut out: Vec<Secret> = Vec::new();
    for s in plan.job().map(|j| j.secrets()).unwrap_or_default() {
        let encoded = utf8_percent_encode(s.expose(), NON_ALPHANUMERIC).to_string();
        out.push(s.clone());
        if encoded != s.expose() {
            out.push(Secret::new(encoded));
        }
    }
    out
}

pub async fn backup(plan: &JobPlan, env: &RunEnv) -> RunOutcome {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
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
    tracing::info!(job = %plan.job, run_id, event = "backup_started", engine = plan.engine.as_str(), remote = %plan.remote.name);
    if let Some(n) = &env.on_start {
        n(&outcome);
    }
    let secrets = secrets(plan);
    let secret_refs: Vec<&Secret> = secrets.iter().collect();
    let run_dir = env.temp_dir.join("runs").join(&run_id);
    let store = AnyStorage::for_plan(plan);
    let group = ProcGroup::new();
    // The upload runs in a group of its own: when the dump fails, its whole family is SIGKILLed at
    // once, while rclone is stopped by `Upload::abort` (SIGTERM first, so it can abort its S3
    // multipart upload instead of leaving the parts behind; its stdin stays open, so it never
    // completes the object).
    let upload_group = ProcGroup::new();
    let partial: Mutex<Option<String>> = Mutex::new(None);

    let result = {
        let work = attempt(
            plan,
            env,
            &store,
            (&group, &upload_group),
            &run_dir,
            started,
            &partial,
            &run_id,
        );
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
                tokio::join!(group.terminate(KILL_GRACE), upload_group.terminate(KILL_GRACE));
                Err(format!("timed out after {}", crate::manifest::units::human_duration(plan.timeout)))
            }
            _ = stop => {
                tokio::join!(group.terminate(KILL_GRACE), upload_group.terminate(KILL_GRACE));
                Err("stopped: dbstash is shutting down".to_string())
            }
        }
    };
    // Anything still running belongs to an abandoned attempt.
    group.kill();
    upload_group.kill();
    let partial_key = partial.lock().ok().and_then(|mut p| p.take());
    match result {
        Ok(done) => {
            outcome.status = Status::Success;
            outcome.object = Some(done.key);
            outcome.size = Some(done.stats.stored_bytes);
            outcome.raw_size = Some(done.stats.raw_bytes);
            outcome.sha256 = Some(done.stats.sha256);
        }
        Err(e) => {
            if let Some(key) = &partial_key {
                for k in [record::record_key(key), key.clone()] {
                    if let Err(err) = store.delete(&k).await {
                        tracing::warn!(job = %plan.job, run_id, event = "cleanup_failed", key = %k, error = %err);
                    }
                }
                outcome.object = Some(key.clone());
            }
            outcome.fail(redact(&e, &secret_refs));
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
        let post_group = ProcGroup::new();
        if let Err(e) = hooks::run(
            post,
            "post",
            &henv,
            &secret_refs,
            &post_group,
            POST_HOOK_LIMIT,
        )
        .await
        {
            tracing::warn!(job = %plan.job, run_id, event = "hook_failed", hook = "post", error = %e);
        }
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    outcome.log();
    outcome
}

fn make_run_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_private_files(dir: &Path, spec: &CommandSpec) -> std::io::Result<()> {
    use std::io::Write;
    for f in &spec.files {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(&f.name))?;
        file.write_all(f.contents.expose().as_bytes())?;
    }
    Ok(())
}

/// First free object name: `NAME.EXT`, else `NAME-2.EXT`, … (never overwrite a backup).
fn free_name(obj: &ObjectName, ext: &str, taken: &[crate::storage::Entry]) -> ObjectName {
    let exists = |n: &str| {
        taken
            .iter()
            .any(|e| e.name == n || e.name == format!("{n}{}", record::SUFFIX))
    };
    if !exists(&obj.file) {
        return obj.clone();
    }
    let stem = obj.file.strip_suffix(ext).unwrap_or(&obj.file).to_string();
    (2..)
        .map(|i| ObjectName {
            folder: obj.folder.clone(),
            file: format!("{stem}-{i}{ext}"),
        })
        .find(|o| !exists(&o.file))
        .unwrap_or_else(|| obj.clone())
}

async fn tool_version(spec: &CommandSpec) -> Option<String> {
    let mut cmd = proc::command(spec, None);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    // Through a ProcGroup like every child: registered, so a PID-1 reaper never steals its status.
    let group = ProcGroup::new();
    let child = group.spawn(&mut cmd).ok()?;
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    plan: &JobPlan,
    env: &RunEnv,
    store: &AnyStorage,
    (group, upload_group): (&ProcGroup, &ProcGroup),
    run_dir: &Path,
    started: Timestamp,
    partial: &Mutex<Option<String>>,
    run_id: &str,
) -> Result<Done, String> {
    let secrets = secrets(plan);
    let secret_refs: Vec<&Secret> = secrets.iter().collect();
    make_run_dir(run_dir)
        .map_err(|e| format!("cannot create run folder {}: {e}", run_dir.display()))?;
    if let Some(pre) = &plan.hooks.pre {
        let henv = hooks::HookEnv {
            job: &plan.job,
            run_id,
            status: "running",
            file: "",
            size: 0,
            error: "",
        };
        hooks::run(pre, "pre", &henv, &secret_refs, group, plan.timeout).await?;
    }

    // Name the object; never overwrite an existing backup.
    let wanted = plan.object_for(&plan.name_vars(started));
    let (previous, entries) = record::newest_backup(store, &wanted.folder, &plan.job)
        .await
        .map_err(|e| format!("cannot list remote `{}`: {e}", plan.remote.name))?;
    let obj = free_name(&wanted, &plan.extension, &entries);
    let key = obj.key();
    let expected = plan
        .expected_size
        .or_else(|| previous.as_ref().map(|b| b.record.size + b.record.size / 4));

    let mut versions = BTreeMap::new();
    if let Some(v) = &plan.version {
        if let Some(text) = tool_version(v).await {
            versions.insert(v.program.clone(), text);
        }
    }

    // Start the upload first, so the dump's bytes have somewhere to go.
    let mut upload = store
        .begin_upload(&key, upload_group, expected)
        .await
        .map_err(|e| format!("cannot start upload to `{}`: {e}", plan.remote.name))?;
    if let Ok(mut p) = partial.lock() {
        *p = Some(key.clone());
    }
    let writer = match upload.take_writer() {
        Ok(w) => w,
        Err(e) => {
            upload.abort(store, &key).await;
            return Err(format!("upload: {e}"));
        }
    };

    // Start the dump.
    let mut dump_child = None;
    let mut dump_tail = StderrTail::empty();
    let source: File = match &plan.dump {
        DumpSpec::Command(spec) => {
            if let Err(e) = write_private_files(run_dir, spec) {
                upload.abort(store, &key).await;
                return Err(format!("cannot write option file: {e}"));
            }
            let mut cmd = proc::command(spec, Some(run_dir));
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = match group.spawn(&mut cmd) {
                Ok(c) => c,
                Err(e) => {
                    upload.abort(store, &key).await;
                    return Err(format!("cannot start {}: {e}", spec.program));
                }
            };
            dump_tail = child.stderr.take().map_or_else(StderrTail::empty, |e| {
                StderrTail::spawn_redacted(e, "dump", secrets.clone())
            });
            let Some(out) = child.stdout.take() else {
                upload.abort(store, &key).await;
                return Err("dump has no stdout".into());
            };
            dump_child = Some(child);
            match out.into_owned_fd() {
                Ok(fd) => File::from(fd),
                Err(e) => {
                    upload.abort(store, &key).await;
                    return Err(format!("dump stdout: {e}"));
                }
            }
        }
        DumpSpec::SqliteSnapshot { path } => {
            match sqlite_snapshot(path.clone(), run_dir.join("snapshot.sqlite3")).await {
                Ok(f) => f,
                Err(e) => {
                    upload.abort(store, &key).await;
                    return Err(e);
                }
            }
        }
    };

    let progress = env.progress.then(|| Arc::new(AtomicU64::new(0)));
    let bar = progress
        .clone()
        .map(|p| super::progress::Progress::start(&plan.job, p));
    let codec = plan.codec;
    let mut relay_task =
        tokio::task::spawn_blocking(move || relay::relay(source, writer, codec, progress));
    // Watch all three at once: the relay, the dump and the upload. Whichever fails first stops the
    // others now (SIGKILL to the dump's group; rclone, which never sees EOF, is aborted below) — a dump whose
    // child still holds the pipe, or an idle dump behind a dead upload, must not keep the run alive.
    let mut relayed = None;
    let mut dump_status = None;
    let mut upload_died: Option<String> = None;
    let mut stopped = false;
    let mut relay_failed_first = false;
    while relayed.is_none() || dump_status.is_none() {
        tokio::select! {
            r = &mut relay_task, if relayed.is_none() => {
                if !matches!(r, Ok(Ok(_))) && !stopped {
                    relay_failed_first = true;
                    stopped = true;
                    group.kill();
                }
                relayed = Some(r);
            }
            s = async {
                match dump_child.as_mut() {
                    Some(c) => c.wait().await.map(Some),
                    None => Ok(None),
                }
            }, if dump_status.is_none() => {
                let ok = matches!(&s, Ok(None)) || matches!(&s, Ok(Some(st)) if st.success());
                if !ok && !stopped {
                    stopped = true;
                    group.kill();
                }
                dump_status = Some(s);
            }
            how = upload.exited(), if upload_died.is_none() && !stopped => {
                upload_died = Some(how);
                stopped = true;
                group.kill();
            }
        }
    }
    let (Some(relayed), Some(dump_status)) = (relayed, dump_status) else {
        upload.abort(store, &key).await;
        return Err("internal error: the relay or the dump was not waited for".into());
    };
    if let Some(b) = bar {
        b.stop();
    }
    let dump_tail = redact(&dump_tail.finish().await, &secret_refs);
    let program = match &plan.dump {
        DumpSpec::Command(c) => c.program.clone(),
        DumpSpec::SqliteSnapshot { .. } => "sqlite snapshot".into(),
    };

    // The upload died on its own: that is the failure, whatever the dump then saw.
    if let Some(how) = upload_died {
        return Err(upload_failed(
            upload,
            store,
            &key,
            &plan.remote.name,
            format!("the upload ended before the dump did ({how})"),
        )
        .await);
    }

    // Judge the dump first: a failed dump must never become an object, whatever the relay saw
    // (unless the relay failed first and the dump only died because we stopped it).
    match dump_status {
        Ok(Some(s)) if !s.success() && !relay_failed_first => {
            upload.abort(store, &key).await;
            return Err(format!(
                "{program} failed ({}): {}",
                proc::describe_status(s),
                tail_or(&dump_tail)
            ));
        }
        Err(e) => {
            upload.abort(store, &key).await;
            return Err(format!("{program}: {e}"));
        }
        _ => {}
    }
    let stats = match relayed {
        Ok(Ok((stats, _writer))) => stats,
        Ok(Err(e)) => {
            return Err(upload_failed(upload, store, &key, &plan.remote.name, e.to_string()).await)
        }
        Err(e) => {
            return Err(upload_failed(upload, store, &key, &plan.remote.name, e.to_string()).await)
        }
    };
    if stats.raw_bytes < plan.min_raw_bytes.max(1) && !plan.allow_empty {
        upload.abort(store, &key).await;
        return Err(format!(
            "{program} produced only {} bytes (an empty database still dumps at least {}); set `allow_empty: true` if this is expected. {}",
            stats.raw_bytes,
            plan.min_raw_bytes,
            tail_or(&dump_tail)
        ));
    }
    upload.commit().await.map_err(|e| {
        format!(
            "upload to `{}` failed: {}",
            plan.remote.name,
            redact(&e.to_string(), &secret_refs)
        )
    })?;

    // The record, last.
    let finished = Timestamp::now();
    let rec = Record {
        format: record::FORMAT.into(),
        job: plan.job.clone(),
        engine: plan.engine.as_str().into(),
        database: plan.database.clone(),
        object: obj.file.clone(),
        run_id: run_id.to_string(),
        started,
        finished,
        size: stats.stored_bytes,
        raw_size: stats.raw_bytes,
        sha256: stats.sha256.clone(),
        compression: plan.codec.name().into(),
        dump_format: plan.extension.clone(),
        tool_versions: versions,
        dbstash_version: env!("CARGO_PKG_VERSION").into(),
        host: hostname(),
    };
    let body = serde_json::to_vec_pretty(&rec).map_err(|e| format!("record: {e}"))?;
    store
        .write_small(&record::record_key(&key), &body)
        .await
        .map_err(|e| format!("cannot write the record: {e}"))?;
    if let Ok(mut p) = partial.lock() {
        *p = None;
    }

    // Retention only after a complete backup; its failures are logged, not the backup's.
    match retention::apply_after_backup(plan, store, finished).await {
        Ok(r) if !r.errors.is_empty() => {
            tracing::warn!(job = %plan.job, event = "retention_failed", errors = ?r.errors)
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(job = %plan.job, event = "retention_failed", error = %e),
    }
    Ok(Done { key, stats })
}

async fn upload_failed(
    upload: Upload,
    store: &AnyStorage,
    key: &str,
    remote: &str,
    io_error: String,
) -> String {
    let tail = upload.abort(store, key).await;
    format!(
        "upload to `{remote}` failed: {io_error}{}",
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {tail}")
        }
    )
}

fn tail_or(t: &str) -> String {
    if t.is_empty() {
        "(no output on stderr)".into()
    } else {
        t.to_string()
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// SQLite's online backup API into a private file: a consistent copy even while the application
/// writes (it restarts when the source changes mid-copy).
async fn sqlite_snapshot(src: PathBuf, dst: PathBuf) -> Result<File, String> {
    tokio::task::spawn_blocking(move || {
        if !src.exists() {
            return Err(format!("SQLite database {} does not exist", src.display()));
        }
        let from = rusqlite::Connection::open_with_flags(
            &src,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot open SQLite database {}: {e}", src.display()))?;
        let mut to = rusqlite::Connection::open(&dst).map_err(|e| format!("snapshot: {e}"))?;
        {
            let b = rusqlite::backup::Backup::new(&from, &mut to)
                .map_err(|e| format!("snapshot: {e}"))?;
            b.run_to_completion(256, Duration::from_millis(5), None)
                .map_err(|e| format!("SQLite snapshot of {} failed: {e}", src.display()))?;
        }
        drop(to);
        File::open(&dst).map_err(|e| format!("snapshot: {e}"))
    })
    .await
    .map_err(|e| format!("snapshot task: {e}"))?
}

/// Key of a backup relative to the remote root.
pub fn key_of(folder: &str, id: &str) -> String {
    join_key(folder, id)
}
