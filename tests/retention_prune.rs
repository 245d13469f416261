//! Retention: only complete backups of the job itself are candidates (foreign files and another
//! job's backups in the same folder survive, even when their names match), the newest complete
//! backup is never deleted, `max_files` / `max_days` hold, leftovers (objects without a record that
//! a run's intent marker names) are removed only when their run is over (here: older than the
//! timeout window), `prune --dry-run` deletes nothing, and `plan` (online) lists what retention
//! would delete.

use crate::support;

use crate::support::Test;
use std::path::Path;

fn sqlite_db(t: &Test, name: &str) {
    let c = rusqlite::Connection::open(t.path(name)).expect("open");
    c.execute_batch("create table if not exists t(x); insert into t values (1), (2), (3);")
        .expect("fixture");
}

/// Complete backups (object + record naming `job`) in `dir`, sorted by name.
fn complete(dir: &Path, job: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".dbstash.json").map(str::to_string))
        .filter(|obj| dir.join(obj).exists())
        .filter(|obj| {
            std::fs::read(dir.join(format!("{obj}.dbstash.json")))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|rec| rec["job"] == job)
        })
        .collect();
    out.sort();
    out
}

/// Pretend a backup finished `days` ago: its record's `finished`/`started`, and the files' mtimes.
fn age(dir: &Path, object: &str, days: i64) {
    let rec_path = dir.join(format!("{object}.dbstash.json"));
    let mut rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rec_path).expect("record")).expect("json");
    let when = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
    rec["finished"] = serde_json::Value::String(when.to_string());
    rec["started"] = serde_json::Value::String(when.to_string());
    std::fs::write(&rec_path, serde_json::to_vec_pretty(&rec).expect("json")).expect("write");
    touch_ago(&dir.join(object), &format!("{days} days ago"));
    touch_ago(&rec_path, &format!("{days} days ago"));
}

fn touch_ago(p: &Path, ago: &str) {
    let ok = std::process::Command::new("touch")
        .arg("-d")
        .arg(ago)
        .arg(p)
        .status()
        .expect("touch")
        .success();
    assert!(ok, "touch {}", p.display());
}

