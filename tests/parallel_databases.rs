//! `parallel:` on a several-database job: up to N of its databases are backed up at once, each its
//! own backup and record, against the real PostgreSQL. A database that fails fails the run, and
//! the others still complete (a sibling's failure never kills their dumps).

use crate::support;

use crate::support::{PgDropGuard, Test};
use serde_json::Value;

/// A `pg_dump` wrapper that logs `start DB NS` / `end DB NS` to `{dir}/spans` around the real
/// pg_dump (and each `--version` to `{dir}/versions`). It waits 0.4 s before the dump (so that dumps overlap when they may) and, after a dump
/// that succeeded, holds its stdout open for 0.8 s more: long enough that a failing sibling's
/// clean-up would kill it if the two shared a process group.
fn timed_pg_dump(real: &str) -> String {
    format!(
        r#"#!/bin/sh
if [ "$1" = --version ]; then echo asked >> {{dir}}/versions; exec {real} "$@"; fi
db=""
for a in "$@"; do case "$a" in --dbname=*) db="${{a#--dbname=}}";; esac; done
echo "start $db $(date +%s%N)" >> {{dir}}/spans
sleep 0.4
{real} "$@"
rc=$?
if [ $rc -eq 0 ]; then sleep 0.8; fi
echo "end $db $(date +%s%N)" >> {{dir}}/spans
exit $rc
"#
    )
}

/// `n` fresh databases with a few rows each, dropped when the guards go.
fn fixtures(prefix: &str, n: usize) -> (Vec<String>, Vec<PgDropGuard>) {
    let dbs: Vec<String> = (0..n).map(|_| support::pg_fixture(prefix, 50)).collect();
    let guards = dbs.iter().map(|d| PgDropGuard(d.clone())).collect();
    (dbs, guards)
}

fn manifest(dbs: &[String], parallel: Option<u32>) -> String {
    let parallel = parallel.map_or(String::new(), |n| format!(", parallel: {n}"));
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n  many: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: [{}], remote: local, name: '{{db}}-{{date}}-{{time}}'{parallel} }}\n",
        dbs.join(", ")
    )
}

