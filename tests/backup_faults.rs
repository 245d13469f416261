//! Fault tests: whatever breaks (the dump, the upload, the remote, the database, the clock, dbstash
//! itself), the run fails with a non-zero exit within seconds, writes no record, leaves no object
//! in the local folder or the S3 bucket, and leaves no process behind.

use crate::support;

use crate::support::{processes_with, Run, Test, S3};
use std::process::Command;
use std::time::{Duration, Instant};

/// Run dbstash, failing the test (and killing it) if it takes longer than `limit`.
fn run_within(t: &Test, args: &[&str], limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    let mut child = t
        .command(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dbstash");
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "dbstash {args:?} still running after {limit:?} (hang)\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (Run::new(out), start.elapsed())
}

/// Nothing left: no object or record in the local folder, nothing in the bucket, no process
/// whose argv carries one of the markers.
#[track_caller]
fn assert_clean(t: &Test, s3: Option<&S3>, markers: &[&str]) {
    let local = t.files("out");
    assert!(local.is_empty(), "left in the local folder: {local:?}");
    if let Some(s3) = s3 {
        let objects = s3.objects();
        assert!(objects.is_empty(), "left in the bucket: {objects:?}");
    }
    for m in markers {
        let ok = support::wait_until(Duration::from_secs(3), || processes_with(m).is_empty());
        assert!(ok, "orphan processes: {:?}", processes_with(m));
    }
    // the private run folder is gone too
    let runs: Vec<String> = t
        .files("tmp")
        .into_iter()
        .filter(|f| f.starts_with("runs/"))
        .collect();
    assert!(runs.is_empty(), "{runs:?}");
}

/// Exit 1 with the job's failure line and `fragments` on stderr, nothing on stdout.
#[track_caller]
fn assert_failed(r: Run, job: &str, fragments: &[&str]) -> Run {
    let r = r
        .stderr_contains(&format!("job {job} failed"))
        .stderr_contains("backup_failed");
    fragments
        .iter()
        .fold(r, |r, f| r.stderr_contains(f))
        .failure(1)
}

fn manifest(job: &str, remote: &str, body: &str, settings: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp'{settings} }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\n  s3: {{ rclone: 't:bucket' }}\njobs:\n  {job}: {{ remote: {remote}, {body} }}\n"
    )
}

fn pg_body(db: &str) -> String {
    format!("engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}")
}

fn with_s3(remote: &str) -> Option<Option<S3>> {
    if remote != "s3" {
        return Some(None);
    }
    let s3 = S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return None;
    }
    Some(s3)
}

fn env_for(t: Test, s3: &Option<S3>) -> Test {
    match s3 {
        Some(s) => t.envs(&s.env()),
        None => t,
    }
}

// A `pg_dump` wrapper: runs the real one, passes some bytes on, then kills itself with SIGKILL.
const PG_DUMP_KILLED: &str = "#!/bin/sh
/usr/bin/pg_dump \"$@\" | head -c 300000
kill -9 $$
";

/// The dump process dies, but a child of it still holds the pipe open and keeps writing: the run
/// must fail now (and take the child down), not when the child is done.
const DUMP_DIES_CHILD_WRITES: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
( i=0; while [ $i -lt 600 ]; do echo \"-- filler line $i with some text to make it longer\"; i=$((i+1)); sleep 0.1; done ) &
sleep 0.5
kill -9 $$
";

/// Emits bytes for a while (9 MB: past rclone's first 5 MiB S3 chunk, so a multipart upload is
/// under way), then fails: the error names the failure and carries stderr's tail, and the
/// multipart upload's parts are gone too.
const SLOW_THEN_EXIT_1: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
i=0
while [ $i -lt 15 ]; do head -c 600000 /dev/urandom; sleep 0.05; i=$((i+1)); done
echo 'pg_dump: error: query failed: boom-4711' >&2
exit 1
";

/// Writes a little, forever: only the job's timeout ends it.
const FOREVER: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
while :; do echo '-- still dumping, slowly, a line of filler text'; sleep 0.05; done
";

/// The database a fault case dumps.
#[derive(Clone, Copy)]
enum Db {
    /// None at all: the fake `pg_dump` never connects.
    Fake,
    /// A real database on the shared server with this many rows.
    Fixture(u32),
    /// A name that does not exist on the shared server.
    Missing,
}

/// One row of the fault table: what breaks, and what the failed run must show.
struct Fault {
    /// A stand-in for `pg_dump` on PATH (None: the real one).
    pg_dump: Option<&'static str>,
    db: Db,
    /// More job keys, e.g. `, timeout: 2s`.
    job_extra: &'static str,
    /// On stderr besides the job's failure line.
    stderr: &'static [&'static str],
    /// The run fails within this many seconds.
    within_secs: u64,
}

