//! Shared pieces of the point-in-time-recovery suites (`pitr_pg`, `pitr_mysql`): the supervisor
//! guard, the webhook receiver, waiting for archived files, the metrics, and the checks of the
//! stream's failure and recovery and of the window `list`/`plan` show.

use super::notify::Receiver;
use super::{http_get, metric, strict, Test};
use std::process::Child;
use std::time::Duration;

/// A running `dbstash run`, stopped with SIGTERM (and waited for) on drop.
pub struct Supervisor(pub Child);

impl Supervisor {
    /// Start `dbstash run` for `t`, logging to the test's `dbstash.log`.
    pub fn start(t: &Test) -> Supervisor {
        Supervisor(t.spawn_logged(&["run"]))
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// A webhook receiver on its own runtime (keep the runtime alive as long as the receiver).
pub fn webhook() -> (tokio::runtime::Runtime, Receiver) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let rx = rt.block_on(Receiver::start());
    (rt, rx)
}

/// The `event` of every webhook delivery so far.
pub fn events(rx: &Receiver) -> Vec<String> {
    rx.requests()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Wait (60 s at most) for the record of `name`, archived under `remote/app/<kind>/`.
pub fn wait_archived(t: &Test, kind: &str, name: &str) -> bool {
    let rec = t.path(&format!("remote/app/{kind}/{name}.zst.dbstash.json"));
    super::wait_until(Duration::from_secs(60), || rec.exists())
}

/// Job `app`'s value of the PITR metric `name` (e.g. `dbstash_pitr_stream_up`).
pub fn app_metric(health: u16, name: &str) -> f64 {
    metric(health, &format!(r#"{name}{{backup_job="app"}}"#))
}

/// Wait (30 s at most) until the supervisor has logged `what` (`stream_up`, `stream_down`).
#[track_caller]
pub fn assert_logged_soon(t: &Test, what: &str) {
    assert!(
        super::wait_until(Duration::from_secs(30), || t.log().contains(what)),
        "no {what} logged:\n{}",
        t.log()
    );
}

/// The stream came up: logged, and its metric is 1.
#[track_caller]
pub fn assert_stream_up(t: &Test, health: u16) {
    assert_logged_soon(t, "stream_up");
    assert!(
        super::wait_until(Duration::from_secs(10), || app_metric(
            health,
            "dbstash_pitr_stream_up"
        ) == 1.0),
        "stream_up metric is not 1"
    );
}

/// SIGKILL every process of `pids`.
pub fn kill_all(pids: Vec<i32>) {
    for p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// After the stream's reader was killed: it went down, the webhook was told of the failure and of
/// the recovery, and the last-archived time is set.
#[track_caller]
pub fn assert_recovered(t: &Test, rx: &Receiver, health: u16) {
    assert!(t.log().contains("stream_down"), "{}", t.log());
    assert!(
        super::wait_until(Duration::from_secs(10), || events(rx)
            == ["stream_failure", "stream_recovered"]),
        "{:?}",
        events(rx)
    );
    let archived = app_metric(health, "dbstash_pitr_last_archived_timestamp_seconds");
    assert!(archived > 1.0e9, "no last-archived time");
}

/// A stream that cannot start: it is retried (3 `stream_down` at least) but the webhook is told
/// once, with `says` and without `password`; after `max_lag`, /healthz names the job.
#[track_caller]
pub fn assert_down_told_once(t: &Test, rx: &Receiver, health: u16, says: &str, password: &str) {
    assert!(
        super::wait_until(Duration::from_secs(20), || t
            .log()
            .matches("\"stream_down\"")
            .count()
            >= 3),
        "{}",
        t.log()
    );
    assert_eq!(events(rx), ["stream_failure"]);
    let body = rx.requests()[0].text();
    assert!(body.contains(says), "{body}");
    assert!(!body.contains(password), "{body}");
    assert!(
        super::wait_until(Duration::from_secs(20), || http_get(health, "/healthz")
            .is_some_and(|(_, b)| b.contains(r#""stale_jobs":["app"]"#))),
        "{:?}",
        http_get(health, "/healthz")
    );
}

/// Write with `before`, take the instant a second later, write with `after` a second later.
pub fn instant_between(before: impl FnOnce(), after: impl FnOnce()) -> jiff::Timestamp {
    before();
    std::thread::sleep(Duration::from_millis(1100));
    let at = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(1100));
    after();
    at
}

/// `list --job app` shows a recoverable window; its stdout.
#[track_caller]
pub fn listed_window(t: &Test) -> String {
    let listed = stdout_saying(t, &["list", "--job", "app"], "recoverable ");
    assert!(listed.contains("recoverable "), "{listed}");
    listed
}

/// `plan --job app` prints `says` and a `pitr window` line with a range; its stdout, which
/// never holds `password`.
#[track_caller]
pub fn planned_window(t: &Test, says: &str, password: &str) -> String {
    let planned = stdout_saying(t, &["plan", "--job", "app"], says);
    assert!(!planned.contains(password), "{planned}");
    assert!(
        planned
            .lines()
            .any(|l| l.starts_with("  pitr window") && l.contains(" … ")),
        "{planned}"
    );
    planned
}

/// `list --job app` reports `missing` (e.g. `MISSING WAL 0000…`).
#[track_caller]
pub fn assert_listed_missing(t: &Test, kind: &str, missing: &str) {
    let listed = stdout_saying(t, &["list", "--job", "app"], kind);
    assert!(listed.contains(&format!("{kind} {missing}")), "{listed}");
}

/// `verify app` passes and finds no gap; its stdout.
pub fn verified_no_gap(t: &Test) -> String {
    stdout_saying(t, &["verify", "app"], "no gap")
}

/// The stdout of a dbstash command that succeeds and prints `says` (its stderr carries the
/// manifest's no-schedule warning and JSON log lines).
fn stdout_saying(t: &Test, args: &[&str], says: &str) -> String {
    t.run(args)
        .stdout_contains(says)
        .ignore_stderr()
        .success()
        .stdout()
}

/// The server started by `start` once `prerequisites` holds; `None` (the test skipped) where a
/// prerequisite is missing, and a failure under strict mode where `what` could not start.
pub fn started<T>(prerequisites: bool, start: impl FnOnce() -> Option<T>, what: &str) -> Option<T> {
    if !prerequisites {
        return None;
    }
    let server = start();
    assert!(
        server.is_some() || !strict(),
        "could not start a scratch {what}"
    );
    server
}

/// What the manifest of a PITR job `app` varies in between engines and tests.
pub struct Job<'a> {
    pub engine: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub database: &'a str,
    /// More `pitr:` options, each followed by `, ` (e.g. `slot: s, `).
    pub pitr: String,
    /// More lines of the job (e.g. `    retention: { keep_last: 1 }\n`).
    pub extra: &'a str,
}

/// A manifest with job `app` streaming to a local remote, telling the webhook `hook` of stream
/// failures and recoveries, and the health endpoint on `health`.
pub fn manifest(job: &Job, health: u16, hook: &str) -> String {
    format!(
        r#"version: 1
settings: {{ temp_dir: "{{dir}}/tmp", health: {{ listen: "127.0.0.1:{health}" }} }}
remotes:
  local: {{ path: "{{dir}}/remote" }}
notifiers:
  hook: {{ type: webhook, url: "{hook}", on: [stream_failure, stream_recovered] }}
jobs:
  app:
    engine: {engine}
    host: 127.0.0.1
    port: {port}
    user: {user}
    password_file: "{{dir}}/pw"
    database: {database}
    remote: local
    notify: [hook]
    compress: zstd
    pitr: {{ enabled: true, {pitr}max_lag: 2s }}
{extra}"#,
        engine = job.engine,
        port = job.port,
        user = job.user,
        database = job.database,
        pitr = job.pitr,
        extra = job.extra,
    )
}

/// A test folder with the manifest of `job` and its password file, the health port it listens
/// on, and the webhook receiver (with the runtime it runs on: keep it alive).
pub fn pitr_test(job: &Job, password: &str) -> (Test, u16, Receiver, tokio::runtime::Runtime) {
    let health = super::free_port();
    let (rt, rx) = webhook();
    let t = Test::new()
        .manifest(&manifest(job, health, &rx.url("/h")))
        .write("pw", password);
    (t, health, rx, rt)
}
