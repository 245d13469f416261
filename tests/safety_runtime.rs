//! Run-time safety: what a killed run leaves in `temp_dir/runs/` is removed by the job's next run,
//! `prune` and the supervisor at start (never a live run's folder, never anything outside
//! `runs/`); temp files are private whatever the umask; a post-hook's background child dies with
//! the run; a dead S3 endpoint fails a streaming upload within a minute or so.

use crate::support;

use crate::support::{processes_with, Run, Test, S3};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A `pg_dump` that runs the real one, then — while the file `slow` names a word of its argv
/// (the database) — holds the run open: the dump's folder is complete on disk meanwhile.
const SLOW_PG_DUMP: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then exec /usr/bin/pg_dump --version; fi
/usr/bin/pg_dump \"$@\" || exit $?
while [ -e {dir}/slow ] && echo \"$@\" | grep -q -- \"$(cat {dir}/slow)\"; do sleep 0.1; done
";

fn pg_job(job: &str, db: &str, extra: &str) -> String {
    format!(
        "  {job}: {{ engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}, remote: local, mode: tar{extra} }}\n"
    )
}

fn manifest(jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n{jobs}"
    )
}

fn runs_dir(t: &Test) -> PathBuf {
    t.path("tmp/runs")
}

/// Entries of `temp_dir/runs/` (folders, files, symlinks), sorted.
fn runs_entries(t: &Test) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(runs_dir(t))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The run folders (under `runs/`) whose dump folder has its `toc.dat` written.
fn folders_with_dump(t: &Test) -> Vec<String> {
    runs_entries(t)
        .into_iter()
        .filter(|id| runs_dir(t).join(id).join("u0/dump/toc.dat").is_file())
        .collect()
}

/// Start `dbstash backup JOB` and wait until its dump folder is on disk (the dump is held open
/// by `slow`); the new run folder's name.
fn start_held_run(t: &Test, job: &str, before: &[String]) -> (Child, String) {
    let child = t.spawn(&["backup", job]);
    let mut id = None;
    let ok = support::wait_until(Duration::from_secs(30), || {
        id = folders_with_dump(t)
            .into_iter()
            .find(|f| !before.contains(f));
        id.is_some()
    });
    assert!(ok, "no dump folder appeared: {:?}", t.files("tmp"));
    (child, id.unwrap())
}

/// A run of `job` killed by SIGKILL while its tar-mode dump folder is on disk; its folder's name.
fn crash_a_run(t: &Test, job: &str, db: &str) -> String {
    std::fs::write(t.path("slow"), db).unwrap();
    let (mut child, id) = start_held_run(t, job, &folders_with_dump(t));
    child.kill().expect("SIGKILL dbstash");
    let _ = child.wait();
    std::fs::remove_file(t.path("slow")).unwrap();
    // The crash did leave the dump behind (what the next run must clean).
    assert!(
        runs_dir(t).join(&id).join("u0/dump/toc.dat").is_file(),
        "{:?}",
        t.files("tmp")
    );
    id
}

