//! SQLite restore fidelity with the real `dbstash` binary, the bundled SQLite (rusqlite) and the
//! `sqlite3` CLI: a snapshot under a steady writer finishes and is consistent; a snapshot stuck
//! behind another connection's lock obeys the job's timeout and SIGTERM; a restore leaves nothing
//! but the restored file; `format: sql` carries `user_version` and `application_id`.

use crate::support;

use crate::support::Test;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn manifest(settings: &str, jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp'{settings} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

/// Commits small transactions in a loop, as fast as it can, on its own WAL-mode connection.
/// Every transaction adds one row to `items` and bumps `counter.n`: a consistent copy has
/// `counter.n = count(*) from items`.
struct Writer {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(db: &Path) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let (s, n, path) = (stop.clone(), commits.clone(), db.to_path_buf());
        let thread = std::thread::spawn(move || {
            let c = Connection::open(&path).expect("writer open");
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
                .unwrap();
            while !s.load(Ordering::Relaxed) {
                c.execute_batch(
                    "BEGIN IMMEDIATE; INSERT INTO items(v) VALUES (randomblob(64)); \
                     UPDATE counter SET n = n + 1; COMMIT;",
                )
                .expect("writer commit");
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        Writer {
            stop,
            commits,
            thread: Some(thread),
        }
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A WAL-mode database of about `mb` MiB: `items` (2 KiB random rows) and `counter` (= count).
fn items_db(path: &Path, mb: usize) {
    let c = Connection::open(path).unwrap();
    let rows = mb * 512;
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE items(id INTEGER PRIMARY KEY, v BLOB);
         CREATE TABLE counter(n INTEGER NOT NULL);
         BEGIN;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
           INSERT INTO items(v) SELECT randomblob(2000) FROM s;
         INSERT INTO counter SELECT count(*) FROM items;
         COMMIT;"
    ))
    .unwrap();
}

/// (count(*) of items, counter.n, PRAGMA integrity_check); one statement, so one read snapshot.
fn items_state(path: &Path) -> (i64, i64, String) {
    let c = Connection::open(path).unwrap();
    let (count, n) = c
        .query_row(
            "SELECT (SELECT count(*) FROM items), (SELECT n FROM counter)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let check = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (count, n, check)
}

/// The run folders a run left under `settings.temp_dir` (the lock files are not run leftovers).
fn run_leftovers(t: &Test) -> Vec<String> {
    support::names_in(&t.path("tmp/runs"))
}

#[test]
fn snapshot_under_a_steady_writer_finishes_and_is_consistent() {
    let t = Test::new().manifest(&manifest(
        "",
        "  busy: { engine: sqlite, database: '{dir}/app.db', remote: local, timeout: 60s }\n",
    ));
    items_db(&t.path("app.db"), 24);
    let writer = Writer::start(&t.path("app.db"));
    // Let the writer get going before the snapshot starts.
    assert!(support::wait_until(Duration::from_secs(10), || writer
        .commits()
        > 200));
    let (before, n_before, _) = items_state(&t.path("app.db"));
    assert_eq!(before, n_before, "the writer keeps its invariant");
    let commits_before = writer.commits();

    let start = Instant::now();
    let mut child = t.spawn(&["backup", "busy"]);
    let status = support::wait_or_kill(&mut child, Duration::from_secs(30));
    let took = start.elapsed();
    let committed_during = writer.commits() - commits_before;
    drop(writer);
    let err = support::read_all(child.stderr.take());
    let status = status.unwrap_or_else(|| {
        panic!("the snapshot did not finish within 30 s under a steady writer\n{err}")
    });
    assert!(status.success(), "backup failed ({status}):\n{err}");
    eprintln!("snapshot took {took:?}; the writer committed {committed_during} times meanwhile");
    assert!(
        took < Duration::from_secs(10),
        "the snapshot took {took:?} under a steady writer"
    );
    assert!(
        committed_during >= 20,
        "the writer committed only {committed_during} transactions while the snapshot ran: no load"
    );

    let restored = t.path("restored/app.db");
    std::fs::create_dir_all(t.path("restored")).unwrap();
    t.run(&["restore", "busy", "--to", &restored.display().to_string()])
        .stdout_matches(&support::restored_line(
            "busy",
            &format!("sqlite {}", restored.display()),
        ))
        // JSON log lines carry timestamps; the outcome event is what is stable
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    let (count, n, check) = items_state(&restored);
    assert_eq!(check, "ok", "integrity_check of the restored snapshot");
    assert_eq!(
        count, n,
        "the snapshot mixes two states: counter says {n}, items has {count}"
    );
    assert!(
        count >= before,
        "the snapshot ({count} rows) is older than the database before the backup ({before})"
    );
}

/// A rollback-journal database whose every reader gets SQLITE_BUSY while `hold` is alive: another
/// connection holds an EXCLUSIVE lock (as a writer committing a long transaction does).
fn locked_db(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1000)
           INSERT INTO t SELECT i, hex(randomblob(16)) FROM s;
         BEGIN EXCLUSIVE;",
    )
    .unwrap();
    c
}

#[test]
fn a_snapshot_stuck_behind_a_lock_obeys_the_timeout() {
    let t = Test::new().manifest(&manifest(
        "",
        "  slow: { engine: sqlite, database: '{dir}/app.db', remote: local, timeout: 1s }\n",
    ));
    let hold = locked_db(&t.path("app.db"));
    let start = Instant::now();
    let mut child = t.spawn(&["backup", "slow"]);
    // 1 s timeout + the 5 s kill grace, with room to spare: a copy that ignores the timeout
    // keeps the process alive as long as the lock is held.
    let status = support::wait_or_kill(&mut child, Duration::from_secs(15));
    let took = start.elapsed();
    let err = support::read_all(child.stderr.take());
    drop(hold);
    let status = status.unwrap_or_else(|| {
        panic!("dbstash did not exit within 15 s of a 1 s timeout (the copy ignored it)\n{err}")
    });
    assert_eq!(status.code(), Some(1), "the run must fail:\n{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "dbstash exited {took:?} after starting: past the timeout and its grace"
    );
    assert_eq!(t.files("out"), Vec::<String>::new(), "remote");
    assert_eq!(run_leftovers(&t), Vec::<String>::new(), "temp folder");
}

/// The snapshot is quick, but compressing it into a local file is slow (zstd level 19 on random
/// data: many seconds): the timeout lands while the in-process relay reads the snapshot.
#[test]
fn a_timeout_during_the_relay_of_a_snapshot_stops_it() {
    let t = Test::new().manifest(&manifest(
        "",
        "  slow: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: zstd, compress_level: 19, timeout: 1s }\n",
    ));
    items_db(&t.path("app.db"), 64);
    let start = Instant::now();
    let mut child = t.spawn(&["backup", "slow"]);
    let status = support::wait_or_kill(&mut child, Duration::from_secs(60));
    let took = start.elapsed();
    let err = support::read_all(child.stderr.take());
    let status = status.unwrap_or_else(|| panic!("dbstash did not exit within 60 s\n{err}"));
    assert_eq!(status.code(), Some(1), "the run must fail:\n{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(
        took < Duration::from_secs(4),
        "dbstash exited {took:?} after starting, with a 1 s timeout: the relay read on\n{err}"
    );
    assert_eq!(t.files("out"), Vec::<String>::new(), "remote");
    assert_eq!(run_leftovers(&t), Vec::<String>::new(), "temp folder");
}

#[test]
fn sigterm_stops_the_supervisor_during_a_stuck_snapshot() {
    let t = Test::new().manifest(&manifest(
        ", shutdown_grace: 1s",
        "  slow: { engine: sqlite, database: '{dir}/app.db', remote: local, timeout: 1h, schedule: '0 0 1 1 *', run_on_start: true }\n",
    ));
    let hold = locked_db(&t.path("app.db"));
    let mut child = t.spawn_logged(&["run"]);
    let started = support::wait_until(Duration::from_secs(20), || {
        t.log().contains("backup_started")
    });
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the run never started:\n{}", t.log());
    }
    // Give the snapshot time to reach the lock.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = support::wait_or_kill(&mut child, Duration::from_secs(15));
    let took = start.elapsed();
    drop(hold);
    let log = t.log();
    let status =
        status.unwrap_or_else(|| panic!("dbstash run did not stop within 15 s of SIGTERM\n{log}"));
    assert!(
        took < Duration::from_secs(5),
        "dbstash run took {took:?} to stop (shutdown_grace 1s)\n{log}"
    );
    assert_eq!(status.code(), Some(0), "a clean stop exits 0\n{log}");
    assert!(
        log.contains("backup_failed"),
        "the cut run is failed:\n{log}"
    );
    assert_eq!(t.files("out"), Vec::<String>::new(), "remote");
    assert_eq!(run_leftovers(&t), Vec::<String>::new(), "temp folder");
}

#[test]
fn a_restore_leaves_nothing_but_the_restored_file() {
    let have_cli = support::have("sqlite3");
    let t = Test::new().manifest(&manifest(
        "",
        "  snap: { engine: sqlite, database: '{dir}/app.db', remote: local }\n  sql: { engine: sqlite, database: '{dir}/app.db', remote: local, format: sql }\n",
    ));
    // A WAL-mode source: its snapshot is a WAL-mode file, which SQLite opens with -wal and -shm.
    items_db(&t.path("app.db"), 1);
    let mut jobs = vec!["snap"];
    if support::require(have_cli, "sqlite3 CLI (format: sql)") {
        jobs.push("sql");
    }
    let mut args = vec!["backup"];
    args.extend(&jobs);
    t.run(&args) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for job in jobs {
        let folder = format!("restored-{job}");
        std::fs::create_dir_all(t.path(&folder)).unwrap();
        let to = t.path(&format!("{folder}/app.db"));
        t.run(&["restore", job, "--to", &to.display().to_string()])
            .stdout_matches(&support::restored_line(
                job,
                &format!("sqlite {}", to.display()),
            ))
            // JSON log lines carry timestamps; the outcome event is what is stable
            .stderr_contains("\"event\":\"restore_succeeded\"")
            .success();
        assert_eq!(
            t.files(&folder),
            vec!["app.db".to_string()],
            "{job}: files beside the restored database"
        );
        let (count, n, check) = items_state(&to);
        assert_eq!((count, check.as_str()), (n, "ok"), "{job}");
    }
}

#[test]
fn sql_format_keeps_user_version_and_application_id() {
    if !support::require(support::have("sqlite3"), "sqlite3 CLI") {
        return;
    }
    let t = Test::new().manifest(&manifest(
        "",
        "  sql: { engine: sqlite, database: '{dir}/app.db', remote: local, format: sql }\n  snap: { engine: sqlite, database: '{dir}/app.db', remote: local }\n",
    ));
    let c = Connection::open(t.path("app.db")).unwrap();
    // The application id is a signed 32-bit number: 0xBEEFCAFE reads back as -1091581186.
    c.execute_batch(
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);
         PRAGMA user_version = 42; PRAGMA application_id = -1091581186;",
    )
    .unwrap();
    drop(c);
    t.run(&["backup", "sql", "snap"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for job in ["sql", "snap"] {
        let to = t.path(&format!("{job}.db"));
        t.run(&["restore", job, "--to", &to.display().to_string()])
            .stdout_matches(&support::restored_line(
                job,
                &format!("sqlite {}", to.display()),
            ))
            // JSON log lines carry timestamps; the outcome event is what is stable
            .stderr_contains("\"event\":\"restore_succeeded\"")
            .success();
        let c = Connection::open(&to).unwrap();
        let pragmas: (i64, i64, i64) = c
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), \
                 (SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM t)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            pragmas,
            (42, -1091581186, 2),
            "{job}: user_version, application_id, rows"
        );
    }
}
