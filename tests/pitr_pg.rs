//! Point-in-time recovery for PostgreSQL, end to end against a scratch cluster of our own
//! (scram passwords, so the password travels the way users' do): the supervisor streams WAL,
//! `backup` takes a base backup, `restore --at` builds a data directory, and PostgreSQL started
//! on it holds exactly the rows committed before the instant.

use crate::support::pitr::*;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PW: &str = "pitr-Secret-1";

fn pg_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("pg_ctl").exists())
}

/// Folders the `postgres` user can reach (a test's temp dir is root's 0700), removed on drop;
/// a server started in one is stopped first.
struct PgPlace {
    root: PathBuf,
    started: Vec<PathBuf>,
}

impl PgPlace {
    fn new() -> PgPlace {
        let root = PathBuf::from(format!("/tmp/dbstash-pitr-{}", unique("r")));
        let out = sh(&format!(
            "install -d -m 755 -o postgres {0}",
            root.display()
        ));
        assert!(out.status.success(), "{out:?}");
        PgPlace {
            root,
            started: Vec::new(),
        }
    }

    /// An empty folder owned by postgres, for `--to-dir`.
    fn target(&self, name: &str) -> PathBuf {
        let d = self.root.join(name);
        let out = sh(&format!("install -d -m 700 -o postgres {}", d.display()));
        assert!(out.status.success(), "{out:?}");
        d
    }

    /// Start PostgreSQL on a restored folder; true when it accepts connections.
    fn start(&mut self, data: &Path, port: u16) -> bool {
        let b = pg_bin().expect("pg bin");
        let out = sh(&format!(
            "su postgres -c \"{b}/pg_ctl -D {d} -o '-p {port} -k {r} -c listen_addresses=127.0.0.1' -l {d}.log -w -t 60 start\"",
            b = b.display(),
            d = data.display(),
            r = self.root.display(),
        ));
        self.started.push(data.to_path_buf());
        if !out.status.success() {
            eprintln!(
                "pg_ctl start: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(format!("{}.log", data.display())).unwrap_or_default()
            );
        }
        out.status.success()
    }
}

