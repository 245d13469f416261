//! Bad input stays a clear, located, one-line error: bounded manifests and secret files (under a
//! real memory limit), `dump_args` read the way each dump tool reads them, numbers that do not fit,
//! warnings only where they help, and short, honest messages from failed tools and reloads.

use crate::support;
use crate::support::Test;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Virtual memory for dbstash under `ulimit -v` (KiB): the binary starts and validates a normal
/// manifest well within it (checked by `the_memory_limit_lets_dbstash_work`), while a manifest
/// that expands to gigabytes cannot be held.
const VMEM_KIB: u32 = 400_000;

/// `dbstash -c CONFIG ARGS...` under the memory limit, with how long it took.
fn limited(config: &std::path::Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {VMEM_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_dbstash"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("DBSTASH_CONFIG")
        .output()
        .expect("sh");
    (out, started.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 2, one line on stderr, `PATH:LINE:COL: …` containing `needle`, no panic; in well under a
/// second of real work (a generous bound for a debug build on a busy machine).
#[track_caller]
fn one_located_line(out: &Output, took: Duration, path: &str, needle: &str) -> (usize, usize) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        !err.contains("panicked")
            && !err.contains("memory allocation")
            && !err.contains("backtrace"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    let rest = lines[0]
        .strip_prefix(&format!("{path}:"))
        .unwrap_or_else(|| panic!("not located in {path}: {err}"));
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts.next().and_then(|l| l.parse().ok()).expect("line");
    let col: usize = parts.next().and_then(|c| c.parse().ok()).expect("col");
    assert!(parts.next().is_some_and(|m| m.contains(needle)), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    (line, col)
}

#[test]
fn the_memory_limit_lets_dbstash_work() {
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' } }\ntemplates:\n  t: &t { engine: sqlite, remote: l, schedule: '@daily' }\njobs:\n  a: { template: t, database: '{dir}/a.db' }\n  b: { template: t, database: '{dir}/b.db', retention: { max_files: 5 } }\n",
    );
    let (out, _) = limited(&t.path("dbstash.yaml"), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid (2 jobs)"));
}

#[test]
fn an_alias_bomb_is_a_located_error_not_an_out_of_memory_abort() {
    // One anchor on a ~1 MB string and 3,000 aliases: 3 GB once expanded.
    let mut yaml = format!(
        "version: 1\nx-big: &big \"{}\"\nx-copies:\n",
        "x".repeat(1_000_000)
    );
    for _ in 0..3_000 {
        yaml.push_str("  - *big\n");
    }
    yaml.push_str("jobs: {}\n");
    let t = Test::new().manifest(&yaml);
    let path = t.path("dbstash.yaml").display().to_string();
    let (out, took) = limited(&t.path("dbstash.yaml"), &["validate"]);
    let (line, col) = one_located_line(&out, took, &path, "once aliases are expanded");
    // At the alias that passed the 4 MiB cap (the 4th copy), not at 1:1.
    assert_eq!((line, col), (7, 5), "{}", text(&out.stderr));
}

#[test]
fn defaults_copied_into_thousands_of_jobs_are_capped() {
    // An 800 KB default hook and 1,000 one-line jobs: 800 MB if every job kept its own copy.
    let mut yaml = format!(
        "version: 1\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\ndefaults:\n  engine: sqlite\n  remote: l\n  schedule: '@daily'\n  hooks: {{ pre: \"{}\" }}\njobs:\n",
        "e".repeat(800_000)
    );
    for i in 0..1_000 {
        yaml.push_str(&format!("  j{i}: {{ database: /a.db }}\n"));
    }
    let t = Test::new().manifest(&yaml);
    let path = t.path("dbstash.yaml").display().to_string();
    let (out, took) = limited(&t.path("dbstash.yaml"), &["validate"]);
    let (line, _) = one_located_line(&out, took, &path, "larger than 16 MiB");
    assert!(
        line > 9 && line < 40,
        "at the job that passed the cap: {line}"
    );
}

#[test]
fn password_file_dev_zero_is_refused_before_it_is_read() {
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  pg:\n    engine: postgres\n    database: app\n    password_file: /dev/zero\n    remote: l\n    schedule: '@daily'\n",
    );
    let path = t.path("dbstash.yaml").display().to_string();
    let (out, took) = limited(&t.path("dbstash.yaml"), &["validate"]);
    let at = one_located_line(
        &out,
        took,
        &path,
        "password_file `/dev/zero`: not a regular file",
    );
    assert_eq!(at, (7, 20));
}

#[test]
fn a_secret_file_over_the_cap_is_refused() {
    let t = Test::new()
        .manifest(
            "version: 1\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  pg:\n    engine: postgres\n    database: app\n    password_file: '{dir}/pw'\n    remote: l\n    schedule: '@daily'\n",
        )
        .write("pw", &"p".repeat(70_000));
    let path = t.path("dbstash.yaml").display().to_string();
    let (out, took) = limited(&t.path("dbstash.yaml"), &["validate"]);
    one_located_line(&out, took, &path, "larger than 64 KiB");
}

#[test]
fn config_dev_zero_is_capped() {
    let (out, took) = limited(std::path::Path::new("/dev/zero"), &["validate"]);
    let at = one_located_line(
        &out,
        took,
        "/dev/zero",
        "cannot read the manifest: larger than 1 MiB",
    );
    assert_eq!(at, (1, 1));
    // Every command reads the manifest the same way.
    for args in [&["plan", "--offline"][..], &["list"], &["health"]] {
        let (out, took) = limited(std::path::Path::new("/dev/zero"), args);
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("larger than 1 MiB"), "{args:?}: {err}");
        assert!(!err.contains("memory allocation"), "{args:?}: {err}");
        assert!(took < Duration::from_secs(3), "{args:?} took {took:?}");
    }
}

/// A manifest with one job of `engine` and these `dump_args` (line 6).
fn dump_args_manifest(engine: &str, args: &[&str]) -> String {
    let conn = match engine {
        "redis" => "uri: 'redis://127.0.0.1:6379'",
        "mongo" => "uri: 'mongodb://127.0.0.1/app'",
        _ => "database: app",
    };
    format!(
        "version: 1\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  j:\n    {{ engine: {engine}, {conn}, remote: l, schedule: '@daily',\n      dump_args: {} }}\n",
        serde_json::to_string(args).unwrap()
    )
}

#[test]
fn every_spelling_of_a_disk_writing_dump_arg_is_refused() {
    let cases: &[(&str, &[&str])] = &[
        ("postgres", &["-f/path"]),
        ("postgres", &["-f", "/p"]),
        ("postgres", &["-xf", "/p"]),
        ("postgres", &["-xf/p"]),
        ("postgres", &["--file=/p"]),
        ("postgres", &["--file", "/p"]),
        ("postgres", &["--fil=/p"]),
        ("postgres", &["--fi", "/p"]),
        ("postgres", &["-Fd"]),
        ("postgres", &["-F", "d"]),
        ("postgres", &["-xFd"]),
        ("postgres", &["--format=directory"]),
        ("postgres", &["--format", "directory"]),
        ("postgres", &["--forma=d"]),
        ("postgres", &["-Fdirectory"]),
        ("postgres", &["-FD"]),
        ("postgis", &["--clean", "-vf/p"]),
        ("mysql", &["-T/dir"]),
        ("mysql", &["-T", "/dir"]),
        ("mysql", &["-vT/dir"]),
        ("mysql", &["--tab=/dir"]),
        ("mysql", &["--loose-tab=/dir"]),
        ("mariadb", &["-r", "/f"]),
        ("mariadb", &["-r/f"]),
        ("mariadb", &["--result-file=/f"]),
        ("mariadb", &["--result_file=/f"]),
        ("mariadb", &["--resul=/f"]),
        ("mariadb", &["--log-error=/f"]),
        ("mongo", &["--out=/d"]),
        ("mongo", &["--out", "/d"]),
        ("mongo", &["-o", "/d"]),
        ("mongo", &["-o/d"]),
        ("mongo", &["--archive=/f"]),
        ("redis", &["--rdb", "/f"]),
        ("redis", &["--functions-rdb", "/f"]),
    ];
    let mut missed = Vec::new();
    for (engine, args) in cases {
        let t = Test::new().manifest(&dump_args_manifest(engine, args));
        let r = t.run(&["validate"]);
        let err = r.stderr();
        let located = format!("{}:6:", t.path("dbstash.yaml").display());
        let refused = r.code() == 2
            && err
                .lines()
                .any(|l| l.starts_with(&located) && l.contains("dump argument `"));
        if !refused {
            missed.push(format!("{engine} {args:?}: exit {} {err}", r.code()));
        }
    }
    assert!(missed.is_empty(), "passed validate:\n{}", missed.join("\n"));
}

#[test]
fn dump_arg_values_and_harmless_options_still_pass() {
    let cases: &[(&str, &[&str])] = &[
        ("postgres", &["--exclude-table=audit_log"]),
        ("postgres", &["-t", "-f"]),
        ("postgres", &["-Ufrank", "--no-owner"]),
        ("mysql", &["--single-transaction", "--where", "-T"]),
        ("mongo", &["--gzip"]),
        ("redis", &["--rdb", "-"]),
    ];
    for (engine, args) in cases {
        let t = Test::new().manifest(&dump_args_manifest(engine, args));
        let r = t.run(&["validate"]);
        assert_eq!(r.code(), 0, "{engine} {args:?}: {}", r.stderr());
    }
}

fn retention_manifest(max_days: &str) -> String {
    format!("version: 1\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  a:\n    engine: sqlite\n    database: '{{dir}}/a.db'\n    remote: l\n    schedule: '@daily'\n    retention:\n      max_days: {max_days}\n")
}

#[test]
fn numbers_that_do_not_fit_are_reported_at_the_value() {
    for (value, needle) in [
        ("1e400", "number out of range"),
        ("-1e400", "number out of range"),
        ("1e3", "expected a whole number"),
        ("5000000000", "does not fit"),
    ] {
        let t = Test::new().manifest(&retention_manifest(value));
        let r = t.run(&["validate"]);
        assert_eq!(r.code(), 2, "{value}: {}", r.stderr());
        let expected = format!("{}:10:17: ", t.path("dbstash.yaml").display());
        assert!(
            r.stderr()
                .lines()
                .any(|l| l.starts_with(&expected) && l.contains(needle)),
            "{value}: want {expected}…{needle}, got {}",
            r.stderr()
        );
    }
}

#[test]
fn passwords_that_are_overridden_or_unused_are_warned_about() {
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  pg:\n    engine: postgres\n    uri: 'postgresql://app:in-uri@127.0.0.1/app'\n    password: other\n    remote: l\n    schedule: '@daily'\n  lite:\n    engine: sqlite\n    database: '{dir}/a.db'\n    password: unused\n    remote: l\n    schedule: '@daily'\n",
    );
    let r = t
        .run(&["validate"])
        .stdout_is("{dir}/dbstash.yaml: valid (2 jobs)\n")
        .stderr_is(
            "{dir}/dbstash.yaml:7:5: warning: the `uri` has a password too: this `password` replaces it (keep one of the two)\n\
             {dir}/dbstash.yaml:13:5: warning: sqlite has no passwords: `password` is not used\n",
        )
        .success();
    let file = t.path("dbstash.yaml").display().to_string();
    let err = r.stderr();
    assert!(
        err.contains(&format!(
            "{file}:7:5: warning: the `uri` has a password too"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:13:5: warning: sqlite has no passwords")),
        "{err}"
    );
    assert!(
        !err.contains("in-uri") && !err.contains("other") && !err.contains("unused"),
        "{err}"
    );
    // A URI without a password and a separate password is the normal case: no warning.
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  pg:\n    engine: postgres\n    uri: 'postgresql://app@127.0.0.1/app'\n    password: pw\n    remote: l\n    schedule: '@daily'\n",
    );
    let r = t
        .run(&["validate"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert!(!r.stderr().contains("warning"), "{}", r.stderr());
}

/// A fake rclone that logs 40 timestamped lines and a last one, then exits 5.
const NOISY_RCLONE: &str = "#!/bin/sh\ni=1\nwhile [ $i -le 40 ]; do echo \"2026/01/02 03:04:05 ERROR : attempt $i/40 failed: noisy-line-$i\" >&2; i=$((i+1)); done\necho \"2026/01/02 03:04:06 Failed to $1: the-last-word\" >&2\nexit 5\n";

fn noisy_rclone_test() -> Test {
    let t = Test::new()
        .manifest("version: 1\nsettings: { temp_dir: '{dir}/tmp', rclone: { binary: '{dir}/bin/rclone' } }\nremotes: { r: { rclone: 'fake:bucket' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/a.db', remote: r, schedule: '@daily' }\n")
        .write_executable("rclone", NOISY_RCLONE);
    let c = rusqlite::Connection::open(t.path("a.db")).unwrap();
    c.execute_batch("create table t(x); insert into t values (1);")
        .unwrap();
    t
}

/// The `dbstash: job a …` summary line of a failed run or listing (as text, or as the message of
/// a JSON log line without an `event`, when the command logs JSON).
fn summary(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .filter_map(|l| {
            if l.starts_with("dbstash: job a") {
                return Some(l.to_string());
            }
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let m = v["message"].as_str()?;
            (v.get("event").is_none() && m.starts_with("job a")).then(|| m.to_string())
        })
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

#[test]
fn a_failed_rclone_is_one_line_with_a_short_tail_and_one_exit() {
    let t = noisy_rclone_test();
    let r = t
        .run(&["backup", "a"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    let line = summary(&r.stderr());
    assert!(line.contains("failed (exit 5)"), "{line}");
    assert!(!line.contains("exit exit"), "{line}");
    assert!(line.contains("the-last-word"), "{line}");
    assert!(line.contains("noisy-line-40"), "{line}");
    assert!(!line.contains("noisy-line-30"), "a short tail: {line}");
    assert!(!line.contains("2026/01/02"), "timestamps dropped: {line}");
    assert!(line.len() < 600, "{} chars: {line}", line.len());
    // The run's error in the JSON log is the same single line.
    let logged = r
        .stderr()
        .lines()
        .find(|l| l.contains("\"event\":\"backup_failed\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["error"].clone())
        .unwrap_or_default();
    let logged = logged.as_str().unwrap_or_default();
    assert!(
        logged.contains("the-last-word") && !logged.contains('\n'),
        "{logged}"
    );
}

#[test]
fn list_after_a_listing_error_fails_without_claiming_no_backups() {
    let t = noisy_rclone_test();
    let r = t.run(&["list"]);
    assert_ne!(r.code(), 0, "{}", r.stderr());
    assert!(
        !r.stdout().contains("no complete backups"),
        "{}",
        r.stdout()
    );
    let line = summary(&r.stderr());
    assert!(
        line.contains("cannot list remote `r`") && line.contains("(exit 5)"),
        "{line}"
    );
    assert!(!line.contains("exit exit"), "{line}");
}

#[test]
fn manifest_warnings_are_shown_by_validate_plan_and_run_only() {
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp' }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  adhoc: { engine: sqlite, database: '{dir}/a.db', remote: l }\n",
    );
    let c = rusqlite::Connection::open(t.path("a.db")).unwrap();
    c.execute_batch("create table t(x); insert into t values (1);")
        .unwrap();
    let warning = "warning: job `adhoc` has no schedule";
    for args in [&["validate"][..], &["plan", "--offline"]] {
        let r = t.run(args);
        assert!(r.stderr().contains(warning), "{args:?}: {}", r.stderr());
    }
    // `run` logs (JSON by default): the warning is a log line of its own.
    let r = t.run(&["run", "--once"]);
    assert!(
        r.stderr()
            .lines()
            .any(|l| l.contains("\"event\":\"manifest_warning\"")
                && l.contains("job `adhoc` has no schedule")),
        "run --once: {}",
        r.stderr()
    );
    for args in [
        &["list"][..],
        &["restore", "adhoc", "--yes"],
        &["verify", "adhoc"],
        &["prune"],
    ] {
        let r = t.run(args);
        assert!(!r.stderr().contains("warning"), "{args:?}: {}", r.stderr());
    }
}

/// Bodies of every request the receiver got, in order.
fn bodies(hook: &support::notify::Receiver) -> Vec<String> {
    hook.requests().iter().map(|r| r.text()).collect()
}

#[test]
fn a_manifest_deleted_or_replaced_by_a_folder_is_a_failed_reload() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = rt.block_on(support::notify::Receiver::start());
    let port = support::free_port();
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\nnotifiers:\n  ops: {{ type: webhook, url: '{}', on: config_error }}\njobs:\n  a: {{ engine: sqlite, database: '{{dir}}/a.db', remote: l, schedule: '@daily' }}\n",
        hook.url("/hook")
    ));
    let mut sup = t.spawn_logged(&["run"]);
    let errors = "dbstash_config_reloads_total{result=\"error\"}";
    assert!(
        support::wait_port(port, Duration::from_secs(15)),
        "{}",
        t.log()
    );
    assert_eq!(support::metric(port, errors), 0.0);

    std::fs::remove_file(t.path("dbstash.yaml")).unwrap();
    let counted = support::wait_until(Duration::from_secs(15), || {
        support::metric(port, errors) >= 1.0
    });
    let notified = support::wait_until(Duration::from_secs(10), || {
        bodies(&hook)
            .iter()
            .any(|b| b.contains("cannot read the manifest"))
    });

    std::fs::create_dir(t.path("dbstash.yaml")).unwrap();
    let counted_again = support::wait_until(Duration::from_secs(15), || {
        support::metric(port, errors) >= 2.0
    });
    let notified_again = support::wait_until(Duration::from_secs(10), || {
        bodies(&hook)
            .iter()
            .filter(|b| b.contains("cannot read the manifest"))
            .count()
            >= 2
    });
    let _ = sup.kill();
    let _ = sup.wait();
    assert!(counted, "deletion not counted: {}", t.log());
    assert!(notified, "deletion not notified: {:?}", bodies(&hook));
    assert!(counted_again, "folder not counted: {}", t.log());
    assert!(notified_again, "folder not notified: {:?}", bodies(&hook));
    assert!(t.log().contains("config_rejected"), "{}", t.log());
}

#[test]
fn a_closed_stdout_ends_quietly_without_a_panic() {
    // `dbstash schema | head -c 1`, `dbstash list | head`: the reader goes away. The command ends
    // like any Unix tool whose pipe closed (exit 141), with nothing on stderr — never a panic.
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/a.db', remote: l, schedule: '@daily' }\n",
    );
    for args in [
        &["schema"][..],
        &["validate"],
        &["plan", "--offline"],
        &["man"],
    ] {
        let mut child = t
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first write
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
}
