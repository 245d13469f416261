//! The Kubernetes objects: the ConfigMap, one CronJob per job, their names, labels and schedules.

use super::*;

pub(super) fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "dbstash",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "dbstash-render",
    })
}

pub(super) fn configmap(text: &str, hash: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP,
            "labels": labels("config"),
            "annotations": { "dbstash.io/manifest-sha256": hash },
        },
        "data": { "dbstash.yaml": text },
    })
}

pub(super) struct CronJobSpec<'a> {
    pub(super) job: &'a str,
    pub(super) k8s_name: &'a str,
    pub(super) image: &'a str,
    pub(super) schedule: &'a str,
    pub(super) suspend: bool,
    pub(super) time_zone: &'a str,
    pub(super) timeout_secs: u64,
    pub(super) starting_deadline: u64,
    pub(super) env: &'a BTreeSet<String>,
}

pub(super) fn cronjob(s: CronJobSpec<'_>) -> Value {
    let mut job_labels = labels("backup");
    if let Some(m) = job_labels.as_object_mut() {
        let short = s.k8s_name.strip_prefix("dbstash-").unwrap_or(s.k8s_name);
        m.insert("dbstash.io/job".into(), Value::String(label_value(short)));
    }
    let env: Vec<Value> = s
        .env
        .iter()
        .map(|v| {
            json!({
                "name": v,
                // Optional: an absent key leaves the variable unset, and dbstash then says which
                // one is missing (or uses the manifest's `${VAR:-default}`).
                "valueFrom": { "secretKeyRef": { "name": SECRET, "key": v, "optional": true } },
            })
        })
        .collect();
    let mut container = Map::new();
    container.insert("name".into(), json!("dbstash"));
    container.insert("image".into(), json!(s.image));
    container.insert("command".into(), json!(["dbstash"]));
    container.insert(
        "args".into(),
        json!(["-c", format!("{CONFIG_DIR}/dbstash.yaml"), "backup", s.job]),
    );
    if !env.is_empty() {
        container.insert("env".into(), Value::Array(env));
    }
    container.insert(
        "volumeMounts".into(),
        json!([
            { "name": "config", "mountPath": CONFIG_DIR, "readOnly": true },
            { "name": "secrets", "mountPath": SECRETS_DIR, "readOnly": true },
            { "name": "tmp", "mountPath": "/tmp" },
        ]),
    );
    container.insert(
        "securityContext".into(),
        json!({ "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } }),
    );

    let mut job_spec = Map::new();
    job_spec.insert("backoffLimit".into(), json!(0));
    if s.timeout_secs > 0 {
        job_spec.insert(
            "activeDeadlineSeconds".into(),
            json!(s.timeout_secs.saturating_add(DEADLINE_SLACK_SECS)),
        );
    }
    job_spec.insert(
        "template".into(),
        json!({
            "metadata": { "labels": job_labels.clone() },
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "fsGroup": 10001,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [Value::Object(container)],
                "volumes": [
                    { "name": "config", "projected": { "sources": [
                        { "configMap": { "name": CONFIGMAP,
                            "items": [{ "key": "dbstash.yaml", "path": "dbstash.yaml" }] } },
                        { "secret": { "name": SECRET, "optional": true,
                            "items": [{ "key": "rclone.conf", "path": "rclone.conf" }] } },
                    ] } },
                    { "name": "secrets", "secret": { "secretName": SECRET, "optional": true } },
                    { "name": "tmp", "emptyDir": {} },
                ],
            },
        }),
    );

    let mut spec = Map::new();
    spec.insert("schedule".into(), json!(s.schedule));
    spec.insert("timeZone".into(), json!(s.time_zone));
    if s.suspend {
        spec.insert("suspend".into(), json!(true));
    }
    spec.insert("concurrencyPolicy".into(), json!("Forbid"));
    spec.insert("startingDeadlineSeconds".into(), json!(s.starting_deadline));
    spec.insert("successfulJobsHistoryLimit".into(), json!(3));
    spec.insert("failedJobsHistoryLimit".into(), json!(3));
    spec.insert(
        "jobTemplate".into(),
        json!({ "metadata": { "labels": job_labels.clone() }, "spec": Value::Object(job_spec) }),
    );

    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": s.k8s_name,
            "labels": job_labels,
            "annotations": { "dbstash.io/job": s.job },
        },
        "spec": Value::Object(spec),
    })
}

