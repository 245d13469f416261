//! A run cut short (its timeout, or dbstash's shutdown) stops its in-process copies too: the tar
//! writer and the relay of `tar` mode, the hashing and the folder copy of `directory` mode, when the
//! remote is a local folder (no upload process to kill). Before, these blocking threads went on
//! after the run had failed, and the process waited for them at exit.
//!
//! The slow copies are made deterministic with fake `pg_dump`s writing a dump folder: for
//! directory mode, files of 256 GiB of sparse zeros (minutes of sha256, nothing on disk); for tar
//! mode (whose tar stores sparse files as such) 200 MB of digits compressed with zstd level 19
//! (a minute or more of CPU). Each written in well under a second.

use crate::support;

use crate::support::{wait_until, Test};
use std::process::Child;
use std::time::{Duration, Instant};

/// Sparse files: 256 GiB in all, far more than any test waits for.
const SPARSE: &str = "truncate -s 64G \"$d/1.dat\" \"$d/2.dat\" \"$d/3.dat\" \"$d/4.dat\"";
/// About 100 MB of digits, twice: fast to write, slow to compress at zstd level 19.
const DENSE: &str = "seq 1 12000000 > \"$d/1.dat\" && cp \"$d/1.dat\" \"$d/2.dat\"";
/// How long a test waits for dbstash before calling it hung (and killing it).
const HUNG: Duration = Duration::from_secs(45);
/// A tar-mode job whose copy is slow (see `DENSE`).
const SLOW_TAR: &str = ", compress: zstd, compress_level: 19";

/// A pg_dump stand-in writing a directory-format dump folder with `files`, then marking that the
/// copy can start.
fn fake_dump(files: &str) -> String {
    format!(
        "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
for a; do case \"$a\" in --file=*) d=\"${{a#--file=}}\";; esac; done
mkdir -p \"$d\" && printf 'PGDMP' > \"$d/toc.dat\" && {files} || exit 1
touch \"$DBSTASH_TEST_MARK\"
"
    )
}

fn test_with(mode: &str, job_extra: &str, settings_extra: &str) -> (Test, String) {
    let job = support::unique("cancel");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp'{settings_extra} }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: nodb, remote: local, mode: {mode}{job_extra} }}\n"
        ))
        .write_executable("pg_dump", &fake_dump(if mode == "tar" { DENSE } else { SPARSE }));
    let mark = t.path("dumped").display().to_string();
    (t.env("DBSTASH_TEST_MARK", &mark), job)
}

/// Wait for `child` at most `HUNG`; kill it if it is still running then.
fn wait_or_kill(child: &mut Child) -> (Option<std::process::ExitStatus>, Duration) {
    let start = Instant::now();
    let status = support::wait_or_kill(child, HUNG);
    (status, start.elapsed())
}

fn stderr_of(child: &mut Child) -> String {
    support::read_all(child.stderr.take())
}

