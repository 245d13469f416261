//! Names and files that belong to dbstash: two jobs writing into one folder with one name pattern
//! never overwrite each other (a name is claimed, not just checked, on a local folder and on S3),
//! `validate` points at such manifests, local backups and records are private whatever the
//! umask, a record temp file of a dead run is cleared by prune, and only leftovers a dbstash run
//! started are deleted: a look-alike file without one is never touched.

use crate::support;

use crate::support::{Test, S3};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A database on the shared server whose dump names its owner: table `owner_<job>`.
fn owned_db(job: &str) -> support::PgDropGuard {
    let db = support::pg_fixture("names", 2000);
    support::psql(&db, &format!("create table owner_{job}(x int)"));
    support::PgDropGuard(db)
}

fn pg_job(db: &str, rest: &str) -> String {
    format!("{{ engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}, {rest} }}")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every record in `folder`: (record file name, parsed record).
fn records(folder: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(folder)
        .map(|rd| rd.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dbstash.json"))
        .map(|n| {
            let v = serde_json::from_slice(&std::fs::read(folder.join(&n)).expect("read record"))
                .expect("record is json");
            (n, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `backup_succeeded` events per job in a JSON log.
fn successes(log: &str, job: &str) -> usize {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "backup_succeeded" && v["job"] == job)
        .count()
}

/// Every record in `folder` describes its own object's bytes, names the job whose database is
/// in those bytes, and every successful run of each job has its own complete backup.
#[track_caller]
fn assert_every_backup_is_its_own(folder: &Path, log: &str, jobs: &[&str]) {
    let recs = records(folder);
    for (name, rec) in &recs {
        let object = name.strip_suffix(".dbstash.json").expect("suffix");
        assert_eq!(rec["object"], object, "{name}: {rec}");
        let bytes = std::fs::read(folder.join(object)).expect("object of a record");
        assert_eq!(
            rec["size"],
            bytes.len() as u64,
            "{name}: size of other bytes"
        );
        assert_eq!(
            rec["sha256"],
            sha256(&bytes),
            "{name}: sha256 of other bytes"
        );
        let job = rec["job"].as_str().expect("job");
        let text = String::from_utf8_lossy(&bytes);
        for other in jobs {
            assert_eq!(
                text.contains(&format!("owner_{other}")),
                *other == job,
                "{name}: the record of `{job}` holds the dump of `{other}`"
            );
        }
    }
    // the race was on: at least once both jobs rendered the same `{date}-{time}`
    let stamp = |r: &serde_json::Value| -> String {
        r["object"].as_str().unwrap_or("")["nightly-".len()..]
            .chars()
            .take("2026-01-01-000000".len())
            .collect()
    };
    let same_second = recs.iter().any(|(_, a)| {
        recs.iter()
            .any(|(_, b)| a["job"] != b["job"] && stamp(a) == stamp(b))
    });
    assert!(
        same_second,
        "the jobs never ran in the same second: {recs:?}"
    );
    for job in jobs {
        let on_disk = recs.iter().filter(|(_, r)| r["job"] == *job).count();
        let ok = successes(log, job);
        assert!(ok >= 2, "job {job}: only {ok} successes\n{log}");
        assert_eq!(
            on_disk, ok,
            "job {job}: {ok} runs succeeded but {on_disk} backups are on the remote (overwritten)"
        );
    }
}

/// Run the supervisor until each job has succeeded `cycles` times (or a time limit), then stop it.
fn supervise(t: &Test, jobs: &[&str], cycles: usize) -> String {
    let mut child = t.spawn_logged(&["run"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let log = t.log();
        if jobs.iter().all(|j| successes(&log, j) >= cycles) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let stopped = support::wait_until(Duration::from_secs(30), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !stopped {
        let _ = child.kill();
    }
    let _ = child.wait();
    t.log()
}

/// The issue's manifest, except that the two jobs reach the one folder through two remote names
/// (`validate` refuses one remote shared like this): both fire at the same second, with the same
/// `{date}-{time}`, into the same folder.
fn shared_folder_manifest(
    remote_a: &str,
    remote_b: &str,
    remotes: &str,
    dbs: (&str, &str),
) -> String {
    format!(
        "version: 1
settings: {{ temp_dir: '{{dir}}/tmp', max_parallel: 2 }}
remotes: {remotes}
defaults: {{ path: shared, name: 'nightly-{{date}}-{{time}}', schedule: '*/2 * * * * *' }}
jobs:
  prod: {}
  staging: {}
",
        pg_job(dbs.0, &format!("remote: {remote_a}")),
        pg_job(dbs.1, &format!("remote: {remote_b}")),
    )
}

#[test]
fn two_jobs_sharing_a_local_folder_and_name_pattern_never_overwrite_each_other() {
    if !support::pg_ready() {
        return;
    }
    let (prod, staging) = (owned_db("prod"), owned_db("staging"));
    let t = Test::new();
    let out = t.path("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::os::unix::fs::symlink(&out, t.path("alias")).expect("symlink");
    let t = t.manifest(&shared_folder_manifest(
        "one",
        "two",
        "{ one: { path: '{dir}/out' }, two: { path: '{dir}/alias' } }",
        (&prod.0, &staging.0),
    ));
    t.run(&["validate"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    let log = supervise(&t, &["prod", "staging"], 4);
    assert_every_backup_is_its_own(&out.join("shared"), &log, &["prod", "staging"]);
}

#[test]
fn two_jobs_sharing_an_s3_folder_and_name_pattern_never_overwrite_each_other() {
    if !support::pg_ready() {
        return;
    }
    let s3 = S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return;
    }
    let s3 = s3.expect("s3");
    let (prod, staging) = (owned_db("prod"), owned_db("staging"));
    // remote `u:` is a second name for the same endpoint as `t:`
    let mut env = s3.env();
    env.extend(
        s3.env()
            .into_iter()
            .map(|(k, v)| (k.replace("RCLONE_CONFIG_T_", "RCLONE_CONFIG_U_"), v)),
    );
    let t = Test::new()
        .manifest(&shared_folder_manifest(
            "a",
            "b",
            "{ a: { rclone: 't:bucket' }, b: { rclone: 'u:bucket' } }",
            (&prod.0, &staging.0),
        ))
        .envs(&env);
    t.run(&["validate"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    let log = supervise(&t, &["prod", "staging"], 3);
    let folder = s3.root.path().join("bucket/shared");
    assert_every_backup_is_its_own(&folder, &log, &["prod", "staging"]);
    // and dbstash's own check agrees, for every backup of both jobs
    for job in ["prod", "staging"] {
        let listed = t
            .run(&["list", "--job", job, "--format", "json"])
            /* stdout differs between runs of this line */
            .ignore_stdout()
            .success()
            .stdout();
        let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
        for b in v.as_array().expect("array") {
            let id = b["id"].as_str().expect("id");
            t.run(&["verify", job, "--backup", id])
                .stdout_matches(&support::verified_line("none"))
                // log lines carry timestamps; the outcome event is what is stable
                .stderr_matches(&support::logged("verify_succeeded"))
                .success();
        }
    }
}

fn validate(yaml: &str) -> support::Run {
    Test::new().manifest(yaml).run(&["validate"])
}

fn two_jobs(defaults: &str, a: &str, b: &str) -> String {
    format!(
        "version: 1
remotes:
  nas: {{ path: /srv/backups }}
  other: {{ path: /srv/other }}
  s3: {{ rclone: 's3:bucket' }}
defaults: {{ {defaults} }}
jobs:
  prod: {}
  staging: {}
",
        pg_job("app", a),
        pg_job("app_staging", b)
    )
}

#[test]
fn validate_reports_two_jobs_that_can_write_the_same_object() {
    let shared = "path: shared, name: 'nightly-{date}-{time}'";
    let r = validate(&two_jobs(shared, "remote: nas", "remote: nas"))
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2);
    let line = r
        .stderr()
        .lines()
        .find(|l| l.contains("can write the same object"))
        .unwrap_or_else(|| panic!("no collision error: {}", r.stderr()))
        .to_string();
    // located at the second job, with the hint
    assert!(line.contains("dbstash.yaml:9:3: "), "{line}");
    assert!(line.contains("`prod` and `staging`"), "{line}");
    assert!(line.contains("add `{job}`"), "{line}");
    // on S3 too, and pointing at the job's own `name` when it sets one
    let r = validate(&two_jobs(
        "path: shared",
        "remote: s3, name: 'n-{date}'",
        "remote: s3, name: 'n-{date}'",
    ))
    /* stderr holds run-specific names, times or sizes */
    .ignore_stderr()
    .failure(2);
    assert!(
        r.stderr().contains("dbstash.yaml:9:") && r.stderr().contains("add `{job}`"),
        "{}",
        r.stderr()
    );
    let fine = [
        two_jobs(
            shared,
            "remote: nas, name: 'a-{date}-{time}'",
            "remote: nas",
        ),
        two_jobs(
            "path: shared, name: '{job}-{date}-{time}'",
            "remote: nas",
            "remote: nas",
        ),
        two_jobs(
            "path: shared, name: 'n-{date}-{uuid}'",
            "remote: nas",
            "remote: nas",
        ),
        two_jobs(shared, "remote: nas, path: one", "remote: nas"),
        two_jobs(shared, "remote: nas", "remote: other"),
        two_jobs(shared, "remote: nas", "remote: s3"),
    ];
    for m in fine {
        let r = validate(&m);
        assert_eq!(r.code(), 0, "{m}\n{}", r.stderr());
    }
}

#[test]
fn local_backups_records_and_folders_are_private_under_umask_000() {
    if !support::pg_ready() {
        return;
    }
    let db = owned_db("umask");
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out/nas' }} }}\njobs:\n  a: {}\n",
        pg_job(&db.0, "remote: l, path: 'pg/{db}', compress: gzip")
    ));
    // dbstash itself under umask 000, as a service with a careless unit file would be
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_dbstash"))
        .arg("-c")
        .arg(t.path("dbstash.yaml"))
        .args(["backup", "a"])
        .stdin(Stdio::null())
        .output()
        .expect("run dbstash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = t.path(&format!("out/nas/pg/{}", db.0));
    let files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("backup folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert_eq!(support::mode(f), 0o600, "{}", f.display());
    }
    // every folder dbstash created on the way
    for d in ["out", "out/nas", "out/nas/pg"] {
        assert_eq!(support::mode(&t.path(d)), 0o700, "{d}");
    }
    assert_eq!(support::mode(&folder), 0o700);
}

fn touch_ago(p: &Path, ago: &str) {
    let ok = Command::new("touch")
        .arg("-d")
        .arg(ago)
        .arg(p)
        .status()
        .expect("touch")
        .success();
    assert!(ok, "touch {}", p.display());
}

#[test]
fn prune_clears_record_temp_files_of_dead_runs_only() {
    if !support::pg_ready() {
        return;
    }
    let db = owned_db("tmp");
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  a: {}\n",
        pg_job(&db.0, "remote: l")
    ));
    t.run(&["backup", "a"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let folder = t.path("out/a");
    // a pid that is gone, and one that is alive (a process that is not done)
    let mut gone = Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("wait");
    let mut alive = Command::new("sleep").arg("120").spawn().expect("spawn");
    let dead_tmp = folder.join(format!(".{}-x.sql.dbstash.json.tmp-{dead}", db.0));
    let live_tmp = folder.join(format!(".{}-y.sql.dbstash.json.tmp-{}", db.0, alive.id()));
    for p in [&dead_tmp, &live_tmp] {
        std::fs::write(p, "{\"format\":\"dbstash-rec").expect("write");
        touch_ago(p, "2 hours ago");
    }
    let dry = t
        .run(&["prune", "--dry-run"])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    assert!(dry.contains(&format!("tmp-{dead}")), "{dry}");
    assert!(dead_tmp.exists(), "--dry-run deleted");
    t.run(&["prune"])
        .stdout_matches(r"\Ajob a \(unlimited \(keep everything\)\)\n  keep          \S+\.sql  \(newest complete backup\)\n  deleted       [^\n]+\n\z")
        .stdout_contains(&format!(
            "  deleted       .{}-x.sql.dbstash.json.tmp-{dead}  (record temp file of a process that is gone)\n",
            db.0
        ))
        // JSON log lines carry timestamps; the event is what is stable
        .stderr_matches(&support::logged("leftover_deleted"))
        .success();
    let _ = alive.kill();
    let _ = alive.wait();
    assert!(
        !dead_tmp.exists(),
        "the dead run's record temp file was kept"
    );
    assert!(
        live_tmp.exists(),
        "a live process's record temp file was deleted"
    );
    assert_eq!(records(&folder).len(), 1, "the backup was touched");
}

/// pg_dump that sends the real dump, then holds its pipe open: the run stays mid-upload.
const DUMP_THEN_HANG: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then exec /usr/bin/pg_dump --version; fi
/usr/bin/pg_dump \"$@\"
sleep 120
";

#[test]
fn only_leftovers_a_run_started_are_deleted_never_look_alikes() {
    if !support::pg_ready() {
        return;
    }
    let db = owned_db("crash");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  a: {}\n",
            pg_job(&db.0, "remote: l, timeout: 30m")
        ))
        .write_executable("pg_dump", DUMP_THEN_HANG);
    let folder = t.path("out/a");
    std::fs::create_dir_all(&folder).expect("mkdir");
    // a person's file that matches the job's name pattern, with no record, long untouched
    let look_alike = folder.join(format!("{}-2020-01-01-000000.sql", db.0));
    std::fs::write(&look_alike, "-- someone's own dump, keep it\n").expect("write");
    touch_ago(&look_alike, "3 days ago");

    // a run killed (SIGKILL, no cleanup) mid-upload leaves its object behind
    let mut child = t.spawn(&["backup", "a"]);
    let started = support::wait_until(Duration::from_secs(20), || {
        std::fs::read_dir(&folder).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.ends_with(".sql")
                    && !n.starts_with('.')
                    && e.path() != look_alike
                    && e.metadata().is_ok_and(|m| m.len() > 1000)
            })
        })
    });
    assert!(started, "the upload never started: {:?}", t.files("out"));
    child.kill().expect("SIGKILL dbstash");
    let _ = child.wait();
    let dir = t.dir.path().display().to_string();
    assert!(
        support::wait_until(Duration::from_secs(5), || support::processes_with(&dir)
            .is_empty()),
        "{:?}",
        support::processes_with(&dir)
    );
    let objects = |f: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(f)
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = objects(&folder);
    let leftover: Vec<&String> = before
        .iter()
        .filter(|n| {
            n.ends_with(".sql")
                && !n.starts_with('.')
                && **n != look_alike.file_name().unwrap().to_string_lossy()
        })
        .collect();
    assert_eq!(leftover.len(), 1, "{before:?}");
    let leftover = leftover[0].clone();

    let dry = t
        .run(&["prune", "--dry-run"])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    assert!(dry.contains(&leftover), "{dry}");
    assert!(!dry.contains("2020-01-01"), "{dry}");
    t.run(&["prune"])
        .stdout_is(&format!(
            "job a (unlimited (keep everything))\n  deleted       {leftover}  (left by a run that did not complete)\n"
        ))
        // JSON log lines carry timestamps; the event is what is stable
        .stderr_matches(&support::logged("leftover_deleted"))
        .success();
    let after = objects(&folder);
    assert!(
        look_alike.exists(),
        "prune deleted a foreign file: {after:?}"
    );
    assert!(
        !folder.join(&leftover).exists(),
        "the crashed run's object is still there: {after:?}"
    );
    assert_eq!(
        after,
        vec![look_alike
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()],
        "prune left dbstash's own files behind"
    );

    // the next backup run (retention after success) keeps it too
    let t = t.write_executable("pg_dump", "#!/bin/sh\nexec /usr/bin/pg_dump \"$@\"\n");
    t.run(&["backup", "a"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(look_alike.exists(), "a backup run deleted a foreign file");
    assert_eq!(records(&folder).len(), 1);
    t.run(&["prune"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert!(look_alike.exists(), "prune deleted a foreign file");
}

#[test]
fn on_s3_a_crashed_runs_leftover_goes_and_a_look_alike_stays() {
    if !support::pg_ready() {
        return;
    }
    let s3 = S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return;
    }
    let s3 = s3.expect("s3");
    let db = owned_db("crashs3");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ s: {{ rclone: 't:bucket' }} }}\njobs:\n  a: {}\n",
            // A large expected size keeps the stream on an `rcat` of its own, which completes a
            // partial object when dbstash dies (the shared daemon's stream stores nothing then:
            // rclone_rcd's test): the leftover this test needs.
            pg_job(&db.0, "remote: s, timeout: 30m, expected_size: 1GiB")
        ))
        .write_executable("pg_dump", DUMP_THEN_HANG)
        .envs(&s3.env());
    let folder = s3.root.path().join("bucket/a");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let look_alike = format!("{}-2020-01-01-000000.sql", db.0);
    std::fs::write(folder.join(&look_alike), "-- someone's own dump\n").expect("write");
    touch_ago(&folder.join(&look_alike), "3 days ago");

    // SIGKILL dbstash while rclone streams the object
    let mut child = t.spawn(&["backup", "a"]);
    let needle = format!("a/{}-", db.0);
    let uploading = support::wait_until(Duration::from_secs(20), || {
        support::processes_with(&needle)
            .iter()
            .any(|p| p.contains(" rcat ") && !p.contains(".dbstash.json"))
    });
    assert!(
        uploading,
        "no upload: {:?}",
        support::processes_with(&needle)
    );
    std::thread::sleep(Duration::from_millis(1000));
    child.kill().expect("SIGKILL dbstash");
    let _ = child.wait();
    let dir = t.dir.path().display().to_string();
    assert!(
        support::wait_until(Duration::from_secs(5), || support::processes_with(&dir)
            .is_empty()),
        "{:?}",
        support::processes_with(&dir)
    );
    let before = s3.objects();
    t.run(&["prune"])
        .stdout_matches(&format!(
            r"\Ajob a \(unlimited \(keep everything\)\)\n  deleted       {}-[0-9-]+\.sql  \(left by a run that did not complete\)\n\z",
            db.0
        ))
        // JSON log lines carry timestamps; the event is what is stable
        .stderr_matches(&support::logged("leftover_deleted"))
        .success();
    assert!(
        s3.objects().contains(&format!("a/{look_alike}")),
        "prune deleted a foreign file"
    );
    assert_eq!(
        s3.objects(),
        vec![format!("a/{look_alike}")],
        "prune must clear the crashed run's leftovers ({before:?}) and keep the look-alike"
    );
    let t = t.write_executable("pg_dump", "#!/bin/sh\nexec /usr/bin/pg_dump \"$@\"\n");
    t.run(&["backup", "a"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    t.run(&["prune"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    let after = s3.objects();
    assert!(after.contains(&format!("a/{look_alike}")), "{after:?}");
    assert_eq!(
        after.len(),
        3,
        "look-alike + one backup and its record: {after:?}"
    );
}

/// A `directory`-mode run of another machine that died mid-copy: its reserved folder and its hidden
/// in-progress copy go with its marker once the run is over (older than the timeout window); a
/// look-alike folder without a marker stays.
#[test]
fn prune_clears_a_dead_directory_copy_with_its_marker() {
    if !support::pg_ready() {
        return;
    }
    let db = owned_db("dirleft");
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  a: {}\n",
        pg_job(&db.0, "remote: l, mode: directory, timeout: 30m")
    ));
    let folder = t.path("out/a");
    let object = format!("{}-2026-01-01-010101", db.0);
    let look_alike = format!("{}-2026-01-02-020202", db.0);
    let part = format!(".{object}.part-4242");
    for d in [&object, &look_alike, &part] {
        std::fs::create_dir_all(folder.join(d)).expect("mkdir");
    }
    std::fs::write(folder.join(&part).join("toc.dat"), "partial").expect("write");
    std::fs::write(folder.join(&look_alike).join("toc.dat"), "mine").expect("write");
    let marker = folder.join(format!(".{object}.0000000000b1.dbstash-intent"));
    let intent = serde_json::json!({
        "format": "dbstash-intent/1", "job": "a", "run_id": "0000000000b1", "object": object,
        "folder": true, "host": "elsewhere", "pid": 4242, "pid_start": 1, "space": "another-machine",
        "started": "2026-01-01T01:01:01Z",
    });
    std::fs::write(&marker, intent.to_string()).expect("marker");
    touch_ago(&marker, "3 hours ago");
    t.run(&["prune"])
        .stdout_is(&format!(
            "job a (unlimited (keep everything))\n  deleted       {object}  (left by a run that did not complete)\n"
        ))
        // JSON log lines carry timestamps; the event is what is stable
        .stderr_matches(&support::logged("leftover_deleted"))
        .success();
    assert!(
        !marker.exists() && !folder.join(&object).exists(),
        "{:?}",
        t.files("out")
    );
    assert!(
        !folder.join(&part).exists(),
        "the in-progress copy was kept"
    );
    assert!(
        folder.join(&look_alike).join("toc.dat").exists(),
        "a look-alike folder was deleted"
    );
}
