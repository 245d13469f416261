//! Leftovers of crashed runs, recognised positively — never by name alone.
//!
//! Before a run creates an object it writes an intent marker beside it,
//! `.NAME.RUNID.dbstash-intent` (which job, which run, which process), and removes the marker once
//! the object is complete (its record written) or deleted again. An object is a leftover only when
//! such a marker of the job names it, the object has no record, and the run that wrote the marker
//! is over (a `directory`-mode object's hidden in-progress copy, `.NAME.part-PID`, goes with it). A file that merely looks like one of the job's backups (dropped into the folder by a
//! person, or written by another tool) carries no marker and is never touched.
//!
//! When is a run over? Where the marker was written by a process of this machine and pid
//! namespace (same boot id and namespace), exactly: its process (pid and start time) is gone, or,
//! in this very process, the run is no longer registered. Elsewhere (another host, another
//! container), only by age: older than twice the job's timeout, at least an hour.
//!
//! The record writer's temp files (`.NAME.dbstash.json.tmp-PID`, left when a write failed, e.g. on
//! a full disk) are dbstash's own too: they are cleared when their process is gone and they are
//! older than a few minutes.

use super::record;
use crate::plan::JobPlan;
use crate::storage::{join_key, Entry, Storage};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// Intent markers end with this; see [`intent_name`].
pub const INTENT_SUFFIX: &str = ".dbstash-intent";
pub const INTENT_FORMAT: &str = "dbstash-intent/1";
/// A record temp file younger than this may still be written (a write takes milliseconds; the
/// margin covers a slow disk or a folder shared over the network by another host).
const TEMP_GRACE_SECS: i64 = 600;

/// What a run writes into its intent marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub format: String,
    pub job: String,
    pub run_id: String,
    /// The object's file (or folder) name, relative to its folder.
    pub object: String,
    /// The object is a folder (`directory` mode).
    #[serde(default)]
    pub folder: bool,
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot): a reused pid is not taken for the run.
    pub pid_start: u64,
    /// Boot id and pid namespace of the process: `pid`/`pid_start` mean something only there.
    pub space: String,
    pub started: Timestamp,
}

impl Intent {
    pub fn new(job: &str, run_id: &str, object: &str, folder: bool, started: Timestamp) -> Self {
        let pid = std::process::id();
        Intent {
            format: INTENT_FORMAT.into(),
            job: job.into(),
            run_id: run_id.into(),
            object: object.into(),
            folder,
            host: crate::proc::hostname(),
            pid,
            pid_start: start_time(pid).unwrap_or(0),
            space: process_space().to_string(),
            started,
        }
    }
}

/// The marker of `object` written by run `run_id`: hidden, and unique per run, so two runs
/// claiming one name each see the other's marker instead of overwriting it.
pub fn intent_name(object: &str, run_id: &str) -> String {
    format!(".{object}.{run_id}{INTENT_SUFFIX}")
}

/// (object, run id) of a marker's file name.
pub fn parse_intent_name(name: &str) -> Option<(&str, &str)> {
    let inner = name.strip_prefix('.')?.strip_suffix(INTENT_SUFFIX)?;
    let (object, run_id) = inner.rsplit_once('.')?;
    let hex = !run_id.is_empty() && run_id.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && !object.is_empty()).then_some((object, run_id))
}

/// Runs in progress in this process (run id → claims held), so a marker of a run that ended
/// without cleaning up (its task cancelled or panicked) is recognised while dbstash still runs.
fn live_runs() -> &'static Mutex<HashMap<String, usize>> {
    static LIVE: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// Registers a run as live in this process for as long as it is held.
#[derive(Debug)]
pub struct LiveRun(String);

impl LiveRun {
    pub fn new(run_id: &str) -> Self {
        if let Ok(mut m) = live_runs().lock() {
            *m.entry(run_id.to_string()).or_default() += 1;
        }
        LiveRun(run_id.to_string())
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if let Ok(mut m) = live_runs().lock() {
            if let Some(n) = m.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.0);
                }
            }
        }
    }
}

