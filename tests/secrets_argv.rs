//! Secrets: while backups with real password authentication run (an own scram PostgreSQL, a
//! MariaDB user with a password, redis-server with requirepass), every process's argv is sampled
//! in a loop and must never carry a password; dbstash's own environment must not either (secrets
//! go to the child only); logs (at debug level), `plan` and `list` output never show one.

use crate::support;

use crate::support::Test;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Scans /proc in a loop: argv of every process, and the environment of dbstash processes.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    leaks: Arc<Mutex<Vec<String>>>,
    /// argv lines seen that contain one of the `watch` needles (proof the sampler saw the dumps).
    seen: Arc<Mutex<Vec<String>>>,
}

impl Sampler {
    fn start(secrets: Vec<String>, watch: Vec<String>, dbstash_marker: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let leaks = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s2, l2, w2) = (stop.clone(), leaks.clone(), seen.clone());
        let me = std::process::id().to_string();
        let handle = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok(rd) = std::fs::read_dir("/proc") else {
                    return;
                };
                for e in rd.flatten() {
                    let pid = e.file_name().to_string_lossy().into_owned();
                    if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
                        continue;
                    }
                    let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
                        continue;
                    };
                    let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
                    for s in &secrets {
                        if cmd.contains(s.as_str()) {
                            l2.lock().unwrap().push(format!("argv of {pid}: {cmd}"));
                        }
                    }
                    if watch.iter().any(|w| cmd.contains(w.as_str())) {
                        let mut seen = w2.lock().unwrap();
                        if !seen.contains(&cmd) {
                            seen.push(cmd.clone());
                        }
                    }
                    if cmd.contains("dbstash") && cmd.contains(&dbstash_marker) {
                        if let Ok(env) = std::fs::read(e.path().join("environ")) {
                            let env = String::from_utf8_lossy(&env);
                            for s in &secrets {
                                if env.contains(s.as_str()) {
                                    l2.lock()
                                        .unwrap()
                                        .push(format!("environment of dbstash {pid}: {cmd}"));
                                }
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Sampler {
            stop,
            handle: Some(handle),
            leaks,
            seen,
        }
    }

    fn finish(mut self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let leaks = self.leaks.lock().unwrap().clone();
        let seen = self.seen.lock().unwrap().clone();
        (leaks, seen)
    }
}

#[test]
fn passwords_never_reach_argv_environment_of_dbstash_logs_or_plan() {
    let pg_pw = format!("PgPw{}", std::process::id());
    let my_pw = format!("MyPw{}", std::process::id());
    let rd_pw = format!("RdPw{}", std::process::id());

    let pg = support::PgScram::start(&pg_pw);
    if !support::require(pg.is_some(), "own scram PostgreSQL (initdb)") {
        return;
    }
    let pg = pg.expect("pg");
    if !support::require(support::mariadb_available(), "MariaDB") {
        return;
    }
    let redis = support::RedisServer::start(Some(&rd_pw));
    if !support::require(redis.is_some(), "redis-server") {
        return;
    }
    let redis = redis.expect("redis");

    // data behind each password
    pg.psql(
        "postgres",
        "create table t as select g id, md5(g::text) v from generate_series(1, 60000) g",
    );
    let mdb = support::unique("sec_maria");
    let muser = support::unique("u");
    support::mariadb(&format!(
        "create database `{mdb}`; create table `{mdb}`.t as select seq id, md5(seq) v from `{mdb}`.seq_1_to_60000; \
         create user '{muser}'@'127.0.0.1' identified by '{my_pw}'; grant all on `{mdb}`.* to '{muser}'@'127.0.0.1'"
    ));
    // dropped even when an assertion fails
    let _cleanup = MariaCleanup(format!(
        "drop user if exists '{muser}'@'127.0.0.1'; drop database if exists `{mdb}`"
    ));
    redis.cli(&["debug", "populate", "50000"]);
    // wrong-password access is refused: the passwords are real
    assert!(support::sh(&format!(
        "PGPASSWORD=wrong psql -X -h 127.0.0.1 -p {} -U postgres -c 'select 1'",
        pg.port
    ))
    .stdout
    .is_empty());

    let marker = support::unique("secjob");
    let yaml = format!(
        "version: 1
settings: {{ temp_dir: '{{dir}}/tmp', max_parallel: 4, log: {{ level: debug, format: json }} }}
remotes: {{ local: {{ path: '{{dir}}/out' }} }}
jobs:
  {marker}-pg:   {{ engine: postgres, host: 127.0.0.1, port: {pgport}, user: postgres, password: '{pg_pw}', database: postgres, remote: local, compress: zstd }}
  {marker}-pguri: {{ engine: postgres, uri: 'postgresql://postgres:{pg_pw}@127.0.0.1:{pgport}/postgres?sslmode=disable', remote: local, compress: native }}
  {marker}-my:   {{ engine: mariadb, host: 127.0.0.1, port: 3306, user: {muser}, password: '{my_pw}', database: {mdb}, remote: local, compress: gzip }}
  {marker}-mysql: {{ engine: mysql, uri: 'mysql://{muser}:{my_pw}@127.0.0.1:3306/{mdb}', remote: local }}
  {marker}-rd:   {{ engine: redis, host: 127.0.0.1, port: {rport}, password: '{rd_pw}', remote: local }}
",
        pgport = pg.port,
        rport = redis.port,
    );
    let t = Test::new().manifest(&yaml);
    let secrets = vec![pg_pw.clone(), my_pw.clone(), rd_pw.clone()];
    let watch = ["pg_dump", "mariadb-dump", "mysqldump", "redis-cli"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sampler = Sampler::start(secrets.clone(), watch, t.dir.path().display().to_string());
    // several rounds, so the sampler catches each tool at least once
    let mut outputs = Vec::new();
    for _ in 0..3 {
        let r = t.run(&["run", "--once"]);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        outputs.push(r.stdout());
        outputs.push(r.stderr());
    }
    let (leaks, seen) = sampler.finish();
    assert!(leaks.is_empty(), "password seen: {leaks:#?}");
    for tool in ["pg_dump", "mariadb-dump", "mysqldump", "redis-cli"] {
        assert!(
            seen.iter()
                .any(|c| c.contains(tool) && !c.contains("--version")),
            "the sampler never saw {tool} running (sampling proves nothing): {seen:#?}"
        );
    }
    // what dbstash itself printed, plus plan/list output
    for args in [
        vec!["plan", "--offline"],
        vec!["plan", "--offline", "--format", "json"],
        vec!["list"],
        vec!["list", "--format", "json"],
        vec!["validate"],
    ] {
        let r = t.run(&args);
        outputs.push(r.stdout());
        outputs.push(r.stderr());
    }
    for text in &outputs {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "password {s} in output:\n{text}"
            );
        }
    }
    assert!(
        outputs
            .iter()
            .any(|o| o.contains("tool_stderr") || o.contains("backup_succeeded")),
        "expected debug/json logs"
    );
    // the backups are real (5 jobs x 3 rounds, object + record each)
    assert_eq!(t.files("out").len(), 30, "{:?}", t.files("out"));

    // A failing run whose tool prints its password-bearing connection string to stderr: the
    // error, the logs (debug level included) and the notifier-facing outcome stay clean.
    // a `-` so that the URI the tool prints carries it percent-encoded (`%2D`)
    let leak_pw = format!("Leak-Pw{}", std::process::id());
    let leak_encoded = leak_pw.replace('-', "%2D");
    let t2 = Test::new()
        .manifest(&format!(
            "version: 1
settings: {{ temp_dir: '{{dir}}/tmp', log: {{ level: debug, format: json }} }}
remotes: {{ local: {{ path: '{{dir}}/out' }} }}
jobs:
  chatty: {{ engine: mongo, host: 127.0.0.1, user: app, password: '{leak_pw}', database: shop, remote: local }}
"
        ))
        .write_executable(
            "mongodump",
            "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'mongodump version: fake'; exit 0; fi
for a in \"$@\"; do case \"$a\" in --config=*) f=\"${a#--config=}\";; esac; done
echo \"Failed: error connecting to db server: $(cat \"$f\")\" >&2
exit 1
",
        );
    let r = t2.run(&["backup", "chatty"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr().contains("error connecting to db server"),
        "the tool's stderr tail belongs in the error: {}",
        r.stderr()
    );
    for p in [&leak_pw, &leak_encoded] {
        assert!(
            !r.stderr().contains(p.as_str()) && !r.stdout().contains(p.as_str()),
            "password ({p}) in logs/error:\n{}",
            r.stderr()
        );
    }
}

struct MariaCleanup(String);

impl Drop for MariaCleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("mariadb")
            .args(["-e", &self.0])
            .output();
    }
}

