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

/// A wrapper around the real rclone that appends each start's arguments to `log`.
fn logging_rclone(log: &std::path::Path) -> String {
    let real = support::path_of("rclone");
    format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{real}' \"$@\"\n",
        log.display()
    )
}

/// An `rclone serve s3` of our own and `n` fresh databases, or `None` (the test skipped).
fn s3_fixtures(prefix: &str, n: usize) -> Option<(support::S3, Vec<String>, Vec<PgDropGuard>)> {
    if !support::require(
        support::pg_available() && support::have("rclone"),
        "PostgreSQL and rclone",
    ) {
        return None;
    }
    let s3 = support::S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return None;
    }
    let (dbs, guards) = fixtures(prefix, n);
    Some((s3?, dbs, guards))
}

/// The bucket's files (relative paths) under `folder`.
fn s3_files(s3: &support::S3, folder: &str) -> Vec<String> {
    s3.objects()
        .into_iter()
        .filter(|o| o.starts_with(&format!("{folder}/")))
        .collect()
}

/// Every record under `folder` in the bucket describes its own object's bytes; returns how many.
#[track_caller]
fn assert_records_describe_their_objects(s3: &support::S3, folder: &str) -> usize {
    use sha2::{Digest, Sha256};
    let root = s3.root.path().join("bucket");
    let recs: Vec<String> = s3_files(s3, folder)
        .into_iter()
        .filter(|f| f.ends_with(".dbstash.json"))
        .collect();
    for r in &recs {
        let rec: Value =
            serde_json::from_slice(&std::fs::read(root.join(r)).expect("record")).expect("json");
        let object = r.strip_suffix(".dbstash.json").expect("suffix");
        assert!(
            object.ends_with(rec["object"].as_str().unwrap_or("?")),
            "{r}: {rec}"
        );
        let bytes = std::fs::read(root.join(object)).expect("the object of a record");
        assert_eq!(rec["size"], bytes.len() as u64, "{r}: size of other bytes");
        assert_eq!(
            rec["sha256"],
            hex::encode(Sha256::digest(&bytes)),
            "{r}: sha256 of other bytes"
        );
    }
    recs.len()
}

/// The databases' names are claimed in batches sharing one listing of the job's folder, not one
/// listing per database (one rclone process per call here, so each listing is one `lsjson`).
/// Before: one listing per database for its claim (8), plus retention's.
#[test]
fn a_several_database_job_lists_its_folder_once_per_batch_of_claims_not_once_per_database() {
    let Some((s3, dbs, _guards)) = s3_fixtures("par_batch", 8) else {
        return;
    };
    let t = Test::new();
    let log = t.path("rclone.log");
    let t = t
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', rclone: {{ binary: '{{dir}}/bin/rclone' }} }}\nremotes: {{ r: {{ rclone: 't:bucket' }} }}\njobs:\n  many: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: [{}], remote: r, path: many, parallel: 2 }}\n",
            dbs.join(", ")
        ))
        .write_executable("rclone", &logging_rclone(&log))
        .envs(&s3.env())
        .env("DBSTASH_RCLONE_RCD", "0");
    let r = t.run(&["backup", "many"]).ignore_stdout().ignore_stderr();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let starts = std::fs::read_to_string(&log).expect("rclone log");
    let listings = starts
        .lines()
        .filter(|l| l.split(' ').find(|a| !a.starts_with("--")) == Some("lsjson"))
        .count();
    // Batches of 2, 4, 2 (the first as large as `parallel`, then doubling): three claim
    // listings, then retention's once for the job.
    assert_eq!(
        listings,
        4,
        "listings for {} databases (3 batches of claims, retention's one):\n{starts}",
        dbs.len()
    );
    assert_eq!(
        assert_records_describe_their_objects(&s3, "many"),
        dbs.len()
    );
    let files = s3_files(&s3, "many");
    assert!(
        !files.iter().any(|f| f.contains("dbstash-intent")),
        "every intent marker is gone at the end of the run: {files:?}"
    );
    for db in &dbs {
        assert!(
            files
                .iter()
                .any(|f| f.contains(db.as_str()) && f.ends_with(".dbstash.json")),
            "{db} has its backup: {files:?}"
        );
    }
}

