//! The long-lived WAL stream of one `pitr` job: create the slot if missing, run `pg_receivewal`
//! into a private spool folder, archive every completed segment as it appears, and restart the
//! receiver with a bounded backoff when it ends. Runs until its task is aborted (shutdown, or the
//! job removed/changed by a reload); the receiver is in its own process group, killed on drop.

use super::error::PitrError;
use super::segment;
use crate::plan::pitr::{spool_name, PitrPlan};
use crate::plan::JobPlan;
use crate::proc::{self, ProcGroup, StderrTail};
use crate::server::metrics::StreamSeries;
use crate::storage::AnyStorage;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the spool is looked at for completed segments.
const SWEEP: Duration = Duration::from_secs(1);
/// Backoff between restarts of the receiver: doubling from FIRST, never above LAST.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LAST_BACKOFF: Duration = Duration::from_secs(60);
/// A receiver that streamed this long counts as healthy: the next failure starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Creating the slot is one short query; a server that does not answer is an error, not a hang.
const SLOT_TIMEOUT: Duration = Duration::from_secs(60);

/// What `/metrics` and `/healthz` know of a job's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    pub up: bool,
    /// Since when it has been up (or down).
    pub since: Timestamp,
    /// When the last segment reached the archive.
    pub last_archived: Option<Timestamp>,
    pub last_error: Option<String>,
    /// LSN just past the last archived segment.
    pub archived_end: Option<u64>,
    /// The server's WAL position when last asked (`IDENTIFY_SYSTEM`, every [`LAG_POLL`]).
    pub server_lsn: Option<u64>,
    /// mysql/mariadb: what the lag in bytes is counted from.
    pub binlog: Option<BinlogProgress>,
}

/// A binlog stream's side of the lag in bytes (`mysql_pitr::unarchived_bytes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinlogProgress {
    /// The newest file in the archive.
    pub archived: Option<String>,
    /// The file the stream started at.
    pub from: Option<String>,
    /// The lag when the server's files were last asked (`SHOW BINARY LOGS`, every 10 s).
    pub lag: Option<u64>,
}

/// How often the server's WAL position is asked for the lag in bytes.
const LAG_POLL: Duration = Duration::from_secs(10);

static STATUS: Mutex<BTreeMap<String, StreamStatus>> = Mutex::new(BTreeMap::new());

/// The stream status of every job that has one.
pub fn statuses() -> BTreeMap<String, StreamStatus> {
    STATUS.lock().map(|s| s.clone()).unwrap_or_default()
}

pub(super) fn set_status(job: &str, f: impl FnOnce(&mut StreamStatus)) {
    if let Ok(mut all) = STATUS.lock() {
        let s = all.entry(job.to_string()).or_insert(StreamStatus {
            up: false,
            since: Timestamp::now(),
            last_archived: None,
            last_error: None,
            archived_end: None,
            server_lsn: None,
            binlog: None,
        });
        f(s);
    }
}

pub(super) fn mark(job: &str, up: bool, error: Option<String>) {
    set_status(job, |s| {
        if s.up != up {
            s.since = Timestamp::now();
        }
        s.up = up;
        if error.is_some() || up {
            s.last_error = error;
        }
    });
}

/// Every stream's series for `/metrics`.
pub fn series() -> Vec<StreamSeries> {
    let now = Timestamp::now();
    let secs = |t: Timestamp| t.as_millisecond() as f64 / 1000.0;
    statuses()
        .into_iter()
        .map(|(job, s)| StreamSeries {
            job,
            up: s.up,
            last_archived_seconds: s.last_archived.map_or(0.0, secs),
            down_seconds: if s.up {
                0.0
            } else {
                (secs(now) - secs(s.since)).max(0.0)
            },
            lag_bytes: match (s.server_lsn, s.archived_end, &s.binlog) {
                (Some(server), Some(end), _) => Some(server.saturating_sub(end)),
                (_, _, Some(b)) => b.lag,
                _ => None,
            },
        })
        .collect()
}

/// `pitr` jobs of `plans` whose stream has been down longer than their `max_lag` (`/healthz`).
pub fn down_too_long<'a>(
    plans: impl IntoIterator<Item = (&'a String, &'a Arc<JobPlan>)>,
    now: Timestamp,
) -> Vec<String> {
    let all = statuses();
    plans
        .into_iter()
        .filter_map(|(name, p)| {
            let limit = p.pitr.as_ref()?.max_lag;
            let s = all.get(name)?;
            let down = (now.as_second() - s.since.as_second()).max(0) as u64;
            (!s.up && down > limit.as_secs()).then(|| name.clone())
        })
        .collect()
}