impl Drop for PgPlace {
    fn drop(&mut self) {
        if let Some(b) = pg_bin() {
            for d in &self.started {
                let _ = sh(&format!(
                    "su postgres -c \"{}/pg_ctl -D {} -m immediate stop\" >/dev/null 2>&1",
                    b.display(),
                    d.display()
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn psql_at(port: u16, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &port.to_string(), "-d", "postgres", "-c", sql])
        .env("PGPASSWORD", PW)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn prerequisites() -> bool {
    require(
        pg_bin().is_some(),
        "PostgreSQL server binaries (initdb, pg_ctl)",
    ) && require(have("pg_receivewal"), "pg_receivewal")
        && require(have("pg_basebackup"), "pg_basebackup")
}

/// Job `app` on database `postgres` of the scratch cluster, as `user`, on replication slot
/// `slot`, with more job lines `extra`.
fn job<'a>(pg: &PgScram, slot: &str, user: &'a str, extra: &'a str) -> Job<'a> {
    Job {
        engine: "postgres",
        port: pg.port,
        user,
        database: "postgres",
        pitr: format!("slot: {slot}, "),
        extra,
    }
}

/// A scratch cluster made with more `initdb` options, or `None` (the test skipped) where
/// PostgreSQL is missing.
fn scratch(initdb_options: &str) -> Option<PgScram> {
    let start = || PgScram::start_with(PW, initdb_options);
    started(prerequisites(), start, "PostgreSQL")
}

/// The segment the server writes into now (closed by the next `pg_switch_wal()`).
fn current_segment(pg: &PgScram) -> String {
    pg.psql("postgres", "select pg_walfile_name(pg_current_wal_lsn())")
}

/// Switch to a new WAL segment; the one closed, and true once it is archived.
fn switch_and_wait(t: &Test, pg: &PgScram) -> (String, bool) {
    let seg = current_segment(pg);
    pg.psql("postgres", "select pg_switch_wal()");
    let archived = wait_archived(t, "wal", &seg);
    (seg, archived)
}

/// `restore app --at AT --to-dir DIR`.
fn restore_at(t: &Test, at: &str, dir: &Path) -> Run {
    t.run(&[
        "restore",
        "app",
        "--at",
        at,
        "--to-dir",
        dir.to_str().unwrap(),
    ])
}

/// Start PostgreSQL on the restored `dir`; the rows of `t` there.
#[track_caller]
fn rows_restored_in(place: &mut PgPlace, dir: &Path) -> String {
    let port = free_port();
    assert!(
        place.start(dir, port),
        "PostgreSQL did not start on the restored folder"
    );
    psql_at(port, "select count(*), min(i), max(i) from t")
}

/// Rows 1..5, the instant, rows 6..9; the instant and the segment holding them, once archived.
#[track_caller]
fn rows_around_an_instant(t: &Test, pg: &PgScram) -> (jiff::Timestamp, String) {
    let at = instant_between(
        || {
            pg.psql("postgres", "insert into t select generate_series(1, 5)");
        },
        || {
            pg.psql("postgres", "insert into t select generate_series(6, 9)");
        },
    );
    let (seg, archived) = switch_and_wait(t, pg);
    assert!(archived, "segment {seg} not archived:\n{}", t.log());
    (at, seg)
}

/// The record of the job's (only) base backup.
fn base_record(t: &Test) -> serde_json::Value {
    let dir = t.path("remote/app");
    let rec = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst.dbstash.json"))
        .expect("a base backup record");
    serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap()
}

#[test]
fn restore_at_an_instant_has_exactly_the_rows_before_it_and_latest_has_all() {
    let Some(pg) = scratch("") else {
        return;
    };
    let slot = format!("dbstash_{}", unique("s").replace('-', "_")).to_lowercase();
    let (t, health, rx, _rt) = pitr_test(&job(&pg, &slot, "postgres", ""), PW);
    pg.psql("postgres", "create table t (i int primary key)");
    let v = t
        .run(&["validate", "--online"])
        .stdout_contains("job app: replication connection ok (timeline 1, WAL at ")
        .ignore_stderr()
        .success();
    assert!(!v.stdout().contains(PW), "{}", v.stdout());
    let sup = Supervisor::start(&t);
    assert_stream_up(&t, health);
    t.run(&["backup", "app"])
        .stderr_contains("\"event\":\"backup_succeeded\"")
        .success();
    // The record holds where the base backup starts and ends in the WAL, read from the tar.
    let w = &base_record(&t)["base_wal"];
    assert!(
        w["start_lsn"].as_str().is_some_and(|l| l.contains('/')),
        "{w}"
    );
    assert!(
        w["stop_lsn"].as_str().is_some_and(|l| l.contains('/')),
        "{w}"
    );
    assert_eq!(w["timeline"], 1, "{w}");
    assert_eq!(w["manifest"], true, "{w}");
    assert!(
        w["start_segment"].as_str().is_some_and(|s| s.len() == 24),
        "{w}"
    );
    assert!(w["stop_time"].as_str().is_some(), "{w}");
    // The password never reaches a process list.
    for line in processes_with("pg_receivewal") {
        assert!(!line.contains(PW), "password in argv: {line}");
    }

    let (at, _) = rows_around_an_instant(&t, &pg);
    // Lag in bytes: WAL written since the last archived segment's end, as the server counts it.
    pg.psql(
        "postgres",
        "create table filler as select repeat('x', 100) from generate_series(1, 2000)",
    );
    let lag = "dbstash_pitr_lag_bytes";
    assert!(
        wait_until(Duration::from_secs(30), || app_metric(health, lag) > 0.0),
        "no lag in bytes:\n{}",
        http_get(health, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default()
    );
    let in_segment: f64 = pg
        .psql(
            "postgres",
            "select (pg_current_wal_lsn() - '0/0'::pg_lsn) % 16777216",
        )
        .parse()
        .unwrap();
    let measured = app_metric(health, lag);
    assert!(
        measured <= in_segment,
        "lag {measured} > {in_segment} bytes written since the archived segment's end"
    );

    // The receiver dies mid-stream: rows written meanwhile still reach the archive.
    let pids = pids_with(&format!("--slot={slot}"));
    assert!(!pids.is_empty(), "no pg_receivewal for {slot}");
    kill_all(pids);
    pg.psql("postgres", "insert into t select generate_series(10, 12)");
    let (seg, archived) = switch_and_wait(&t, &pg);
    assert!(
        archived,
        "segment {seg} not archived after the receiver was killed:\n{}",
        t.log()
    );
    assert_recovered(&t, &rx, health);
    drop(sup);

    // A plain restore of a base backup is not what the user wants: they are told the command.
    let r = t
        .run(&["restore", "app", "--yes"])
        .stderr_contains("--at TIME|latest --to-dir DIR")
        .failure(2);
    assert!(
        r.stderr().contains("--at TIME|latest --to-dir DIR"),
        "{}",
        r.stderr()
    );

    let mut place = PgPlace::new();
    // An instant before the first base backup: refused, nothing written.
    let early = place.target("early");
    let r = restore_at(&t, "2001-01-01T00:00:00Z", &early)
        .stderr_contains("outside the recoverable window")
        .failure(1);
    assert!(
        r.stderr().contains("outside the recoverable window"),
        "{}",
        r.stderr()
    );
    assert_eq!(std::fs::read_dir(&early).unwrap().count(), 0);

    // To the instant: exactly rows 1..5.
    let dir = place.target("at");
    let r = restore_at(&t, &at.to_string(), &dir)
        .stdout_contains("recovery stops at")
        .stderr_contains("restore_succeeded")
        .success();
    assert!(r.stdout().contains("recovery stops at"), "{}", r.stdout());
    assert!(
        r.stdout()
            .contains("pg_verifybackup: every file and the backup's WAL match its backup_manifest"),
        "{}",
        r.stdout()
    );
    assert_eq!(rows_restored_in(&mut place, &dir), "5|1|5");

    // Latest: everything archived, the rows written while the receiver was down included.
    let dir = place.target("latest");
    restore_at(&t, "latest", &dir)
        .stdout_contains("recovery replays everything archived")
        .stderr_contains("restore_succeeded")
        .success();
    assert_eq!(rows_restored_in(&mut place, &dir), "12|1|12");

    // (stderr of these carries the manifest's no-schedule warning and JSON log lines.)
    // `list` and `plan` show the window; a segment lost from the archive is reported by `list`
    // and fails `verify`.
    listed_window(&t);
    let planned = planned_window(&t, "pitr window", PW);
    assert!(planned.contains(&format!("--slot={slot}")), "{planned}");
    let v = verified_no_gap(&t);
    assert!(
        v.contains("pg_verifybackup: every file matches its backup_manifest"),
        "{v}"
    );
    let wal = t.path("remote/app/wal");
    let mut segs: Vec<String> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 28 && n.ends_with(".zst"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let gone = &segs[1];
    std::fs::remove_file(wal.join(gone)).unwrap();
    let missing = &gone[..24];
    assert_listed_missing(&t, "MISSING WAL", missing);
    let v = t
        .run(&["verify", "app"])
        .stdout_contains("FAILED  WAL archive")
        .ignore_stderr()
        .failure(1);
    assert!(
        v.stdout().contains(&format!("missing {missing}")),
        "{}",
        v.stdout()
    );
}

#[test]
fn a_role_without_replication_is_a_clear_error_not_a_hang() {
    let Some(pg) = scratch("") else {
        return;
    };
    pg.psql(
        "postgres",
        &format!("create role norep login password '{PW}'"),
    );
    let (t, health, rx, _rt) = pitr_test(&job(&pg, "dbstash_norep", "norep", ""), PW);
    // `validate --online` says so in one line, at once.
    let v = t
        .run(&["validate", "--online"])
        .stderr_contains("dbstash: job app: the WAL stream cannot connect: ")
        .stdout_contains("valid (1 job)")
        .failure(1);
    let line = v
        .stderr()
        .lines()
        .find(|l| l.contains("cannot connect"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("must be superuser or replication role"),
        "{}",
        v.stderr()
    );
    assert!(!v.stderr().contains(PW), "{}", v.stderr());
    let _sup = Supervisor::start(&t);
    assert_logged_soon(&t, "stream_down");
    let log = t.log();
    assert!(
        log.contains("must be superuser or replication role"),
        "{log}"
    );
    assert!(!log.contains("stream_up"), "{log}");
    assert!(!log.contains(PW), "password in the log:\n{log}");
    // Retried with backoff, but told once; down for longer than `max_lag` (2s): /healthz
    // names the job.
    assert_down_told_once(&t, &rx, health, "replication role", PW);
}

#[test]
fn no_replication_line_in_pg_hba_is_a_clear_error_at_validate_online_and_at_the_stream() {
    let Some(pg) = scratch("") else {
        return;
    };
    // The server accepts ordinary connections but no replication connection at all.
    let hba = pg.dir.join("data/pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some("replication"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(kept, text, "no replication line to remove:\n{text}");
    std::fs::write(&hba, kept).unwrap();
    pg.psql("postgres", "select pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    let (t, _health, rx, _rt) = pitr_test(&job(&pg, "dbstash_nohba", "postgres", ""), PW);
    let started = std::time::Instant::now();
    let v = t
        .run(&["validate", "--online"])
        .stderr_contains("dbstash: job app: the WAL stream cannot connect: ")
        .stdout_contains("valid (1 job)")
        .failure(1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "validate took {:?}",
        started.elapsed()
    );
    let err = v.stderr();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot connect"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", v.stderr());
    assert!(
        lines[0].contains("no pg_hba.conf entry for replication connection"),
        "{}",
        v.stderr()
    );
    let _sup = Supervisor::start(&t);
    assert_logged_soon(&t, "stream_down");
    assert!(
        t.log()
            .contains("no pg_hba.conf entry for replication connection"),
        "{}",
        t.log()
    );
    assert!(!t.log().contains("stream_up"), "{}", t.log());
    assert!(
        wait_until(Duration::from_secs(10), || events(&rx)
            == ["stream_failure"]),
        "{:?}",
        events(&rx)
    );
}

/// Every archived WAL segment name, in order.
fn archived_segments(t: &Test) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(t.path("remote/app/wal"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".zst.dbstash.json").map(str::to_string))
        .filter(|n| n.len() == 24)
        .collect();
    v.sort();
    v
}

#[test]
fn one_mib_segments_restore_to_an_instant_and_a_backup_run_prunes_the_wal_it_made_useless() {
    let Some(pg) = scratch("--wal-segsize=1") else {
        return;
    };
    assert_eq!(pg.psql("postgres", "show wal_segment_size"), "1MB");
    let slot = format!("dbstash_{}", unique("m").replace('-', "_")).to_lowercase();
    let retention = "    retention: { keep_last: 1 }\n";
    let (t, _health, _rx, _rt) = pitr_test(&job(&pg, &slot, "postgres", retention), PW);
    pg.psql("postgres", "create table t (i int primary key)");
    let _sup = Supervisor::start(&t);
    assert_logged_soon(&t, "stream_up");
    t.run(&["backup", "app"]).ignore_stderr().success();
    let first = base_record(&t)["object"].as_str().unwrap().to_string();
    for _ in 0..3 {
        pg.psql(
            "postgres",
            "create table if not exists filler as select 1 as x",
        );
        pg.psql(
            "postgres",
            "insert into filler select generate_series(1, 5000)",
        );
        let (seg, archived) = switch_and_wait(&t, &pg);
        assert!(archived, "segment {seg} not archived:\n{}", t.log());
    }
    let before = archived_segments(&t);

    // The second base backup: retention (keep_last: 1) removes the first, and the same run
    // removes the WAL only the first one needed — not a segment more.
    t.run(&["backup", "app"]).ignore_stderr().success();
    let rec = base_record(&t);
    assert_ne!(
        rec["object"].as_str().unwrap(),
        first,
        "the first base backup is still there"
    );
    let start = rec["base_wal"]["start_segment"]
        .as_str()
        .unwrap()
        .to_string();
    let useless: Vec<&String> = before.iter().filter(|s| s[8..] < start[8..]).collect();
    assert!(useless.len() >= 3, "{before:?} vs start {start}");
    let after = archived_segments(&t);
    for s in &useless {
        assert!(!after.contains(s), "{s} survived the backup run: {after:?}");
        assert!(!t.path(&format!("remote/app/wal/{s}.zst")).exists(), "{s}");
    }
    for s in before.iter().filter(|s| s[8..] >= start[8..]) {
        assert!(
            after.contains(s),
            "{s} is needed by the kept base backup: {after:?}"
        );
    }

    // Restore to an instant with 1 MiB segments.
    let (at, seg) = rows_around_an_instant(&t, &pg);
    let wal_rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path(&format!("remote/app/wal/{seg}.zst.dbstash.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(wal_rec["raw_size"], 1_048_576, "{wal_rec}");
    let mut place = PgPlace::new();
    let dir = place.target("at");
    restore_at(&t, &at.to_string(), &dir)
        .stdout_contains("pg_verifybackup: every file and the backup's WAL match")
        .ignore_stderr()
        .success();
    assert_eq!(rows_restored_in(&mut place, &dir), "5|1|5");
    verified_no_gap(&t);
}