fn wait_exit(mut child: Child, limit: Duration) -> Run {
    let done = support::wait_until(limit, || child.try_wait().ok().flatten().is_some());
    if !done {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        done,
        "dbstash did not finish within {limit:?}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run::new(out)
}

#[test]
fn next_run_removes_what_a_sigkilled_tar_run_left() {
    if !support::pg_ready() {
        return;
    }
    let db = support::pg_fixture("rt_crash", 3000);
    let _g = support::PgDropGuard(db.clone());
    let job = support::unique("crash");
    let t = Test::new()
        .manifest(&manifest(&pg_job(&job, &db, "")))
        .write_executable("pg_dump", SLOW_PG_DUMP);
    crash_a_run(&t, &job, &db);
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert_eq!(
        runs_entries(&t),
        Vec::<String>::new(),
        "{:?}",
        t.files("tmp")
    );
}

#[test]
fn cleanup_spares_live_runs_and_everything_outside_runs() {
    if !support::pg_ready() {
        return;
    }
    let db_a = support::pg_fixture("rt_live", 2000);
    let _ga = support::PgDropGuard(db_a.clone());
    let db_b = support::pg_fixture("rt_dead", 2000);
    let _gb = support::PgDropGuard(db_b.clone());
    let (a, b) = (support::unique("live"), support::unique("dead"));
    let t = Test::new()
        .manifest(&manifest(&(pg_job(&a, &db_a, "") + &pg_job(&b, &db_b, ""))))
        .write_executable("pg_dump", SLOW_PG_DUMP);
    let dead = crash_a_run(&t, &b, &db_b);

    // A run of the other job, live and holding its folder, in another dbstash.
    std::fs::write(t.path("slow"), &db_a).unwrap();
    let (live_child, live) = start_held_run(&t, &a, &folders_with_dump(&t));

    // Things that are not dead runs' folders: a folder dbstash did not make, a symlink to a
    // folder that looks like a dead run's, the owner file as a symlink, a file beside runs/.
    let runs = runs_dir(&t);
    std::fs::create_dir_all(runs.join("foreign")).unwrap();
    std::fs::write(runs.join("foreign/keep"), "x").unwrap();
    let outside = t.path("outside");
    std::fs::create_dir_all(outside.join("data")).unwrap();
    std::fs::write(outside.join("data/keep"), "x").unwrap();
    std::fs::write(
        outside.join(".dbstash-run"),
        "dbstash-run pid=4194305 start=1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, runs.join("link")).unwrap();
    std::fs::create_dir_all(runs.join("sneaky")).unwrap();
    std::os::unix::fs::symlink(
        outside.join(".dbstash-run"),
        runs.join("sneaky/.dbstash-run"),
    )
    .unwrap();
    std::fs::write(t.path("tmp/other"), "x").unwrap();

    t.run(&["backup", &b]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();

    let left = runs_entries(&t);
    assert!(
        !left.contains(&dead),
        "the dead run's folder stayed: {left:?}"
    );
    assert!(
        runs.join(&live).join("u0/dump/toc.dat").is_file(),
        "the live run's folder was touched: {:?}",
        t.files("tmp")
    );
    assert!(runs.join("foreign/keep").is_file());
    assert!(runs.join("link").symlink_metadata().is_ok(), "{left:?}");
    assert!(outside.join("data/keep").is_file());
    assert!(outside.join(".dbstash-run").is_file());
    assert!(runs.join("sneaky/.dbstash-run").symlink_metadata().is_ok());
    assert!(t.path("tmp/other").is_file());

    // The live run was not disturbed: it completes and removes its own folder.
    std::fs::remove_file(t.path("slow")).unwrap();
    let r = wait_exit(live_child, Duration::from_secs(60));
    r /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(!runs.join(&live).exists());
}

#[test]
fn prune_and_supervisor_start_remove_dead_runs_folders() {
    if !support::pg_ready() {
        return;
    }
    let db = support::pg_fixture("rt_prune", 2000);
    let _g = support::PgDropGuard(db.clone());
    let job = support::unique("prn");
    let t = Test::new()
        .manifest(&manifest(&pg_job(
            &job,
            &db,
            ", schedule: '0 0 1 1 *', run_on_start: false",
        )))
        .write_executable("pg_dump", SLOW_PG_DUMP);

    crash_a_run(&t, &job, &db);
    t.run(&["prune", "--dry-run"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert_eq!(runs_entries(&t).len(), 1, "--dry-run removes nothing");
    t.run(&["prune"])
        .stdout_matches(&format!(
            r"\Ajob {job} \(unlimited \(keep everything\)\)\n  deleted       {db}-[0-9-]+\.tar  \(left by a run that did not complete\)\n\z"
        ))
        // JSON log lines carry timestamps and the dead run's folder name
        .stderr_matches(&support::logged("stale_run_removed"))
        .stderr_matches(&support::logged("leftover_deleted"))
        .success();
    assert_eq!(
        runs_entries(&t),
        Vec::<String>::new(),
        "{:?}",
        t.files("tmp")
    );

    crash_a_run(&t, &job, &db);
    let mut sup = t.spawn_logged(&["run"]);
    let cleaned = support::wait_until(Duration::from_secs(20), || runs_entries(&t).is_empty());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let stopped = support::wait_until(Duration::from_secs(20), || {
        sup.try_wait().ok().flatten().is_some()
    });
    if !stopped {
        let _ = sup.kill();
    }
    let _ = sup.wait();
    assert!(
        cleaned,
        "the supervisor left {:?}\n{}",
        t.files("tmp"),
        t.log()
    );
    assert!(t.log().contains("stale_run_removed"), "{}", t.log());
}

/// Every folder under `root` is 0700 and every file 0600 (symlinks are not followed).
fn loose_modes(root: &Path) -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<String>) {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return;
        };
        let mode = m.permissions().mode() & 0o777;
        if m.is_dir() {
            if mode != 0o700 {
                out.push(format!("{} {mode:o}", p.display()));
            }
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), out);
            }
        } else if m.is_file() && mode != 0o600 {
            out.push(format!("{} {mode:o}", p.display()));
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

#[test]
fn temp_files_and_folders_are_private_under_umask_000() {
    if !support::pg_ready() {
        return;
    }
    let db = support::pg_fixture("rt_umask", 3000);
    let _g = support::PgDropGuard(db.clone());
    let job = support::unique("umask");
    let t = Test::new()
        .manifest(&manifest(&pg_job(&job, &db, "")))
        .write_executable("pg_dump", SLOW_PG_DUMP);
    std::fs::write(t.path("slow"), &db).unwrap();
    let mut cmd = t.command(&["backup", &job]);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbstash");
    let ok = support::wait_until(Duration::from_secs(30), || {
        !folders_with_dump(&t).is_empty()
    });
    // Looked at while the run holds its dump folder: the dump's own files, the run's folders,
    // its owner file, the job's lock.
    let seen = t.files("tmp");
    let loose = loose_modes(&t.path("tmp"));
    std::fs::remove_file(t.path("slow")).unwrap();
    let r = wait_exit(child, Duration::from_secs(60));
    assert!(ok, "no dump folder appeared");
    assert!(seen.iter().any(|f| f.ends_with("toc.dat")), "{seen:?}");
    assert!(seen.iter().any(|f| f.ends_with(".lock")), "{seen:?}");
    assert_eq!(loose, Vec::<String>::new(), "not private under umask 000");
    r /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
}

/// A process that is running (not a zombie), with `what` in its argv.
fn running(pid: i32, what: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    state.is_some_and(|s| s != "Z") && String::from_utf8_lossy(&cmd).contains(what)
}

#[test]
fn post_hooks_background_child_dies_with_the_run() {
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp' }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  app: { engine: sqlite, database: '{dir}/app.db', remote: l,\n         hooks: { post: 'sleep 45 >/dev/null 2>&1 & echo $! > {dir}/bg.pid' } }\n",
    );
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("create table t(x); insert into t values (1);")
        .unwrap();
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let pid: i32 = std::fs::read_to_string(t.path("bg.pid"))
        .expect("the post-hook ran")
        .trim()
        .parse()
        .expect("a pid");
    let gone = support::wait_until(Duration::from_secs(3), || !running(pid, "sleep"));
    if !gone {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(gone, "the post-hook's `sleep 45 &` outlived dbstash");
}

#[test]
fn s3_endpoint_killed_mid_upload_fails_within_90s_and_the_next_run_works() {
    if !support::pg_ready() {
        return;
    }
    let s3 = S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return;
    }
    let mut s3 = s3.unwrap();
    // About 20 MB of SQL: 20 s at 1 MB/s.
    let db = support::pg_fixture("rt_s3", 400_000);
    let _g = support::PgDropGuard(db.clone());
    let job = support::unique("s3dead");
    let manifest = |rclone: &str| {
        format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp'{rclone} }}\nremotes:\n  s3: {{ rclone: 't:bucket' }}\njobs:\n  {job}: {{ engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}, remote: s3 }}\n"
        )
    };
    let t = Test::new()
        .manifest(&manifest(", rclone: { extra_args: ['--bwlimit', '1M'] }"))
        .envs(&s3.env());
    let child = t.spawn(&["backup", &job]);
    let uploading = support::wait_until(Duration::from_secs(30), || {
        processes_with(&job).iter().any(|p| p.contains(" rcat "))
    });
    assert!(uploading, "no rclone rcat for {job}");
    std::thread::sleep(Duration::from_secs(3));
    s3.stop();
    let killed_at = Instant::now();
    let r = wait_exit(child, Duration::from_secs(90));
    let took = killed_at.elapsed();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr().contains("connection refused"),
        "the remote's error must be in the run's error: {}",
        r.stderr()
    );
    eprintln!("failed {took:?} after the endpoint died");

    // The next run against a live endpoint works.
    let s3b = S3::start().expect("second rclone serve s3");
    let t = t.manifest(&manifest("")).envs(&s3b.env());
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let objects = s3b.objects();
    assert!(
        objects.iter().any(|o| o.ends_with(".sql.dbstash.json")),
        "{objects:?}"
    );
}