/// Forget a job's stream (it was removed from the manifest).
pub fn forget(job: &str) {
    if let Ok(mut all) = STATUS.lock() {
        all.remove(job);
    }
}

/// Told when the stream goes down (`false`, with why) and when it runs again (`true`): once per
/// change, not once per retry.
pub type OnChange = Arc<dyn Fn(bool, Option<String>) + Send + Sync>;

/// The stream of `plan`'s job, for as long as the task runs.
pub async fn run(plan: Arc<JobPlan>, temp_dir: PathBuf, on_change: Option<OnChange>) {
    let Some(p) = plan.pitr.clone() else {
        return;
    };
    let spool = temp_dir.join(spool_name(&plan.job));
    let stores: Vec<(bool, AnyStorage)> = plan
        .remotes
        .iter()
        .map(|r| (r.optional, AnyStorage::for_remote(r)))
        .collect();
    let mut backoff = FIRST_BACKOFF;
    let mut told_down = false;
    loop {
        let began = Instant::now();
        let mut started = || {
            if std::mem::take(&mut told_down) {
                if let Some(f) = &on_change {
                    f(true, None);
                }
            }
        };
        // The engine's own part: how the log is received and archived. The rest (status,
        // notifications once per change, backoff) is the same for WAL and binlog.
        let ended = if p.binlog {
            super::binlog::receive(&plan, &p, &spool, &stores, &mut started).await
        } else {
            receive(&plan, &p, &spool, &stores, &mut started).await
        };
        let why = match &ended {
            Ok(status) => format!("{} ended ({status})", p.stream.program),
            Err(e) => e.to_string(),
        };
        mark(&plan.job, false, Some(why.clone()));
        if !told_down {
            told_down = true;
            if let Some(f) = &on_change {
                f(false, Some(why.clone()));
            }
        }
        if began.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let what = if p.binlog {
            "binlog stream down; restarting from the last complete file"
        } else {
            "WAL stream down; restarting from the slot"
        };
        tracing::warn!(event = "stream_down", job = %plan.job, error = %why, retry_in_seconds = backoff.as_secs(), "{what}");
        // What the receiver finished before it ended still goes to the archive.
        if p.binlog {
            super::binlog::archive_now(&plan, &p, &spool, &stores).await;
        } else {
            archive_now(&plan, &p, &spool, &stores).await;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LAST_BACKOFF);
    }
}

/// Archive what the spool holds; a failure is logged and retried at the next sweep.
async fn archive_now(plan: &JobPlan, p: &PitrPlan, spool: &Path, stores: &[(bool, AnyStorage)]) {
    match segment::sweep(plan, p, spool, stores).await {
        Ok(done) => {
            if let Some(last) = done.last() {
                let at = last.finished;
                let end = segment_end(last);
                set_status(&plan.job, |s| {
                    s.last_archived = Some(at);
                    s.archived_end = end.or(s.archived_end);
                });
            }
        }
        Err(e) => {
            tracing::warn!(event = "wal_archive_failed", job = %plan.job, error = %e, "segment kept in the spool; retrying");
        }
    }
}

/// The LSN just past an archived segment (its name and whole size; none for a history file).
fn segment_end(rec: &crate::catalog::record::Record) -> Option<u64> {
    let name = segment::wal_name(&rec.object);
    if !super::label::is_segment(name) || rec.raw_size == 0 {
        return None;
    }
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
    Some((log << 32) + (seg + 1) * rec.raw_size)
}

/// The server's WAL position, for the lag in bytes (a failure just leaves the last one).
async fn poll_position(plan: &JobPlan) {
    if let Ok(id) = check_replication(plan).await {
        if let Some(lsn) = crate::engine::postgres::base::lsn(&id.wal_position) {
            set_status(&plan.job, |s| s.server_lsn = Some(lsn));
        }
    }
}

