//! `dbstash render kubernetes`: for clusters that should own scheduling, one `batch/v1` CronJob per
//! job running `dbstash backup J`, plus the ConfigMap that holds the manifest file verbatim.
//!
//! Secrets are referenced, never inlined: the ConfigMap holds the manifest text, so a literal
//! password (or a URI with one) in that text is refused. `${VAR}` references become environment
//! variables read from the Secret `dbstash-secrets`, which is also mounted at `/run/secrets` for the
//! `*_file` keys; its `rclone.conf` key appears as `/config/rclone.conf` beside the manifest.
//!
//! The output is a readable multi-document YAML stream written by a small emitter (below) from
//! `serde_json` values: no YAML serialisation dependency.

use crate::manifest::interp;
use crate::manifest::yaml::{self, Kind, Node};
use crate::manifest::Manifest;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const CONFIGMAP: &str = "dbstash-config";
pub const SECRET: &str = "dbstash-secrets";
const CONFIG_DIR: &str = "/config";
const SECRETS_DIR: &str = "/run/secrets";
/// The Job controller appends 11 characters to a CronJob's name; 52 keeps Job names legal.
const MAX_CRONJOB_NAME: usize = 52;
/// Extra time over the job's own `timeout` before Kubernetes kills the pod: dbstash's timeout fires
/// first and cleans up the partial upload; the deadline is only the backstop (it also counts
/// image pulls and pod start).
const DEADLINE_SLACK_SECS: u64 = 300;
/// A ConfigMap holds at most 1 MiB.
const MAX_CONFIGMAP_BYTES: usize = 1024 * 1024;

pub fn kubernetes(config: &Path, jobs: &[String], image: &str) -> i32 {
    let text = match crate::manifest::limits::read_manifest(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}:1:1: cannot read the manifest: {e}", config.display());
            return 2;
        }
    };
    let Some((manifest, notes)) = load_for_render(config, &text) else {
        return 2;
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    match render(config, &text, &manifest, jobs, image) {
        Ok(out) => {
            for n in &out.notes {
                eprintln!("note: {n}");
            }
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            out!("{}", out.yaml);
            0
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            1
        }
    }
}

/// The rendered stream and what the operator should know about it.
#[derive(Debug)]
pub struct Rendered {
    pub yaml: String,
    pub warnings: Vec<String>,
    /// What the operator must do for the output to work (keys the Secret needs).
    pub notes: Vec<String>,
}