/// The records in `out/many`, by database.
fn records(t: &Test) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = t
        .files("out")
        .into_iter()
        .filter(|f| f.ends_with(".dbstash.json"))
        .map(|f| {
            let text = std::fs::read_to_string(t.path("out").join(&f)).expect("record");
            let rec: Value = serde_json::from_str(&text).expect("record is JSON");
            (
                rec["database"].as_str().unwrap_or_default().to_string(),
                rec,
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The object a record describes holds that database's table.
fn assert_holds_its_table(t: &Test, rec: &Value) {
    let obj = rec["object"].as_str().expect("object");
    let files = t.files("out");
    let key = files
        .iter()
        .find(|f| f.ends_with(obj) && !f.ends_with(".dbstash.json"))
        .unwrap_or_else(|| panic!("no object {obj} in {files:?}"));
    let dump = std::fs::read_to_string(t.path("out").join(key)).expect("object");
    assert!(
        dump.contains("CREATE TABLE public.t") && dump.contains("COPY public.t"),
        "{key} is not a dump of the table"
    );
    assert_eq!(
        rec["size"].as_u64(),
        Some(dump.len() as u64),
        "record size of {key}"
    );
}

fn setup(
    prefix: &str,
    n: usize,
    parallel: Option<u32>,
) -> Option<(Test, Vec<String>, Vec<PgDropGuard>)> {
    if !support::require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432")
        || !support::require(support::have("pg_dump"), "pg_dump")
    {
        return None;
    }
    let real = support::path_of("pg_dump");
    let (dbs, guards) = fixtures(prefix, n);
    let t = Test::new()
        .manifest(&manifest(&dbs, parallel))
        .write_executable("pg_dump", &timed_pg_dump(&real));
    Some((t, dbs, guards))
}

#[test]
fn parallel_two_backs_up_two_databases_at_a_time_each_with_its_record() {
    let Some((t, dbs, _guards)) = setup("par_two", 4, Some(2)) else {
        return;
    };
    // The plan's listed names and times vary; its parallel row does not.
    t.run(&["plan", "--job", "many", "--offline"])
        .stdout_contains(
            "  parallel     2 databases at a time, each its own backup and record  (job)\n",
        )
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `many` has no schedule: it runs only with `dbstash backup many`\n")
        .success();
    // JSON log lines carry timestamps and a run id: the outcome's event is what is stable.
    let r = t
        .run(&["backup", "many"])
        .stderr_contains("\"event\":\"backup_succeeded\"")
        .success();
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(
        spans.lines().count(),
        8,
        "every database dumped once:\n{spans}"
    );
    assert_eq!(
        support::max_concurrency(&spans),
        2,
        "parallel 2:\n{spans}\n{}",
        r.stderr()
    );
    let recs = records(&t);
    let mut want = dbs.clone();
    want.sort();
    assert_eq!(
        recs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        want,
        "one record per database"
    );
    for (_, rec) in &recs {
        assert_holds_its_table(&t, rec);
    }
    // the tool's version is asked once per run, not once per database, and every record has it
    let asked = std::fs::read_to_string(t.path("versions")).expect("versions");
    assert_eq!(
        asked.lines().count(),
        1,
        "pg_dump --version asked {asked:?}"
    );
    for (db, rec) in &recs {
        let v = rec["tool_versions"]["pg_dump"].as_str().unwrap_or_default();
        assert!(v.starts_with("pg_dump (PostgreSQL)"), "{db}: {v:?}");
    }
    // one run: every record carries the same run id
    let run_ids: std::collections::BTreeSet<&str> = recs
        .iter()
        .filter_map(|(_, r)| r["run_id"].as_str())
        .collect();
    assert_eq!(run_ids.len(), 1, "{run_ids:?}");
}

#[test]
fn without_parallel_databases_run_one_after_another() {
    let Some((t, _dbs, _guards)) = setup("par_one", 3, None) else {
        return;
    };
    t.run(&["plan", "--job", "many", "--offline"])
        .stdout_contains("  parallel     1 (one database after another)  (built-in)\n")
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `many` has no schedule: it runs only with `dbstash backup many`\n")
        .success();
    // JSON log lines carry timestamps and a run id: the outcome's event is what is stable.
    t.run(&["backup", "many"])
        .stderr_contains("\"event\":\"backup_succeeded\"")
        .success();
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(spans.lines().count(), 6, "{spans}");
    assert_eq!(
        support::max_concurrency(&spans),
        1,
        "default is sequential:\n{spans}"
    );
    assert_eq!(records(&t).len(), 3);
}

#[test]
fn a_failing_database_fails_the_run_and_its_siblings_still_complete() {
    let Some((mut t, mut dbs, _guards)) = setup("par_fail", 3, Some(2)) else {
        return;
    };
    // The names are backed up in sorted order, `par_missing_*` last: with parallel 2 it fails
    // while the third database's dump is still running (its wrapper holds the pipe 0.8 s more).
    let missing = support::unique("par_missing");
    dbs.insert(1, missing.clone());
    t = t.manifest(&manifest(&dbs, Some(2)));
    let r = t.run(&["backup", "many"]);
    assert_eq!(
        r.code(),
        1,
        "one database failed: the run fails\n{}",
        r.stderr()
    );
    let err = r.stderr();
    assert!(err.contains("1 of 4 backups failed"), "{err}");
    assert!(
        err.contains(&format!("{missing}: pg_dump failed")),
        "the error names the database:\n{err}"
    );
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(support::max_concurrency(&spans), 2, "{spans}");
    let recs = records(&t);
    let mut good: Vec<String> = dbs.iter().filter(|d| **d != missing).cloned().collect();
    good.sort();
    assert_eq!(
        recs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        good,
        "the other databases are complete backups\n{err}"
    );
    for (_, rec) in &recs {
        assert_holds_its_table(&t, rec);
    }
    // nothing of the failed database is left on the remote
    assert!(
        t.files("out").iter().all(|f| !f.contains(&missing)),
        "{:?}",
        t.files("out")
    );
}

#[test]
fn parallel_is_validated() {
    let t = Test::new().manifest(
        "version: 1\nremotes: { local: { path: /tmp/x } }\njobs:\n  a: { engine: postgres, host: 127.0.0.1, database: [x, y], remote: local, parallel: 0 }\n",
    );
    let r = t.run(&["validate"]);
    assert_ne!(r.code(), 0, "parallel 0 is refused\n{}", r.stderr());
    assert!(r.stderr().contains("must be at least 1"), "{}", r.stderr());

    let t = Test::new().manifest(
        "version: 1\nremotes: { local: { path: /tmp/x } }\njobs:\n  a: { engine: postgres, host: 127.0.0.1, database: x, remote: local, parallel: 3 }\n",
    );
    t.run(&["validate"])
        .stdout_is("{dir}/dbstash.yaml: valid (1 job)\n")
        .stderr_is("{dir}/dbstash.yaml:4:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`\n{dir}/dbstash.yaml:4:71: warning: `parallel` has no effect here: the job backs up one database\n")
        .success();

    // from defaults, single-database jobs take it silently
    let t = Test::new().manifest(
        "version: 1\nremotes: { local: { path: /tmp/x } }\ndefaults: { parallel: 3 }\njobs:\n  a: { engine: postgres, host: 127.0.0.1, database: x, remote: local }\n",
    );
    t.run(&["validate"])
        .stdout_is("{dir}/dbstash.yaml: valid (1 job)\n")
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`\n")
        .success();
}