/// The option file that carries the MariaDB password: 0600, in a 0700 run folder, named by
/// `--defaults-extra-file` (first argument, as the client requires), gone after the run.
#[test]
fn mysql_option_file_is_private_and_removed() {
    let pw = format!("OptPw{}", std::process::id());
    let t = Test::new()
        .manifest(&format!(
            "version: 1
settings: {{ temp_dir: '{{dir}}/tmp' }}
remotes: {{ local: {{ path: '{{dir}}/out' }} }}
jobs:
  opt: {{ engine: mariadb, host: 127.0.0.1, user: app, password: '{pw}', database: shop, remote: local }}
"
        ))
        .write_executable(
            "mariadb-dump",
            "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'mariadb-dump fake'; exit 0; fi
case \"$1\" in
  --defaults-extra-file=*) f=\"${1#--defaults-extra-file=}\";;
  *) echo 'option file is not the first argument' >&2; exit 2;;
esac
{
  echo \"FILE_MODE $(stat -c %a \"$f\")\"
  echo \"DIR_MODE $(stat -c %a \"$(dirname \"$f\")\")\"
  echo \"PATH $f\"
  grep -c password \"$f\" | sed 's/^/PASSWORD_LINES /'
  cat \"$f\" | sed 's/^/CONTENT /'
} > {dir}/seen
echo '-- MariaDB dump (fake) ---------------------------------------------------------------'
echo 'CREATE TABLE t (id int);'
",
        );
    let r = t.run(&["backup", "opt"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let seen = std::fs::read_to_string(t.path("seen")).expect("seen");
    assert!(seen.contains("FILE_MODE 600"), "{seen}");
    assert!(seen.contains("DIR_MODE 700"), "{seen}");
    assert!(seen.contains("PASSWORD_LINES 1"), "{seen}");
    assert!(
        seen.contains(&format!("CONTENT password=\"{pw}\"")),
        "{seen}"
    );
    let path = seen
        .lines()
        .find_map(|l| l.strip_prefix("PATH "))
        .expect("path");
    assert!(
        !std::path::Path::new(path).exists(),
        "option file left behind: {path}"
    );
    assert!(!r.stderr().contains(&pw), "{}", r.stderr());
}
