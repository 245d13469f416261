//! Prometheus metrics, with exactly the names of SPEC.md plus a few that help operators.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabel {
    pub job: String,
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

pub struct Metrics {
    pub registry: Registry,
    pub last_success: Family<JobLabel, FloatGauge>,
    pub last_duration: Family<JobLabel, FloatGauge>,
    pub last_size: Family<JobLabel, Gauge>,
    pub runs: Family<RunLabel, Counter>,
    pub drills: Family<RunLabel, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub notifications: Family<NotifierLabel, Counter>,
    pub next_run: Family<JobLabel, FloatGauge>,
    pub running: Family<JobLabel, Gauge>,
    pub manifest: Family<HashLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            last_success: Family::default(),
            last_duration: Family::default(),
            last_size: Family::default(),
            runs: Family::default(),
            drills: Family::default(),
            reloads: Family::default(),
            notifications: Family::default(),
            next_run: Family::default(),
            running: Family::default(),
            manifest: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "dbstash_backup_last_success_timestamp_seconds",
            "Unix time of the job's last successful backup",
            m.last_success.clone(),
        );
        registry.register(
            "dbstash_backup_last_duration_seconds",
            "Duration of the job's last backup run",
            m.last_duration.clone(),
        );
        registry.register(
            "dbstash_backup_last_size_bytes",
            "Stored size of the job's last successful backup",
            m.last_size.clone(),
        );
        registry.register(
            "dbstash_verify_runs",
            "Scheduled restore drills by outcome",
            m.drills.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "dbstash_backup_runs",
            "Backup runs by outcome (success, failure, skipped)",
            m.runs.clone(),
        );
        registry.register(
            "dbstash_config_reloads",
            "Manifest reloads by result (success, error)",
            m.reloads.clone(),
        );
        registry.register(
            "dbstash_notifications",
            "Notification deliveries by notifier and result",
            m.notifications.clone(),
        );
        registry.register(
            "dbstash_backup_next_run_timestamp_seconds",
            "Unix time of the job's next scheduled run",
            m.next_run.clone(),
        );
        registry.register(
            "dbstash_backup_running",
            "1 while a backup of the job runs",
            m.running.clone(),
        );
        registry.register(
            "dbstash_manifest_info",
            "The active manifest (sha256 in the label)",
            m.manifest.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn job(job: &str) -> JobLabel {
        JobLabel {
            job: job.to_string(),
        }
    }

    pub fn count_run(&self, job: &str, status: &str) {
        self.runs
            .get_or_create(&RunLabel {
                job: job.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    pub fn count_drill(&self, job: &str, status: &str) {
        self.drills
            .get_or_create(&RunLabel {
                job: job.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    pub fn count_reload(&self, result: &str) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
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

    /// Forget a removed job's per-job series.
    pub fn forget_job(&self, job: &str) {
        let l = Self::job(job);
        self.next_run.remove(&l);
        self.running.remove(&l);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_spec() {
        let m = Metrics::new();
        m.count_run("app", "success");
        m.count_reload("error");
        m.last_success.get_or_create(&Metrics::job("app")).set(1.0);
        m.last_duration.get_or_create(&Metrics::job("app")).set(2.5);
        m.last_size.get_or_create(&Metrics::job("app")).set(10);
        let text = m.encode();
        for needle in [
            "dbstash_backup_runs_total{job=\"app\",status=\"success\"} 1",
            "dbstash_config_reloads_total{result=\"error\"} 1",
            "dbstash_backup_last_success_timestamp_seconds{job=\"app\"} 1.0",
            "dbstash_backup_last_duration_seconds{job=\"app\"} 2.5",
            "dbstash_backup_last_size_bytes{job=\"app\"} 10",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
