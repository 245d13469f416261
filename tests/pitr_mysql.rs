//! Point-in-time recovery for MariaDB, end to end against a scratch server of our own started
//! with a binlog (`mariadb-install-db --no-defaults` + `mariadbd --log-bin`): the supervisor
//! streams the binlog, `backup` takes a dump that records its binlog position, `restore --at
//! --to` restores the dump into another database and replays the binlog up to the instant.

use crate::support::pitr::*;
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
        Scratch::start_with(true)
    }

    /// `log_bin` false: a server that writes no binary log.
    fn start_with(log_bin: bool) -> Option<Scratch> {
        let dir = PathBuf::from(format!("/tmp/mypitr-{}", unique("db")));
        std::fs::create_dir_all(&dir).ok()?;
        // Twice at most: under a full CI run mariadb-install-db failed about once a run (its
        // bootstrap server's reason is printed), and a scratch server is set-up, not the test.
        let install = || {
            sh(&format!(
                "rm -rf {d}/data && mariadb-install-db --no-defaults --user=root --datadir={d}/data 2>&1",
                d = dir.display()
            ))
        };
        let out = install();
        let out = if out.status.success() {
            out
        } else {
            eprintln!(
                "mariadb-install-db failed ({}), trying once more: {}",
                out.status,
                reason(&String::from_utf8_lossy(&out.stdout))
            );
            install()
        };
        if !out.status.success() {
            eprintln!(
                "mariadb-install-db failed ({}): {}",
                out.status,
                reason(&String::from_utf8_lossy(&out.stdout))
            );
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        let port = free_port();
        let d = dir.display();
        let mut args = vec![
            "--no-defaults".to_string(),
            "--user=root".into(),
            format!("--datadir={d}/data"),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            "--skip-name-resolve".into(),
            format!("--socket={d}/sock"),
            "--server-id=1".into(),
            format!("--pid-file={d}/pid"),
        ];
        if log_bin {
            args.push(format!("--log-bin={d}/data/binlog"));
        }
        let server = Command::new("mariadbd")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).ok()?)
            .spawn()
            .ok()?;
        let s = Scratch { dir, port, server };
        if !wait_port(port, Duration::from_secs(120)) {
            let log = std::fs::read_to_string(s.dir.join("server.log")).unwrap_or_default();
            eprintln!("mariadbd did not listen within 120 s: {}", tail(&log));
            return None;
        }
        // No anonymous users (they shadow ours); a password user for dbstash.
        s.sql(&format!(
            "DROP USER IF EXISTS ''@'localhost'; DROP USER IF EXISTS ''@'{host}';
             CREATE USER dbstash@'%' IDENTIFIED BY '{PW}'; GRANT ALL ON *.* TO dbstash@'%';
             CREATE USER norep@'%' IDENTIFIED BY '{PW}'; GRANT ALL ON app.* TO norep@'%';
             CREATE USER monitor@'%' IDENTIFIED BY '{PW}'; GRANT BINLOG MONITOR ON *.* TO monitor@'%';
             GRANT ALL ON app.* TO monitor@'%';
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
        self.position().0
    }

    /// The binlog file the server writes into now, and its position in it.
    fn position(&self) -> (String, u64) {
        let status = self.sql("SHOW MASTER STATUS");
        let mut cols = status.split('\t');
        let file = cols.next().unwrap_or_default().to_string();
        (file, cols.next().and_then(|p| p.parse().ok()).unwrap_or(0))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last lines of a tool's output, for a failure message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// What mariadb-install-db says went wrong: its first lines and every line naming an error (the
/// advice it prints after them is the same whatever the cause).
fn reason(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = lines.iter().take(5).copied().collect();
    out.extend(
        lines
            .iter()
            .skip(5)
            .filter(|l| l.to_ascii_lowercase().contains("error")),
    );
    out.join("\n")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn prerequisites() -> bool {
    require(have("mariadbd"), "mariadbd (MariaDB server)")
        && require(have("mariadb-install-db"), "mariadb-install-db")
        && require(have("mariadb-binlog"), "mariadb-binlog")
        && require(have("mariadb-dump"), "mariadb-dump")
}

/// Job `app` on database `app` of the scratch server, as `user`, with more job lines `extra`.
fn job<'a>(db: &Scratch, user: &'a str, extra: &'a str) -> Job<'a> {
    Job {
        engine: "mariadb",
        port: db.port,
        user,
        database: "app",
        pitr: String::new(),
        extra,
    }
}

/// The scratch server, or `None` (the test skipped) where MariaDB is missing.
fn scratch() -> Option<Scratch> {
    started(prerequisites(), Scratch::start, "MariaDB")
}

/// Close the binlog file the server writes into now; true once it is archived.
fn flush_and_wait(t: &Test, db: &Scratch) -> (String, bool) {
    let f = db.current_file();
    db.sql("FLUSH BINARY LOGS");
    let archived = wait_archived(t, "binlog", &f);
    (f, archived)
}

/// `restore app --at AT --to-uri-file TO --yes`.
fn restore_at(t: &Test, at: &str, to: &str) -> Run {
    t.run(&["restore", "app", "--at", at, "--to-uri-file", to, "--yes"])
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
    let Some(db) = scratch() else {
        return;
    };
    let (t, health, rx, _rt) = pitr_test(&job(&db, "dbstash", ""), PW);
    db.app("INSERT INTO t VALUES (0)");
    let sup = Supervisor::start(&t);
    assert_stream_up(&t, health);
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

    let at = instant_between(
        || {
            db.app("INSERT INTO t VALUES (1),(2),(3),(4),(5)");
        },
        || {
            db.app("INSERT INTO t VALUES (6),(7),(8),(9)");
        },
    );
    let (f, archived) = flush_and_wait(&t, &db);
    assert!(archived, "binlog {f} not archived:\n{}", t.log());

    // The reader dies mid-stream: rows written meanwhile still reach the archive.
    let pids = pids_with(&format!("--port={}", db.port))
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("--read-from-remote-server"))
        })
        .collect::<Vec<_>>();
    assert!(!pids.is_empty(), "no mariadb-binlog running");
    kill_all(pids);
    db.app("INSERT INTO t VALUES (10),(11),(12)");
    let (f, archived) = flush_and_wait(&t, &db);
    assert!(
        archived,
        "binlog {f} not archived after the reader was killed:\n{}",
        t.log()
    );
    assert_recovered(&t, &rx, health);
    drop(sup);
    let source_rows = "13\t0\t12";
    let count = "SELECT COUNT(*), MIN(i), MAX(i) FROM t";
    assert_eq!(db.app(count), source_rows);

    // An instant before the first dump: refused, nothing written.
    let early = target(&t, &db, "app_early");
    restore_at(&t, "2001-01-01T00:00:00Z", &early)
        .stderr_contains("outside the recoverable window")
        .failure(1);
    assert!(!exists(&db, "app_early"));
    // The source itself is never a target.
    let own = target(&t, &db, "app");
    restore_at(&t, "latest", &own)
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
    let r = restore_at(&t, &at.to_string(), &to)
        .stdout_contains("binlog file(s) (each checked against its record) replayed up to")
        .stderr_contains("restore_succeeded")
        .success();
    assert!(!r.stderr().contains(PW), "{}", r.stderr());
    assert_eq!(db.run(Some("app_at"), count), "6\t0\t5");
    assert_eq!(db.app(count), source_rows);

    // Latest: everything archived, the rows written while the reader was down included.
    let to = target(&t, &db, "app_latest");
    restore_at(&t, "latest", &to)
        .stdout_contains("replayed to the end of the archive")
        .stderr_contains("restore_succeeded")
        .success();
    assert_eq!(db.run(Some("app_latest"), count), source_rows);
    assert_eq!(db.app(count), source_rows);

    // `list`, `plan` and `verify` show the window and the archive; a lost file is a gap.
    let listed = listed_window(&t);
    assert!(listed.contains(" binlog files)"), "{listed}");
    let planned = planned_window(&t, "pitr stream", PW);
    assert!(planned.contains("--read-from-remote-server"), "{planned}");
    assert!(planned.contains("--master-data=2"), "{planned}");
    verified_no_gap(&t);
    let mut files = t.files("remote/app/binlog");
    files.retain(|n| n.ends_with(".zst"));
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let gone = files[0].trim_end_matches(".zst").to_string();
    std::fs::remove_file(t.path(&format!("remote/app/binlog/{}", files[0]))).unwrap();
    assert_listed_missing(&t, "MISSING BINLOG", &gone);
    t.run(&["verify", "app"])
        .stdout_contains(&format!("FAILED  binlog archive: missing {gone}"))
        .ignore_stderr()
        .failure(1);
}