/// Load the manifest. Rendering usually happens away from the cluster, where the Secret's files
/// and variables do not exist: when the plain load fails, retry with placeholders for unset
/// variables and missing `*_file` files (their values are read in the cluster, never rendered).
fn load_for_render(config: &Path, text: &str) -> Option<(Manifest, Vec<String>)> {
    let real = match crate::manifest::load(config) {
        Ok(m) => m,
        Err(_) => {
            let placeholders = Placeholders::scan(text);
            // Variables written with a default somewhere keep it; the others get a placeholder.
            let without_default = variables_without_default(text);
            let missing_vars = std::cell::RefCell::new(BTreeSet::new());
            let missing_files = std::cell::RefCell::new(BTreeSet::new());
            let env = |k: &str| {
                std::env::var(k).ok().or_else(|| {
                    if !without_default.contains(k) {
                        return None;
                    }
                    missing_vars.borrow_mut().insert(k.to_string());
                    Some(placeholders.for_variable(k))
                })
            };
            let read = |p: &Path| match crate::manifest::limits::read_secret_file(p) {
                Ok(s) => Ok(s),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing_files.borrow_mut().insert(p.display().to_string());
                    Ok(placeholders.for_path(p))
                }
                Err(e) => Err(e),
            };
            match crate::manifest::load_str(config, text, &env, &read) {
                Ok(m) => {
                    for w in &m.warnings {
                        eprintln!("{w}");
                    }
                    let mut notes = Vec::new();
                    let vars = missing_vars.into_inner();
                    if !vars.is_empty() {
                        notes.push(format!(
                            "not set here, read from the Secret `{SECRET}` in the cluster: {}",
                            vars.into_iter().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    let files = missing_files.into_inner();
                    if !files.is_empty() {
                        notes.push(format!(
                            "not present here, mounted from the Secret `{SECRET}` in the cluster: {}",
                            files.into_iter().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    return Some((m, notes));
                }
                Err(e) => {
                    // The problems that remain with every variable and file filled in are the
                    // manifest's own (the plain load only said which variables are unset here).
                    for d in e.diagnostics() {
                        eprintln!("{d}");
                    }
                    let vars = missing_vars.into_inner();
                    if !vars.is_empty() {
                        eprintln!(
                            "note: to check the rest offline, placeholder values stood in for: {}",
                            vars.into_iter().collect::<Vec<_>>().join(", ")
                        );
                    }
                    return None;
                }
            }
        }
    };
    for w in &real.warnings {
        eprintln!("{w}");
    }
    Some((real, Vec::new()))
}

/// Placeholder values for secret files that do not exist where `render` runs and for variables
/// that are not set there: a URI of the right engine for `uri`/`restore_to` (and their `_file`
/// twins), a URL for notifier `url`s, any word for the rest.
struct Placeholders {
    by_path: BTreeMap<String, String>,
    by_variable: BTreeMap<String, String>,
}

const URL_PLACEHOLDER: &str = "https://placeholder.invalid/placeholder";

impl Placeholders {
    fn scan(text: &str) -> Self {
        let mut by_path = BTreeMap::new();
        let mut by_variable = BTreeMap::new();
        let Ok(root) = yaml::parse(text) else {
            return Placeholders {
                by_path,
                by_variable,
            };
        };
        let raw_str = |n: Option<&Node>| n.and_then(Node::as_str).map(str::to_string);
        let default_engine = raw_str(root.get("defaults").and_then(|d| d.get("engine")));
        if let Some(Node {
            kind: Kind::Map(jobs),
            ..
        }) = root.get("jobs")
        {
            for (_, job) in jobs {
                let template_engine = raw_str(job.get("template")).and_then(|t| {
                    raw_str(
                        root.get("templates")
                            .and_then(|ts| ts.get(&t))
                            .and_then(|t| t.get("engine")),
                    )
                });
                let engine = raw_str(job.get("engine"))
                    .or(template_engine)
                    .or_else(|| default_engine.clone())
                    .unwrap_or_default();
                let uri = match engine.as_str() {
                    "postgres" | "postgis" => "postgresql://placeholder@placeholder/placeholder",
                    "mysql" | "mariadb" => "mysql://placeholder@placeholder/placeholder",
                    "mongo" => "mongodb://placeholder/placeholder",
                    "redis" => "redis://placeholder:6379/0",
                    _ => "/placeholder.db",
                };
                let mut files = Vec::new();
                collect_files(job, &["uri_file", "restore_to_file"], &mut files);
                for f in files {
                    by_path.insert(expand_offline(&f), uri.to_string());
                }
                let mut values = Vec::new();
                collect_files(job, &["uri", "restore_to"], &mut values);
                for v in values {
                    if let Some(name) = whole_variable(&v) {
                        by_variable.insert(name, uri.to_string());
                    }
                }
            }
        }
        // Notifier URLs must parse as URLs.
        let mut urls = Vec::new();
        collect_files(&root, &["url_file"], &mut urls);
        for f in urls {
            by_path.insert(expand_offline(&f), URL_PLACEHOLDER.into());
        }
        let mut urls = Vec::new();
        collect_files(&root, &["url"], &mut urls);
        for v in urls {
            if let Some(name) = whole_variable(&v) {
                by_variable.insert(name, URL_PLACEHOLDER.into());
            }
        }
        Placeholders {
            by_path,
            by_variable,
        }
    }

    fn for_variable(&self, name: &str) -> String {
        self.by_variable
            .get(name)
            .cloned()
            .unwrap_or_else(|| "placeholder".to_string())
    }

    fn for_path(&self, p: &Path) -> String {
        let key = p.display().to_string();
        if let Some(v) = self.by_path.get(&key) {
            return v.clone();
        }
        // Relative `*_file` paths are resolved against the manifest's folder before reading.
        self.by_path
            .iter()
            .find(|(k, _)| !k.starts_with('/') && key.ends_with(&format!("/{k}")))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "placeholder".to_string())
    }
}

fn collect_files(node: &Node, keys: &[&str], out: &mut Vec<String>) {
    match &node.kind {
        Kind::Map(entries) => {
            for (k, v) in entries {
                if keys.contains(&k.name.as_str()) {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_string());
                    }
                }
                collect_files(v, keys, out);
            }
        }
        Kind::Seq(items) => items.iter().for_each(|i| collect_files(i, keys, out)),
        _ => {}
    }
}

/// `NAME` when `s` is exactly `${NAME}` (no default, nothing around it).
fn whole_variable(s: &str) -> Option<String> {
    let name = s.strip_prefix("${")?.strip_suffix('}')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

/// A string as the cluster would see it with no variable set: defaults used, references empty.
fn expand_offline(s: &str) -> String {
    crate::manifest::interp::expand(s, &|_| Some(String::new())).unwrap_or_else(|_| s.to_string())
}

/// Render from already-loaded parts (the tests call this too).
pub fn render(
    config: &Path,
    text: &str,
    manifest: &Manifest,
    selected: &[String],
    image: &str,
) -> Result<Rendered, Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let file = config.display().to_string();

    // Which jobs, in the order asked (all of them, in name order, when none are named).
    let mut names: Vec<&str> = Vec::new();
    if selected.is_empty() {
        names.extend(manifest.jobs.keys().map(String::as_str));
    } else {
        for j in selected {
            if !manifest.jobs.contains_key(j) {
                let known: Vec<&str> = manifest.jobs.keys().map(String::as_str).collect();
                errors.push(format!(
                    "{file}: unknown job `{j}` (jobs: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            } else if !names.contains(&j.as_str()) {
                names.push(j);
            }
        }
    }
    if names.is_empty() && errors.is_empty() {
        errors.push(format!("{file}: the manifest has no jobs to render"));
    }
    if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
        errors.push(format!("--image `{image}` is not an image reference"));
    }
    if text.len() > MAX_CONFIGMAP_BYTES {
        errors.push(format!(
            "{file}: the manifest is {} bytes; a ConfigMap holds at most 1 MiB",
            text.len()
        ));
    }

    // The manifest text goes into the ConfigMap as it is, less the secret defaults of
    // `${VAR:-default}`: no literal secret may be in it.
    let scan = scan_text(text);
    let mut notes = Vec::new();
    let mut configmap_text = text.to_string();
    match &scan {
        Ok(s) => {
            for (loc, msg) in &s.literal_secrets {
                errors.push(format!("{file}:{}:{}: {msg}", loc.line, loc.col));
            }
            warnings.extend(s.warnings.iter().cloned());
            match without_secret_defaults(text, &s.rewrites) {
                Ok(t) => configmap_text = t,
                Err(errs) => errors.extend(
                    errs.into_iter()
                        .map(|(loc, msg)| format!("{file}:{}:{}: {msg}", loc.line, loc.col)),
                ),
            }
            for r in &s.rewrites {
                let names: Vec<&str> = r.defaults.iter().map(|(_, n)| n.as_str()).collect();
                notes.push(format!(
                    "{file}:{}:{}: `{}`: the ConfigMap leaves out the secret default of {}: set {} in the Secret `{SECRET}`",
                    r.loc.line,
                    r.loc.col,
                    r.path,
                    names.iter().map(|n| format!("${{{n}}}")).collect::<Vec<_>>().join(", "),
                    names.join(", ")
                ));
            }
        }
        Err(e) => errors.push(format!("{file}: {e}")),
    }

    let job_names = dns_names(&manifest.jobs.keys().cloned().collect::<Vec<_>>());
    let mut cronjobs = Vec::new();
    let mut local_remotes = BTreeSet::new();
    for name in &names {
        let Some(job) = manifest.jobs.get(*name) else {
            continue;
        };
        let (schedule, suspend) = match &job.schedule {
            Some(s) => match kubernetes_schedule(s.expr()) {
                Ok(k) => (k, false),
                Err(e) => {
                    errors.push(format!("{file}: job `{name}`: {e}"));
                    continue;
                }
            },
            None => {
                warnings.push(format!(
                    "job `{name}` has no schedule: its CronJob is suspended; run it with \
                     `kubectl create job --from=cronjob/{} {}-manual`",
                    job_names[*name],
                    truncate_name(&job_names[*name], 52)
                ));
                ("@yearly".to_string(), true)
            }
        };
        if job.verify.as_ref().is_some_and(|v| v.schedule.is_some()) {
            warnings.push(format!(
                "job `{name}` has a scheduled restore drill (`verify.schedule`): its CronJob runs only \
                 the backups; run drills from `dbstash run` or `dbstash verify --restore-to`"
            ));
        }
        if job.pitr.is_some() {
            warnings.push(format!(
                "job `{name}` has `pitr`: its WAL stream must run all the time, which a CronJob cannot do; its CronJob takes only the base backups. Run `dbstash run` for the stream in a Deployment with one replica and `strategy: Recreate` (two streams on one replication slot fight over it), with a volume for `temp_dir`"
            ));
        }
        for r in &job.remotes {
            if let Some(remote) = manifest.remotes.get(&r.name) {
                if let crate::model::RemoteKind::Local(p) = &remote.kind {
                    local_remotes.insert((r.name.clone(), p.display().to_string()));
                }
            }
        }
        let starting_deadline = match (&job.schedule, suspend) {
            (Some(s), false) => starting_deadline(s, &job.timezone),
            _ => 300,
        };
        let env_names = scan
            .as_ref()
            .map(|s| s.variables.clone())
            .unwrap_or_default();
        cronjobs.push(cronjob(CronJobSpec {
            job: name,
            k8s_name: &job_names[*name],
            image,
            schedule: &schedule,
            suspend,
            time_zone: &job.timezone.name,
            timeout_secs: job.timeout.as_secs(),
            starting_deadline,
            env: &env_names,
        }));
    }
    for (name, path) in local_remotes {
        warnings.push(format!(
            "remote `{name}` is a local folder ({path}): the CronJob has no volume there; add one \
             (e.g. a PersistentVolumeClaim) or use an rclone remote"
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let source = config
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "the manifest".into());
    let mut out = String::new();
    out.push_str(&format!(
        "# Rendered by `dbstash render kubernetes` from {source}: the ConfigMap `{CONFIGMAP}` and {} CronJob(s).\n\
         # Secrets are referenced, not included: create the Secret `{SECRET}` (see docs/kubernetes.md).\n",
        cronjobs.len()
    ));
    let hash = if configmap_text == text {
        manifest.hash.clone()
    } else {
        hex::encode(Sha256::digest(configmap_text.as_bytes()))
    };
    let mut docs = vec![configmap(&configmap_text, &hash)];
    docs.extend(cronjobs);
    for d in &docs {
        out.push_str("---\n");
        emit_document(d, &mut out);
    }
    Ok(Rendered {
        yaml: out,
        warnings,
        notes,
    })
}

fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "dbstash",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "dbstash-render",
    })
}

fn configmap(text: &str, hash: &str) -> Value {
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

struct CronJobSpec<'a> {
    job: &'a str,
    k8s_name: &'a str,
    image: &'a str,
    schedule: &'a str,
    suspend: bool,
    time_zone: &'a str,
    timeout_secs: u64,
    starting_deadline: u64,
    env: &'a BTreeSet<String>,
}

fn cronjob(s: CronJobSpec<'_>) -> Value {
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
fn starting_deadline(s: &crate::domain::schedule::Schedule, zone: &crate::model::Zone) -> u64 {
    // A fixed reference time keeps the output reproducible.
    let from = jiff::Timestamp::from_second(1_767_225_600).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    s.min_interval(from, &zone.tz)
        .map(|d| (d.as_secs() / 2).clamp(60, 3600))
        .unwrap_or(300)
}

/// A dbstash schedule as a Kubernetes CronJob schedule (standard 5-field cron or a descriptor).
pub fn kubernetes_schedule(expr: &str) -> Result<String, String> {
    let e = expr.trim();
    if e.starts_with('@') {
        return match e {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(e.to_string()),
            _ => Err(format!("schedule `{e}` is not one Kubernetes understands")),
        };
    }
    let fields: Vec<&str> = e.split_whitespace().collect();
    if fields.len() == 6 {
        return Err(format!(
            "schedule `{e}` has a seconds field; Kubernetes CronJobs take 5 fields \
             (minute hour day-of-month month day-of-week) — change it, or leave this job out with --job"
        ));
    }
    if fields.len() != 5 {
        return Err(format!("schedule `{e}` is not a 5-field cron expression"));
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
            return Err(format!(
                "schedule `{e}` uses `L`, `W` or `#`, which Kubernetes CronJobs do not support"
            ));
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
            return Err(format!(
                "schedule `{e}`: Kubernetes numbers weekdays 0-6 (0 is Sunday); write 0 for Sunday instead of 7"
            ));
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

fn short_hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
        .chars()
        .take(6)
        .collect()
}

/// Lower case, `[a-z0-9-]` only, no leading/trailing/double `-`.
fn sanitize(job: &str) -> String {
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

fn truncate_name(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    cut.trim_end_matches('-').to_string()
}

fn label_value(s: &str) -> String {
    truncate_name(s, 63)
}

// --- what the manifest text carries --------------------------------------------------------------

struct Scan {
    /// Literal secrets that would end up in the ConfigMap: where, and what to do instead.
    literal_secrets: Vec<(crate::domain::diag::Location, String)>,
    /// Secret `${VAR:-default}` defaults, left out of the ConfigMap.
    rewrites: Vec<Rewrite>,
    /// `${VAR}` names the text references (these come from the Secret).
    variables: BTreeSet<String>,
    warnings: Vec<String>,
}

fn scan_text(text: &str) -> Result<Scan, String> {
    let root =
        yaml::parse(text).map_err(|e| format!("{}:{}: {}", e.loc.line, e.loc.col, e.message))?;
    let mut scan = Scan {
        literal_secrets: Vec::new(),
        rewrites: Vec::new(),
        variables: BTreeSet::new(),
        warnings: Vec::new(),
    };
    walk(&root, "", &mut scan);
    Ok(scan)
}

const SECRET_VALUE_HINT: &str =
    "the ConfigMap would carry it: use `${VAR}` (set from the Secret) or the `_file` key with a path under /run/secrets";

fn walk(node: &Node, path: &str, scan: &mut Scan) {
    match &node.kind {
        Kind::Map(entries) => {
            let own_type = node.get("type").and_then(Node::as_str);
            for (k, v) in entries {
                let child = if path.is_empty() {
                    k.name.clone()
                } else {
                    format!("{path}.{}", k.name)
                };
                check_entry(&k.name, &child, v, own_type, scan);
                walk(v, &child, scan);
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), scan);
            }
        }
        Kind::Str { value, .. } => collect_variables(value, &mut scan.variables),
        _ => {}
    }
}

fn check_entry(key: &str, path: &str, v: &Node, map_type: Option<&str>, scan: &mut Scan) {
    let value = match &v.kind {
        Kind::Str { value, .. } => Some(value.clone()),
        Kind::Int(i) => Some(i.to_string()),
        Kind::Float(f) => Some(f.to_string()),
        Kind::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let Some(value) = value else { return };
    let offline = expand_offline(&value);
    let has_default = value.contains(":-");
    if let Some(kind) = literal_secret(key, &offline, map_type) {
        // A secret that only a `${VAR:-default}` default supplies: the ConfigMap gets the reference
        // without the default, and the Secret must carry the variable.
        let defaults = secret_defaults(&value);
        if has_default
            && !defaults.is_empty()
            && literal_secret(key, &expand_offline(&strip_defaults(&value)), map_type).is_none()
        {
            scan.rewrites.push(Rewrite {
                loc: v.loc,
                path: path.to_string(),
                defaults,
            });
            return;
        }
        let message = match kind {
            Literal::Value => {
                let how = if has_default {
                    "a `${VAR:-default}` default is written in the text"
                } else {
                    "it is written in the text"
                };
                format!("`{path}` holds a literal secret ({how}); {SECRET_VALUE_HINT}")
            }
            Literal::UriPassword => format!(
                "`{path}` has a literal password in it{}; {SECRET_VALUE_HINT}",
                if has_default {
                    " (from a `${VAR:-default}` default)"
                } else {
                    ""
                }
            ),
            Literal::WebhookUrl => format!(
                "`{path}` is a webhook URL, which is itself a credential; {SECRET_VALUE_HINT}"
            ),
        };
        scan.literal_secrets.push((v.loc, message));
        return;
    }
    if key.ends_with("_file") {
        let ok = offline.starts_with(&format!("{SECRETS_DIR}/"))
            || offline == format!("{CONFIG_DIR}/rclone.conf")
            || key == "ca_file"
            || offline.is_empty();
        if !ok {
            scan.warnings.push(format!(
                "`{path}` reads `{offline}`, which the CronJob does not mount: use a path under \
                 {SECRETS_DIR} (a key of the Secret `{SECRET}`)"
            ));
        } else if let Some(rest) = offline.strip_prefix(&format!("{SECRETS_DIR}/")) {
            if rest.contains('/') {
                scan.warnings.push(format!(
                    "`{path}` reads `{offline}`: Secret keys are flat files, so only \
                     {SECRETS_DIR}/KEY paths exist"
                ));
            }
        }
    }
}

/// What kind of literal secret a value (as the cluster sees it with no variable set) holds.
enum Literal {
    Value,
    UriPassword,
    WebhookUrl,
}

fn literal_secret(key: &str, offline: &str, map_type: Option<&str>) -> Option<Literal> {
    match key {
        "password" | "secret" if !offline.is_empty() => Some(Literal::Value),
        "uri" | "url" | "restore_to" if uri_password(offline).is_some_and(|p| !p.is_empty()) => {
            Some(Literal::UriPassword)
        }
        "url" if matches!(map_type, Some("slack" | "discord")) && !offline.is_empty() => {
            Some(Literal::WebhookUrl)
        }
        _ => None,
    }
}

/// A `${VAR:-default}` whose default is a secret: left out of the ConfigMap's copy of the text.
struct Rewrite {
    loc: crate::domain::diag::Location,
    path: String,
    /// `(source text "${NAME:-default}", NAME)` in the order they appear in the value.
    defaults: Vec<(String, String)>,
}

/// Every `${NAME:-default}` with a non-empty default in `s` (`$${` is a literal).
fn secret_defaults(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in interp::pieces(s) {
        match piece {
            interp::Piece::Var {
                expr,
                name,
                default: Some(d),
            } if !d.is_empty() => out.push((format!("${{{expr}}}"), name.to_string())),
            interp::Piece::Unterminated => break,
            _ => {}
        }
    }
    out
}

/// `s` with every secret default taken out: `${NAME:-default}` becomes `${NAME}`.
fn strip_defaults(s: &str) -> String {
    let mut out = s.to_string();
    for (full, name) in secret_defaults(s) {
        out = out.replacen(&full, &format!("${{{name}}}"), 1);
    }
    out
}

/// The ConfigMap's copy of the manifest: `text` with the secret defaults of `rewrites` taken out.
/// A default that cannot be found as written (escapes in a quoted scalar) is returned as an error
/// for its place.
fn without_secret_defaults(
    text: &str,
    rewrites: &[Rewrite],
) -> Result<String, Vec<(crate::domain::diag::Location, String)>> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |loc: &crate::domain::diag::Location| -> usize {
        let start = line_starts
            .get(loc.line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        let line = &text[start..];
        start
            + line
                .char_indices()
                .nth(loc.col.saturating_sub(1))
                .map(|(i, _)| i)
                .unwrap_or(line.len())
    };
    let mut cuts: Vec<(usize, usize, String)> = Vec::new();
    let mut errors = Vec::new();
    for r in rewrites {
        let mut cursor = offset(&r.loc);
        for (full, name) in &r.defaults {
            match text[cursor..].find(full.as_str()) {
                Some(i) => {
                    let at = cursor + i;
                    cuts.push((at, at + full.len(), format!("${{{name}}}")));
                    cursor = at + full.len();
                }
                None => {
                    errors.push((
                        r.loc,
                        format!(
                            "`{}` has a secret `${{{name}:-…}}` default that cannot be taken out of the \
                             ConfigMap as written; {SECRET_VALUE_HINT}",
                            r.path
                        ),
                    ));
                    break;
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    cuts.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut out = text.to_string();
    for (from, to, with) in cuts {
        out.replace_range(from..to, &with);
    }
    Ok(out)
}

/// The password part of a URI's user info (`scheme://user:PASS@host`, Go's `user:PASS@tcp(...)`).
fn uri_password(s: &str) -> Option<&str> {
    let rest = s.find("://").map(|i| &s[i + 3..]).unwrap_or(s);
    let before_query = rest.split('?').next().unwrap_or(rest);
    let at = before_query.rfind('@')?;
    let userinfo = &before_query[..at];
    userinfo.split_once(':').map(|(_, p)| p)
}

/// Names referenced as a bare `${NAME}` (no default) anywhere in the text.
fn variables_without_default(text: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            let tail = &rest[pos + 2..];
            let Some(end) = tail.find('}') else { break };
            let expr = &tail[..end];
            if !expr.contains(":-") {
                all.insert(expr.to_string());
            }
            rest = &tail[end + 1..];
        }
    }
    all
}

/// `${NAME}` / `${NAME:-default}` references in one string (`$${` is a literal).
fn collect_variables(s: &str, out: &mut BTreeSet<String>) {
    for piece in interp::pieces(s) {
        if let interp::Piece::Var { name, .. } = piece {
            if interp::valid_name(name) {
                out.insert(name.to_string());
            }
        }
    }
}

// --- a small YAML emitter -------------------------------------------------------------------------

/// One document: a block mapping at column 0.
pub fn emit_document(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(m, 0, out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn emit_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&pad(indent));
        out.push_str(&key(k));
        out.push(':');
        emit_value_after_key(v, indent, out);
    }
}

/// After `key:` (or `-`): a scalar on the same line, or a nested block on the next lines.
fn emit_value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(a, indent + 2, out);
        }
        Value::String(s) if literal_block_ok(s) => {
            out.push_str(" |");
            out.push_str(&block_header(s));
            out.push('\n');
            let body = s.strip_suffix('\n').unwrap_or(s);
            for line in body.split('\n') {
                if !line.is_empty() {
                    out.push_str(&pad(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn emit_seq(a: &[Value], indent: usize, out: &mut String) {
    for item in a {
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first entry shares the line with `- `; the rest line up under it.
                let mut inner = String::new();
                emit_map(m, indent + 2, &mut inner);
                out.push_str(&pad(indent));
                out.push_str("- ");
                out.push_str(&inner[indent + 2..]);
            }
            other => {
                out.push_str(&pad(indent));
                out.push('-');
                emit_value_after_key(other, indent, out);
            }
        }
    }
}

/// A multi-line string that a literal block scalar can carry byte for byte.
fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with('\n')
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || !needs_escape(c))
        && !s.contains(" \n")
        && !s.ends_with(' ')
}

/// `|` header: indentation indicator when the text starts with a space, chomping for the ending.
fn block_header(s: &str) -> String {
    let mut h = String::new();
    if s.starts_with(' ') || s.starts_with('\t') {
        h.push('2');
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => h.push('-'),
        1 => {}
        _ => h.push('+'),
    }
    h
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
}

fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        quoted(k)
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Strings that read back as the same string in YAML 1.1 and 1.2 without quotes.
fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/') {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':' | '@' | '+' | '=')
    }) {
        return false;
    }
    if s.ends_with(':') || s.contains("::") {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
    )
}

/// A double-quoted scalar: JSON's escapes are YAML's, plus the few characters JSON leaves bare.
fn quoted(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    json.chars()
        .map(|c| {
            if needs_escape(c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(
            kubernetes_schedule("0  2 * * *").as_deref(),
            Ok("0 2 * * *")
        );
        assert!(kubernetes_schedule("0 0 2 * * *").is_err());
        assert!(kubernetes_schedule("0 2 L * *").is_err());
        assert!(kubernetes_schedule("0 2 * * 5#2").is_err());
        assert!(kubernetes_schedule("0 2 * * 7").is_err());
        assert!(kubernetes_schedule("0 2 * * 1-7").is_err());
        assert_eq!(
            kubernetes_schedule("0 2 * JUL WED").as_deref(),
            Ok("0 2 * JUL WED")
        );
        assert_eq!(
            kubernetes_schedule("*/7 2 * * 0-6/2").as_deref(),
            Ok("*/7 2 * * 0-6/2")
        );
        assert_eq!(kubernetes_schedule("@daily").as_deref(), Ok("@daily"));
    }

    #[test]
    fn uri_passwords() {
        assert_eq!(uri_password("postgresql://a:b@h/db"), Some("b"));
        assert_eq!(uri_password("postgresql://a:@h/db"), Some(""));
        assert_eq!(uri_password("postgresql://a@h/db"), None);
        assert_eq!(uri_password("u:p@tcp(h:3306)/db?tls=true"), Some("p"));
        assert_eq!(uri_password("redis://:pw@h:6379/0"), Some("pw"));
        assert_eq!(uri_password("sqlite:///var/x@y.db"), None);
    }

    #[test]
    fn secret_defaults_are_taken_out_where_they_are_written() {
        assert_eq!(
            strip_defaults("postgresql://a:${PW:-s3cret}@h/${DB:-shop}?x=$${LIT:-y}"),
            "postgresql://a:${PW}@h/${DB}?x=$${LIT:-y}"
        );
        assert!(secret_defaults("${A:-}").is_empty());
        let text = "jobs:\n  a: { password: \"${PW:-one}\" }\n  b: { password: \"${PW:-one}\" }\n";
        let at = |line, col| crate::domain::diag::Location { line, col };
        let rw = |line, col| Rewrite {
            loc: at(line, col),
            path: String::new(),
            defaults: secret_defaults("${PW:-one}"),
        };
        assert_eq!(
            without_secret_defaults(text, &[rw(3, 18)]).ok().as_deref(),
            Some("jobs:\n  a: { password: \"${PW:-one}\" }\n  b: { password: \"${PW}\" }\n")
        );
        // Written with escapes: not found as written, so it stays an error for that place.
        let escaped = "a: { password: \"${PW:-o\\x6ee}\" }\n";
        let r = Rewrite {
            loc: at(1, 16),
            path: "a.password".into(),
            defaults: secret_defaults("${PW:-one}"),
        };
        assert!(without_secret_defaults(escaped, &[r]).is_err());
    }

    #[test]
    fn names_are_dns_1123_and_unique() {
        let n = dns_names(&["App_DB".into(), "app-db".into(), "x".repeat(80)]);
        assert_eq!(n["app-db"], "dbstash-app-db");
        assert!(n["App_DB"].starts_with("dbstash-app-db-") && n["App_DB"] != n["app-db"]);
        assert!(n[&"x".repeat(80)].len() <= 52);
    }
}
