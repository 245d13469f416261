//! Prometheus metrics, with exactly the names of SPEC.md plus a few that help operators
//! (docs/monitoring.md lists them all).
//!
//! Every per-job series carries the label [`JOB_LABEL`] (`backup_job`), never `job` or `instance`:
//! Prometheus sets those two on every scraped series itself, and renames a colliding exported
//! `job` to `exported_job`, which breaks every query written against the documented name.
//!
//! The set of jobs is owned here ([`Metrics::sync_jobs`]): every job of the loaded manifest has
//! all its series from the moment it is loaded (timestamps 0 until the event happens, so an alert
//! on "never succeeded" can fire), a removed job's series go away, and a late result of a removed
//! job (a run that finished after the reload) does not bring them back.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

/// The per-job label of every per-job series.
pub const JOB_LABEL: &str = "backup_job";

/// The `status` values of `dbstash_backup_runs_total` and `dbstash_verify_runs_total`.
pub const RUN_STATUSES: [&str; 3] = ["success", "failure", "skipped"];

/// The `result` values of `dbstash_config_reloads_total`.
pub const RELOAD_RESULTS: [&str; 2] = ["success", "error"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub backup_job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabel {
    pub backup_job: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabel {
    pub notifier: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HashLabel {
    pub hash: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What the loaded manifest says about one job, as far as its series go.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSeries {
    /// A scheduled restore drill (`verify: { schedule, restore_to }`): the job has verify series.
    pub drill: bool,
    /// `stale_after`, exported so one alert rule can honour each job's own limit.
    pub stale_after: Option<Duration>,
}

/// One `pitr` job's WAL stream, as the metrics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSeries {
    pub job: String,
    pub up: bool,
    /// Unix time the last segment reached the archive (0: none yet).
    pub last_archived_seconds: f64,
    /// How long the stream has been down (0 while up).
    pub down_seconds: f64,
    /// Bytes of WAL the server has written past the end of the last archived segment (none
    /// until both are known).
    pub lag_bytes: Option<u64>,
}

/// How one backup run or drill ended, as the metrics see it.
#[derive(Clone, Copy, Debug)]
pub struct RunResult<'a> {
    /// `success`, `failure` or `skipped`.
    pub status: &'a str,
    /// Unix time the run finished.
    pub finished: i64,
    pub duration: Duration,
    /// Stored bytes of a successful backup.
    pub size: Option<u64>,
}

/// The per-job backup families.
#[derive(Default)]
struct BackupFamilies {
    last_success: Family<JobLabel, FloatGauge>,
    last_failure: Family<JobLabel, FloatGauge>,
    last_duration: Family<JobLabel, FloatGauge>,
    last_size: Family<JobLabel, Gauge>,
    runs: Family<RunLabel, Counter>,
    next_run: Family<JobLabel, FloatGauge>,
    running: Family<JobLabel, Gauge>,
    stale_after: Family<JobLabel, FloatGauge>,
}

/// The per-job restore-drill families (only jobs with a scheduled drill have them).
#[derive(Default)]
struct VerifyFamilies {
    last_success: Family<JobLabel, FloatGauge>,
    last_failure: Family<JobLabel, FloatGauge>,
    last_duration: Family<JobLabel, FloatGauge>,
    runs: Family<RunLabel, Counter>,
}

/// The per-job WAL stream families (`pitr` jobs), read from the streams' status when scraped.
#[derive(Default)]
struct PitrFamilies {
    up: Family<JobLabel, Gauge>,
    last_archived: Family<JobLabel, FloatGauge>,
    down_for: Family<JobLabel, FloatGauge>,
    lag_bytes: Family<JobLabel, Gauge>,
}

pub struct Metrics {
    registry: Registry,
    backup: BackupFamilies,
    verify: VerifyFamilies,
    pitr: PitrFamilies,
    reloads: Family<ResultLabel, Counter>,
    last_reload_ok: Gauge,
    notifications: Family<NotifierLabel, Counter>,
    manifest: Family<HashLabel, Gauge>,
    /// The jobs that have series; updates for any other job are dropped.
    jobs: Mutex<BTreeMap<String, JobSeries>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn job(job: &str) -> JobLabel {
    JobLabel {
        backup_job: job.to_string(),
    }
}

fn run(job: &str, status: &str) -> RunLabel {
    RunLabel {
        backup_job: job.to_string(),
        status: status.to_string(),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            backup: BackupFamilies::default(),
            verify: VerifyFamilies::default(),
            pitr: PitrFamilies::default(),
            reloads: Family::default(),
            last_reload_ok: Gauge::default(),
            notifications: Family::default(),
            manifest: Family::default(),
            jobs: Mutex::new(BTreeMap::new()),
        };
        let mut registry = Registry::default();
        m.register_backup(&mut registry);
        m.register_verify(&mut registry);
        m.register_pitr(&mut registry);
        m.register_process(&mut registry);
        for r in RELOAD_RESULTS {
            let _ = m.reloads.get_or_create(&ResultLabel { result: r.into() });
        }
        // No reload has failed yet: the manifest in use is the file's (or there is none, and the
        // health endpoint of a waiting `dbstash run` says so with a failed count).
        m.last_reload_ok.set(1);
        Metrics { registry, ..m }
    }

    fn register_backup(&self, r: &mut Registry) {
        let b = &self.backup;
        r.register(
            "dbstash_backup_last_success_timestamp_seconds",
            "Unix time of the job's last successful backup (0: none since dbstash started)",
            b.last_success.clone(),
        );
        r.register(
            "dbstash_backup_last_failure_timestamp_seconds",
            "Unix time of the job's last failed backup (0: none since dbstash started)",
            b.last_failure.clone(),
        );
        r.register(
            "dbstash_backup_last_duration_seconds",
            "Duration of the job's last backup run that was not skipped",
            b.last_duration.clone(),
        );
        r.register(
            "dbstash_backup_last_size_bytes",
            "Stored size of the job's last successful backup",
            b.last_size.clone(),
        );
        // The encoder appends `_total` to counters.
        r.register(
            "dbstash_backup_runs",
            "Backup runs by outcome (success, failure, skipped)",
            b.runs.clone(),
        );
        r.register(
            "dbstash_backup_next_run_timestamp_seconds",
            "Unix time of the job's next scheduled run (0: no schedule)",
            b.next_run.clone(),
        );
        r.register(
            "dbstash_backup_running",
            "1 while a backup of the job runs",
            b.running.clone(),
        );
        r.register(
            "dbstash_backup_stale_after_seconds",
            "The job's stale_after setting (only jobs that set it)",
            b.stale_after.clone(),
        );
    }

    fn register_verify(&self, r: &mut Registry) {
        let v = &self.verify;
        r.register(
            "dbstash_verify_last_success_timestamp_seconds",
            "Unix time of the job's last successful restore drill (0: none since dbstash started)",
            v.last_success.clone(),
        );
        r.register(
            "dbstash_verify_last_failure_timestamp_seconds",
            "Unix time of the job's last failed restore drill (0: none since dbstash started)",
            v.last_failure.clone(),
        );
        r.register(
            "dbstash_verify_last_duration_seconds",
            "Time the job's last successful restore drill took to restore and check the backup",
            v.last_duration.clone(),
        );
        r.register(
            "dbstash_verify_runs",
            "Scheduled restore drills by outcome (success, failure, skipped)",
            v.runs.clone(),
        );
    }

    fn register_pitr(&self, r: &mut Registry) {
        let p = &self.pitr;
        r.register(
            "dbstash_pitr_stream_up",
            "1 while the job's WAL stream (pg_receivewal) runs",
            p.up.clone(),
        );
        r.register(
            "dbstash_pitr_last_archived_timestamp_seconds",
            "Unix time the job's last WAL segment reached the archive (0: none since dbstash started)",
            p.last_archived.clone(),
        );
        r.register(
            "dbstash_pitr_stream_down_seconds",
            "How long the job's WAL stream has been down (0 while up): compare with its max_lag",
            p.down_for.clone(),
        );
        r.register(
            "dbstash_pitr_lag_bytes",
            "Bytes of WAL the server has written past the end of the job's last archived segment (absent until both are known)",
            p.lag_bytes.clone(),
        );
    }

    /// The WAL stream series, as the streams report them now (their state lives with them):
    /// set just before a scrape is encoded; jobs without a stream have none.
    pub fn set_streams(&self, streams: impl IntoIterator<Item = StreamSeries>) {
        self.pitr.up.clear();
        self.pitr.last_archived.clear();
        self.pitr.down_for.clear();
        self.pitr.lag_bytes.clear();
        for s in streams {
            let l = job(&s.job);
            self.pitr.up.get_or_create(&l).set(i64::from(s.up));
            self.pitr
                .last_archived
                .get_or_create(&l)
                .set(s.last_archived_seconds);
            self.pitr.down_for.get_or_create(&l).set(s.down_seconds);
            if let Some(b) = s.lag_bytes {
                self.pitr
                    .lag_bytes
                    .get_or_create(&l)
                    .set(i64::try_from(b).unwrap_or(i64::MAX));
            }
        }
    }

    fn register_process(&self, r: &mut Registry) {
        r.register(
            "dbstash_config_reloads",
            "Manifest reloads by result (success, error)",
            self.reloads.clone(),
        );
        r.register(
            "dbstash_config_last_reload_successful",
            "1 if the last manifest load or reload succeeded, 0 if it was rejected",
            self.last_reload_ok.clone(),
        );
        r.register(
            "dbstash_notifications",
            "Notification deliveries by notifier and result (success, failure)",
            self.notifications.clone(),
        );
        r.register(
            "dbstash_manifest_info",
            "The active manifest (sha256 in the label)",
            self.manifest.clone(),
        );
    }

    /// Make the per-job series match `jobs` (the loaded manifest): new jobs get every series
    /// (0 until something happens), removed jobs lose theirs, kept jobs keep their values.
    pub fn sync_jobs(&self, jobs: BTreeMap<String, JobSeries>) {
        let Ok(mut known) = self.jobs.lock() else {
            return;
        };
        for (name, old) in known.iter() {
            match jobs.get(name) {
                None => self.remove_job(name),
                Some(new) if old.drill && !new.drill => self.remove_verify(name),
                Some(_) => {}
            }
        }
        for (name, series) in &jobs {
            self.create_job(name, series);
        }
        *known = jobs;
    }

    fn create_job(&self, name: &str, series: &JobSeries) {
        let l = job(name);
        let b = &self.backup;
        let _ = b.last_success.get_or_create(&l);
        let _ = b.last_failure.get_or_create(&l);
        let _ = b.last_duration.get_or_create(&l);
        let _ = b.last_size.get_or_create(&l);
        let _ = b.next_run.get_or_create(&l);
        let _ = b.running.get_or_create(&l);
        for s in RUN_STATUSES {
            let _ = b.runs.get_or_create(&run(name, s));
        }
        match series.stale_after {
            Some(d) => {
                b.stale_after.get_or_create(&l).set(secs(d));
            }
            None => {
                b.stale_after.remove(&l);
            }
        }
        if series.drill {
            let v = &self.verify;
            let _ = v.last_success.get_or_create(&l);
            let _ = v.last_failure.get_or_create(&l);
            let _ = v.last_duration.get_or_create(&l);
            for s in RUN_STATUSES {
                let _ = v.runs.get_or_create(&run(name, s));
            }
        }
    }

    fn remove_job(&self, name: &str) {
        let l = job(name);
        let b = &self.backup;
        for f in [
            &b.last_success,
            &b.last_failure,
            &b.last_duration,
            &b.next_run,
            &b.stale_after,
        ] {
            f.remove(&l);
        }
        b.last_size.remove(&l);
        b.running.remove(&l);
        for s in RUN_STATUSES {
            b.runs.remove(&run(name, s));
        }
        self.remove_verify(name);
    }

    fn remove_verify(&self, name: &str) {
        let l = job(name);
        let v = &self.verify;
        for f in [&v.last_success, &v.last_failure, &v.last_duration] {
            f.remove(&l);
        }
        for s in RUN_STATUSES {
            v.runs.remove(&run(name, s));
        }
    }

    /// Run `update` while `job` is a loaded job (with a drill, if `drill`), holding the job set
    /// so a concurrent reload cannot remove the job half-way and leave a stray series behind.
    fn with_job(&self, name: &str, drill: bool, update: impl FnOnce(&JobLabel)) {
        let Ok(known) = self.jobs.lock() else {
            return;
        };
        if known.get(name).is_some_and(|s| s.drill || !drill) {
            update(&job(name));
        }
    }

    /// A backup run ended (or was skipped).
    pub fn record_backup(&self, name: &str, r: &RunResult) {
        self.with_job(name, false, |l| {
            let b = &self.backup;
            b.runs.get_or_create(&run(name, r.status)).inc();
            if r.status == "skipped" {
                return;
            }
            b.last_duration.get_or_create(l).set(secs(r.duration));
            if r.status == "success" {
                b.last_success.get_or_create(l).set(r.finished as f64);
                let size = i64::try_from(r.size.unwrap_or(0)).unwrap_or(i64::MAX);
                b.last_size.get_or_create(l).set(size);
            } else {
                b.last_failure.get_or_create(l).set(r.finished as f64);
            }
        });
    }

    /// A scheduled restore drill ended (or was skipped). Its duration counts only when it
    /// succeeded: a drill that failed early says nothing about how long a restore takes.
    pub fn record_drill(&self, name: &str, r: &RunResult) {
        self.with_job(name, true, |l| {
            let v = &self.verify;
            v.runs.get_or_create(&run(name, r.status)).inc();
            match r.status {
                "success" => {
                    v.last_success.get_or_create(l).set(r.finished as f64);
                    v.last_duration.get_or_create(l).set(secs(r.duration));
                }
                "failure" => {
                    v.last_failure.get_or_create(l).set(r.finished as f64);
                }
                _ => {}
            }
        });
    }

    pub fn set_running(&self, name: &str, running: bool) {
        self.with_job(name, false, |l| {
            self.backup.running.get_or_create(l).set(i64::from(running));
        });
    }

    pub fn set_next_run(&self, name: &str, unix_seconds: i64) {
        self.with_job(name, false, |l| {
            self.backup
                .next_run
                .get_or_create(l)
                .set(unix_seconds as f64);
        });
    }

    /// A manifest load or reload: `success` or `error`.
    pub fn count_reload(&self, result: &str) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.last_reload_ok.set(i64::from(result == "success"));
    }

    pub fn count_notification(&self, notifier: &str, ok: bool) {
        self.notifications
            .get_or_create(&NotifierLabel {
                notifier: notifier.to_string(),
                result: if ok { "success" } else { "failure" }.to_string(),
            })
            .inc();
    }

    pub fn set_manifest(&self, hash: &str) {
        self.manifest.clear();
        self.manifest
            .get_or_create(&HashLabel {
                hash: hash.to_string(),
            })
            .set(1);
    }

    /// The OpenMetrics text format (ends with `# EOF`).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The Prometheus text format, version 0.0.4 (what `promtool check metrics` reads).
    pub fn encode_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(list: &[(&str, bool)]) -> BTreeMap<String, JobSeries> {
        list.iter()
            .map(|(n, drill)| {
                (
                    n.to_string(),
                    JobSeries {
                        drill: *drill,
                        stale_after: None,
                    },
                )
            })
            .collect()
    }

    fn ok(finished: i64) -> RunResult<'static> {
        RunResult {
            status: "success",
            finished,
            duration: Duration::from_millis(2500),
            size: Some(10),
        }
    }

    #[test]
    fn names_match_the_spec() {
        let m = Metrics::new();
        m.sync_jobs(jobs(&[("app", false)]));
        m.record_backup("app", &ok(1));
        m.count_reload("error");
        let text = m.encode_text();
        for needle in [
            "dbstash_backup_runs_total{backup_job=\"app\",status=\"success\"} 1",
            "dbstash_backup_runs_total{backup_job=\"app\",status=\"failure\"} 0",
            "dbstash_backup_runs_total{backup_job=\"app\",status=\"skipped\"} 0",
            "dbstash_config_reloads_total{result=\"error\"} 1",
            "dbstash_config_reloads_total{result=\"success\"} 0",
            "dbstash_config_last_reload_successful 0",
            "dbstash_backup_last_success_timestamp_seconds{backup_job=\"app\"} 1",
            "dbstash_backup_last_duration_seconds{backup_job=\"app\"} 2.5",
            "dbstash_backup_last_size_bytes{backup_job=\"app\"} 10",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn stream_lag_in_bytes_is_a_series_once_known() {
        let m = Metrics::new();
        let s = |job: &str, lag| StreamSeries {
            job: job.into(),
            up: true,
            last_archived_seconds: 1.0,
            down_seconds: 0.0,
            lag_bytes: lag,
        };
        m.set_streams([s("app", Some(16_777_216)), s("new", None)]);
        let text = m.encode_text();
        assert!(
            text.contains("dbstash_pitr_lag_bytes{backup_job=\"app\"} 16777216"),
            "{text}"
        );
        assert!(
            !text.contains("dbstash_pitr_lag_bytes{backup_job=\"new\"}"),
            "{text}"
        );
        assert!(text.contains("# HELP dbstash_pitr_lag_bytes "), "{text}");
    }

    #[test]
    fn no_job_or_instance_label_ever() {
        let m = Metrics::new();
        m.sync_jobs(jobs(&[("app", true)]));
        m.record_backup("app", &ok(1));
        m.record_drill("app", &ok(2));
        for text in [m.encode_text(), m.encode_openmetrics()] {
            assert!(!text.contains("{job="), "{text}");
            assert!(!text.contains(",job="), "{text}");
            assert!(!text.contains("instance="), "{text}");
        }
    }

    #[test]
    fn every_loaded_job_has_its_series_before_any_run() {
        let m = Metrics::new();
        m.sync_jobs(jobs(&[("never", false), ("drilled", true)]));
        let text = m.encode_text();
        for needle in [
            "dbstash_backup_last_success_timestamp_seconds{backup_job=\"never\"} 0",
            "dbstash_backup_last_failure_timestamp_seconds{backup_job=\"never\"} 0",
            "dbstash_backup_runs_total{backup_job=\"never\",status=\"failure\"} 0",
            "dbstash_verify_last_success_timestamp_seconds{backup_job=\"drilled\"} 0",
            "dbstash_verify_last_duration_seconds{backup_job=\"drilled\"} 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        // verify series only for jobs that drill
        assert!(
            !text.contains("dbstash_verify_last_success_timestamp_seconds{backup_job=\"never\"}")
        );
    }

    #[test]
    fn removed_jobs_lose_their_series_and_late_results_do_not_bring_them_back() {
        let m = Metrics::new();
        m.sync_jobs(jobs(&[("a", true), ("b", false)]));
        m.sync_jobs(jobs(&[("b", false)]));
        m.record_backup("a", &ok(5));
        m.record_drill("a", &ok(5));
        m.set_running("a", true);
        let text = m.encode_text();
        assert!(!text.contains("backup_job=\"a\""), "{text}");
        assert!(text.contains("backup_job=\"b\""), "{text}");
        // a drill dropped from a kept job takes its verify series with it
        m.sync_jobs(jobs(&[("b", true)]));
        assert!(m
            .encode_text()
            .contains("dbstash_verify_runs_total{backup_job=\"b\""));
        m.sync_jobs(jobs(&[("b", false)]));
        assert!(!m
            .encode_text()
            .contains("dbstash_verify_runs_total{backup_job=\"b\""));
    }

    #[test]
    fn failures_and_drills_are_timestamped() {
        let m = Metrics::new();
        m.sync_jobs(jobs(&[("app", true)]));
        let failed = RunResult {
            status: "failure",
            finished: 7,
            duration: Duration::from_secs(3),
            size: None,
        };
        m.record_backup("app", &failed);
        m.record_drill("app", &failed);
        m.record_drill("app", &ok(9));
        let text = m.encode_text();
        for needle in [
            "dbstash_backup_last_failure_timestamp_seconds{backup_job=\"app\"} 7",
            "dbstash_backup_last_success_timestamp_seconds{backup_job=\"app\"} 0",
            "dbstash_verify_last_failure_timestamp_seconds{backup_job=\"app\"} 7",
            "dbstash_verify_last_success_timestamp_seconds{backup_job=\"app\"} 9",
            "dbstash_verify_last_duration_seconds{backup_job=\"app\"} 2.5",
            "dbstash_verify_runs_total{backup_job=\"app\",status=\"failure\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn both_formats_have_help_for_every_family() {
        let m = Metrics::new();
        m.sync_jobs(jobs(&[("app", true)]));
        let text = m.encode_text();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps, types, "{text}");
        assert!(text.contains("# HELP dbstash_backup_runs_total "), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(m.encode_openmetrics().ends_with("# EOF\n"));
    }
}