/// Every entry under `rel` (folders and hidden part files included), relative names.
fn entries(t: &Test, rel: &str) -> Vec<String> {
    fn walk(root: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let root = t.path(rel);
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// Nothing in the remote (no object, record, folder or part file) and no run folder.
fn nothing_left(t: &Test) {
    let out: Vec<String> = entries(t, "out")
        .into_iter()
        // the job's (empty) folder may stay; anything in it may not
        .filter(|e| !t.path("out").join(e).is_dir() || e.contains('.'))
        .collect();
    assert!(out.is_empty(), "left in the remote: {out:?}");
    let runs = entries(t, "tmp/runs");
    assert!(runs.is_empty(), "run folders left: {runs:?}");
}

/// `dbstash backup` with `timeout: 4s` while a long copy runs: it must fail as timed out a few
/// seconds after the timeout, not when the copy ends (a minute or more later).
fn times_out_promptly(mode: &str, extra: &str) {
    let (t, job) = test_with(mode, &format!("{extra}, timeout: 4s"), "");
    let mut child = t.spawn(&["backup", &job]);
    let (status, took) = wait_or_kill(&mut child);
    let err = stderr_of(&mut child);
    assert!(
        t.path("dumped").exists(),
        "the fake dump did not finish: {err}"
    );
    let status = status.unwrap_or_else(|| panic!("still copying after {took:?}: {err}"));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("timed out after 4s"), "{err}");
    assert!(
        took < Duration::from_secs(14),
        "exited {took:?} after the start, the timeout is 4s: {err}"
    );
    nothing_left(&t);
}

#[test]
fn tar_mode_to_a_local_remote_stops_copying_at_the_timeout() {
    times_out_promptly("tar", SLOW_TAR);
}

#[test]
fn directory_mode_to_a_local_remote_stops_copying_at_the_timeout() {
    times_out_promptly("directory", "");
}

/// The supervisor, SIGTERMed with `shutdown_grace: 1s` while a tar-mode run compresses its dump into
/// a local remote: it stops the run after the grace and exits 0 promptly, leaving nothing.
#[test]
fn sigterm_stops_a_supervised_tar_copy_after_the_grace() {
    let (t, _job) = test_with(
        "tar",
        &format!("{SLOW_TAR}, timeout: 1h, schedule: '*/1 * * * * *'"),
        ", shutdown_grace: 1s",
    );
    let mut child = t.spawn_logged(&["run"]);
    let started = wait_until(Duration::from_secs(20), || t.path("dumped").exists());
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the fake dump never ran: {}", t.log());
    }
    // Well into the copy (zstd level 19 of 200 MB takes a minute or more).
    std::thread::sleep(Duration::from_millis(500));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let (status, took) = wait_or_kill(&mut child);
    let err = t.log();
    let status = status.unwrap_or_else(|| panic!("still copying {took:?} after SIGTERM: {err}"));
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        took < Duration::from_secs(12),
        "exited {took:?} after SIGTERM, the grace is 1s: {err}"
    );
    assert!(err.contains("shutting down"), "{err}");
    nothing_left(&t);
}

/// `dbstash restore` SIGTERMed while it downloads a backup (rclone, slowed to 1 MB/s) into a new
/// SQLite file: it stops at once, exits 1 saying why, and leaves no half-written file beside the
/// target, no temp folder and no rclone behind. (It used to die on the signal with the partial
/// file left beside the target.)
#[test]
fn sigterm_stops_a_restore_and_removes_its_partial_file() {
    if !support::require(support::have("rclone"), "rclone") {
        return;
    }
    let manifest = |rclone: &str| {
        format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp'{rclone} }}\nremotes:\n  r: {{ rclone: ':local:{{dir}}/out' }}\njobs:\n  app: {{ engine: sqlite, database: '{{dir}}/app.db', remote: r }}\n"
        )
    };
    let t = Test::new().manifest(&manifest(""));
    {
        // ~8 MB that does not compress: 8 s to download at 1 MB/s.
        let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
        c.execute_batch(
            "create table t(b blob);
             with recursive n(i) as (select 1 union all select i + 1 from n where i < 1000)
             insert into t select randomblob(8192) from n;",
        )
        .unwrap();
    }
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let t = t.manifest(&manifest(", rclone: { extra_args: ['--bwlimit', '1M'] }"));
    std::fs::create_dir(t.path("to")).unwrap();
    let to = t.path("to/restored.db");
    let mut child = t.spawn(&["restore", "app", "--to", &to.display().to_string()]);
    let partial = || !entries(&t, "to").is_empty();
    assert!(
        wait_until(Duration::from_secs(20), partial),
        "the restore never started writing"
    );
    std::thread::sleep(Duration::from_millis(500));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let (status, took) = wait_or_kill(&mut child);
    let err = stderr_of(&mut child);
    let status = status.unwrap_or_else(|| panic!("still restoring {took:?} after SIGTERM: {err}"));
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(entries(&t, "to"), Vec::<String>::new(), "beside the target");
    let temp: Vec<String> = entries(&t, "tmp")
        .into_iter()
        .filter(|e| e.starts_with("restore/") || e.starts_with("runs/"))
        .collect();
    assert!(temp.is_empty(), "temp folders left: {temp:?}");
    let marker = t.dir.path().display().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || support::processes_with(&marker)
            .is_empty()),
        "left running: {:?}",
        support::processes_with(&marker)
    );
}
