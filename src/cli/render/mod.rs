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

mod emit;
mod k8s;
mod load;
mod secrets;

use emit::*;
use k8s::*;
use load::*;
use secrets::*;

use crate::error::exit;
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

pub fn kubernetes(
    config: &Path,
    jobs: &[String],
    image: &str,
) -> Result<super::ExitCode, super::CliError> {
    let text = match crate::manifest::limits::read_manifest(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}:1:1: cannot read the manifest: {e}", config.display());
            return Ok(exit::INVALID);
        }
    };
    let Some((manifest, notes)) = load_for_render(config, &text) else {
        return Ok(exit::INVALID);
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    Ok(match render(config, &text, &manifest, jobs, image) {
        Ok(out) => {
            for n in &out.notes {
                eprintln!("note: {n}");
            }
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            out!("{}", out.yaml);
            exit::OK
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            exit::FAILED
        }
    })
}

/// The rendered stream and what the operator should know about it.
#[derive(Debug)]
pub struct Rendered {
    pub yaml: String,
    pub warnings: Vec<String>,
    /// What the operator must do for the output to work (keys the Secret needs).
    pub notes: Vec<String>,
}

/// What rendering found so far: errors stop it, warnings and notes go with the output.
#[derive(Default)]
struct Findings {
    errors: Vec<String>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

/// Render from already-loaded parts (the tests call this too): which jobs, the ConfigMap's
/// text, one CronJob each, then the stream.
pub fn render(
    config: &Path,
    text: &str,
    manifest: &Manifest,
    selected: &[String],
    image: &str,
) -> Result<Rendered, Vec<String>> {
    let mut found = Findings::default();
    let file = config.display().to_string();
    let names = selected_jobs(&file, manifest, selected, &mut found);
    check_inputs(&file, text, image, &mut found);
    let scan = scan_text(text);
    let configmap_text = configmap_text(&file, text, &scan, &mut found);
    let env_names = scan
        .as_ref()
        .map(|s| s.variables.clone())
        .unwrap_or_default();
    let cronjobs = cronjobs(&file, manifest, &names, image, &env_names, &mut found);
    if !found.errors.is_empty() {
        return Err(found.errors);
    }
    Ok(Rendered {
        yaml: stream(config, manifest, text, &configmap_text, cronjobs),
        warnings: found.warnings,
        notes: found.notes,
    })
}

/// Which jobs, in the order asked (all of them, in name order, when none are named).
fn selected_jobs<'m>(
    file: &str,
    manifest: &'m Manifest,
    selected: &'m [String],
    found: &mut Findings,
) -> Vec<&'m str> {
    let mut names: Vec<&str> = Vec::new();
    if selected.is_empty() {
        names.extend(manifest.jobs.keys().map(String::as_str));
    } else {
        for j in selected {
            if !manifest.jobs.contains_key(j) {
                let known: Vec<&str> = manifest.jobs.keys().map(String::as_str).collect();
                found.errors.push(format!(
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
    if names.is_empty() && found.errors.is_empty() {
        found
            .errors
            .push(format!("{file}: the manifest has no jobs to render"));
    }
    names
}

/// The image reference and the ConfigMap's size limit.
fn check_inputs(file: &str, text: &str, image: &str, found: &mut Findings) {
    if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
        found
            .errors
            .push(format!("--image `{image}` is not an image reference"));
    }
    if text.len() > MAX_CONFIGMAP_BYTES {
        found.errors.push(format!(
            "{file}: the manifest is {} bytes; a ConfigMap holds at most 1 MiB",
            text.len()
        ));
    }
}

/// The manifest text goes into the ConfigMap as it is, less the secret defaults of
/// `${VAR:-default}`: no literal secret may be in it.
fn configmap_text(
    file: &str,
    text: &str,
    scan: &Result<Scan, ScanError>,
    found: &mut Findings,
) -> String {
    let s = match scan {
        Ok(s) => s,
        Err(e) => {
            found.errors.push(format!("{file}: {e}"));
            return text.to_string();
        }
    };
    for (loc, msg) in &s.literal_secrets {
        found
            .errors
            .push(format!("{file}:{}:{}: {msg}", loc.line, loc.col));
    }
    found.warnings.extend(s.warnings.iter().cloned());
    let configmap_text = match without_secret_defaults(text, &s.rewrites) {
        Ok(t) => t,
        Err(errs) => {
            found.errors.extend(
                errs.into_iter()
                    .map(|(loc, msg)| format!("{file}:{}:{}: {msg}", loc.line, loc.col)),
            );
            text.to_string()
        }
    };
    for r in &s.rewrites {
        let names: Vec<&str> = r.defaults.iter().map(|(_, n)| n.as_str()).collect();
        found.notes.push(format!(
            "{file}:{}:{}: `{}`: the ConfigMap leaves out the secret default of {}: set {} in the Secret `{SECRET}`",
            r.loc.line,
            r.loc.col,
            r.path,
            names.iter().map(|n| format!("${{{n}}}")).collect::<Vec<_>>().join(", "),
            names.join(", ")
        ));
    }
    configmap_text
}

/// One CronJob per job; a local-folder remote gets a warning (the pod has no such volume).
fn cronjobs(
    file: &str,
    manifest: &Manifest,
    names: &[&str],
    image: &str,
    env_names: &BTreeSet<String>,
    found: &mut Findings,
) -> Vec<Value> {
    let job_names = dns_names(&manifest.jobs.keys().cloned().collect::<Vec<_>>());
    let mut cronjobs = Vec::new();
    let mut local_remotes = BTreeSet::new();
    for name in names {
        let Some(job) = manifest.jobs.get(*name) else {
            continue;
        };
        let k8s_name = &job_names[*name];
        let Some((schedule, suspend)) = job_schedule(file, name, job, k8s_name, found) else {
            continue;
        };
        if job.verify.as_ref().is_some_and(|v| v.schedule.is_some()) {
            found.warnings.push(format!(
                "job `{name}` has a scheduled restore drill (`verify.schedule`): its CronJob runs only \
                 the backups; run drills from `dbstash run` or `dbstash verify --restore-to`"
            ));
        }
        if job.pitr.is_some()
            && matches!(
                job.engine,
                crate::model::Engine::Mysql | crate::model::Engine::Mariadb
            )
        {
            found.warnings.push(format!(
                "job `{name}` has `pitr`: its binlog stream must run all the time, which a CronJob cannot do; its CronJob takes only the dumps. Run `dbstash run` for the stream in a Deployment with one replica and `strategy: Recreate` (two streams would archive the same files twice), with a volume for `temp_dir`"
            ));
        } else if job.pitr.is_some() {
            found.warnings.push(format!(
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
        cronjobs.push(cronjob(CronJobSpec {
            job: name,
            k8s_name,
            image,
            schedule: &schedule,
            suspend,
            time_zone: &job.timezone.name,
            timeout_secs: job.timeout.as_secs(),
            starting_deadline,
            env: env_names,
        }));
    }
    for (name, path) in local_remotes {
        found.warnings.push(format!(
            "remote `{name}` is a local folder ({path}): the CronJob has no volume there; add one \
             (e.g. a PersistentVolumeClaim) or use an rclone remote"
        ));
    }
    cronjobs
}

/// The job's CronJob schedule and whether it is suspended (no schedule: it runs by hand); `None`
/// when its schedule cannot be said to Kubernetes.
fn job_schedule(
    file: &str,
    name: &str,
    job: &crate::model::Job,
    k8s_name: &str,
    found: &mut Findings,
) -> Option<(String, bool)> {
    match &job.schedule {
        Some(s) => match kubernetes_schedule(s.expr()) {
            Ok(k) => Some((k, false)),
            Err(e) => {
                found.errors.push(format!("{file}: job `{name}`: {e}"));
                None
            }
        },
        None => {
            found.warnings.push(format!(
                "job `{name}` has no schedule: its CronJob is suspended; run it with \
                 `kubectl create job --from=cronjob/{} {}-manual`",
                k8s_name,
                truncate_name(k8s_name, 52)
            ));
            Some(("@yearly".to_string(), true))
        }
    }
}

/// The YAML stream: a header comment, the ConfigMap, then the CronJobs.
fn stream(
    config: &Path,
    manifest: &Manifest,
    text: &str,
    configmap_text: &str,
    cronjobs: Vec<Value>,
) -> String {
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
    let mut docs = vec![configmap(configmap_text, &hash)];
    docs.extend(cronjobs);
    for d in &docs {
        out.push_str("---\n");
        emit_document(d, &mut out);
    }
    out
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