/// Runs one fault case against `remote` (`local` or `s3`): the run fails with exit 1 within the
/// row's time, says what the row says, and leaves nothing behind (no object, no record, no run
/// folder, no process carrying the job's name or the test folder).
fn check_fault(remote: &str, case: Fault) {
    let needs_pg = !matches!(case.db, Db::Fake);
    if needs_pg && !support::pg_ready() {
        return;
    }
    let Some(s3) = with_s3(remote) else { return };
    let (db, _guard) = match case.db {
        Db::Fake => ("nodb".to_string(), None),
        Db::Fixture(rows) => {
            let db = support::pg_fixture("flt", rows);
            (db.clone(), Some(support::PgDropGuard(db)))
        }
        Db::Missing => (support::unique("missing_db"), None),
    };
    let job = support::unique("fault");
    let body = format!("{}{}", pg_body(&db), case.job_extra);
    let mut t = Test::new().manifest(&manifest(&job, remote, &body, ""));
    if let Some(script) = case.pg_dump {
        t = t.write_executable("pg_dump", script);
    }
    let t = env_for(t, &s3);
    let (r, took) = run_within(&t, &["backup", &job], Duration::from_secs(45));
    assert_failed(r, &job, case.stderr);
    assert!(
        took < Duration::from_secs(case.within_secs),
        "{remote}: took {took:?}"
    );
    let dir = t.dir.path().display().to_string();
    assert_clean(&t, s3.as_ref(), &[&job, &dir]);
}

/// One `#[test]` per row and remote, named after the row, so a failure names its case.
macro_rules! fault_table {
    ($($name:ident { local: $local:ident, s3: $s3:ident, case: $case:expr $(,)? })*) => {
        $(
            fn $name() -> Fault {
                $case
            }
            #[test]
            fn $local() {
                check_fault("local", $name());
            }
            #[test]
            fn $s3() {
                check_fault("s3", $name());
            }
        )*
    };
}

fault_table! {
    dump_killed_mid_stream {
        local: dump_killed_mid_stream_to_a_local_folder,
        s3: dump_killed_mid_stream_to_s3,
        case: Fault {
            pg_dump: Some(PG_DUMP_KILLED),
            db: Db::Fixture(30000),
            job_extra: "",
            stderr: &["signal 9"],
            within_secs: 10,
        },
    }
    // The run must fail now (and take the child down), not when the child is done.
    dump_killed_while_its_child_keeps_writing {
        local: dump_killed_while_its_child_keeps_writing_fails_at_once_local,
        s3: dump_killed_while_its_child_keeps_writing_fails_at_once_s3,
        case: Fault {
            pg_dump: Some(DUMP_DIES_CHILD_WRITES),
            db: Db::Fake,
            job_extra: "",
            stderr: &[],
            within_secs: 10,
        },
    }
    slow_dump_that_exits_1 {
        local: slow_dump_that_exits_1_fails_with_its_stderr_tail_local,
        s3: slow_dump_that_exits_1_fails_with_its_stderr_tail_s3,
        case: Fault {
            pg_dump: Some(SLOW_THEN_EXIT_1),
            db: Db::Fake,
            job_extra: "",
            stderr: &["exit 1", "boom-4711"],
            within_secs: 10,
        },
    }
    // The dump's own stderr must be in the error.
    dump_failing_at_start {
        local: dump_failing_at_start_is_a_failure_local,
        s3: dump_failing_at_start_is_a_failure_s3,
        case: Fault {
            pg_dump: None,
            db: Db::Missing,
            job_extra: "",
            stderr: &["does not exist"],
            within_secs: 10,
        },
    }
    timeout_kills_the_process_group {
        local: timeout_kills_the_process_group_and_cleans_up_local,
        s3: timeout_kills_the_process_group_and_cleans_up_s3,
        case: Fault {
            pg_dump: Some(FOREVER),
            db: Db::Fake,
            job_extra: ", timeout: 2s",
            stderr: &["timed out after 2s"],
            within_secs: 9,
        },
    }
}

