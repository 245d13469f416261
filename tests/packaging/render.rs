//! `dbstash render kubernetes`: the ConfigMap and CronJobs it prints, and what it refuses.

use crate::support::repo::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;

const RENDER_FIXTURE: &str = r#"# A manifest for the render tests.
version: 1
settings:
  timezone: Europe/Berlin
  health: { listen: "0.0.0.0:8080" }
  rclone: { config_file: /config/rclone.conf }
defaults:
  timeout: 1h
  compress: zstd
remotes:
  offsite: { rclone: "s3:bucket/dbstash" }
notifiers:
  ops: { type: slack, url_file: /run/secrets/slack_url, on: failure }
jobs:
  app:
    engine: postgres
    uri: "postgresql://app:${APP_DB_PASSWORD}@db.internal:5432/shop?sslmode=require"
    remote: offsite
    schedule: "0 */6 * * *"
    notify: [ops]
  Shop_DB:
    engine: mysql
    host: mysql.internal
    user: shop
    password_file: /run/secrets/shop_password
    database: shop
    remote: offsite
    schedule: "@daily"
    timezone: UTC
    timeout: 2h30m
  cache:
    engine: redis
    uri: "redis://:${REDIS_PASSWORD:-}@cache.internal:6379/0"
    remote: offsite
    schedule: "*/15 * * * *"
    timeout: 10m
"#;

struct Rendered {
    code: i32,
    stdout: String,
    stderr: String,
}