#[test]
fn max_files_spares_foreign_files_and_another_jobs_backups_in_the_same_folder() {
    // Jobs `a` and `b` back up the SAME database into the SAME folder: their object names match
    // each other's pattern; only the record's `job` field tells them apart. (`validate` refuses
    // one remote shared like this, so `b` reaches the folder through a second name for it, as a
    // second deployment would.)
    let t = Test::new().manifest(
        "version: 1
settings: { temp_dir: '{dir}/tmp' }
remotes: { local: { path: '{dir}/out' }, alias: { path: '{dir}/alias' } }
jobs:
  a: { engine: sqlite, database: '{dir}/app.db', remote: local, path: shared, compress: zstd, retention: { max_files: 2 } }
  b: { engine: sqlite, database: '{dir}/app.db', remote: alias, path: shared, compress: zstd }
",
    );
    std::os::unix::fs::symlink(t.path("out"), t.path("alias")).expect("symlink");
    sqlite_db(&t, "app.db");
    let dir = t.path("out/shared");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // foreign files: unrelated, one that looks like a backup of `a` but has another job's record,
    // and one with an unparsable record
    std::fs::write(dir.join("README.txt"), "not a backup").expect("write");
    std::fs::write(dir.join("app-2020-01-01-000000.sqlite3.zst"), "x").expect("write");
    std::fs::write(
        dir.join("app-2020-01-01-000000.sqlite3.zst.dbstash.json"),
        r#"{"format":"dbstash-record/1","job":"someone-else"}"#,
    )
    .expect("write");
    std::fs::write(dir.join("app-2020-01-02-000000.sqlite3.zst"), "y").expect("write");
    std::fs::write(
        dir.join("app-2020-01-02-000000.sqlite3.zst.dbstash.json"),
        "not json",
    )
    .expect("write");

    for _ in 0..2 {
        t.run(&["backup", "b"]) /* stderr differs between runs of this line */
            .ignore_stderr()
            .success();
    }
    let b_backups = complete(&dir, "b");
    assert_eq!(b_backups.len(), 2);
    // run ids of `a`'s runs, in order (names can be reused once retention freed them)
    let mut a_runs = Vec::new();
    for _ in 0..4 {
        let r = t
            .run(&["backup", "a"]) /* stderr differs between runs of this line */
            .ignore_stderr()
            .success();
        let line = r
            .stderr()
            .lines()
            .find(|l| l.contains("backup_succeeded"))
            .expect("success line")
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        a_runs.push(v["run_id"].as_str().expect("run_id").to_string());
        let now = complete(&dir, "a");
        assert!(now.len() <= 2, "max_files 2 exceeded: {now:?}");
    }
    // the two newest runs of `a` survive
    let kept = complete(&dir, "a");
    let kept_runs: Vec<String> = kept
        .iter()
        .map(|o| {
            let rec: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join(format!("{o}.dbstash.json"))).expect("record"),
            )
            .expect("json");
            rec["run_id"].as_str().expect("run_id").to_string()
        })
        .collect();
    let mut want = a_runs[2..].to_vec();
    want.sort();
    let mut got = kept_runs.clone();
    got.sort();
    assert_eq!(got, want, "kept {kept:?}");
    // everything else is untouched
    assert_eq!(complete(&dir, "b"), b_backups);
    for f in [
        "README.txt",
        "app-2020-01-01-000000.sqlite3.zst",
        "app-2020-01-01-000000.sqlite3.zst.dbstash.json",
        "app-2020-01-02-000000.sqlite3.zst",
        "app-2020-01-02-000000.sqlite3.zst.dbstash.json",
    ] {
        assert!(dir.join(f).exists(), "{f} was deleted");
    }
    // no orphan records: every record in the folder has its object
    for e in std::fs::read_dir(&dir).expect("dir").flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(obj) = n.strip_suffix(".dbstash.json") {
            assert!(dir.join(obj).exists(), "record without object: {n}");
        }
    }
    // list shows only complete backups of each job
    let v: serde_json::Value = serde_json::from_str(
        &t.run(&["list", "--format", "json"])
            /* stdout holds run-specific names, times or sizes */
            .ignore_stdout()
            .success()
            .stdout(),
    )
    .expect("json");
    let listed: Vec<(String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["job"].as_str().unwrap_or("").to_string(),
                e["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed
        .iter()
        .all(|(j, id)| (j == "a" && kept.contains(id)) || (j == "b" && b_backups.contains(id))));
}