fn is_live_here(run_id: &str) -> bool {
    live_runs().lock().is_ok_and(|m| m.contains_key(run_id))
}

/// Boot id and pid namespace of this process; empty when /proc cannot tell (then no marker is
/// judged by its pid).
pub fn process_space() -> &'static str {
    static SPACE: OnceLock<String> = OnceLock::new();
    SPACE.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let ns = std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if boot.is_empty() || ns.is_empty() {
            String::new()
        } else {
            format!("{boot}/{ns}")
        }
    })
}

/// A process's start time (field 22 of /proc/PID/stat); None when there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Is process `pid` alive (on this machine, in this pid namespace)?
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// The run that wrote `intent` is over (see the module's notes).
fn run_is_over(intent: &Intent, age_secs: i64, min_age: i64) -> bool {
    let here = process_space();
    if !here.is_empty() && intent.space == here {
        if intent.pid == std::process::id() && start_time(intent.pid) == Some(intent.pid_start) {
            return !is_live_here(&intent.run_id);
        }
        return start_time(intent.pid) != Some(intent.pid_start);
    }
    age_secs > min_age
}

/// Something of a crashed run to remove: an object (unless its record exists) and its marker, or
/// a record temp file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    /// What `prune` reports.
    pub name: String,
    /// Why it goes, for people.
    pub why: &'static str,
    /// The object to delete first, and whether it is a folder.
    #[serde(skip)]
    pub object: Option<(String, bool)>,
    /// The marker or temp file to delete (after the object, so a failed delete keeps the evidence).
    #[serde(skip)]
    pub file: String,
    /// A local folder copy's hidden in-progress folder (`directory` mode), deleted with the object.
    #[serde(skip)]
    pub part: Option<String>,
}

/// `.NAME.dbstash.json.tmp-PID` → PID.
fn record_temp_pid(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?;
    let (base, pid) = inner.rsplit_once(crate::storage::local::TMP_INFIX)?;
    if !base.ends_with(record::SUFFIX) || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    pid.parse().ok()
}

fn age_secs(e: &Entry, now: Timestamp) -> Option<i64> {
    e.modified.map(|m| now.as_second() - m.as_second())
}

/// What crashed runs of this job left in `folder` (`entries`: its files, markers included).
pub async fn find<S: Storage>(
    plan: &JobPlan,
    store: &S,
    folder: &str,
    entries: &[Entry],
    now: Timestamp,
) -> Vec<Stale> {
    let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let min_age = plan.timeout.as_secs().saturating_mul(2).max(3600) as i64;
    let mut out = Vec::new();
    for e in entries {
        if let Some(pid) = record_temp_pid(&e.name) {
            let old = age_secs(e, now).is_some_and(|a| a > TEMP_GRACE_SECS);
            if old && !pid_alive(pid) {
                out.push(Stale {
                    name: e.name.clone(),
                    why: "record temp file of a process that is gone",
                    object: None,
                    file: e.name.clone(),
                    part: None,
                });
            }
            continue;
        }
        let Some((object, run_id)) = parse_intent_name(&e.name) else {
            continue;
        };
        // A run of this process (the one asking, usually): in progress, no need to read.
        if is_live_here(run_id) {
            continue;
        }
        let Some(intent) = read_intent(store, folder, &e.name).await else {
            continue;
        };
        // A marker of another job, or one that does not describe itself, is not ours to judge.
        if intent.format != INTENT_FORMAT
            || intent.job != plan.job
            || intent.object != object
            || intent.run_id != run_id
        {
            continue;
        }
        if !run_is_over(&intent, age_secs(e, now).unwrap_or(0), min_age) {
            continue;
        }
        let complete = names.contains(record::record_key(object).as_str());
        out.push(Stale {
            name: if complete {
                e.name.clone()
            } else {
                object.to_string()
            },
            why: if complete {
                "intent marker of a run that completed"
            } else {
                "left by a run that did not complete"
            },
            object: (!complete).then(|| (object.to_string(), intent.folder)),
            file: e.name.clone(),
            part: (!complete && intent.folder)
                .then(|| crate::storage::local::part_name(object, intent.pid)),
        });
    }
    out
}

