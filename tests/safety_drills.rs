//! Safety of drills and restore temp space: a drill (`verify --restore-to`) never restores into,
//! nor drops, a MongoDB database it did not create; the folders a killed restore left under
//! `temp_dir/restore/` (an unpacked backup, option files) are removed by the next restore or
//! `prune`, and a live restore's folder never is.
//!
//! MongoDB cannot be installed here: its tools are fake scripts that record what they were asked.

use crate::support;
use crate::support::{require, Test};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn manifest(jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

// ---------------------------------------------------------------- MongoDB drills (fake tools)

const MONGODUMP: &str = "#!/bin/sh\nprintf '\\155\\342\\231\\201archive'\n";
/// mongorestore: records every call's argv.
const MONGORESTORE: &str =
    "#!/bin/sh\nprintf '%s\\n' \"$@\" >> {dir}/mongorestore.argv\ncat > /dev/null\n";
/// mongosh: records each script in sh/N; lists two collections while `{dir}/occupied` exists
/// (none otherwise), answers counts, and records a drop in `{dir}/dropped`.
const MONGOSH: &str = r#"#!/bin/sh
n=$(ls {dir}/sh 2>/dev/null | wc -l); mkdir -p {dir}/sh/$n
for a in "$@"; do case "$a" in *.js) cp "$a" {dir}/sh/$n/script ;; esac; done
s={dir}/sh/$n/script
if grep -q dbstash-collections $s; then
  if [ -e {dir}/occupied ]; then printf 'dbstash-collections 2\norders\nusers\n'; else printf 'dbstash-collections 0\n'; fi
fi
if grep -q countDocuments $s; then printf 'orders\t12\nusers\t3\n'; fi
if grep -q dropDatabase $s; then cat $s >> {dir}/dropped; fi
"#;

fn mongo_test() -> Test {
    Test::new()
        .manifest(&manifest(
            "  m: { engine: mongo, uri: 'mongodb://app:pa55word@127.0.0.1:27017/shop', remote: local, compress: gzip }\n",
        ))
        .write_executable("mongodump", MONGODUMP)
        .write_executable("mongorestore", MONGORESTORE)
        .write_executable("mongosh", MONGOSH)
}