#[test]
fn prune_and_backup_runs_take_only_the_binlog_files_before_the_oldest_kept_dump() {
    let Some(db) = scratch() else {
        return;
    };
    let retention = "    retention: { keep_last: 2 }\n";
    let (t, _health, _rx, _rt) = pitr_test(&job(&db, "dbstash", retention), PW);
    let _sup = Supervisor::start(&t);
    assert_logged_soon(&t, "stream_up");
    let backup = || {
        t.run(&["backup", "app"])
            .stderr_contains("\"event\":\"backup_succeeded\"")
            .success();
    };
    // The first dump starts in `before[0]`; two files are archived after it.
    backup();
    let mut before = Vec::new();
    for i in 0..2 {
        db.app(&format!("INSERT INTO t VALUES ({i})"));
        let (f, archived) = flush_and_wait(&t, &db);
        assert!(archived, "{f} not archived:\n{}", t.log());
        before.push(f);
    }
    // The second dump starts in the current file; with keep_last 2 both dumps and every file stay.
    backup();
    db.app("INSERT INTO t VALUES (2)");
    let (after, archived) = flush_and_wait(&t, &db);
    assert!(archived, "{after} not archived:\n{}", t.log());
    for f in before.iter().chain([&after]) {
        assert!(
            t.path(&format!("remote/app/binlog/{f}.zst")).exists(),
            "{f}"
        );
    }

    // keep_last 1: the first dump goes at the next prune, and with it the files only it needed.
    let text = std::fs::read_to_string(t.path("dbstash.yaml")).unwrap();
    std::fs::write(
        t.path("dbstash.yaml"),
        text.replace("keep_last: 2", "keep_last: 1"),
    )
    .unwrap();
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

    // A backup run whose retention removes a dump removes, in the same run, the files only that
    // dump needed: `after` is before the new dump's file.
    backup();
    assert!(
        !t.path(&format!("remote/app/binlog/{after}.zst")).exists(),
        "the backup run left {after}, which no kept dump needs"
    );
    assert!(!t
        .path(&format!("remote/app/binlog/{after}.zst.dbstash.json"))
        .exists());
    db.app("INSERT INTO t VALUES (3)");
    let (last, archived) = flush_and_wait(&t, &db);
    assert!(archived, "{last} not archived:\n{}", t.log());

    // What is left still restores, with no gap.
    verified_no_gap(&t);
    let to = target(&t, &db, "app_pruned");
    restore_at(&t, "latest", &to)
        .stdout_contains("replayed to the end of the archive")
        .ignore_stderr()
        .success();
    assert_eq!(db.run(Some("app_pruned"), "SELECT COUNT(*) FROM t"), "4");
}