/// A dump that writes `MB` megabytes of incompressible data, then optionally idles with the pipe
/// open.
fn big_dump(mb: u32, idle: u32) -> String {
    format!(
        "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
head -c {mb}000000 /dev/urandom
sleep {idle}
"
    )
}

fn kill_upload_mid_stream(dump: &str) {
    let Some(Some(s3)) = with_s3("s3") else {
        return;
    };
    let job = support::unique("upkill");
    let t = Test::new()
        .manifest(&manifest(
            &job,
            "s3",
            &pg_body("nodb"),
            ", rclone: { extra_args: ['--bwlimit', '1M'] }",
        ))
        .write_executable("pg_dump", dump)
        .envs(&s3.env());
    let mut child = t.spawn(&["backup", &job]);
    // wait until the data upload runs and has had time to ship something
    let rcat = support::one_data_upload(&job, Duration::from_secs(30), Duration::from_millis(1500))
        .unwrap_or_else(|seen| panic!("no single data upload for {job}: {seen:?}"));
    let killed_at = Instant::now();
    Command::new("kill")
        .args(["-9", &rcat])
        .status()
        .expect("kill");
    let finished = support::wait_until(Duration::from_secs(20), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !finished {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let r = Run::new(out);
    assert!(
        finished,
        "dbstash did not notice the dead upload:\n{}",
        r.stderr()
    );
    let took = killed_at.elapsed();
    // the error must name the upload
    assert_failed(r, &job, &["upload to `s3` failed"]);
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} after the kill"
    );
    let dir = t.dir.path().display().to_string();
    assert_clean(&t, Some(&s3), &[&job, &dir]);
}

/// Writes 100 kB ten times a second for 30 s: a stream that is still flowing seconds in, without
/// a bandwidth limit (which keeps a stream on its own `rclone rcat`).
const TRICKLE: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
i=0
while [ $i -lt 300 ]; do head -c 100000 /dev/urandom; sleep 0.1; i=$((i+1)); done
";

/// The shared `rclone rcd` carries a small backup's data (no `rcat` of its own): killed
/// mid-stream, the run must notice at once, fail naming the upload, and leave nothing.
fn kill_daemon_mid_stream(dump: &str) {
    let Some(Some(s3)) = with_s3("s3") else {
        return;
    };
    let job = support::unique("rcdkill");
    let t = Test::new()
        .manifest(&manifest(&job, "s3", &pg_body("nodb"), ""))
        .write_executable("pg_dump", dump)
        .envs(&s3.env());
    let dir = t.dir.path().display().to_string();
    let mut child = t.spawn(&["backup", &job]);
    let daemon = || {
        processes_with(&dir)
            .into_iter()
            .find(|p| p.contains(" rcd "))
            .and_then(|l| l.split(':').next().map(|p| p.trim().to_string()))
    };
    let dumping = || processes_with(&format!("{dir}/bin/pg_dump")).len() == 1;
    assert!(
        support::wait_until(Duration::from_secs(30), || daemon().is_some() && dumping()),
        "no daemon and dump: {:?}",
        processes_with(&dir)
    );
    // The claim is made and the stream under way.
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        support::data_uploads(&job).is_empty(),
        "the stream has an rcat of its own: {:?}",
        processes_with(&job)
    );
    let pid = daemon().expect("the daemon");
    let killed_at = Instant::now();
    Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    let finished = support::wait_until(Duration::from_secs(20), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !finished {
        let _ = child.kill();
    }
    let r = Run::new(child.wait_with_output().expect("output"));
    assert!(
        finished,
        "dbstash did not notice the dead daemon:\n{}",
        r.stderr()
    );
    let took = killed_at.elapsed();
    assert_failed(r, &job, &["upload to `s3` failed"]);
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} after the kill"
    );
    assert_clean(&t, Some(&s3), &[&job, &dir]);
}

