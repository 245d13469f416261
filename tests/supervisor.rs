//! `dbstash run` as a real process: schedules, overlap, timeouts, reload, shutdown, locking.

use crate::support;
use crate::support::{http_get, metric, Test};
use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};

struct Sup {
    child: Child,
}

impl Sup {
    fn start(t: &Test) -> Sup {
        Sup {
            child: t.spawn_logged(&["run"]),
        }
    }
    fn term(&mut self) -> (Option<i32>, Duration, String) {
        let start = Instant::now();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let status = self.child.wait().ok();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.and_then(|s| s.code()), start.elapsed(), err)
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlite_db(t: &Test) {
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("create table if not exists t(x); insert into t values (1),(2);")
        .unwrap();
}

#[test]
fn schedules_run_repeatedly_and_metrics_move() {
    let port = support::free_port();
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  a: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, schedule: '*/1 * * * * *' }}\n"
    ));
    sqlite_db(&t);
    let mut sup = Sup::start(&t);
    assert!(
        support::wait_port(port, Duration::from_secs(10)),
        "health port never opened"
    );
    // The port opens before the manifest is loaded (/readyz says 503 until then): on a loaded
    // machine the first ask can come in between.
    assert!(
        support::wait_until(Duration::from_secs(10), || http_get(port, "/readyz")
            .map(|r| r.0)
            == Some(200)),
        "never ready"
    );
    assert!(support::wait_until(Duration::from_secs(15), || metric(
        port,
        "dbstash_backup_runs_total{backup_job=\"a\",status=\"success\"}"
    ) >= 3.0));
    let (code, body) = http_get(port, "/healthz").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        metric(
            port,
            "dbstash_backup_last_success_timestamp_seconds{backup_job=\"a\"}"
        ) > 1.7e9
    );
    assert!(metric(port, "dbstash_backup_last_size_bytes{backup_job=\"a\"}") > 0.0);
    let (code, took, _) = sup.term();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10));
    assert!(t.records("out/a").len() >= 3);
}

#[test]
fn overlapping_ticks_are_skipped_not_doubled() {
    let port = support::free_port();
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  slow: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, schedule: '*/1 * * * * *', hooks: {{ pre: 'sleep 3' }} }}\n"
    ));
    sqlite_db(&t);
    let _sup = Sup::start(&t);
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(support::wait_until(Duration::from_secs(12), || metric(
        port,
        "dbstash_backup_runs_total{backup_job=\"slow\",status=\"skipped\"}"
    ) >= 2.0));
    // Never two at once: the running gauge is 0 or 1, and successes trail skips.
    assert!(metric(port, "dbstash_backup_running{backup_job=\"slow\"}") <= 1.0);
    assert!(support::wait_until(Duration::from_secs(8), || metric(
        port,
        "dbstash_backup_runs_total{backup_job=\"slow\",status=\"success\"}"
    ) >= 1.0));
    let ok = metric(
        port,
        "dbstash_backup_runs_total{backup_job=\"slow\",status=\"success\"}",
    );
    let skipped = metric(
        port,
        "dbstash_backup_runs_total{backup_job=\"slow\",status=\"skipped\"}",
    );
    assert!(skipped > ok, "ok={ok} skipped={skipped}");
}

/// A PostgreSQL backup made slow by rclone's bandwidth limit, to a local path via rclone.
fn slow_pg(t_extra: &str, timeout: &str, grace: &str) -> Option<(Test, String)> {
    if !support::require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432")
        || !support::require(support::have("rclone"), "rclone")
    {
        return None;
    }
    let db = support::pg_fixture("dbstash_sup", 60_000);
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', shutdown_grace: {grace}, rclone: {{ extra_args: ['--bwlimit', '200k'] }} }}\nremotes: {{ r: {{ rclone: ':local:{{dir}}/out' }} }}\njobs:\n  pg: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: {db}, remote: r, timeout: {timeout}{t_extra} }}\n"
    ));
    Some((t, db))
}