#[test]
fn a_user_without_replication_grants_is_a_clear_error_not_a_hang() {
    let Some(db) = scratch() else {
        return;
    };
    let (t, health, rx, _rt) = pitr_test(&job(&db, "norep", ""), PW);
    let _sup = Supervisor::start(&t);
    assert_logged_soon(&t, "stream_down");
    let log = t.log();
    assert!(
        log.contains("REPLICATION SLAVE, REPLICATION CLIENT"),
        "{log}"
    );
    assert!(log.contains("Access denied"), "{log}");
    assert!(!log.contains("stream_up"), "{log}");
    assert!(!log.contains(PW), "password in the log:\n{log}");
    assert_down_told_once(&t, &rx, health, "REPLICATION", PW);
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

/// Two pitr jobs on one server (two databases, each its own job) read the binlog side by side:
/// each reader connects with a server id of its own job. Readers sharing one id make the server
/// drop the older connection whenever the other one connects, and the two streams take turns
/// going down.
#[test]
fn two_pitr_jobs_on_one_server_stream_side_by_side() {
    let Some(db) = scratch() else {
        return;
    };
    let other = format!(
        "  other:\n    engine: mariadb\n    host: 127.0.0.1\n    port: {}\n    user: dbstash\n    \
         password_file: \"{{dir}}/pw\"\n    database: app\n    remote: local\n    compress: zstd\n    \
         pitr: {{ enabled: true }}\n",
        db.port
    );
    let (t, _health, _rx, _rt) = pitr_test(&job(&db, "dbstash", &other), PW);
    let _sup = Supervisor::start(&t);
    assert!(
        wait_until(Duration::from_secs(30), || t
            .log()
            .matches("stream_up")
            .count()
            >= 2),
        "both streams up:\n{}",
        t.log()
    );
    // Long enough for a reader that the server drops to be noticed and restarted.
    std::thread::sleep(Duration::from_secs(4));
    db.app("INSERT INTO t VALUES (1)");
    let (f, archived) = flush_and_wait(&t, &db);
    assert!(archived, "{f} not archived for app:\n{}", t.log());
    let theirs = t.path(&format!("remote/other/binlog/{f}.zst.dbstash.json"));
    assert!(
        wait_until(Duration::from_secs(30), || theirs.exists()),
        "{f} not archived for other:\n{}",
        t.log()
    );
    assert!(
        !t.log().contains("stream_down"),
        "a stream went down:\n{}",
        t.log()
    );
}

/// `validate --online` of a binlog job says where the server's binlog stands, for `engine:
/// mariadb` and for `engine: mysql` (whose `SHOW BINARY LOG STATUS`, MySQL 8.2+'s name, this
/// MariaDB refuses as a syntax error: asked again as `SHOW MASTER STATUS`). Then the lag in bytes
/// is what the server wrote past the archive: the whole current file while nothing is archived
/// (the stream started in it), and once a file is archived, the next one's position.
#[test]
fn validate_online_and_the_lag_in_bytes_of_a_binlog_stream() {
    let Some(db) = scratch() else {
        return;
    };
    let (t, health, _rx, _rt) = pitr_test(&job(&db, "dbstash", ""), PW);
    let (file, pos) = db.position();
    let ok = format!("job app: binlog ok (file {file}, position {pos})");
    let v = t
        .run(&["validate", "--online"])
        .stdout_contains(&ok)
        .ignore_stderr()
        .success();
    assert!(!v.stdout().contains(PW), "{}", v.stdout());
    let mysql = Job {
        engine: "mysql",
        ..job(&db, "dbstash", "")
    };
    let (m, _, _mrx, _mrt) = pitr_test(&mysql, PW);
    m.run(&["validate", "--online"])
        .stdout_contains(&ok)
        .ignore_stderr()
        .success();
    // The option file of the check is gone; nothing else was left in temp_dir.
    let left: Vec<String> = std::fs::read_dir(t.path("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    let _sup = Supervisor::start(&t);
    assert_stream_up(&t, health);
    let lag = "dbstash_pitr_lag_bytes";
    let settles_at = |want: u64| {
        wait_until(Duration::from_secs(40), || {
            app_metric(health, lag) == want as f64
        })
    };
    db.app("INSERT INTO t SELECT seq FROM seq_1_to_2000");
    let (f1, in_first) = db.position();
    assert_eq!(f1, file);
    assert!(
        settles_at(in_first),
        "lag {} while nothing is archived, not {in_first} (all of {f1}):\n{}",
        app_metric(health, lag),
        t.log()
    );
    let (f, archived) = flush_and_wait(&t, &db);
    assert!(archived, "binlog {f} not archived:\n{}", t.log());
    db.app("INSERT INTO t SELECT seq FROM seq_2001_to_3000");
    let (f2, in_second) = db.position();
    assert_ne!(f2, f1);
    assert!(
        in_second < in_first,
        "{in_second} (of {f2}) vs {in_first} (of {f1})"
    );
    assert!(
        settles_at(in_second),
        "lag {} after {f1} was archived, not {in_second} (the position in {f2}):\n{}",
        app_metric(health, lag),
        t.log()
    );
}

/// `validate --online` names the one thing a binlog stream lacks, in one line: the server's binlog
/// (`log_bin` OFF), the grant to ask where it stands (`BINLOG MONITOR`/`REPLICATION CLIENT`), the
/// grant to read it (`REPLICATION SLAVE`).
#[test]
fn validate_online_names_what_a_binlog_stream_lacks() {
    let Some(db) = scratch() else {
        return;
    };
    for (user, says) in [
        ("norep", "REPLICATION CLIENT; MariaDB 10.5+: BINLOG MONITOR"),
        ("monitor", "the stream needs REPLICATION SLAVE"),
    ] {
        let (t, _, _rx, _rt) = pitr_test(&job(&db, user, ""), PW);
        let v = t
            .run(&["validate", "--online"])
            .stdout_contains("valid (1 job)")
            .stderr_contains("dbstash: job app: the binlog stream cannot work: ")
            .failure(1);
        let err = v.stderr();
        assert!(err.contains(says), "{user}: {err}");
        assert!(err.contains("Access denied"), "{user}: {err}");
        assert_eq!(err.matches("dbstash: job app:").count(), 1, "{user}: {err}");
        assert!(
            !err.contains("-----"),
            "{user}: the client's framing: {err}"
        );
        assert!(!err.contains(PW), "{err}");
        assert!(!v.stdout().contains("binlog ok"), "{}", v.stdout());
    }
    drop(db);
    let Some(nolog) = started(prerequisites(), || Scratch::start_with(false), "MariaDB") else {
        return;
    };
    let (t, _, _rx, _rt) = pitr_test(&job(&nolog, "dbstash", ""), PW);
    let v = t
        .run(&["validate", "--online"])
        .stdout_contains("valid (1 job)")
        .stderr_contains("dbstash: job app: the binlog stream cannot work: the server writes no binary log (log_bin is OFF)")
        .failure(1);
    assert_eq!(
        v.stderr().matches("dbstash: job app:").count(),
        1,
        "{}",
        v.stderr()
    );
}

/// A `pitr` job of `engine: mysql` dumps with `--source-data=2` when its `mysqldump` is MySQL's
/// own 8.0.26 or later (`--master-data` is deprecated there), and `--master-data=2` before; the
/// position each writes is recorded. No MySQL can be installed here: the `mysqldump` is a fake that
/// says its version, keeps its argv and writes the head MySQL 8 writes.
#[test]
fn a_mysql_8_0_26_dump_client_gets_source_data_an_older_one_master_data() {
    for (version, flag, head) in [
        (
            "8.0.36",
            "--source-data=2",
            "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000007', SOURCE_LOG_POS=157;",
        ),
        (
            "8.0.20",
            "--master-data=2",
            "-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000007', MASTER_LOG_POS=157;",
        ),
    ] {
        let dump = format!(
            r#"#!/bin/sh
if [ "$1" = "--version" ]; then echo "mysqldump  Ver {version} for Linux on x86_64 (MySQL Community Server - GPL)"; exit 0; fi
echo "$@" > {{dir}}/argv
cat <<'SQL'
-- MySQL dump 10.13
--
-- Position to start replication or point-in-time recovery from
--

{head}

CREATE TABLE t (i int);
INSERT INTO t VALUES (1);
SQL
"#
        );
        let mysql = Job {
            engine: "mysql",
            port: free_port(),
            user: "u",
            database: "app",
            pitr: String::new(),
            extra: "",
        };
        let (t, _, _rx, _rt) = pitr_test(&mysql, PW);
        let t = t
            .write_executable("mysqldump", &dump)
            .write_executable("mysql", "#!/bin/sh\nexit 1\n");
        t.run(&["backup", "app"])
            .stderr_contains("\"event\":\"backup_succeeded\"")
            .success();
        let argv = std::fs::read_to_string(t.path("argv")).unwrap();
        let words: Vec<&str> = argv.split_whitespace().collect();
        assert!(words.contains(&flag), "{version}: {argv}");
        assert_eq!(
            words.iter().filter(|w| w.contains("-data")).count(),
            1,
            "{version}: {argv}"
        );
        let recs = t.records("remote/app");
        assert_eq!(recs.len(), 1, "{recs:?}");
        let rec: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(t.path(&format!("remote/app/{}", recs[0]))).unwrap(),
        )
        .unwrap();
        assert_eq!(rec["binlog"]["file"], "binlog.000007", "{version}: {rec}");
        assert_eq!(rec["binlog"]["position"], 157, "{version}: {rec}");
    }
}