async fn read_intent<S: Storage>(store: &S, folder: &str, name: &str) -> Option<Intent> {
    let bytes = store.read_small(&join_key(folder, name)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Remove what `find` found: the object first, then its marker (kept if the object could not be
/// deleted, so the next prune tries again). Returns the keys deleted and the errors.
pub async fn remove<S: Storage>(
    store: &S,
    folder: &str,
    stale: &[Stale],
) -> (Vec<String>, Vec<String>) {
    let (mut deleted, mut errors) = (Vec::new(), Vec::new());
    for s in stale {
        if let Some((object, is_folder)) = &s.object {
            let key = join_key(folder, object);
            let r = if *is_folder {
                let part = match &s.part {
                    Some(p) => store.delete_dir(&join_key(folder, p)).await,
                    None => Ok(()),
                };
                match part {
                    Ok(()) => store.delete_dir(&key).await,
                    Err(e) => Err(e),
                }
            } else {
                store.delete(&key).await
            };
            match r {
                Ok(()) => deleted.push(key),
                Err(e) => {
                    errors.push(format!("{key}: {e}"));
                    continue;
                }
            }
        }
        let key = join_key(folder, &s.file);
        match store.delete(&key).await {
            Ok(()) if s.object.is_none() => deleted.push(key),
            Ok(()) => {}
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    (deleted, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_round_trip() {
        let n = intent_name("app-2026-01-01-000000.sql.gz", "0123456789ab");
        assert_eq!(
            n,
            ".app-2026-01-01-000000.sql.gz.0123456789ab.dbstash-intent"
        );
        assert_eq!(
            parse_intent_name(&n),
            Some(("app-2026-01-01-000000.sql.gz", "0123456789ab"))
        );
        assert_eq!(parse_intent_name("app.sql"), None);
        assert_eq!(parse_intent_name(".app.sql.dbstash-intent"), None);
        assert_eq!(parse_intent_name(".app.sql.zz.dbstash-intent"), None);
    }

    #[test]
    fn record_temp_names() {
        assert_eq!(record_temp_pid(".a.sql.dbstash.json.tmp-123"), Some(123));
        assert_eq!(record_temp_pid(".a.sql.tmp-123"), None);
        assert_eq!(record_temp_pid("a.sql.dbstash.json.tmp-123"), None);
        assert_eq!(record_temp_pid(".a.sql.dbstash.json.tmp-x1"), None);
    }

    #[test]
    fn this_process_is_alive_and_its_runs_are_judged_by_registration() {
        let me = std::process::id();
        assert!(pid_alive(me));
        let intent = Intent::new("j", "0123456789ab", "o.sql", false, Timestamp::now());
        assert!(!intent.space.is_empty());
        {
            let _live = LiveRun::new("0123456789ab");
            assert!(!run_is_over(&intent, 1_000_000, 3600));
        }
        assert!(run_is_over(&intent, 0, 3600));
        // a pid whose start time does not match is another process: the run is over
        let reused = Intent {
            pid_start: intent.pid_start + 1,
            run_id: "ffffffffffff".into(),
            ..intent.clone()
        };
        assert!(run_is_over(&reused, 0, 3600));
        // another machine: by age only
        let remote = Intent {
            space: "other-boot/pid:[1]".into(),
            ..intent
        };
        assert!(!run_is_over(&remote, 100, 3600));
        assert!(run_is_over(&remote, 4000, 3600));
    }
}