#[test]
fn timeout_kills_the_group_and_leaves_nothing() {
    let Some((t, db)) = slow_pg("", "2s", "30s") else {
        return;
    };
    let start = Instant::now();
    let r = t
        .run(&["backup", "pg"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert!(r.stderr().contains("timed out after 2s"), "{}", r.stderr());
    assert!(t.files("out").is_empty(), "left: {:?}", t.files("out"));
    let marker = t.dir.path().display().to_string();
    assert!(
        support::wait_until(Duration::from_secs(5), || support::processes_with(&marker)
            .is_empty()),
        "orphans: {:?}",
        support::processes_with(&marker)
    );
    support::pg_drop(&db);
}

#[test]
fn sigterm_during_a_backup_stops_within_grace_and_cleans_up() {
    let Some((t, db)) = slow_pg(", schedule: '*/1 * * * * *'", "1h", "1s") else {
        return;
    };
    let mut sup = Sup::start(&t);
    let marker = t.dir.path().display().to_string();
    // wait until the upload is under way
    assert!(support::wait_until(Duration::from_secs(15), || {
        support::processes_with(&format!("{marker}/out"))
            .iter()
            .any(|p| p.contains("rcat"))
    }));
    let (code, took, err) = sup.term();
    assert_eq!(code, Some(0), "{err}");
    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert!(t.files("out").is_empty(), "left: {:?}", t.files("out"));
    assert!(
        support::wait_until(Duration::from_secs(5), || support::processes_with(&marker)
            .is_empty()),
        "orphans: {:?}",
        support::processes_with(&marker)
    );
    support::pg_drop(&db);
}

#[test]
fn manual_backup_is_refused_while_the_supervisor_runs_the_job() {
    let Some((t, db)) = slow_pg(", schedule: '*/1 * * * * *'", "1h", "1s") else {
        return;
    };
    let _sup = Sup::start(&t);
    let marker = t.dir.path().display().to_string();
    assert!(support::wait_until(Duration::from_secs(15), || {
        support::processes_with(&format!("{marker}/out"))
            .iter()
            .any(|p| p.contains("rcat"))
    }));
    let r = t
        .run(&["backup", "pg"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("already running"), "{}", r.stderr());
    support::pg_drop(&db);
}

const BASE: &str = "version: 1\nsettings: { temp_dir: '{dir}/tmp', health: { listen: '127.0.0.1:PORT' } }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n";

fn job(name: &str) -> String {
    format!("  {name}: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, schedule: '*/1 * * * * *' }}\n")
}

/// Replace the manifest the way editors do: write a temp file, rename over.
fn atomic_write(t: &Test, text: &str) {
    let tmp = t.path(".dbstash.yaml.tmp");
    std::fs::write(
        &tmp,
        text.replace("{dir}", &t.dir.path().display().to_string()),
    )
    .unwrap();
    std::fs::rename(tmp, t.path("dbstash.yaml")).unwrap();
}

#[test]
fn reload_adds_removes_and_rejects_broken_manifests() {
    let port = support::free_port();
    let base = BASE.replace("PORT", &port.to_string());
    let t = Test::new().manifest(&format!("{base}{}", job("a")));
    sqlite_db(&t);
    let _sup = Sup::start(&t);
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(support::wait_until(Duration::from_secs(10), || !t
        .records("out/a")
        .is_empty()));
    // add b, remove a
    atomic_write(&t, &format!("{base}{}", job("b")));
    assert!(
        support::wait_until(Duration::from_secs(10), || !t.records("out/b").is_empty()),
        "b never ran"
    );
    assert!(metric(port, "dbstash_config_reloads_total{result=\"success\"}") >= 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    let a_count = t.records("out/a").len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        t.records("out/a").len(),
        a_count,
        "a still runs after removal"
    );
    // break the YAML: b keeps running, the error is counted
    atomic_write(&t, "version: 1\njobs: [\n");
    assert!(support::wait_until(Duration::from_secs(10), || metric(
        port,
        "dbstash_config_reloads_total{result=\"error\"}"
    ) >= 1.0));
    let b_before = t.records("out/b").len();
    assert!(
        support::wait_until(Duration::from_secs(6), || t.records("out/b").len()
            > b_before),
        "b stopped after a broken reload"
    );
    assert_eq!(http_get(port, "/readyz").map(|r| r.0), Some(200));
}

#[test]
fn kubernetes_configmap_symlink_swap_is_seen() {
    let port = support::free_port();
    let base = BASE.replace("PORT", &port.to_string());
    let t = Test::new();
    sqlite_db(&t);
    let d = t.dir.path().display().to_string();
    // /config/dbstash.yaml -> ..data/dbstash.yaml, ..data -> ..2026_01_01_v1
    let cfg = t.path("config");
    std::fs::create_dir_all(cfg.join("..v1")).unwrap();
    std::fs::write(
        cfg.join("..v1/dbstash.yaml"),
        format!("{base}{}", job("a")).replace("{dir}", &d),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v1", cfg.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/dbstash.yaml", cfg.join("dbstash.yaml")).unwrap();
    // point at the ConfigMap path instead of the test's default manifest
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbstash"))
        .args(["-c", &cfg.join("dbstash.yaml").display().to_string(), "run"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(support::wait_until(Duration::from_secs(10), || !t
        .records("out/a")
        .is_empty()));
    // kubelet: write ..v2, swap ..data atomically
    std::fs::create_dir_all(cfg.join("..v2")).unwrap();
    std::fs::write(
        cfg.join("..v2/dbstash.yaml"),
        format!("{base}{}", job("k")).replace("{dir}", &d),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", cfg.join("..data_tmp")).unwrap();
    std::fs::rename(cfg.join("..data_tmp"), cfg.join("..data")).unwrap();
    let ok = support::wait_until(Duration::from_secs(10), || !t.records("out/k").is_empty());
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the swapped manifest was not applied");
}

#[test]
fn reload_never_interrupts_a_running_backup() {
    let Some((t, db)) = slow_pg(", schedule: '*/1 * * * * *'", "1h", "30s") else {
        return;
    };
    let _sup = Sup::start(&t);
    let marker = t.dir.path().display().to_string();
    assert!(support::wait_until(Duration::from_secs(15), || {
        support::processes_with(&format!("{marker}/out"))
            .iter()
            .any(|p| p.contains("rcat"))
    }));
    // change the job (its next runs will use the new schedule) while the backup is running
    let text = std::fs::read_to_string(t.path("dbstash.yaml"))
        .unwrap()
        .replace("*/1 * * * * *", "0 0 1 1 *");
    atomic_write(&t, &text);
    assert!(
        support::wait_until(Duration::from_secs(60), || !t.records("out/pg").is_empty()),
        "the running backup did not complete"
    );
    support::pg_drop(&db);
}

/// Zombie children of `pid` (host view).
fn zombies_of(pid: u32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.first() == Some(&"Z") && f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            n += 1;
        }
    }
    n
}

fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn as_pid1_it_reaps_orphans_and_stops_on_sigterm() {
    if !support::require(
        support::have("unshare") && nix::unistd::geteuid().is_root(),
        "unshare and root (PID namespaces)",
    ) {
        return;
    }
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp' }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '*/1 * * * * *', hooks: { pre: \"(sleep 0.2 &) ; true\" } }\n",
    );
    sqlite_db(&t);
    let mut unshare = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            env!("CARGO_BIN_EXE_dbstash"),
            "-c",
        ])
        .arg(t.path("dbstash.yaml"))
        .arg("run")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pid = None;
    assert!(support::wait_until(Duration::from_secs(5), || {
        pid = child_of(unshare.id());
        pid.is_some()
    }));
    let pid = pid.unwrap();
    // orphans are created every second; after a while none is left unreaped for long
    assert!(support::wait_until(Duration::from_secs(10), || t
        .records("out/a")
        .len()
        >= 3));
    std::thread::sleep(Duration::from_secs(1));
    let samples: Vec<usize> = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(700));
            zombies_of(pid)
        })
        .collect();
    assert!(
        samples.iter().filter(|z| **z > 0).count() <= 1,
        "zombies piling up: {samples:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = unshare.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = unshare.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "PID 1 did not stop cleanly on SIGTERM"
    );
}