/// Half the gap between runs, between one minute and one hour: a run the controller missed by
/// more than that is skipped (and counted as missed) instead of starting late.
pub(super) fn starting_deadline(
    s: &crate::domain::schedule::Schedule,
    zone: &crate::model::Zone,
) -> u64 {
    // A fixed reference time keeps the output reproducible.
    let from = jiff::Timestamp::from_second(1_767_225_600).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    s.min_interval(from, &zone.tz)
        .map(|d| (d.as_secs() / 2).clamp(60, 3600))
        .unwrap_or(300)
}

/// A dbstash schedule as a Kubernetes CronJob schedule (standard 5-field cron or a descriptor).
/// A dbstash schedule that a Kubernetes CronJob cannot take.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule `{0}` is not one Kubernetes understands")]
    Descriptor(String),
    #[error("schedule `{0}` has a seconds field; Kubernetes CronJobs take 5 fields (minute hour day-of-month month day-of-week) — change it, or leave this job out with --job")]
    Seconds(String),
    #[error("schedule `{0}` is not a 5-field cron expression")]
    Fields(String),
    #[error("schedule `{0}` uses `L`, `W` or `#`, which Kubernetes CronJobs do not support")]
    Special(String),
    #[error("schedule `{0}`: Kubernetes numbers weekdays 0-6 (0 is Sunday); write 0 for Sunday instead of 7")]
    Sunday7(String),
}

pub fn kubernetes_schedule(expr: &str) -> Result<String, ScheduleError> {
    let e = expr.trim();
    if e.starts_with('@') {
        return match e {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(e.to_string()),
            _ => Err(ScheduleError::Descriptor(e.to_string())),
        };
    }
    let fields: Vec<&str> = e.split_whitespace().collect();
    if fields.len() == 6 {
        return Err(ScheduleError::Seconds(e.to_string()));
    }
    if fields.len() != 5 {
        return Err(ScheduleError::Fields(e.to_string()));
    }
    const NAMES: [&str; 19] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
        "MON", "TUE", "WED", "THU", "FRI", "SAT",
    ];
    for f in &fields {
        let mut upper = f.to_ascii_uppercase();
        for n in NAMES {
            upper = upper.replace(n, "");
        }
        if upper.contains(['L', 'W', '#']) {
            return Err(ScheduleError::Special(e.to_string()));
        }
    }
    // Kubernetes' cron numbers weekdays 0-6; croner also takes 7 for Sunday.
    let weekday = fields[4];
    for part in weekday.split(',') {
        let range = part.split('/').next().unwrap_or("");
        if range
            .split('-')
            .any(|n| n.parse::<u32>().map(|n| n > 6).unwrap_or(false))
        {
            return Err(ScheduleError::Sunday7(e.to_string()));
        }
    }
    Ok(fields.join(" "))
}

/// DNS-1123 names for every job (`dbstash-<job>`), unique across the manifest, at most 52 chars.
pub fn dns_names(jobs: &[String]) -> BTreeMap<String, String> {
    let base: BTreeMap<&String, String> = jobs
        .iter()
        .map(|j| (j, format!("dbstash-{}", sanitize(j))))
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for n in base.values() {
        *count.entry(n.as_str()).or_default() += 1;
    }
    base.iter()
        .map(|(job, name)| {
            let clash = count.get(name.as_str()).copied().unwrap_or(0) > 1;
            let exact = name.as_str() == format!("dbstash-{job}");
            let unique = if clash && !exact {
                // Two jobs sanitised alike (`a_b`, `a-b`): the one whose name changed gets a hash.
                format!("{name}-{}", short_hash(job))
            } else {
                name.clone()
            };
            let fitted = if unique.len() > MAX_CRONJOB_NAME {
                format!(
                    "{}-{}",
                    truncate_name(&unique, MAX_CRONJOB_NAME - 7),
                    short_hash(job)
                )
            } else {
                unique
            };
            ((*job).clone(), fitted)
        })
        .collect()
}

pub(super) fn short_hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
        .chars()
        .take(6)
        .collect()
}

/// Lower case, `[a-z0-9-]` only, no leading/trailing/double `-`.
pub(super) fn sanitize(job: &str) -> String {
    let mut out = String::new();
    for c in job.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "job".to_string()
    } else {
        trimmed.to_string()
    }
}

pub(super) fn truncate_name(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    cut.trim_end_matches('-').to_string()
}

pub(super) fn label_value(s: &str) -> String {
    truncate_name(s, 63)
}
