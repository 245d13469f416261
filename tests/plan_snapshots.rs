//! Snapshots of `dbstash plan --offline` for `examples/full.yaml`, text and JSON, with the clock
//! pinned by the hidden `DBSTASH_NOW`; and secrets set through the environment must appear in no
//! output of `plan` or `validate`.
//!
//! Update the snapshots after an intended change with
//! `INSTA_UPDATE=always cargo test --test integration plan_snapshots::`, then review `tests/snapshots/*.snap`.

use assert_cmd::Command;

const NOW: &str = "2026-03-01T01:59:00Z";

/// Values that must never be printed. Each is long and unusual, so a match is never a coincidence.
const SECRETS: &[(&str, &str)] = &[
    ("APP_DB_PASSWORD", "hunter2-very-secret"),
    ("SMTP_PASSWORD", "smtp-pw-very-secret"),
    (
        "DBSTASH_SLACK_URL",
        "https://hooks.slack.com/services/T0SECRET/B0SECRET/slacktoken-very-secret",
    ),
    ("WEBHOOK_SECRET", "hmac-key-very-secret"),
    ("GIS_PASSWORD", "gis-pw-very-secret"),
    ("MYSQL_PASSWORD", "mysql-pw-very-secret"),
    ("MARIA_PASSWORD", "maria-pw-very-secret"),
    ("MONGO_PASSWORD", "mongo-pw-very-secret"),
    ("REDIS_PASSWORD", "redis-pw-very-secret"),
];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn dbstash(args: &[&str], with_secrets: bool) -> Out {
    let mut cmd = Command::cargo_bin("dbstash").expect("binary");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("DBSTASH_NOW", NOW)
        .args(["-c", "examples/full.yaml"])
        .args(args);
    if with_secrets {
        for (k, v) in SECRETS {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().expect("run dbstash");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_no_secret(what: &str, out: &Out) {
    for (name, value) in SECRETS {
        // the whole value, and any distinctive part of it
        for needle in std::iter::once(*value).chain(
            value
                .split('/')
                .filter(|p| p.contains("SECRET") || p.contains("very-secret")),
        ) {
            assert!(
                !out.stdout.contains(needle) && !out.stderr.contains(needle),
                "{what}: the value of {name} (`{needle}`) appears in the output:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }
    }
}

#[test]
fn plan_text_snapshot() {
    let out = dbstash(&["plan", "--offline"], true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("plan_text", out.stdout);
    insta::assert_snapshot!("plan_text_stderr", out.stderr);
}

#[test]
fn plan_json_snapshot() {
    let out = dbstash(&["plan", "--offline", "--format", "json"], true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("plan --format json");
    insta::assert_json_snapshot!("plan_json", v);
}

#[test]
fn plan_shows_secret_env_names_but_not_their_values() {
    let out = dbstash(&["plan", "--offline"], true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // the password reaches pg_dump through the environment, shown masked
    assert!(out.stdout.contains("PGPASSWORD=***"), "{}", out.stdout);
    assert!(out.stdout.contains("REDISCLI_AUTH=***"), "{}", out.stdout);
    assert_no_secret("plan text", &out);

    let out = dbstash(&["plan", "--offline", "--format", "json"], true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"***\""), "{}", out.stdout);
    assert_no_secret("plan json", &out);

    let out = dbstash(&["plan", "--offline", "--job", "app"], true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("job app\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("job cache"));
    assert_no_secret("plan --job", &out);
}

#[test]
fn validate_never_prints_secrets() {
    for format in ["text", "json", "github"] {
        let out = dbstash(&["validate", "--format", format], true);
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
        assert_no_secret(&format!("validate --format {format}"), &out);
    }
}

#[test]
fn invalid_secrets_are_reported_without_their_values() {
    // A secret that breaks the URI (an unescaped `/` and `@`) is reported by place, not by value.
    let mut cmd = Command::cargo_bin("dbstash").expect("binary");
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("APP_DB_PASSWORD", "hunter2/very@secret:x")
        .env("DBSTASH_SLACK_URL", "ftp://slacktoken-very-secret")
        .args(["-c", "examples/full.yaml", "validate", "--format", "json"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("must start with http"), "{stdout}");
    for needle in ["hunter2", "very@secret", "slacktoken"] {
        assert!(!stdout.contains(needle), "`{needle}` in {stdout}");
    }
}

#[test]
fn the_clock_is_pinned_and_the_output_is_stable() {
    let a = dbstash(&["plan", "--offline"], false);
    let b = dbstash(&["plan", "--offline"], false);
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(a.stdout, b.stdout);
    // 01:59 UTC is 02:59 in Berlin (the manifest's zone): the object name uses local time ...
    assert!(
        a.stdout
            .contains("object       pg/shop/shop-2026-03-01-025900.sql.zst"),
        "{}",
        a.stdout
    );
    // ... and `legacy` runs in UTC at 03:30, the first one the same day.
    assert!(
        a.stdout
            .contains("2026-03-01 03:30:00 UTC, 2026-03-02 03:30:00 UTC"),
        "{}",
        a.stdout
    );

    let mut cmd = Command::cargo_bin("dbstash").expect("binary");
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("DBSTASH_NOW", "yesterday")
        .args(["-c", "examples/full.yaml", "plan", "--offline"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DBSTASH_NOW `yesterday`"));
}

#[test]
fn plan_of_an_unknown_job_fails() {
    let out = dbstash(&["plan", "--offline", "--job", "nope"], false);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "examples/full.yaml: no job named `nope` in the manifest\n"
    );
}

#[test]
fn a_hook_that_uses_the_password_shows_it_masked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("m.yaml");
    std::fs::write(
        &file,
        "version: 1
remotes: { nas: { path: /srv/backups } }
jobs:
  app:
    engine: postgres
    host: db
    database: shop
    password: \"${DB_PW}\"
    remote: nas
    hooks: { pre: \"PGPASSWORD=${DB_PW} psql -h db -c 'checkpoint'\", post: \"echo done\" }
",
    )
    .expect("write");
    for format in ["text", "json"] {
        let out = Command::cargo_bin("dbstash")
            .expect("binary")
            .env_clear()
            .env("DB_PW", "pw-in-a-hook-very-secret")
            .env("DBSTASH_NOW", NOW)
            .arg("-c")
            .arg(&file)
            .args(["plan", "--offline", "--format", format])
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(!stdout.contains("pw-in-a-hook"), "{format}: {stdout}");
        assert!(stdout.contains("PGPASSWORD=*** psql"), "{format}: {stdout}");
        assert!(stdout.contains("echo done"), "{format}: {stdout}");
    }
}