#[test]
fn scheduled_restore_drill_runs_and_leaves_no_scratch_database() {
    if !support::require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let db = support::pg_fixture("dbstash_drill", 500);
    let scratch = support::unique("dbstash_scratch");
    let port = support::free_port();
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  pg: {{ engine: postgres, host: 127.0.0.1, user: postgres, database: {db}, remote: l, compress: zstd,\n        verify: {{ schedule: '*/2 * * * * *', restore_to: 'postgresql://postgres@127.0.0.1:5432/{scratch}' }} }}\n"
    ));
    t.run(&["backup", "pg"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let _sup = Sup::start(&t);
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(
        support::wait_until(Duration::from_secs(30), || metric(
            port,
            "dbstash_verify_runs_total{backup_job=\"pg\",status=\"success\"}"
        ) >= 1.0),
        "no successful drill:\n{}",
        t.log()
    );
    let exists = support::psql(
        "postgres",
        &format!("select count(*) from pg_database where datname = '{scratch}'"),
    );
    // a drill may be mid-way; wait for quiet and check the scratch database is gone
    assert!(
        support::wait_until(Duration::from_secs(10), || support::psql(
            "postgres",
            &format!("select count(*) from pg_database where datname = '{scratch}'")
        ) == "0"),
        "scratch db left ({exists})"
    );
    support::pg_drop(&db);
}

#[test]
fn a_run_queued_for_a_slot_does_not_start_after_sigterm() {
    // max_parallel 1 and two slow jobs started together: one runs, the other waits for the slot.
    // SIGTERM then lets the running one finish within the grace period, but the queued one must
    // never start (it used to start as soon as the slot was free, even after shutdown began).
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp', max_parallel: 1, shutdown_grace: 20s, log: { format: json } }\nremotes: { l: { path: '{dir}/out' } }\ndefaults: { run_on_start: true, hooks: { pre: 'sleep 3' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/app.db', remote: l }\n  b: { engine: sqlite, database: '{dir}/app.db', remote: l }\n",
    );
    sqlite_db(&t);
    let mut sup = Sup::start(&t);
    let started = |t: &Test| t.log().matches("\"event\":\"backup_started\"").count();
    assert!(
        support::wait_until(Duration::from_secs(15), || started(&t) == 1),
        "{}",
        t.log()
    );
    let (code, took, err) = sup.term();
    assert_eq!(code, Some(0), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let log = t.log();
    assert_eq!(
        started(&t),
        1,
        "the queued run started after SIGTERM:\n{log}"
    );
    let (a, b) = (t.records("out/a").len(), t.records("out/b").len());
    assert_eq!(a + b, 1, "a: {a}, b: {b}\n{log}");
    assert!(log.contains("\"event\":\"backup_not_started\""), "{log}");
}

