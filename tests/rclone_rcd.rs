//! The shared `rclone rcd`: a backup or a restore starts no rclone of its own (the listing, the
//! intent marker, a small stream, the record, the deletes, a small download go through one
//! long-lived daemon; a stream expected to be large keeps its own `rcat`), the daemon's
//! command line holds no credential, it goes away with dbstash, and a daemon that dies or
//! cannot start leaves dbstash on one rclone process per call, without failing anything.
//! rclone is the real binary behind a wrapper that logs each start's arguments.

use crate::support::{self, Test, S3, S3_KEY, S3_SECRET};
use dbstash::plan::RcloneConf;
use dbstash::storage::rclone::RcloneStorage;
use dbstash::storage::Storage;
use std::path::Path;
use std::time::Duration;

/// An `rclone serve s3` of our own, or `None` (the test skipped) where rclone is missing.
fn s3_server() -> Option<S3> {
    let s3 = S3::start();
    support::require(s3.is_some(), "rclone serve s3").then_some(s3)?
}

/// A wrapper that appends its arguments to `log` and runs the real rclone (or, with `fail_rcd`,
/// exits 1 when asked for `rcd`).
fn wrapper(log: &Path, fail_rcd: bool) -> String {
    let real = support::path_of("rclone");
    let refuse = if fail_rcd {
        "case \" $* \" in *' rcd '*) echo 'no daemon today' >&2; exit 1;; esac\n"
    } else {
        ""
    };
    format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\n{refuse}exec '{real}' \"$@\"\n",
        log.display()
    )
}

/// The rclone subcommand of each logged start (its first argument that is not a flag).
fn subcommands(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').find(|a| !a.starts_with("--")))
        .map(str::to_string)
        .collect()
}

fn count(subs: &[String], name: &str) -> usize {
    subs.iter().filter(|s| *s == name).count()
}

