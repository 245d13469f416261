//! `run --once` runs jobs in parallel up to `settings.max_parallel` and exits 1 when any fails;
//! a second `backup J` while J runs is refused by the job lock with a clear message.

use crate::support;

use crate::support::Test;
use std::time::{Duration, Instant};

/// A dump that logs when it starts and ends (to `{dir}/spans`), takes ~1.2 s, and fails for the
/// database called `bad`.
const TIMED_DUMP: &str = r#"#!/bin/sh
if [ "$1" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
db=""
for a in "$@"; do case "$a" in --dbname=*) db="${a#--dbname=}";; esac; done
echo "start $db $(date +%s%N)" >> {dir}/spans
echo "-- PostgreSQL database dump of $db, padded to look like a real one ......................"
sleep 1.2
echo "end $db $(date +%s%N)" >> {dir}/spans
if [ "$db" = bad ]; then echo "pg_dump: error: database bad is broken" >&2; exit 1; fi
echo "-- done"
"#;

fn jobs_yaml(max_parallel: u32, dbs: &[&str]) -> String {
    let mut y = format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', max_parallel: {max_parallel} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n"
    );
    for db in dbs {
        y.push_str(&format!(
            "  j-{db}: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: {db}, remote: local }}\n"
        ));
    }
    y
}

#[test]
fn run_once_respects_max_parallel_and_fails_when_any_job_fails() {
    let dbs = ["one", "two", "three", "four", "bad"];
    let t = Test::new()
        .manifest(&jobs_yaml(2, &dbs))
        .write_executable("pg_dump", TIMED_DUMP);
    let start = Instant::now();
    let r = t.run(&["run", "--once"]);
    let took = start.elapsed();
    assert_eq!(r.code(), 1, "one job failed: exit 1\n{}", r.stderr());
    assert!(r.stderr().contains("job j-bad failed"), "{}", r.stderr());
    assert!(
        r.stderr().contains("database bad is broken"),
        "{}",
        r.stderr()
    );
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(spans.lines().count(), 10, "every job ran once:\n{spans}");
    assert_eq!(
        support::max_concurrency(&spans),
        2,
        "max_parallel 2:\n{spans}"
    );
    // 5 jobs of 1.2 s, 2 at a time: 3 waves, not 5 (sequential) and not 1 (unbounded)
    assert!(
        took >= Duration::from_millis(3400) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    // the four good ones are complete backups, the bad one left nothing
    let files = t.files("out");
    assert_eq!(files.len(), 8, "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with("j-bad/")), "{files:?}");

    // all good: exit 0; and max_parallel 4 really runs 4 at once
    let t = Test::new()
        .manifest(&jobs_yaml(4, &dbs[..4]))
        .write_executable("pg_dump", TIMED_DUMP);
    let start = Instant::now();
    t.run(&["run", "--once"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(support::max_concurrency(&spans), 4, "{spans}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // `run --once --job` selects
    let r = t
        .run(&["run", "--once", "--job", "j-one"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(r.stderr().contains("\"job\":\"j-one\""), "{}", r.stderr());
    assert!(!r.stderr().contains("\"job\":\"j-two\""), "{}", r.stderr());
}

#[test]
fn a_second_backup_of_a_running_job_is_refused_by_the_lock() {
    let t = Test::new()
        .manifest(&jobs_yaml(2, &["slow"]))
        .write_executable("pg_dump", &TIMED_DUMP.replace("sleep 1.2", "sleep 3"));
    let first = t.spawn(&["backup", "j-slow"]);
    assert!(
        support::wait_until(Duration::from_secs(10), || t.path("spans").exists()),
        "the first backup never started"
    );
    let r = t.run(&["backup", "j-slow"]);
    assert_ne!(r.code(), 0, "second run must be refused\n{}", r.stderr());
    let err = r.stderr();
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains("j-slow"), "{err}");
    assert!(err.contains("lock"), "the message names the lock: {err}");
    let out = first.wait_with_output().expect("first");
    assert!(
        out.status.success(),
        "the first run is unaffected: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(
        spans.lines().count(),
        2,
        "the refused run must not dump:\n{spans}"
    );
    assert_eq!(t.files("out").len(), 2, "{:?}", t.files("out"));
    // and once the first is done, the job runs again
    t.run(&["backup", "j-slow"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
}