#[test]
fn daemon_killed_mid_stream() {
    kill_daemon_mid_stream(TRICKLE);
}

#[test]
fn daemon_killed_while_the_dump_is_idle() {
    // 2 MB, then the dump holds its pipe open for a minute: nothing is written to the daemon's
    // connection, and its end must still be noticed.
    kill_daemon_mid_stream(&big_dump(2, 60));
}

/// A dump that fails once rclone's multipart upload is under way (9 MB: past the first 5 MiB
/// part): rclone must cancel the multipart upload, not leave its parts on the remote. rclone's own
/// log says so (`serve s3` lists no multipart uploads to look at).
#[test]
fn a_failed_dump_cancels_the_multipart_upload() {
    let Some(Some(s3)) = with_s3("s3") else {
        return;
    };
    let job = support::unique("mpu");
    let t = Test::new()
        .manifest(&manifest(
            &job,
            "s3",
            &pg_body("nodb"),
            ", rclone: { extra_args: ['-vv', '--log-file={dir}/rclone.log'] }",
        ))
        .write_executable("pg_dump", SLOW_THEN_EXIT_1)
        .envs(&s3.env());
    let (r, _) = run_within(&t, &["backup", &job], Duration::from_secs(45));
    assert_failed(r, &job, &["boom-4711"]);
    let log = std::fs::read_to_string(t.path("rclone.log")).unwrap_or_default();
    let about: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("multipart upload"))
        .collect();
    assert!(
        about.iter().any(|l| l.contains("started multipart upload")),
        "no multipart upload was started: {about:#?}"
    );
    assert!(
        about.iter().any(|l| l.contains("aborted")),
        "the multipart upload was not aborted: {about:#?}"
    );
    assert!(
        !about.iter().any(|l| l.contains("Failed to cancel")),
        "{about:#?}"
    );
    let dir = t.dir.path().display().to_string();
    assert_clean(&t, Some(&s3), &[&job, &dir]);
}

#[test]
fn upload_killed_mid_stream() {
    kill_upload_mid_stream(&big_dump(40, 0));
}

#[test]
fn upload_killed_while_the_dump_is_idle() {
    // the dump writes 2 MB (taken by the relay and rclone's buffer), then holds its pipe open
    kill_upload_mid_stream(&big_dump(2, 60));
}