#[test]
fn a_backup_starts_one_rclone_the_shared_daemon_which_carries_its_stream_too() {
    let Some(s3) = s3_server() else {
        return;
    };
    let t = Test::new()
        .manifest(
            "version: 1\nsettings: { temp_dir: '{dir}/tmp', rclone: { binary: '{dir}/bin/rclone' } }\n\
             remotes: { r: { rclone: 't:bucket' } }\n\
             jobs:\n  a: { engine: sqlite, database: '{dir}/a.db', remote: r, schedule: '@daily' }\n  \
             big: { engine: sqlite, database: '{dir}/a.db', remote: r, expected_size: 100MiB }\n",
        )
        .envs(&s3.env());
    let log = t.path("rclone.log");
    let t = t.write_executable("rclone", &wrapper(&log, false));
    let c = rusqlite::Connection::open(t.path("a.db")).unwrap();
    c.execute_batch("create table t(x); insert into t values (1);")
        .unwrap();
    for _ in 0..2 {
        t.run(&["backup", "a"])
            .ignore_stdout()
            .ignore_stderr()
            .success();
    }
    let subs = subcommands(&log);
    // Per backup (one dbstash process each): the daemon only; a small stream goes through it.
    // Before the daemon: rcat (marker), lsjson (claim), rcat (data), rcat (record), deletefile
    // (marker); before the stream went through it, the daemon and the data's rcat.
    assert_eq!(count(&subs, "rcd"), 2, "{subs:?}");
    assert_eq!(subs.len(), 2, "nothing else starts rclone: {subs:?}");
    // The two backups and their records are really there, listed through the daemon.
    let objects = s3.objects();
    assert_eq!(
        objects
            .iter()
            .filter(|o| o.ends_with(".dbstash.json"))
            .count(),
        2,
        "{objects:?}"
    );
    assert!(
        !objects.iter().any(|o| o.contains("dbstash-intent")),
        "intent markers deleted: {objects:?}"
    );
    // Credentials reach the daemon by its environment, never its argv.
    let argv = std::fs::read_to_string(&log).unwrap();
    assert!(argv.lines().any(|l| l.starts_with("rcd ")), "{argv}");
    assert!(
        !argv.contains(S3_SECRET) && !argv.contains(S3_KEY),
        "{argv}"
    );
    // The daemon went away with dbstash, its private folder too.
    let dir = t.dir.path().display().to_string();
    support::assert_no_process_with(&dir);
    assert_eq!(daemon_folders(&t), Vec::<String>::new());
    // What went through the daemon is whole: its bytes match its record. Read back through the
    // daemon too: no `rclone cat`.
    std::fs::remove_file(&log).unwrap();
    t.run(&["verify", "a"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    let subs = subcommands(&log);
    assert_eq!(subs, ["rcd"], "{subs:?}");
    // A stream expected to be large keeps an rcat of its own.
    std::fs::remove_file(&log).unwrap();
    t.run(&["backup", "big"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    let subs = subcommands(&log);
    assert_eq!(subs, ["rcd", "rcat"], "{subs:?}");
}

/// The daemon folders (`temp_dir/rclone/<id>`) left in a test's temp_dir.
fn daemon_folders(t: &Test) -> Vec<String> {
    support::names_in(&t.path("tmp/rclone"))
}

#[test]
fn a_dbstash_killed_with_sigkill_takes_its_daemon_along_and_the_next_run_sweeps_its_folder() {
    let Some(s3) = s3_server() else {
        return;
    };
    // About 20 MB of SQL: 20 s at 1 MB/s, time enough to kill it mid-upload.
    let db = support::pg_fixture("rcd_kill", 400_000);
    let _g = support::PgDropGuard(db.clone());
    let job = support::unique("rcdkill");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', rclone: {{ extra_args: ['--bwlimit', '1M'] }} }}\n\
             remotes:\n  s3: {{ rclone: 't:bucket' }}\n\
             jobs:\n  {job}: {{ engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}, remote: s3 }}\n"
        ))
        .envs(&s3.env());
    let mut child = t.spawn(&["backup", &job]);
    let upload = support::one_data_upload(&job, Duration::from_secs(60), Duration::from_secs(1));
    assert!(upload.is_ok(), "no data upload for {job}: {upload:?}");
    let dir = t.dir.path().display().to_string();
    let daemon = || {
        support::processes_with(&dir)
            .into_iter()
            .filter(|p| p.contains(" rcd "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        daemon().len(),
        1,
        "the daemon serves the run: {:?}",
        support::processes_with(&dir)
    );
    let left = daemon_folders(&t);
    assert_eq!(left.len(), 1, "{left:?}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    // The parent-death signal takes the daemon along; its folder cannot go with it.
    assert!(
        support::wait_until(Duration::from_secs(10), || daemon().is_empty()),
        "{:?}",
        daemon()
    );
    assert_eq!(daemon_folders(&t), left, "a SIGKILL leaves the folder");

    // The next command that sweeps (prune here) removes the dead daemon's folder, and only it.
    std::fs::create_dir_all(t.path("tmp/rclone/not-ours")).unwrap();
    t.run(&["prune"]).ignore_stdout().ignore_stderr().success();
    assert_eq!(daemon_folders(&t), vec!["not-ours".to_string()]);
}

/// A dbstash killed while its stream goes through the daemon: the daemon dies with it before the
/// body is closed, so rclone stores nothing (an `rcat` of its own, seeing end-of-file, would have
/// stored a partial object for `prune` to find). Only the run's intent marker is left, and `prune`
/// removes it.
#[test]
fn a_dbstash_killed_mid_stream_through_the_daemon_leaves_no_object() {
    let Some(s3) = s3_server() else {
        return;
    };
    let job = support::unique("rcdstream");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\n\
             remotes:\n  s3: {{ rclone: 't:bucket' }}\n\
             jobs:\n  {job}: {{ engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: nodb, remote: s3 }}\n"
        ))
        // 100 kB ten times a second, then the pipe held open: still streaming when killed.
        .write_executable(
            "pg_dump",
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi\n\
             i=0; while [ $i -lt 300 ]; do head -c 100000 /dev/urandom; sleep 0.1; i=$((i+1)); done\n",
        )
        .envs(&s3.env());
    let dir = t.dir.path().display().to_string();
    let mut child = t.spawn(&["backup", &job]);
    let streaming = || {
        let ps = support::processes_with(&dir);
        ps.iter().any(|p| p.contains(" rcd ")) && ps.iter().any(|p| p.contains("bin/pg_dump"))
    };
    assert!(
        support::wait_until(Duration::from_secs(30), streaming),
        "{:?}",
        support::processes_with(&dir)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        support::data_uploads(&job).is_empty(),
        "the stream has an rcat of its own: {:?}",
        support::processes_with(&job)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    assert!(
        support::wait_until(Duration::from_secs(10), || support::processes_with(&dir)
            .is_empty()),
        "{:?}",
        support::processes_with(&dir)
    );
    let left = s3.objects();
    assert!(
        left.iter().all(|o| o.contains(".dbstash-intent")),
        "only the intent marker may be left: {left:?}"
    );
    t.run(&["prune"]).ignore_stdout().ignore_stderr().success();
    assert_eq!(s3.objects(), Vec::<String>::new());
}

/// A storage on the test server through the logging wrapper.
fn store(dir: &Path, s3: &S3, fail_rcd: bool) -> (RcloneStorage, RcloneConf, std::path::PathBuf) {
    let log = dir.join("rclone.log");
    let bin = dir.join("rclone");
    std::fs::write(&bin, wrapper(&log, fail_rcd)).unwrap();
    let mut p = std::fs::metadata(&bin).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(&bin, p).unwrap();
    let conf = RcloneConf {
        binary: bin.display().to_string(),
        config_file: Some(s3.write_rclone_conf(&dir.join("rclone.conf"))),
        extra_args: vec![],
    };
    (
        RcloneStorage::new("t:bucket".into(), conf.clone()),
        conf,
        log,
    )
}

/// Every small operation, checked against what the server holds.
async fn small_calls_work(store: &RcloneStorage, s3: &S3, tag: &str) {
    let key = format!("k/{tag}.json");
    store
        .write_small(&key, tag.as_bytes())
        .await
        .expect("write");
    assert_eq!(store.read_small(&key).await.expect("read"), tag.as_bytes());
    let listed: Vec<String> = store
        .list("k")
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(listed.contains(&format!("{tag}.json")), "{listed:?}");
    assert!(s3.objects().iter().any(|o| o.ends_with(&key)));
    store.delete(&key).await.expect("delete");
    assert!(!s3.objects().iter().any(|o| o.ends_with(&key)));
    assert!(
        store.read_small(&key).await.is_err(),
        "read of a deleted key"
    );
}

/// A storage through the wrapper (see `store`) whose small calls, under `label`, worked; and
/// the subcommands the wrapper logged for them.
async fn used_store(
    dir: &Path,
    s3: &S3,
    fail_rcd: bool,
    label: &str,
) -> (RcloneStorage, RcloneConf, std::path::PathBuf, Vec<String>) {
    let (store, conf, log) = store(dir, s3, fail_rcd);
    small_calls_work(&store, s3, label).await;
    let subs = subcommands(&log);
    (store, conf, log, subs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_falls_back_to_one_rclone_per_call() {
    let Some(s3) = s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, conf, log, subs) = used_store(dir.path(), &s3, false, "first").await;
    assert_eq!(subs, ["rcd"], "all small calls went through the daemon");

    let conf_s = dir.path().display().to_string();
    let daemon = support::pids_with(&conf_s);
    assert_eq!(daemon.len(), 1, "{:?}", support::processes_with(&conf_s));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    small_calls_work(&store, &s3, "second").await;
    let subs = subcommands(&log);
    assert_eq!(count(&subs, "rcd"), 1, "not restarted: {subs:?}");
    for sub in ["rcat", "cat", "lsjson", "deletefile"] {
        assert!(
            count(&subs, sub) >= 1,
            "{sub} per call after the loss: {subs:?}"
        );
    }
    dbstash::storage::rcd::stop_for(&conf);
    support::assert_no_process_with(&conf_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_cannot_start_leaves_one_rclone_per_call() {
    let Some(s3) = s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_store, conf, _log, subs) = used_store(dir.path(), &s3, true, "only").await;
    assert_eq!(count(&subs, "rcd"), 1, "tried once: {subs:?}");
    assert!(count(&subs, "lsjson") >= 1, "{subs:?}");
    dbstash::storage::rcd::stop_for(&conf);
}

/// A rotated `rclone.config_file` reaches the daemon's next call, as it reaches the next per-call
/// rclone: the daemon keeps no remote built from the old file (a supervisor keeps one daemon for
/// days, and revoked credentials must stop working, new ones start working, without a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_config_file_reaches_the_daemons_next_call() {
    let Some(s3) = s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, conf, _log, subs) = used_store(dir.path(), &s3, false, "before").await;
    assert_eq!(subs, ["rcd"], "the calls went through the daemon");
    let file = conf.config_file.clone().expect("config file");
    let good = std::fs::read_to_string(&file).unwrap();
    assert!(good.contains(S3_SECRET), "{good}");
    std::fs::write(&file, good.replace(S3_SECRET, "WRONGWRONGWRONGWRONG1")).unwrap();
    assert!(
        store.list("k").await.is_err(),
        "a listing with revoked credentials must fail"
    );
    std::fs::write(&file, &good).unwrap();
    store
        .list("k")
        .await
        .expect("the restored credentials work again");
    dbstash::storage::rcd::stop_for(&conf);
}