#[test]
fn a_mongo_drill_into_a_database_with_collections_is_refused_and_touches_nothing() {
    let t = mongo_test();
    t.run(&["backup", "m"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    std::fs::write(t.path("occupied"), "").unwrap();
    let r = t
        .run(&[
            "verify",
            "m",
            "--restore-to",
            "mongodb://app:pa55word@127.0.0.1:27017/shop_live",
        ])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    let stderr = r.stderr();
    let err: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("dbstash:") && !l.starts_with("dbstash: warning"))
        .collect();
    assert_eq!(err.len(), 1, "one error line: {stderr}");
    assert!(
        r.stderr()
            .contains("shop_live already holds 2 collection(s); a drill restores only into a database it creates"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
    assert!(!r.stderr().contains("pa55word"), "{}", r.stderr());
    assert!(
        !t.path("mongorestore.argv").exists(),
        "mongorestore ran into a database the drill did not create"
    );
    assert!(
        !t.path("dropped").exists(),
        "the drill dropped a database it did not create"
    );
    // The one mongosh call was the listing of the target's collections.
    let script = std::fs::read_to_string(t.path("sh/0/script")).unwrap();
    assert!(
        script.contains("getCollectionNames") && script.contains("/shop_live"),
        "{script}"
    );
    assert!(
        !t.path("sh/1").exists(),
        "more mongosh calls than the check"
    );
}

#[test]
fn a_mongo_drill_into_an_empty_database_restores_counts_and_drops_it() {
    let t = mongo_test();
    t.run(&["backup", "m"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let r = t
        .run(&["verify", "m", "--restore-to", "shop_scratch"])
        .stdout_matches(r"\A  orders +12\n  users +3\ndrill of job m backup \S+\.archive\.gz: 2 collections, 15 documents restored into mongo app@127\.0\.0\.1:27017/shop_scratch \(dropped again\) in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("drill_succeeded"))
        .success();
    assert!(
        r.stdout()
            .contains("2 collections, 15 documents restored into mongo app@127.0.0.1:27017/shop_scratch (dropped again)"),
        "{}",
        r.stdout()
    );
    let argv = std::fs::read_to_string(t.path("mongorestore.argv")).unwrap();
    assert!(argv.contains("--nsTo=shop_scratch.*"), "{argv}");
    let dropped = std::fs::read_to_string(t.path("dropped")).unwrap();
    assert!(dropped.contains("/shop_scratch"), "{dropped}");
    // A mongosh that cannot list the collections proves nothing: refused, nothing restored.
    std::fs::remove_file(t.path("mongorestore.argv")).unwrap();
    std::fs::remove_file(t.path("dropped")).unwrap();
    let mute = t.path("bin/mongosh");
    std::fs::write(&mute, "#!/bin/sh\nexit 0\n").unwrap();
    let r = t
        .run(&["verify", "m", "--restore-to", "shop_scratch"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("cannot tell whether"), "{}", r.stderr());
    assert!(!t.path("mongorestore.argv").exists());
    assert!(!t.path("dropped").exists());
}

// ---------------------------------------------------------------- restore temp folders

/// pg_restore that never finishes: records its pid, then waits (killed by the test).
/// Hangs on a restore; the roles check before anything is restored (`--list`, then
/// `--use-list=…`, neither touching a server) goes to the real pg_restore: only the restore is slow.
const SLOW_PG_RESTORE: &str = "#!/bin/sh\ncase \" $* \" in *' --list '*|*' --use-list='*) exec /usr/lib/postgresql/15/bin/pg_restore \"$@\";; esac\necho $$ >> {dir}/pg_restore.pids\nexec sleep 120\n";

/// The folders under `tmp/restore/`.
fn restore_folders(t: &Test) -> Vec<String> {
    let dir = t.path("tmp/restore");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn pids(t: &Test) -> Vec<String> {
    std::fs::read_to_string(t.path("pg_restore.pids"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Kills the fake pg_restores this test started (by pid) when it ends, failing or not.
struct KillPids(std::path::PathBuf);

impl Drop for KillPids {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(&self.0).unwrap_or_default().lines() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

/// Start `restore app --to DB` and wait until its (slow) pg_restore runs: the unpacked backup
/// is then in its folder.
fn start_slow_restore(t: &Test, db: &str, nth: usize) -> std::process::Child {
    let child = t.spawn(&["restore", "app", "--to", db, "--yes"]);
    assert!(
        support::wait_until(Duration::from_secs(60), || pids(t).len() == nth),
        "pg_restore #{nth} never started"
    );
    child
}

/// The restore folders holding an unpacked backup (`dump/`).
fn with_dump(t: &Test, folders: &[String]) -> Vec<String> {
    folders
        .iter()
        .filter(|f| t.path("tmp/restore").join(f).join("dump").is_dir())
        .cloned()
        .collect()
}

fn gone(t: &Test, folders: &[String]) -> bool {
    folders
        .iter()
        .all(|f| !Path::new(&t.path("tmp/restore").join(f)).exists())
}

#[test]
fn a_killed_restores_folders_are_removed_by_the_next_restore_and_prune_but_a_live_ones_are_kept() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("sdsrc", 2000);
    let _g = support::PgDropGuard(src.clone());
    let (to1, to2) = (support::unique("sdto"), support::unique("sdto"));
    let (_g1, _g2) = (
        support::PgDropGuard(to1.clone()),
        support::PgDropGuard(to2.clone()),
    );
    let t = Test::new()
        .manifest(&manifest(&format!(
            "  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, mode: tar, compress: zstd }}\n"
        )))
        .write_executable("pg_restore", SLOW_PG_RESTORE);
    let _k = KillPids(t.path("pg_restore.pids"));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();

    // A: killed while pg_restore reads the unpacked backup.
    let mut a = start_slow_restore(&t, &to1, 1);
    let a_folders = restore_folders(&t);
    assert_eq!(with_dump(&t, &a_folders).len(), 1, "{a_folders:?}");
    a.kill().unwrap(); // SIGKILL: no destructor runs
    a.wait().unwrap();
    assert_eq!(restore_folders(&t), a_folders, "SIGKILL left the folders");

    // B: the next restore removes A's folders at its start, and keeps its own.
    let mut b = start_slow_restore(&t, &to2, 2);
    assert!(
        gone(&t, &a_folders),
        "the next restore kept a dead restore's folders: {:?}",
        restore_folders(&t)
    );
    let b_folders = restore_folders(&t);
    assert_eq!(with_dump(&t, &b_folders).len(), 1, "{b_folders:?}");

    // prune while B lives: B's folders are kept.
    t.run(&["prune"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert_eq!(
        restore_folders(&t),
        b_folders,
        "prune removed a live restore's folder"
    );
    assert!(b.try_wait().unwrap().is_none(), "restore B ended early");

    // B killed: the next prune removes its folders.
    b.kill().unwrap();
    b.wait().unwrap();
    t.run(&["prune"])
        .stdout_matches(r"\Ajob app \(unlimited \(keep everything\)\)\n  keep          \S+\.tar\.zst  \(newest complete backup\)\n\z")
        // log lines carry timestamps and the dead run's folder names
        .stderr_matches(&support::logged("stale_run_removed"))
        .success();
    assert!(
        gone(&t, &b_folders),
        "prune kept a dead restore's folders: {:?}",
        restore_folders(&t)
    );
    assert!(restore_folders(&t).is_empty(), "{:?}", restore_folders(&t));
}
