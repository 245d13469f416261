//! Point-in-time recovery for MariaDB, end to end against a scratch server of our own started
//! with a binlog (`mariadb-install-db --no-defaults` + `mariadbd --log-bin`): the supervisor
//! streams the binlog, `backup` takes a dump that records its binlog position, `restore --at
//! --to` restores the dump into another database and replays the binlog up to the instant.

use crate::support::notify as notify_support;
use crate::support::*;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

const PW: &str = "pitr-My-Secret-1";

/// A MariaDB server with a binlog on a free port, in a folder of its own; stopped on drop.
struct Scratch {
    dir: PathBuf,
    port: u16,
    server: Child,
}

impl Scratch {
    fn start() -> Option<Scratch> {
        let dir = PathBuf::from(format!("/tmp/mypitr-{}", unique("db")));
        std::fs::create_dir_all(&dir).ok()?;
        let out = sh(&format!(
            "mariadb-install-db --no-defaults --user=root --datadir={}/data >/dev/null 2>&1",
            dir.display()
        ));
        if !out.status.success() {
            return None;
        }
        let port = free_port();
        let d = dir.display();
        let server = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                &format!("--datadir={d}/data"),
                &format!("--port={port}"),
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                &format!("--socket={d}/sock"),
                &format!("--log-bin={d}/data/binlog"),
                "--server-id=1",
                &format!("--pid-file={d}/pid"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).ok()?)
            .spawn()
            .ok()?;
        let s = Scratch { dir, port, server };
        if !wait_port(port, Duration::from_secs(60)) {
            return None;
        }
        // No anonymous users (they shadow ours); a password user for dbstash.
        s.sql(&format!(
            "DROP USER IF EXISTS ''@'localhost'; DROP USER IF EXISTS ''@'{host}';
             CREATE USER dbstash@'%' IDENTIFIED BY '{PW}'; GRANT ALL ON *.* TO dbstash@'%';
             CREATE USER norep@'%' IDENTIFIED BY '{PW}'; GRANT ALL ON app.* TO norep@'%';
             CREATE DATABASE app; CREATE TABLE app.t (i INT PRIMARY KEY);",
            host = hostname()
        ));
        Some(s)
    }

    /// SQL as root over the socket, in database `app` when `in_app` (so that statement-based
    /// binlog events carry the database, as an application's do).
    fn run(&self, db: Option<&str>, sql: &str) -> String {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "-uroot", "--batch", "--skip-column-names"])
            .arg(format!("--socket={}/sock", self.dir.display()));
        if let Some(db) = db {
            c.arg(format!("--database={db}"));
        }
        let out = c.arg("-e").arg(sql).output().expect("mariadb");
        assert!(
            out.status.success(),
            "mariadb: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn sql(&self, sql: &str) -> String {
        self.run(None, sql)
    }

    fn app(&self, sql: &str) -> String {
        self.run(Some("app"), sql)
    }

    /// The binlog file the server writes into now (closed by the next `FLUSH BINARY LOGS`).
    fn current_file(&self) -> String {
        self.sql("SHOW MASTER STATUS")
            .split('\t')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

struct Supervisor(Child);

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

fn prerequisites() -> bool {
    require(have("mariadbd"), "mariadbd (MariaDB server)")
        && require(have("mariadb-install-db"), "mariadb-install-db")
        && require(have("mariadb-binlog"), "mariadb-binlog")
        && require(have("mariadb-dump"), "mariadb-dump")
}

fn manifest(db: &Scratch, user: &str, health: u16, hook: &str) -> String {
    manifest_with(db, user, health, hook, "")
}

fn manifest_with(db: &Scratch, user: &str, health: u16, hook: &str, extra: &str) -> String {
    format!(
        r#"version: 1
settings: {{ temp_dir: "{{dir}}/tmp", health: {{ listen: "127.0.0.1:{health}" }} }}
remotes:
  local: {{ path: "{{dir}}/remote" }}
notifiers:
  hook: {{ type: webhook, url: "{hook}", on: [stream_failure, stream_recovered] }}
jobs:
  app:
    engine: mariadb
    host: 127.0.0.1
    port: {port}
    user: {user}
    password_file: "{{dir}}/pw"
    database: app
    remote: local
    notify: [hook]
    compress: zstd
    pitr: {{ enabled: true, max_lag: 2s }}
{extra}"#,
        port = db.port
    )
}

fn events(rx: &notify_support::Receiver) -> Vec<String> {
    rx.requests()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn webhook() -> (tokio::runtime::Runtime, notify_support::Receiver) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let rx = rt.block_on(notify_support::Receiver::start());
    (rt, rx)
}

fn wait_archived(t: &Test, file: &str) -> bool {
    let rec = t.path(&format!("remote/app/binlog/{file}.zst.dbstash.json"));
    wait_until(Duration::from_secs(60), || rec.exists())
}

/// `--to-uri-file` for database `db` of the scratch server (the password stays out of argv).
fn target(t: &Test, db: &Scratch, name: &str) -> String {
    let file = format!("to-{name}");
    std::fs::write(
        t.path(&file),
        format!("mysql://dbstash:{PW}@127.0.0.1:{}/{name}", db.port),
    )
    .unwrap();
    t.path(&file).display().to_string()
}

fn exists(db: &Scratch, name: &str) -> bool {
    !db.sql(&format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"
    ))
    .is_empty()
}