#[test]
fn max_days_dry_run_plan_and_the_newest_is_never_deleted() {
    let t = Test::new().manifest(
        "version: 1
settings: { temp_dir: '{dir}/tmp' }
remotes: { local: { path: '{dir}/out' } }
jobs:
  a: { engine: sqlite, database: '{dir}/app.db', remote: local, retention: { max_days: 7 } }
",
    );
    sqlite_db(&t, "app.db");
    for _ in 0..3 {
        t.run(&["backup", "a"]) /* stderr differs between runs of this line */
            .ignore_stderr()
            .success();
    }
    let dir = t.path("out/a");
    let all = complete(&dir, "a");
    assert_eq!(all.len(), 3);
    // all three are old now: 30, 20 and 10 days (the last one made is the newest)
    for (obj, days) in all.iter().zip([30, 20, 10]) {
        age(&dir, obj, days);
    }
    let before = t.files("out");

    // dry run: says what it would delete, deletes nothing
    let r = t
        .run(&["prune", "--dry-run"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    let out = r.stdout();
    assert!(out.contains(&format!("would delete  {}", all[0])), "{out}");
    assert!(out.contains(&format!("would delete  {}", all[1])), "{out}");
    assert!(out.contains(&format!("keep          {}", all[2])), "{out}");
    assert_eq!(t.files("out"), before, "dry run deleted something");

    // plan (online) lists the same
    let plan = t
        .run(&["plan", "--format", "json"])
        // the JSON plan is read field by field below
        .stdout_matches(r#"\A\{\n  "jobs": \[\n"#)
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`\n")
        .success()
        .stdout();
    assert!(plan.contains(&all[0]) && plan.contains(&all[1]), "{plan}");
    let v: serde_json::Value = serde_json::from_str(&plan).expect("json");
    assert_eq!(
        would_delete(&v),
        vec![all[0].clone(), all[1].clone()],
        "{plan}"
    );
    let plan_text = t
        .run(&["plan"])
        .stdout_matches(r"\Ajob a\n  engine       sqlite  \(job\)\n")
        .stdout_contains(RETENTION_LINE)
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`\n")
        .success()
        .stdout();
    assert!(plan_text.contains(&all[0]), "{plan_text}");
    // offline plan does not look
    let offline = t
        .run(&["plan", "--offline"])
        .stdout_matches(r"\Ajob a\n  engine       sqlite  \(job\)\n")
        .stdout_contains(RETENTION_LINE)
        .stdout_contains("  would delete (offline: remote not listed)\n")
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`\n")
        .success()
        .stdout();
    assert!(!offline.contains(&all[0]), "{offline}");
    assert_eq!(t.files("out"), before, "plan deleted something");

    // prune: both old ones go, the newest stays although it is older than max_days too
    t.run(&["prune"])
        .stdout_matches(r"\Ajob a \(delete backups older than 7 days \(the newest is always kept\)\)\n(  \S+ +\S+  \(.*\)\n){3}\z")
        .stdout_contains(&format!("  keep          {}  (newest complete backup)\n", all[2]))
        .stdout_contains(&format!("  deleted       {}  (older than max_days 7)\n", all[1]))
        .stdout_contains(&format!("  deleted       {}  (older than max_days 7)\n", all[0]))
        // JSON log lines carry timestamps; the event is what is stable
        .stderr_matches(&support::logged("retention_deleted"))
        .success();
    assert_eq!(complete(&dir, "a"), vec![all[2].clone()]);
    assert_eq!(t.files("out").len(), 2, "{:?}", t.files("out"));
    // and a prune with nothing to do is a no-op
    t.run(&["prune", "--job", "a"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert_eq!(complete(&dir, "a"), vec![all[2].clone()]);
}

/// Ids the plan's JSON says retention would delete, wherever the renderer puts them.
fn would_delete(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, inside: bool, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let hit = inside || k.contains("delete");
                    walk(x, hit, out);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    walk(x, inside, out);
                }
            }
            serde_json::Value::String(s) if inside => out.push(s.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, false, &mut out);
    out.sort();
    out
}

#[test]
fn prune_removes_old_leftovers_without_a_record_and_keeps_young_ones() {
    let t = Test::new().manifest(
        "version: 1
settings: { temp_dir: '{dir}/tmp' }
remotes: { local: { path: '{dir}/out' } }
jobs:
  a: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: gzip, timeout: 30m }
",
    );
    sqlite_db(&t, "app.db");
    t.run(&["backup", "a"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let dir = t.path("out/a");
    let good = complete(&dir, "a");
    assert_eq!(good.len(), 1);
    // leftovers of crashed runs: objects without a record that a run's intent marker names (here
    // runs of another machine, so judged by age)
    let old = "app-2026-01-01-010101.sqlite3.gz";
    let old2 = "app-2026-01-01-010101-2.sqlite3.gz";
    let young = "app-2026-01-02-020202.sqlite3.gz";
    // foreign files that are old: not the pattern, or the pattern without a marker (a look-alike)
    let foreign = [
        "app-2026-01-01-010101.sqlite3.zst",
        "other-2026-01-01-010101.sqlite3.gz",
        "notes.txt",
        "app-2026-01-03-030303.sqlite3.gz",
    ];
    for f in [old, old2, young].iter().chain(foreign.iter()) {
        std::fs::write(dir.join(f), "partial").expect("write");
    }
    let marker = |object: &str, run: &str| {
        let p = dir.join(format!(".{object}.{run}.dbstash-intent"));
        let intent = serde_json::json!({
            "format": "dbstash-intent/1", "job": "a", "run_id": run, "object": object,
            "host": "elsewhere", "pid": 1, "pid_start": 1, "space": "another-machine",
            "started": "2026-01-01T01:01:01Z",
        });
        std::fs::write(&p, intent.to_string()).expect("write marker");
        p
    };
    let markers = [
        marker(old, "0000000000a1"),
        marker(old2, "0000000000a2"),
        marker(young, "0000000000a3"),
    ];
    // timeout 30m: the window is max(2 x timeout, 1h) = 1h
    for f in [old, old2].iter().chain(foreign.iter()) {
        touch_ago(&dir.join(f), "3 hours ago");
    }
    touch_ago(&markers[0], "3 hours ago");
    touch_ago(&markers[1], "3 hours ago");
    touch_ago(&dir.join(young), "20 minutes ago");
    touch_ago(&markers[2], "20 minutes ago");
    // leftovers are never listed
    let listed = t
        .run(&["list"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    assert!(!listed.contains(old) && !listed.contains(young), "{listed}");

    let dry = t
        .run(&["prune", "--dry-run"])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    assert!(dry.contains(old) && dry.contains(old2), "{dry}");
    assert!(!dry.contains(young), "{dry}");
    assert!(dir.join(old).exists());

    t.run(&["prune"])
        .stdout_matches(r"\Ajob a \(unlimited \(keep everything\)\)\n(  \S+ +\S+  \(.*\)\n){3}\z")
        .stdout_contains(&format!(
            "  deleted       {old}  (left by a run that did not complete)\n"
        ))
        .stdout_contains(&format!(
            "  deleted       {old2}  (left by a run that did not complete)\n"
        ))
        // JSON log lines carry timestamps; the event is what is stable
        .stderr_matches(&support::logged("leftover_deleted"))
        .success();
    assert!(!dir.join(old).exists(), "old leftover kept");
    assert!(!dir.join(old2).exists(), "old leftover kept");
    assert!(!markers[0].exists() && !markers[1].exists(), "markers kept");
    assert!(markers[2].exists(), "the young run's marker deleted");
    assert!(
        dir.join(young).exists(),
        "young leftover (a run in progress?) deleted"
    );
    for f in foreign {
        assert!(dir.join(f).exists(), "foreign {f} deleted");
    }
    assert_eq!(complete(&dir, "a"), good, "the complete backup was touched");
}

#[test]
fn retention_over_rclone_s3_keeps_the_newest_and_foreign_objects() {
    let s3 = support::S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return;
    }
    let s3 = s3.expect("s3");
    // `b` reaches the bucket through a second remote name (`u:`, the same endpoint): `validate`
    // refuses one remote shared by two jobs with one name pattern.
    let alias: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| (k.replace("RCLONE_CONFIG_T_", "RCLONE_CONFIG_U_"), v))
        .collect();
    let t = Test::new()
        .manifest(
            "version: 1
settings: { temp_dir: '{dir}/tmp' }
remotes: { s3: { rclone: 't:bucket' }, s3b: { rclone: 'u:bucket' } }
jobs:
  a: { engine: sqlite, database: '{dir}/app.db', remote: s3, path: shared, retention: { max_files: 1 } }
  b: { engine: sqlite, database: '{dir}/app.db', remote: s3b, path: shared }
",
        )
        .envs(&s3.env())
        .envs(&alias);
    sqlite_db(&t, "app.db");
    let bucket = s3.root.path().join("bucket");
    std::fs::create_dir_all(bucket.join("shared")).expect("mkdir");
    std::fs::write(bucket.join("shared/foreign.bin"), "x").expect("write");
    t.run(&["backup", "b"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let mut a_objects = Vec::new();
    for i in 0..3 {
        // Names are per second, and a name retention has freed may be taken again: three runs
        // within one second (quick with the shared rclone daemon) would reuse the first name and
        // hide which run was the newest. A second apart, each run names a new object.
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        t.run(&["backup", "a"]) /* stderr differs between runs of this line */
            .ignore_stderr()
            .success();
        let objs = s3.objects();
        for o in objs {
            if o.ends_with(".sqlite3") && !a_objects.contains(&o) {
                a_objects.push(o);
            }
        }
    }
    let objs = s3.objects();
    assert!(objs.contains(&"shared/foreign.bin".to_string()), "{objs:?}");
    // b's one backup + a's newest, each with its record, + foreign
    assert_eq!(objs.len(), 5, "{objs:?}");
    let dir = bucket.join("shared");
    assert_eq!(complete(&dir, "a").len(), 1);
    assert_eq!(complete(&dir, "b").len(), 1);
    let newest_a = a_objects
        .last()
        .expect("made")
        .trim_start_matches("shared/")
        .to_string();
    assert_eq!(complete(&dir, "a"), vec![newest_a]);
}

/// How `plan` shows the retention of the `max_days: 7` job.
const RETENTION_LINE: &str =
    "  retention    delete backups older than 7 days (the newest is always kept)  (job)\n";