#[test]
fn unreachable_remote_fails_within_seconds() {
    if !support::pg_ready() {
        return;
    }
    let db = support::pg_fixture("flt_unreach", 100);
    let _guard = support::PgDropGuard(db.clone());
    let job = support::unique("unreach");
    let port = support::free_port(); // nothing listens there
    let env: Vec<(String, String)> = [
        ("RCLONE_CONFIG_T_TYPE", "s3".to_string()),
        ("RCLONE_CONFIG_T_PROVIDER", "Rclone".into()),
        (
            "RCLONE_CONFIG_T_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
        ("RCLONE_CONFIG_T_ACCESS_KEY_ID", support::S3_KEY.into()),
        (
            "RCLONE_CONFIG_T_SECRET_ACCESS_KEY",
            support::S3_SECRET.into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let t = Test::new()
        .manifest(&manifest(&job, "s3", &pg_body(&db), ""))
        .envs(&env);
    let (r, took) = run_within(&t, &["backup", &job], Duration::from_secs(120));
    // the error names the remote, and rclone's reason
    assert_failed(r, &job, &["remote `s3`", "connection refused"]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_clean(&t, None, &[&job]);
}

#[test]
fn database_server_down_fails_within_seconds() {
    let pg = support::PgScram::start("down-pw-123");
    if !support::require(pg.is_some(), "own PostgreSQL (initdb)") {
        return;
    }
    let pg = pg.expect("pg");
    let port = pg.port;
    drop(pg); // stopped: nothing listens on its port any more
    for remote in ["local", "s3"] {
        let Some(s3) = with_s3(remote) else { return };
        let job = support::unique("down");
        let body = format!(
            "engine: postgres, host: 127.0.0.1, port: {port}, user: postgres, password: down-pw-123, database: postgres"
        );
        let t = env_for(
            Test::new().manifest(&manifest(&job, remote, &body, "")),
            &s3,
        );
        let (r, took) = run_within(&t, &["backup", &job], Duration::from_secs(60));
        let r = assert_failed(r, &job, &[]);
        assert!(
            r.stderr().to_lowercase().contains("connection refused")
                || r.stderr().contains("could not connect"),
            "{}",
            r.stderr()
        );
        assert!(!r.stderr().contains("down-pw-123"), "{}", r.stderr());
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert_clean(&t, s3.as_ref(), &[&job]);
    }
}

const EMPTY_DUMP: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
exit 0
";

#[test]
fn zero_byte_dump_fails_unless_allow_empty() {
    for remote in ["local", "s3"] {
        let Some(s3) = with_s3(remote) else { return };
        let job = support::unique("empty");
        let t = env_for(
            Test::new()
                .manifest(&manifest(&job, remote, &pg_body("nodb"), ""))
                .write_executable("pg_dump", EMPTY_DUMP),
            &s3,
        );
        let (r, _) = run_within(&t, &["backup", &job], Duration::from_secs(30));
        assert_failed(r, &job, &["allow_empty"]);
        let dir = t.dir.path().display().to_string();
        assert_clean(&t, s3.as_ref(), &[&job, &dir]);

        // allowed: a complete (empty) backup with its record
        let t = t.manifest(&manifest(
            &job,
            remote,
            &format!("{}, allow_empty: true", pg_body("nodb")),
            "",
        ));
        let (r, _) = run_within(&t, &["backup", &job], Duration::from_secs(30));
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let stored = match &s3 {
            Some(s) => s.objects(),
            None => t.files("out"),
        };
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(
            stored.iter().any(|f| f.ends_with(".sql.dbstash.json")),
            "{stored:?}"
        );
    }
}

#[test]
fn sigkilled_dbstash_takes_its_children_along_and_leaves_no_listed_backup() {
    let Some(Some(s3)) = with_s3("s3") else {
        return;
    };
    let job = support::unique("crash");
    let t = Test::new()
        .manifest(&manifest(
            &job,
            "s3",
            &pg_body("nodb"),
            ", rclone: { extra_args: ['--bwlimit', '1M'] }",
        ))
        .write_executable("pg_dump", &big_dump(40, 0))
        .envs(&s3.env());
    let mut child = t.spawn(&["backup", &job]);
    let found = support::wait_until(Duration::from_secs(15), || {
        processes_with(&job).iter().any(|p| p.contains(" rcat "))
    });
    assert!(found, "no upload started");
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("SIGKILL dbstash");
    let _ = child.wait();
    let dir = t.dir.path().display().to_string();
    for m in [&job, &dir] {
        assert!(
            support::wait_until(Duration::from_secs(3), || processes_with(m).is_empty()),
            "children outlived dbstash: {:?}",
            processes_with(m)
        );
    }
    // rclone never saw EOF, so it never completed an object; nothing is listed
    let objects = s3.objects();
    assert!(
        objects.iter().all(|o| !o.ends_with(".dbstash.json")),
        "{objects:?}"
    );
    let listed = t
        .run(&["list", "--format", "json"])
        .stdout_is("[]\n")
        .success()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(0), "{listed}");
}