#[test]
fn restore_at_an_instant_has_exactly_the_rows_before_it_and_latest_has_all() {
    if !prerequisites() {
        return;
    }
    let Some(db) = Scratch::start() else {
        assert!(!strict(), "could not start a scratch MariaDB");
        return;
    };
    let health = free_port();
    let (_rt, rx) = webhook();
    let t = Test::new()
        .manifest(&manifest(&db, "dbstash", health, &rx.url("/h")))
        .write("pw", PW);
    db.app("INSERT INTO t VALUES (0)");
    let sup = Supervisor(t.spawn_logged(&["run"]));
    assert!(
        wait_until(Duration::from_secs(30), || t.log().contains("stream_up")),
        "the stream did not start:\n{}",
        t.log()
    );
    let up = r#"dbstash_pitr_stream_up{backup_job="app"}"#;
    assert!(
        wait_until(Duration::from_secs(10), || metric(health, up) == 1.0),
        "stream_up metric is not 1"
    );
    t.run(&["backup", "app"])
        .stderr_contains("\"event\":\"backup_succeeded\"")
        .success();
    for line in processes_with("--read-from-remote-server") {
        assert!(!line.contains(PW), "password in argv: {line}");
    }
    // The dump's record holds the binlog position of its snapshot.
    let mut recs = t.records("remote/app");
    recs.retain(|r| !r.starts_with("binlog/"));
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path(&format!("remote/app/{}", recs[0]))).unwrap(),
    )
    .unwrap();
    let file = rec["binlog"]["file"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(file.starts_with("binlog."), "{rec}");
    assert!(rec["binlog"]["position"].as_u64().unwrap_or(0) > 4, "{rec}");
    assert!(
        rec["binlog"]["gtid"]
            .as_str()
            .is_some_and(|g| g.starts_with("0-1-")),
        "{rec}"
    );

    db.app("INSERT INTO t VALUES (1),(2),(3),(4),(5)");
    std::thread::sleep(Duration::from_millis(1100));
    let at = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(1100));
    db.app("INSERT INTO t VALUES (6),(7),(8),(9)");
    let f = db.current_file();
    db.sql("FLUSH BINARY LOGS");
    assert!(
        wait_archived(&t, &f),
        "binlog {f} not archived:\n{}",
        t.log()
    );

    // The reader dies mid-stream: rows written meanwhile still reach the archive.
    let pids = pids_with(&format!("--port={}", db.port))
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("--read-from-remote-server"))
        })
        .collect::<Vec<_>>();
    assert!(!pids.is_empty(), "no mariadb-binlog running");
    for p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    db.app("INSERT INTO t VALUES (10),(11),(12)");
    let f = db.current_file();
    db.sql("FLUSH BINARY LOGS");
    assert!(
        wait_archived(&t, &f),
        "binlog {f} not archived after the reader was killed:\n{}",
        t.log()
    );
    assert!(t.log().contains("stream_down"), "{}", t.log());
    assert!(
        wait_until(Duration::from_secs(10), || events(&rx)
            == ["stream_failure", "stream_recovered"]),
        "{:?}",
        events(&rx)
    );
    let archived = r#"dbstash_pitr_last_archived_timestamp_seconds{backup_job="app"}"#;
    assert!(metric(health, archived) > 1.0e9, "no last-archived time");
    drop(sup);
    let source_rows = "13\t0\t12";
    let count = "SELECT COUNT(*), MIN(i), MAX(i) FROM t";
    assert_eq!(db.app(count), source_rows);

    // An instant before the first dump: refused, nothing written.
    let early = target(&t, &db, "app_early");
    t.run(&[
        "restore",
        "app",
        "--at",
        "2001-01-01T00:00:00Z",
        "--to-uri-file",
        &early,
        "--yes",
    ])
    .stderr_contains("outside the recoverable window")
    .failure(1);
    assert!(!exists(&db, "app_early"));
    // The source itself is never a target.
    let own = target(&t, &db, "app");
    t.run(&[
        "restore",
        "app",
        "--at",
        "latest",
        "--to-uri-file",
        &own,
        "--yes",
    ])
    .stderr_contains("never touches the source")
    .failure(1);

    // `--at` needs a target database; a data directory is PostgreSQL's.
    t.run(&["restore", "app", "--at", "latest", "--yes"])
        .stderr_contains("needs --to URI")
        .failure(2);
    // Without `--at`, the dump is an ordinary dump: restored as it was taken (row 0 only).
    let plain = target(&t, &db, "app_plain");
    t.run(&["restore", "app", "--to-uri-file", &plain, "--yes"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    assert_eq!(db.run(Some("app_plain"), count), "1\t0\t0");

    // To the instant: exactly rows 0..5; the source unchanged.
    let to = target(&t, &db, "app_at");
    let r = t
        .run(&[
            "restore",
            "app",
            "--at",
            &at.to_string(),
            "--to-uri-file",
            &to,
            "--yes",
        ])
        .stdout_contains("binlog file(s) (each checked against its record) replayed up to")
        .stderr_contains("restore_succeeded")
        .success();
    assert!(!r.stderr().contains(PW), "{}", r.stderr());
    assert_eq!(db.run(Some("app_at"), count), "6\t0\t5");
    assert_eq!(db.app(count), source_rows);

    // Latest: everything archived, the rows written while the reader was down included.
    let to = target(&t, &db, "app_latest");
    t.run(&[
        "restore",
        "app",
        "--at",
        "latest",
        "--to-uri-file",
        &to,
        "--yes",
    ])
    .stdout_contains("replayed to the end of the archive")
    .stderr_contains("restore_succeeded")
    .success();
    assert_eq!(db.run(Some("app_latest"), count), source_rows);
    assert_eq!(db.app(count), source_rows);

    // `list`, `plan` and `verify` show the window and the archive; a lost file is a gap.
    let listed = t
        .run(&["list", "--job", "app"])
        .stdout_contains("recoverable ")
        .ignore_stderr()
        .success()
        .stdout();
    assert!(listed.contains("recoverable "), "{listed}");
    assert!(listed.contains(" binlog files)"), "{listed}");
    let planned = t
        .run(&["plan", "--job", "app"])
        .stdout_contains("pitr stream")
        .ignore_stderr()
        .success()
        .stdout();
    assert!(planned.contains("--read-from-remote-server"), "{planned}");
    assert!(planned.contains("--master-data=2"), "{planned}");
    assert!(!planned.contains(PW), "{planned}");
    assert!(
        planned
            .lines()
            .any(|l| l.starts_with("  pitr window") && l.contains(" … ")),
        "{planned}"
    );
    t.run(&["verify", "app"])
        .stdout_contains("no gap")
        .ignore_stderr()
        .success();
    let mut files = t.files("remote/app/binlog");
    files.retain(|n| n.ends_with(".zst"));
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let gone = files[0].trim_end_matches(".zst").to_string();
    std::fs::remove_file(t.path(&format!("remote/app/binlog/{}", files[0]))).unwrap();
    let listed = t
        .run(&["list", "--job", "app"])
        .stdout_contains("MISSING BINLOG")
        .ignore_stderr()
        .success()
        .stdout();
    assert!(
        listed.contains(&format!("MISSING BINLOG {gone}")),
        "{listed}"
    );
    t.run(&["verify", "app"])
        .stdout_contains(&format!("FAILED  binlog archive: missing {gone}"))
        .ignore_stderr()
        .failure(1);
}

#[test]
fn prune_takes_only_the_binlog_files_before_the_oldest_kept_dump() {
    if !prerequisites() {
        return;
    }
    let Some(db) = Scratch::start() else {
        assert!(!strict(), "could not start a scratch MariaDB");
        return;
    };
    let health = free_port();
    let (_rt, rx) = webhook();
    let t = Test::new()
        .manifest(&manifest_with(
            &db,
            "dbstash",
            health,
            &rx.url("/h"),
            "    retention: { keep_last: 1 }\n",
        ))
        .write("pw", PW);
    let _sup = Supervisor(t.spawn_logged(&["run"]));
    assert!(
        wait_until(Duration::from_secs(30), || t.log().contains("stream_up")),
        "{}",
        t.log()
    );
    let mut before = Vec::new();
    for i in 0..2 {
        db.app(&format!("INSERT INTO t VALUES ({i})"));
        let f = db.current_file();
        db.sql("FLUSH BINARY LOGS");
        assert!(wait_archived(&t, &f), "{f} not archived:\n{}", t.log());
        before.push(f);
    }
    // The only kept dump starts in the current file: every archived file is before it.
    t.run(&["backup", "app"])
        .stderr_contains("\"event\":\"backup_succeeded\"")
        .success();
    db.app("INSERT INTO t VALUES (2)");
    let after = db.current_file();
    db.sql("FLUSH BINARY LOGS");
    assert!(
        wait_archived(&t, &after),
        "{after} not archived:\n{}",
        t.log()
    );
    let r = t
        .run(&["prune", "--dry-run", "--job", "app"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    let out = r.stdout();
    for f in &before {
        assert!(
            out.contains(&format!(
                "would delete  app/binlog/{f}.zst  (binlog before the oldest kept dump's position)"
            )),
            "{out}"
        );
    }
    assert!(!out.contains(&after), "{out}");
    assert!(t
        .path(&format!("remote/app/binlog/{}.zst", before[0]))
        .exists());
    t.run(&["prune", "--job", "app"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    for f in &before {
        assert!(!t.path(&format!("remote/app/binlog/{f}.zst")).exists());
        assert!(!t
            .path(&format!("remote/app/binlog/{f}.zst.dbstash.json"))
            .exists());
    }
    assert!(t.path(&format!("remote/app/binlog/{after}.zst")).exists());
    // What is left still restores, with no gap.
    t.run(&["verify", "app"])
        .stdout_contains("no gap")
        .ignore_stderr()
        .success();
    let to = target(&t, &db, "app_pruned");
    t.run(&[
        "restore",
        "app",
        "--at",
        "latest",
        "--to-uri-file",
        &to,
        "--yes",
    ])
    .stdout_contains("replayed to the end of the archive")
    .ignore_stderr()
    .success();
    assert_eq!(db.run(Some("app_pruned"), "SELECT COUNT(*) FROM t"), "3");
}

#[test]
fn a_user_without_replication_grants_is_a_clear_error_not_a_hang() {
    if !prerequisites() {
        return;
    }
    let Some(db) = Scratch::start() else {
        assert!(!strict(), "could not start a scratch MariaDB");
        return;
    };
    let health = free_port();
    let (_rt, rx) = webhook();
    let t = Test::new()
        .manifest(&manifest(&db, "norep", health, &rx.url("/h")))
        .write("pw", PW);
    let _sup = Supervisor(t.spawn_logged(&["run"]));
    assert!(
        wait_until(Duration::from_secs(30), || t.log().contains("stream_down")),
        "no stream_down reported:\n{}",
        t.log()
    );
    let log = t.log();
    assert!(
        log.contains("REPLICATION SLAVE, REPLICATION CLIENT"),
        "{log}"
    );
    assert!(log.contains("Access denied"), "{log}");
    assert!(!log.contains("stream_up"), "{log}");
    assert!(!log.contains(PW), "password in the log:\n{log}");
    assert!(
        wait_until(Duration::from_secs(20), || t
            .log()
            .matches("\"stream_down\"")
            .count()
            >= 3),
        "{}",
        t.log()
    );
    assert_eq!(events(&rx), ["stream_failure"]);
    let body = rx.requests()[0].text();
    assert!(body.contains("REPLICATION"), "{body}");
    assert!(!body.contains(PW), "{body}");
    assert!(
        wait_until(Duration::from_secs(20), || http_get(health, "/healthz")
            .is_some_and(|(_, b)| b.contains(r#""stale_jobs":["app"]"#))),
        "{:?}",
        http_get(health, "/healthz")
    );
}

#[test]
fn validate_takes_a_mariadb_pitr_job_and_refuses_what_cannot_work() {
    let job = |extra: &str| {
        format!(
            "version: 1\nremotes:\n  nas: {{ path: /tmp/dbstash-test-backups }}\njobs:\n  app:\n    engine: mariadb\n    host: db\n    user: u\n    remote: nas\n    schedule: \"0 3 * * *\"\n    pitr: {{ enabled: true }}\n{extra}"
        )
    };
    let ok = Test::new().manifest(&job("    database: app\n"));
    ok.run(&["validate"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    // Kubernetes: the CronJob takes the dumps; the stream needs `dbstash run`, and says so.
    let r = ok
        .run(&["render", "kubernetes"])
        .ignore_stdout()
        .stderr_contains("its binlog stream must run all the time")
        .success();
    assert!(r.stdout().contains("kind: CronJob"), "{}", r.stdout());
    for (extra, says) in [
        (
            "    database: \"*\"\n",
            "replays the binlog into one database",
        ),
        ("    database: app\n    mode: tar\n", "drop `mode`"),
    ] {
        let r = Test::new()
            .manifest(&job(extra))
            .run(&["validate"])
            .ignore_stdout()
            .stderr_contains(says)
            .failure(2);
        assert!(r.stderr().contains(says), "{}", r.stderr());
    }
    let r = Test::new()
        .manifest(&job("    database: app\n").replace(
            "pitr: { enabled: true }",
            "pitr: { enabled: true, slot: dbstash_app }",
        ))
        .run(&["validate"])
        .ignore_stdout()
        .stderr_contains("`slot` is PostgreSQL's")
        .failure(2);
    assert!(r.stderr().contains("slot"), "{}", r.stderr());
}
