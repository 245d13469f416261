//! Monitoring with the real tools: `/metrics` scraped by a real `prometheus` and checked by
//! `promtool`, the shipped alert rules (`promtool check rules`, `promtool test rules`), the
//! `Accept` negotiation, per-job series from load to removal, `/readyz`, drill metrics, and a
//! timeout reported as soon as the killed process group is gone.

use crate::support;
use crate::support::{require, wait_until, Test};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One HTTP/1.1 GET: (status, lower-cased headers, body).
fn get(port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, head.to_ascii_lowercase(), body.to_string()))
}

fn status(port: u16, path: &str) -> Option<u16> {
    get(port, path, None).map(|r| r.0)
}

/// `/metrics` in the Prometheus text format.
fn scrape(port: u16) -> String {
    get(port, "/metrics", Some("text/plain;version=0.0.4"))
        .map(|r| r.2)
        .unwrap_or_default()
}

/// The value of the sample whose name and labels are exactly `series`, if it is exported.
fn sample(port: u16, series: &str) -> Option<f64> {
    scrape(port)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `dbstash run` in the background, killed when dropped.
struct Sup(Child);

impl Sup {
    /// `dbstash run` started, with its health endpoint answering on `port`.
    fn serving(t: &Test, port: u16) -> Sup {
        let sup = Sup::start(t);
        assert!(
            support::wait_port(port, Duration::from_secs(10)),
            "{}",
            t.log()
        );
        sup
    }

    fn start(t: &Test) -> Sup {
        Sup(t.spawn_logged(&["run"]))
    }

    fn stop(&mut self) -> Option<i32> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.0.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Replace the manifest of a running supervisor (atomically, as editors do).
fn rewrite(t: &Test, yaml: &str) {
    let tmp = t.path("dbstash.yaml.new");
    std::fs::write(
        &tmp,
        yaml.replace("{dir}", &t.dir.path().display().to_string()),
    )
    .expect("write manifest");
    std::fs::rename(&tmp, t.path("dbstash.yaml")).expect("rename manifest");
}

fn sqlite_db(t: &Test) {
    let c = rusqlite::Connection::open(t.path("app.db")).expect("sqlite");
    c.execute_batch("create table if not exists t(x); insert into t values (1),(2);")
        .expect("rows");
}

/// A manifest with a health endpoint on `port` and a local remote; `jobs` is the `jobs:` body.
fn manifest(port: u16, jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

/// A job that succeeds every second (SQLite to the local remote).
const OK_JOB: &str =
    "  ok: { engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '*/1 * * * * *' }\n";

/// A job that can never succeed: PostgreSQL on a port nobody listens on.
fn broken_job(schedule: &str) -> String {
    let closed = support::free_port();
    format!("  broken: {{ engine: postgres, host: 127.0.0.1, port: {closed}, user: postgres, database: nope, remote: l, schedule: '{schedule}' }}\n")
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write to promtool");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_real_scrape_passes_promtool_check_metrics() {
    if !require(
        support::have("promtool"),
        "promtool (apt-get install prometheus)",
    ) {
        return;
    }
    let port = support::free_port();
    let t = Test::new().manifest(&manifest(
        port,
        &format!("{OK_JOB}{}", broken_job("*/2 * * * * *")),
    ));
    sqlite_db(&t);
    let _sup = Sup::serving(&t, port);
    // wait for both outcomes, so every family has samples
    assert!(
        wait_until(Duration::from_secs(20), || {
            sample(
                port,
                "dbstash_backup_runs_total{backup_job=\"ok\",status=\"success\"}",
            ) >= Some(1.0)
                && sample(
                    port,
                    "dbstash_backup_runs_total{backup_job=\"broken\",status=\"failure\"}",
                ) >= Some(1.0)
        }),
        "{}\n{}",
        scrape(port),
        t.log()
    );
    let text = scrape(port);
    let (ok, out) = promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "promtool check metrics: {out}\n{text}");
    assert!(out.trim().is_empty(), "promtool lint: {out}");
}

#[test]
fn the_accept_header_picks_text_or_openmetrics() {
    let port = support::free_port();
    let t = Test::new().manifest(&manifest(port, OK_JOB));
    sqlite_db(&t);
    let _sup = Sup::serving(&t, port);

    let (code, head, body) =
        get(port, "/metrics", Some("text/plain;version=0.0.4")).expect("scrape");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(!body.contains("# EOF"), "{body}");
    for family in [
        "dbstash_backup_runs_total",
        "dbstash_config_reloads_total",
        "dbstash_backup_last_success_timestamp_seconds",
    ] {
        assert!(
            body.contains(&format!("# HELP {family} ")),
            "{family}: {body}"
        );
        assert!(
            body.contains(&format!("# TYPE {family} ")),
            "{family}: {body}"
        );
    }

    let (code, head, body) =
        get(port, "/metrics", Some("application/openmetrics-text")).expect("scrape");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE dbstash_backup_runs counter"),
        "{body}"
    );

    // what Prometheus itself sends: OpenMetrics first
    let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (_, head, _) = get(port, "/metrics", Some(prom)).expect("scrape");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    // no preference: the text format
    let (_, head, _) = get(port, "/metrics", None).expect("scrape");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
}

/// A real Prometheus server scraping one target every second, its TSDB in a temp folder.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: u16, rules: Option<&str>) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = support::free_port();
        let rule_files = rules
            .map(|r| format!("rule_files: ['{r}']\n"))
            .unwrap_or_default();
        let config = format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n{rule_files}scrape_configs:\n  - job_name: dbstash\n    static_configs: [{{ targets: ['127.0.0.1:{target}'] }}]\n"
        );
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).expect("prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query`: each result's labels and value.
    fn query(&self, promql: &str) -> Vec<(serde_json::Map<String, serde_json::Value>, f64)> {
        let q: String = url::form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let Some((200, _, body)) = get(self.port, &format!("/api/v1/query?query={q}"), None) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        let labels = r["metric"].as_object().cloned().unwrap_or_default();
                        let value = r["value"][1]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(f64::NAN);
                        (labels, value)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn value(&self, promql: &str) -> Option<f64> {
        self.query(promql).first().map(|r| r.1)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_sees_every_job_under_backup_job_with_no_exported_job() {
    if !require(
        support::have("prometheus") && support::have("promtool"),
        "prometheus (apt-get install prometheus)",
    ) {
        return;
    }
    let port = support::free_port();
    // `broken` runs rarely: its series must exist before any run.
    let t = Test::new().manifest(&manifest(
        port,
        &format!("{OK_JOB}{}", broken_job("*/3 * * * * *")),
    ));
    sqlite_db(&t);
    let _sup = Sup::serving(&t, port);
    let rules = format!(
        "{}/examples/prometheus/alerts.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let prom = Prometheus::start(port, Some(&rules));
    assert!(
        wait_until(Duration::from_secs(30), || prom
            .value("up{job=\"dbstash\"}")
            == Some(1.0)),
        "prometheus never scraped dbstash: {}",
        prom.log()
    );
    let ok = "dbstash_backup_last_success_timestamp_seconds{backup_job=\"ok\"}";
    assert!(
        wait_until(Duration::from_secs(20), || prom
            .value(ok)
            .is_some_and(|v| v > 1.7e9)),
        "{ok}: {:?}\n{}",
        prom.query(ok),
        t.log()
    );
    let broken = "dbstash_backup_last_success_timestamp_seconds{backup_job=\"broken\"}";
    assert_eq!(prom.value(broken), Some(0.0), "{:?}", prom.query(broken));
    // the scrape's own `job` and `instance` are intact on every dbstash series
    for (labels, _) in prom.query(ok) {
        assert_eq!(labels["job"], "dbstash", "{labels:?}");
        assert_eq!(
            labels["instance"],
            format!("127.0.0.1:{port}"),
            "{labels:?}"
        );
    }
    let clashes = prom.query("{__name__=~\"dbstash_.+\", exported_job!=\"\"} or {__name__=~\"dbstash_.+\", exported_instance!=\"\"}");
    assert!(clashes.is_empty(), "label clash: {clashes:?}");
    // the broken job fails, and the shipped rule sees it (pending or firing)
    let failed = "dbstash_backup_last_failure_timestamp_seconds{backup_job=\"broken\"}";
    assert!(
        wait_until(Duration::from_secs(20), || prom
            .value(failed)
            .is_some_and(|v| v > 1.7e9)),
        "{:?}",
        prom.query(failed)
    );
    let alert = "ALERTS{alertname=\"DbstashBackupNeverSucceeded\", backup_job=\"broken\"}";
    assert!(
        wait_until(Duration::from_secs(15), || prom.value(alert) == Some(1.0)),
        "{:?}",
        prom.query("ALERTS")
    );
    assert!(
        prom.query("ALERTS{backup_job=\"ok\"}").is_empty(),
        "{:?}",
        prom.query("ALERTS")
    );
}

#[test]
fn the_shipped_alert_rules_check_and_pass_their_unit_tests() {
    if !require(
        support::have("promtool"),
        "promtool (apt-get install prometheus)",
    ) {
        return;
    }
    let (ok, out) = promtool(&["check", "rules", "examples/prometheus/alerts.yaml"], None);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    let (ok, out) = promtool(
        &["test", "rules", "tests/prometheus/alerts_test.yaml"],
        None,
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn a_removed_job_loses_its_series_on_reload() {
    let port = support::free_port();
    let other = "  other: { engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '*/1 * * * * *' }\n";
    let t = Test::new().manifest(&manifest(port, &format!("{OK_JOB}{other}")));
    sqlite_db(&t);
    let _sup = Sup::serving(&t, port);
    let other_ok = "dbstash_backup_runs_total{backup_job=\"other\",status=\"success\"}";
    assert!(
        wait_until(Duration::from_secs(15), || sample(port, other_ok)
            >= Some(1.0)),
        "{}",
        scrape(port)
    );
    rewrite(&t, &manifest(port, OK_JOB));
    assert!(
        wait_until(Duration::from_secs(15), || {
            sample(port, "dbstash_config_reloads_total{result=\"success\"}") == Some(1.0)
        }),
        "{}\n{}",
        scrape(port),
        t.log()
    );
    let text = scrape(port);
    assert!(!text.contains("backup_job=\"other\""), "{text}");
    assert!(
        text.contains("dbstash_backup_last_success_timestamp_seconds{backup_job=\"ok\"}"),
        "{text}"
    );
    // and a run of `other` that was still going does not bring it back
    std::thread::sleep(Duration::from_secs(2));
    assert!(!scrape(port).contains("backup_job=\"other\""));
}

#[test]
fn readyz_is_503_until_a_valid_manifest_is_loaded() {
    let port = support::free_port();
    // invalid: an unknown engine; the health address is still readable
    let t = Test::new().manifest(&manifest(
        port,
        "  ok: { engine: sqlite3, database: '{dir}/app.db', remote: l, schedule: '*/1 * * * * *' }\n",
    ));
    sqlite_db(&t);
    let mut sup = Sup::start(&t);
    assert!(
        support::wait_port(port, Duration::from_secs(10)),
        "`dbstash run` did not stay up with an invalid first manifest: {}",
        t.log()
    );
    assert_eq!(status(port, "/readyz"), Some(503));
    assert_eq!(status(port, "/healthz"), Some(200));
    assert_eq!(
        sample(port, "dbstash_config_last_reload_successful"),
        Some(0.0)
    );
    let log = t.log();
    assert!(
        log.lines()
            .any(|l| l.contains("dbstash.yaml:5:") && l.contains("invalid value `sqlite3`")),
        "no located error: {log}"
    );
    rewrite(&t, &manifest(port, OK_JOB));
    assert!(
        wait_until(Duration::from_secs(15), || status(port, "/readyz")
            == Some(200)),
        "{}",
        t.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || sample(
            port,
            "dbstash_backup_runs_total{backup_job=\"ok\",status=\"success\"}"
        ) >= Some(1.0)),
        "{}",
        scrape(port)
    );
    assert_eq!(sup.stop(), Some(0), "{}", t.log());
}

#[test]
fn sigterm_while_waiting_for_a_first_valid_manifest_exits_2() {
    let port = support::free_port();
    let t = Test::new().manifest(&manifest(
        port,
        "  ok: { engine: sqlite3, database: '{dir}/app.db', remote: l }\n",
    ));
    let mut sup = Sup::serving(&t, port);
    assert_eq!(status(port, "/readyz"), Some(503));
    assert_eq!(sup.stop(), Some(2), "{}", t.log());
}

#[test]
fn a_timeout_is_reported_as_soon_as_the_group_is_dead() {
    if !require(support::have("pg_dump"), "pg_dump") {
        return;
    }
    // A "server" that accepts connections and never answers: pg_dump hangs until killed.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let hung = silent.local_addr().expect("addr").port();
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  hung: {{ engine: postgres, host: 127.0.0.1, port: {hung}, user: postgres, database: x, remote: l, timeout: 3s }}\n"
    ));
    let r = t
        .run(&["backup", "hung"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    let failed: serde_json::Value = r
        .stderr()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "backup_failed")
        .unwrap_or_else(|| panic!("no backup_failed event: {}", r.stderr()));
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 3s"),
        "{failed}"
    );
    let took = failed["duration_seconds"]
        .as_f64()
        .expect("duration_seconds");
    assert!(
        (3.0..4.5).contains(&took),
        "a 3 s timeout was reported after {took} s"
    );
    drop(silent);
}

#[test]
fn a_scheduled_drill_exports_recovery_metrics() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("prom_drill", 321);
    let _drop = support::PgDropGuard(src.clone());
    let scratch = support::unique("prom_drill_scratch");
    let port = support::free_port();
    let t = Test::new().manifest(&manifest(
        port,
        &format!("  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: l, schedule: '0 0 1 1 *', run_on_start: true, verify: {{ schedule: '*/2 * * * * *', restore_to: 'postgresql://postgres@127.0.0.1:5432/{scratch}' }} }}\n"),
    ));
    let _sup = Sup::serving(&t, port);
    let started = Instant::now();
    let success = "dbstash_verify_last_success_timestamp_seconds{backup_job=\"app\"}";
    assert!(
        wait_until(Duration::from_secs(30), || sample(port, success)
            .is_some_and(|v| v > 1.7e9)),
        "{}\n{}",
        scrape(port),
        t.log()
    );
    let took = sample(
        port,
        "dbstash_verify_last_duration_seconds{backup_job=\"app\"}",
    )
    .expect("restore time");
    assert!(
        took > 0.0 && took < started.elapsed().as_secs_f64(),
        "restore time {took}"
    );
    assert!(
        sample(
            port,
            "dbstash_verify_runs_total{backup_job=\"app\",status=\"success\"}"
        ) >= Some(1.0)
    );
    assert!(sample(
        port,
        "dbstash_verify_last_failure_timestamp_seconds{backup_job=\"app\"}"
    )
    .is_some());
    assert!(sample(
        port,
        "dbstash_backup_last_success_timestamp_seconds{backup_job=\"app\"}"
    )
    .is_some_and(|v| v > 1.7e9));
}