fn render_text(text: &str, args: &[&str], env: &[(&str, &str)]) -> Rendered {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dbstash.yaml");
    std::fs::write(&f, text).expect("write manifest");
    let mut cmd = dbstash();
    cmd.arg("-c")
        .arg(&f)
        .args(["render", "kubernetes"])
        .args(args);
    cmd.env_remove("APP_DB_PASSWORD")
        .env_remove("REDIS_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run render");
    Rendered {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn validate_stream(yaml: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("rendered.yaml");
    std::fs::write(&f, yaml).expect("write");
    kubernetes_validate(&[f]);
}

#[test]
fn render_kubernetes_snapshot() {
    let r = render_text(
        RENDER_FIXTURE,
        &["--image", "ghcr.io/dbstash/dbstash:pg-17"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("render_kubernetes", r.stdout);
    validate_stream(&r.stdout);
}

#[test]
fn render_kubernetes_objects() {
    let r = render_text(RENDER_FIXTURE, &[], &[("APP_DB_PASSWORD", "x")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs = yaml_docs(&r.stdout);
    assert_eq!(docs.len(), 4, "a ConfigMap and three CronJobs");
    let cm = &docs[0];
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(
        cm["data"]["dbstash.yaml"], RENDER_FIXTURE,
        "the manifest verbatim"
    );
    let by_job: BTreeMap<String, &Value> = docs[1..]
        .iter()
        .map(|d| {
            (
                d["metadata"]["annotations"]["dbstash.io/job"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d,
            )
        })
        .collect();
    assert_eq!(
        by_job.keys().cloned().collect::<Vec<_>>(),
        ["Shop_DB", "app", "cache"]
    );
    let app = by_job["app"];
    assert_eq!(app["apiVersion"], "batch/v1");
    assert_eq!(app["kind"], "CronJob");
    assert_eq!(app["metadata"]["name"], "dbstash-app");
    assert_eq!(app["spec"]["schedule"], "0 */6 * * *");
    assert_eq!(app["spec"]["timeZone"], "Europe/Berlin");
    assert_eq!(app["spec"]["concurrencyPolicy"], "Forbid");
    assert!(app["spec"]["startingDeadlineSeconds"]
        .as_u64()
        .is_some_and(|s| (60..=3600).contains(&s)));
    assert!(app["spec"]["successfulJobsHistoryLimit"].is_u64());
    assert!(app["spec"]["failedJobsHistoryLimit"].is_u64());
    let job = &app["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0);
    // The job's timeout (1h) plus slack so dbstash's own timeout fires (and cleans up) first.
    let deadline = job["activeDeadlineSeconds"]
        .as_u64()
        .expect("activeDeadlineSeconds");
    assert!(deadline > 3600 && deadline <= 3600 + 600, "{deadline}");
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(strs(&c["command"]), ["dbstash"]);
    assert_eq!(
        strs(&c["args"]),
        ["-c", "/config/dbstash.yaml", "backup", "app"]
    );
    assert_eq!(
        c["image"], "ghcr.io/dbstash/dbstash:all",
        "the CLI's default image"
    );
    // ${VAR}s come from the Secret, never with a value.
    let env = c["env"].as_array().expect("env");
    let names: Vec<&str> = env.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["APP_DB_PASSWORD", "REDIS_PASSWORD"]);
    for e in env {
        assert!(e.get("value").is_none(), "inlined value: {e}");
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "dbstash-secrets");
    }
    let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| (v["name"].as_str().unwrap_or(""), v))
        .collect();
    let config = volumes[mounts["/config"]];
    assert_eq!(
        config["projected"]["sources"][0]["configMap"]["name"],
        cm["metadata"]["name"]
    );
    assert_eq!(
        volumes[mounts["/run/secrets"]]["secret"]["secretName"],
        "dbstash-secrets"
    );
    // DNS-1123 names; the job's own time zone and timeout.
    let shop = by_job["Shop_DB"];
    assert_eq!(shop["metadata"]["name"], "dbstash-shop-db");
    assert_eq!(shop["spec"]["schedule"], "@daily");
    assert_eq!(shop["spec"]["timeZone"], "UTC");
    assert_eq!(
        strs(&shop["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]),
        ["-c", "/config/dbstash.yaml", "backup", "Shop_DB"]
    );
    let shop_deadline = shop["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .expect("deadline");
    assert!(shop_deadline > 9000, "{shop_deadline}");
    for d in &docs[1..] {
        let name = d["metadata"]["name"].as_str().expect("name");
        assert!(name.len() <= 52, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !name.starts_with('-')
                && !name.ends_with('-'),
            "{name} is not DNS-1123"
        );
    }
    assert!(!r.stdout.contains("pg-secret") && !r.stdout.contains(": x\n"));
}

#[test]
fn render_selects_jobs_in_the_order_given() {
    let r = render_text(
        RENDER_FIXTURE,
        &["--job", "cache", "--job", "app", "--job", "cache"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs = yaml_docs(&r.stdout);
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["dbstash-config", "dbstash-cache", "dbstash-app"]);
    let r = render_text(RENDER_FIXTURE, &["--job", "nope"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("unknown job `nope`"), "{}", r.stderr);
}

#[test]
fn render_refuses_a_seconds_schedule() {
    let text = RENDER_FIXTURE.replace("\"*/15 * * * *\"", "\"0 */15 * * * *\"");
    let r = render_text(&text, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing half-rendered: {}", r.stdout);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("note:"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].contains("job `cache`") && lines[0].contains("seconds"),
        "{}",
        lines[0]
    );
    // Leaving the job out renders the rest.
    let r = render_text(&text, &["--job", "app"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn render_refuses_literal_secrets() {
    let cases = [
        (
            "password: \"${SHOP_PW}\"",
            "password: hunter2",
            "jobs.Shop_DB.password",
        ),
        (
            "password: \"${SHOP_PW}\"",
            "password: 12345",
            "jobs.Shop_DB.password",
        ),
        ("${APP_DB_PASSWORD}@", "s3cret@", "jobs.app.uri"),
        (
            "url_file: /run/secrets/slack_url",
            "url: https://hooks.slack.com/services/T0/B0/abc",
            "notifiers.ops.url",
        ),
    ];
    let base = RENDER_FIXTURE.replace(
        "password_file: /run/secrets/shop_password",
        "password: \"${SHOP_PW}\"",
    );
    let ok = render_text(&base, &[], &[]);
    assert_eq!(ok.code, 0, "a ${{VAR}} password renders: {}", ok.stderr);
    assert!(!ok.stdout.contains("hunter2"));
    for (from, to, path) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let r = render_text(&text, &[], &[]);
        assert_eq!(r.code, 1, "{to}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{to}: printed {}", r.stdout);
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains(path))
            .unwrap_or_else(|| panic!("{to}: no error naming {path}: {}", r.stderr));
        // PATH:LINE:COL: message, and never the secret itself.
        let file_part = line.split(": ").next().unwrap_or("");
        let parts: Vec<&str> = file_part.rsplitn(3, ':').collect();
        assert!(
            parts.len() == 3 && parts[0].parse::<u32>().is_ok() && parts[1].parse::<u32>().is_ok(),
            "{line}"
        );
        for secret in ["hunter2", "12345", "s3cret", "changeme", "/B0/abc"] {
            assert!(
                !r.stderr.contains(secret),
                "the error shows the secret: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn render_leaves_secret_defaults_out_of_the_configmap() {
    // A `${VAR:-default}` whose default is a secret: the ConfigMap gets `${VAR}` (the Secret must
    // set it), a note says so by place, and the default is nowhere in the output.
    let base = RENDER_FIXTURE.replace(
        "password_file: /run/secrets/shop_password",
        "password: \"${SHOP_PW}\"",
    );
    let cases = [
        (
            "password: \"${SHOP_PW}\"",
            "password: \"${SHOP_PW:-hunter2}\"",
            "jobs.Shop_DB.password",
            "SHOP_PW",
            "password: \"${SHOP_PW}\"",
        ),
        (
            "${REDIS_PASSWORD:-}@",
            "${REDIS_PASSWORD:-changeme}@",
            "jobs.cache.uri",
            "REDIS_PASSWORD",
            "${REDIS_PASSWORD}@",
        ),
    ];
    for (from, to, path, var, stripped) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let r = render_text(&text, &[], &[]);
        assert_eq!(r.code, 0, "{to}: {}", r.stderr);
        for secret in ["hunter2", "changeme"] {
            assert!(!r.stdout.contains(secret), "{to}: rendered {secret}");
            assert!(!r.stderr.contains(secret), "{to}: {}", r.stderr);
        }
        let note = r
            .stderr
            .lines()
            .find(|l| l.starts_with("note:") && l.contains(path))
            .unwrap_or_else(|| panic!("{to}: no note naming {path}: {}", r.stderr));
        assert!(
            note.contains("dbstash.yaml:") && note.contains(var),
            "{note}"
        );
        let cm = &yaml_docs(&r.stdout)[0];
        assert_eq!(
            cm["data"]["dbstash.yaml"],
            Value::String(text.replacen(to, stripped, 1)),
            "only the default is left out"
        );
    }
}

#[test]
fn render_reports_an_invalid_manifest() {
    let r = render_text("version: 1\njobs:\n  a: { engine: nosuch }\n", &[], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("dbstash.yaml:3:"), "{}", r.stderr);
}

#[test]
fn render_works_away_from_the_cluster_secrets() {
    // Neither APP_URI nor /run/secrets/... exists here: they are the cluster's business.
    let text = RENDER_FIXTURE.replace(
        "uri: \"postgresql://app:${APP_DB_PASSWORD}@db.internal:5432/shop?sslmode=require\"",
        "uri_file: /run/secrets/app_uri_for_render_test",
    );
    let r = render_text(&text, &["--job", "app"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("/run/secrets/app_uri_for_render_test"),
        "{}",
        r.stderr
    );
    assert_eq!(
        yaml_docs(&r.stdout)[0]["data"]["dbstash.yaml"],
        Value::String(text)
    );
}

#[test]
fn render_unscheduled_job_is_a_suspended_cronjob() {
    // No schedule anywhere (the fixture's defaults have none): the job runs only when asked.
    let text = RENDER_FIXTURE.replace("    schedule: \"*/15 * * * *\"\n", "");
    assert_ne!(text, RENDER_FIXTURE);
    let r = render_text(&text, &["--job", "cache"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs = yaml_docs(&r.stdout);
    assert_eq!(docs[1]["metadata"]["name"], "dbstash-cache");
    assert_eq!(docs[1]["spec"]["suspend"], true);
    assert!(
        r.stderr
            .contains("kubectl create job --from=cronjob/dbstash-cache"),
        "{}",
        r.stderr
    );
    // Scheduled jobs are not suspended.
    let r = render_text(RENDER_FIXTURE, &["--job", "cache"], &[]);
    assert!(yaml_docs(&r.stdout)[1]["spec"].get("suspend").is_none());
    validate_stream(&r.stdout);
}

#[test]
fn render_keeps_awkward_manifest_text_verbatim() {
    let variants = [
        RENDER_FIXTURE.trim_end_matches('\n').to_string(),
        format!("{RENDER_FIXTURE}\n\n"),
        format!("{RENDER_FIXTURE}# trailing spaces   \n"),
        format!("  # indented first line\n{RENDER_FIXTURE}"),
        RENDER_FIXTURE.replace(
            "# A manifest",
            "#\tA manifest with a tab, \"quotes\", 'ticks', é, --- and ... ",
        ),
        RENDER_FIXTURE.replace('\n', "\r\n"),
    ];
    for text in variants {
        let r = render_text(&text, &["--job", "app"], &[]);
        assert_eq!(r.code, 0, "{:?}: {}", text, r.stderr);
        let docs = yaml_docs(&r.stdout);
        assert_eq!(
            docs[0]["data"]["dbstash.yaml"],
            Value::String(text.clone()),
            "{}",
            r.stdout
        );
        if let Some(py) = tool("python3") {
            // A second, independent YAML reader (PyYAML ships with kubernetes-validate).
            let check = std::process::Command::new(py)
                .args([
                    "-c",
                    "import sys,yaml; d=list(yaml.safe_load_all(sys.stdin)); sys.stdout.write(d[0]['data']['dbstash.yaml'])",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn();
            if let Ok(mut child) = check {
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(r.stdout.as_bytes()).expect("write");
                }
                let out = child.wait_with_output().expect("python");
                if out.status.success() {
                    assert_eq!(
                        String::from_utf8_lossy(&out.stdout),
                        text,
                        "PyYAML reads it back"
                    );
                } else if !String::from_utf8_lossy(&out.stderr).contains("No module named") {
                    panic!(
                        "PyYAML cannot read the output: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
}