/// A SIGTERM that arrives while `run` is still starting (here: reading a manifest that comes
/// through a pipe, as from `envsubst`) is held until the supervisor is up, which then stops
/// cleanly (exit 0, its log lines written) instead of dying from the signal's default action.
#[test]
fn sigterm_during_startup_is_a_clean_stop() {
    use std::os::unix::fs::OpenOptionsExt;
    let t = Test::new();
    let fifo = t.path("dbstash.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut sup = Sup::start(&t);
    // A writer can open the pipe (without blocking) once dbstash holds its reading end: dbstash is
    // then inside its first load, waiting for the text.
    let mut writer = None;
    let opened = support::wait_until(Duration::from_secs(20), || {
        writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)
            .ok();
        writer.is_some()
    });
    assert!(opened, "dbstash never opened its manifest\n{}", t.log());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    std::thread::sleep(Duration::from_millis(300));
    let text = format!(
        "version: 1\nsettings: {{ temp_dir: '{dir}/tmp' }}\nremotes: {{ l: {{ path: '{dir}/out' }} }}\njobs:\n  app: {{ engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '0 0 1 1 *', run_on_start: false }}\n",
        dir = t.dir.path().display()
    );
    let mut w = writer.unwrap();
    std::io::Write::write_all(&mut w, text.as_bytes()).unwrap();
    drop(w);
    let exited = support::wait_until(Duration::from_secs(20), || {
        sup.child.try_wait().ok().flatten().is_some()
    });
    assert!(exited, "dbstash did not stop\n{}", t.log());
    let status = sup.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", t.log());
    assert!(t.log().contains("supervisor_stopped"), "{}", t.log());
}