/// One life of the receiver: the slot ensured, then `pg_receivewal` until it exits, the spool
/// swept every second meanwhile. Returns how it ended.
async fn receive(
    plan: &JobPlan,
    p: &PitrPlan,
    spool: &Path,
    stores: &[(bool, AnyStorage)],
    started: &mut (dyn FnMut() + Send),
) -> Result<String, PitrError> {
    crate::run::dump::make_private_dir(spool)
        .map_err(super::error::io(format!("create {}", spool.display())))?;
    let secrets: Vec<crate::secret::Secret> = plan
        .job()
        .map(|j| j.secrets().into_iter().cloned().collect())
        .unwrap_or_default();
    create_slot(p, spool, &secrets).await?;
    let group = ProcGroup::new();
    let mut cmd = proc::command(&p.stream, Some(spool));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    proc::private_umask(&mut cmd);
    let mut child = group
        .spawn(&mut cmd)
        .map_err(super::error::io(format!("start {}", p.stream.program)))?;
    let tail = child.stderr.take().map_or_else(StderrTail::empty, |e| {
        StderrTail::spawn_redacted(e, "pg_receivewal", secrets.clone())
    });
    mark(&plan.job, true, None);
    started();
    tracing::info!(event = "stream_up", job = %plan.job, slot = %p.slot, "WAL stream running");
    let mut tick = tokio::time::interval(SWEEP);
    let mut poll = tokio::time::interval(LAG_POLL);
    // The position is asked beside the sweeps, never in their way.
    let mut asking: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> =
        None;
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            _ = tick.tick() => archive_now(plan, p, spool, stores).await,
            _ = poll.tick(), if asking.is_none() => asking = Some(Box::pin(poll_position(plan))),
            () = async { if let Some(f) = asking.as_mut() { f.await } }, if asking.is_some() => asking = None,
        }
    };
    let status = status.map_err(super::error::io("wait for pg_receivewal"))?;
    Ok(how_it_ended(status, tail).await)
}

/// How a receiver ended, with the end of what it said: `exit 1: FATAL: …`.
pub(super) async fn how_it_ended(status: std::process::ExitStatus, mut tail: StderrTail) -> String {
    let tail = tail.finish().await;
    if tail.is_empty() {
        proc::describe_status(status)
    } else {
        format!(
            "{}: {}",
            proc::describe_status(status),
            proc::tail::brief(&tail)
        )
    }
}

/// `pg_receivewal --create-slot --if-not-exists`: a role without REPLICATION, or a server without
/// a `replication` line in pg_hba.conf, fails here with the server's own words.
async fn create_slot(
    p: &PitrPlan,
    spool: &Path,
    secrets: &[crate::secret::Secret],
) -> Result<(), PitrError> {
    let group = ProcGroup::new();
    let mut cmd = proc::command(&p.create_slot, Some(spool));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = group
        .spawn(&mut cmd)
        .map_err(super::error::io(format!("start {}", p.create_slot.program)))?;
    let out = tokio::time::timeout(SLOT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| PitrError::ToolTimeout {
            program: "pg_receivewal --create-slot".into(),
            seconds: SLOT_TIMEOUT.as_secs(),
        })?
        .map_err(super::error::io("wait for pg_receivewal --create-slot"))?;
    if out.status.success() {
        return Ok(());
    }
    let refs: Vec<&crate::secret::Secret> = secrets.iter().collect();
    let tail = crate::secret::redact(&String::from_utf8_lossy(&out.stderr), &refs);
    Err(PitrError::Tool {
        program: "pg_receivewal --create-slot".into(),
        status: proc::describe_status(out.status),
        tail: proc::tail::brief(&tail),
    })
}

/// What `IDENTIFY_SYSTEM` said over a replication connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    pub system: String,
    pub timeline: String,
    pub wal_position: String,
}

/// `validate --online`: can the job's role open the replication connection the stream needs?
/// A role without REPLICATION or a server without a `replication` line in pg_hba.conf is an
/// error with the server's own words; an unreachable server fails within its connect timeout.
pub async fn check_replication(plan: &JobPlan) -> Result<Identified, PitrError> {
    let Some(job) = plan.job() else {
        return Err(PitrError::NotPitr(plan.job.clone()));
    };
    let secrets: Vec<crate::secret::Secret> = job.secrets().into_iter().cloned().collect();
    let spec = crate::engine::postgres::pitr::identify_system(job);
    let group = ProcGroup::new();
    let mut cmd = proc::command(&spec, None);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = group
        .spawn(&mut cmd)
        .map_err(super::error::io(format!("start {}", spec.program)))?;
    let out = tokio::time::timeout(SLOT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| PitrError::ToolTimeout {
            program: "psql (replication connection)".into(),
            seconds: SLOT_TIMEOUT.as_secs(),
        })?
        .map_err(super::error::io("wait for psql"))?;
    let refs: Vec<&crate::secret::Secret> = secrets.iter().collect();
    if !out.status.success() {
        let tail = crate::secret::redact(&String::from_utf8_lossy(&out.stderr), &refs);
        return Err(PitrError::Tool {
            program: "replication connection (psql IDENTIFY_SYSTEM)".into(),
            status: proc::describe_status(out.status),
            tail: proc::tail::brief(&tail),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.trim().split('|').map(str::to_string);
    Ok(Identified {
        system: f.next().unwrap_or_default(),
        timeline: f.next().unwrap_or_default(),
        wal_position: f.next().unwrap_or_default(),
    })
}