/// Two runs of two several-database jobs sharing one S3 folder and name pattern (`{db}`: every
/// run wants the same names), at once, twice: each backup gets a name of its own (claimed in
/// batches, or on its own when a batch lost it), every record describes its own bytes, and no
/// intent marker is left.
#[test]
fn two_several_database_runs_sharing_an_s3_folder_never_take_the_same_name() {
    let Some((s3, dbs, _guards)) = s3_fixtures("par_race", 4) else {
        return;
    };
    // remote `u:` is a second name for the same endpoint as `t:` (validate refuses one remote
    // shared like this)
    let mut env = s3.env();
    env.extend(
        s3.env()
            .into_iter()
            .map(|(k, v)| (k.replace("RCLONE_CONFIG_T_", "RCLONE_CONFIG_U_"), v)),
    );
    let list = dbs.join(", ");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ a: {{ rclone: 't:bucket' }}, b: {{ rclone: 'u:bucket' }} }}\ndefaults: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: [{list}], path: shared, name: '{{db}}', parallel: 2 }}\njobs:\n  one: {{ remote: a }}\n  two: {{ remote: b }}\n"
        ))
        .envs(&env);
    for round in 0..2 {
        let runs = [t.spawn(&["backup", "one"]), t.spawn(&["backup", "two"])];
        for c in runs {
            let out = c.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // 2 jobs × 4 databases × 2 rounds, none overwritten
    assert_eq!(assert_records_describe_their_objects(&s3, "shared"), 16);
    let files = s3_files(&s3, "shared");
    assert!(
        !files.iter().any(|f| f.contains("dbstash-intent")),
        "{files:?}"
    );
    for db in &dbs {
        let mine = files
            .iter()
            .filter(|f| f.contains(db.as_str()) && f.ends_with(".dbstash.json"))
            .count();
        assert_eq!(mine, 4, "{db}: {files:?}");
    }
}

/// `parallel:` bounds the dumps, not the remotes' work: with `parallel: 1` the next database's dump
/// starts as soon as the one before has ended, while that one still commits its upload and writes
/// its record. Never two dumps at once. The daemon's S3 requests are slowed (`--tpslimit 4`, the
/// stream stays on the daemon) so that a record is written well after its dump ended; rclone's log
/// and the dumps' starts go to one file, in the order they happened. Before: each database's
/// record came before the next database's dump started.
#[test]
fn with_parallel_one_a_database_writes_its_record_while_the_next_one_dumps() {
    let Some((s3, dbs, _guards)) = s3_fixtures("par_tail", 3) else {
        return;
    };
    let real = support::path_of("pg_dump");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', rclone: {{ extra_args: ['--tpslimit', '4', '-v', '--log-file={{dir}}/order'] }} }}\nremotes: {{ r: {{ rclone: 't:bucket' }} }}\njobs:\n  many: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: [{}], remote: r, path: many, parallel: 1 }}\n",
            dbs.join(", ")
        ))
        .write_executable(
            "pg_dump",
            &format!(
                r#"#!/bin/sh
if [ "$1" = --version ]; then exec {real} "$@"; fi
db=""
for a in "$@"; do case "$a" in --dbname=*) db="${{a#--dbname=}}";; esac; done
echo "dump-start $db" >> {{dir}}/order
echo "start $db $(date +%s%N)" >> {{dir}}/spans
{real} "$@"
rc=$?
echo "end $db $(date +%s%N)" >> {{dir}}/spans
exit $rc
"#
            ),
        )
        .envs(&s3.env());
    t.run(&["backup", "many"])
        .stderr_contains("\"event\":\"backup_succeeded\"")
        .success();
    let spans = std::fs::read_to_string(t.path("spans")).expect("spans");
    assert_eq!(support::max_concurrency(&spans), 1, "{spans}");
    let order = std::fs::read_to_string(t.path("order")).expect("order");
    // Which database each event is about: a dump's start, or its record's write.
    let events: Vec<(String, &str)> = order
        .lines()
        .filter_map(|l| {
            let db = dbs.iter().find(|d| l.contains(d.as_str()))?;
            if l.starts_with("dump-start ") {
                Some(("dump".to_string(), db.as_str()))
            } else if l.contains(".dbstash.json") && l.contains("Copied") {
                Some(("record".to_string(), db.as_str()))
            } else {
                None
            }
        })
        .collect();
    let at = |kind: &str, db: &str| {
        events
            .iter()
            .position(|(k, d)| k == kind && *d == db)
            .unwrap_or_else(|| panic!("no {kind} of {db} in:\n{order}"))
    };
    // The order the databases were dumped in.
    let mut dumped: Vec<&str> = dbs.iter().map(String::as_str).collect();
    dumped.sort_by_key(|d| at("dump", d));
    for pair in dumped.windows(2) {
        assert!(
            at("dump", pair[1]) < at("record", pair[0]),
            "{}'s dump started only after {}'s record:\n{events:?}",
            pair[1],
            pair[0]
        );
    }
    assert_eq!(assert_records_describe_their_objects(&s3, "many"), 3);
}
