//! Restore safety: a damaged backup never reaches a database whose restore tool cannot roll back
//! (MariaDB here, MongoDB through a fake `mongorestore` because no MongoDB tools can be installed
//! here); a target's password can come from the environment (`${VAR}`) or a file instead of argv,
//! and a literal one is warned about; restored files are 0600 whatever the umask.

use crate::support;
use crate::support::{mariadb, psql, require, unique, Test};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn manifest(jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

/// The one backup object (not its record) under the local remote.
fn object(t: &Test) -> PathBuf {
    let objects: Vec<String> = t
        .files("out")
        .into_iter()
        .filter(|f| !f.ends_with(".dbstash.json"))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    t.path("out").join(&objects[0])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Flip one hex digit a little after `anchor` (in the middle of the dump): the data stays valid
/// for the restore tool, so only the sha256 check can tell.
fn flip_after(path: &Path, anchor: &[u8], offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = find(&bytes, anchor).expect("anchor in the backup") + offset;
    assert!(
        at > 200_000 && at < bytes.len() - 200_000,
        "the flip must sit well inside the stream ({at} of {})",
        bytes.len()
    );
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(path, bytes).unwrap();
}

/// Drops MariaDB databases when the test ends, failing or not.
struct MariaDrop(Vec<String>);

impl Drop for MariaDrop {
    fn drop(&mut self) {
        for db in &self.0 {
            let _ = std::process::Command::new("mariadb")
                .arg("-e")
                .arg(format!("drop database if exists `{db}`"))
                .output();
        }
    }
}

/// A source with 60,000 rows, and an existing target with its own row in a table of the same
/// name and a table the backup does not know.
fn maria_fixture() -> (String, String, MariaDrop) {
    let src = unique("safe_src");
    let dst = unique("safe_dst");
    let guard = MariaDrop(vec![src.clone(), dst.clone()]);
    mariadb(&format!(
        "create database {src}; create table {src}.t(id int primary key, v varchar(64)); \
         insert into {src}.t select seq, md5(seq) from {src}.seq_1_to_60000; \
         create database {dst}; create table {dst}.t(id int primary key, v varchar(64)); \
         insert into {dst}.t values (424242, 'the target''s own row'); \
         create table {dst}.keep(x int); insert into {dst}.keep values (1),(2),(3)"
    ));
    (src, dst, guard)
}

fn target_untouched(dst: &str) {
    assert_eq!(
        mariadb(&format!("select count(*) from {dst}.t")),
        "1",
        "rows in the target's table after a damaged backup was restored over it"
    );
    assert_eq!(
        mariadb(&format!("select concat(id, ':', v) from {dst}.t")),
        "424242:the target's own row"
    );
    assert_eq!(
        mariadb(&format!(
            "select group_concat(x order by x) from {dst}.keep"
        )),
        "1,2,3"
    );
}

fn my_sig(db: &str) -> String {
    mariadb(&format!(
        "select count(*), md5(group_concat(id, ',', v order by id separator ';')) from {db}.t"
    ))
}

fn maria_test(src: &str) -> Test {
    Test::new().manifest(&manifest(&format!(
        "  shop: {{ engine: mariadb, uri: 'mysql://root@localhost/{src}', remote: local, compress: none }}\n"
    )))
}

#[test]
fn a_flipped_byte_restored_over_an_existing_mariadb_database_leaves_it_untouched() {
    if !require(support::mariadb_available(), "MariaDB (root on the socket)") {
        return;
    }
    let (src, dst, _guard) = maria_fixture();
    let t = maria_test(&src);
    t.run(&["backup", "shop"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    flip_after(&object(&t), b"(30000,'", 8 + 5);
    let to = format!("mysql://root@localhost/{dst}");
    let r = t
        .run(&["restore", "shop", "--to", &to, "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("sha256"), "{}", r.stderr());
    target_untouched(&dst);

    // A drill never restores into a database it did not create: refused, nothing touched.
    let d = t
        .run(&["verify", "shop", "--restore-to", &to])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(d.stderr().contains("already exists"), "{}", d.stderr());
    target_untouched(&dst);
}

#[test]
fn a_good_backup_restored_over_an_existing_mariadb_database_replaces_its_tables() {
    if !require(support::mariadb_available(), "MariaDB (root on the socket)") {
        return;
    }
    let (src, dst, mut guard) = maria_fixture();
    let t = maria_test(&src);
    t.run(&["backup", "shop"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let r = t
        .run(&[
            "restore",
            "shop",
            "--to",
            &format!("mysql://root@localhost/{dst}"),
            "--yes",
        ])
        .stdout_matches(&support::restored_line_re(
            "shop",
            r"mariadb root@localhost/\w+",
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    assert_eq!(my_sig(&dst), my_sig(&src));
    assert!(my_sig(&dst).starts_with("60000\t"), "{}", my_sig(&dst));
    // The dump replaces its own tables only.
    assert_eq!(
        mariadb(&format!(
            "select group_concat(x order by x) from {dst}.keep"
        )),
        "1,2,3"
    );
    // Checked in full first, then streamed again into the client.
    assert!(r.stderr().contains("restore_prechecked"), "{}", r.stderr());

    // Into a database the restore creates, one pass is enough (it is dropped on failure).
    let fresh = unique("safe_new");
    guard.0.push(fresh.clone());
    let r = t
        .run(&["restore", "shop", "--to", &fresh])
        .stdout_matches(&support::restored_line_re(
            "shop",
            r"mariadb root@localhost(:3306)?/\w+ \(created\)",
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    assert!(!r.stderr().contains("restore_prechecked"), "{}", r.stderr());
    assert_eq!(my_sig(&fresh), my_sig(&src));
}

const MONGODUMP: &str = r#"#!/bin/sh
# fake mongodump: an archive signature, then 20,000 lines
printf '\155\342\231\201'
i=0; while [ $i -lt 20000 ]; do echo "document $i of the fake archive"; i=$((i+1)); done
"#;

const MONGORESTORE: &str = r#"#!/bin/sh
# fake mongorestore: records that it started, then what it read
n=$(ls {dir}/calls 2>/dev/null | wc -l)
d={dir}/calls/$n; mkdir -p $d
printf '%s\n' "$@" > $d/argv
cat > $d/stdin
"#;

/// mongorestore (here a fake: MongoDB tools cannot be installed on this machine) applies what it
/// reads, and dbstash cannot tell whether the target database exists: a damaged archive must be
/// found out before mongorestore is even started.
#[test]
fn a_damaged_mongo_archive_never_reaches_the_fake_mongorestore() {
    let t = Test::new()
        .manifest(&manifest(
            "  m: { engine: mongo, uri: 'mongodb://127.0.0.1:27017/shop', remote: local }\n",
        ))
        .write_executable("mongodump", MONGODUMP)
        .write_executable("mongorestore", MONGORESTORE);
    t.run(&["backup", "m"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let obj = object(&t);
    let pristine = std::fs::read(&obj).unwrap();

    // Good: checked first, then the whole archive reaches mongorestore once.
    let r = t
        .run(&["restore", "m", "--yes"])
        .stdout_matches(&support::restored_line_re(
            "m",
            r"mongo 127\.0\.0\.1:27017/shop",
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .stderr_matches(&support::logged("restore_prechecked"))
        .success();
    assert!(r.stderr().contains("restore_prechecked"), "{}", r.stderr());
    assert_eq!(t.files("calls"), ["0/argv", "0/stdin"]);
    assert_eq!(std::fs::read(t.path("calls/0/stdin")).unwrap(), pristine);
    std::fs::remove_dir_all(t.path("calls")).unwrap();

    flip_after(&obj, b"document 10000 ", 9);
    let r = t
        .run(&["restore", "m", "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("sha256"), "{}", r.stderr());
    assert!(
        t.files("calls").is_empty(),
        "mongorestore was started for a damaged archive: {:?}",
        t.files("calls")
    );
}

/// Runs dbstash while sampling every process's argv: returns the run, the argv lines that held
/// `secret`, and whether a restore tool talking to `port` was seen at all.
fn run_sampled(
    t: &Test,
    args: &[&str],
    secret: &str,
    port: u16,
) -> (support::Run, Vec<String>, bool) {
    let child = t
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbstash");
    let pid = child.id();
    let mut leaks = Vec::new();
    let mut seen = false;
    let tool_mark = format!("--port={port}");
    while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        leaks.extend(support::processes_with(secret));
        seen |= support::processes_with(&tool_mark)
            .iter()
            .any(|p| p.contains("psql") || p.contains("pg_restore"));
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().expect("wait dbstash");
    (support::Run::new(out), leaks, seen)
}

#[test]
fn a_target_password_from_the_environment_or_a_file_never_reaches_argv() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let pw = format!("ToPw{}x", std::process::id());
    let pg = support::PgScram::start(&pw);
    if !require(pg.is_some(), "own scram PostgreSQL (initdb)") {
        return;
    }
    let pg = pg.expect("pg");
    let src = support::pg_fixture("safe_pgsrc", 60_000);
    let _src_guard = support::PgDropGuard(src.clone());
    let t = Test::new()
        .manifest(&manifest(&format!(
            "  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local }}\n"
        )))
        .env("DBSTASH_TEST_TO_PW", &pw);
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let want = psql(
        &src,
        "select count(*) || ':' || md5(string_agg(v, ',' order by id)) from t",
    );

    // --to with ${VAR}
    let to = format!(
        "postgresql://postgres:${{DBSTASH_TEST_TO_PW}}@127.0.0.1:{}/from_env",
        pg.port
    );
    let (r, leaks, seen) = run_sampled(&t, &["restore", "app", "--to", &to], &pw, pg.port);
    let r = r
        .stdout_matches(&support::restored_line(
            "app",
            &format!("postgres postgres@127.0.0.1:{}/from_env (created)", pg.port),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    assert!(leaks.is_empty(), "password in argv: {leaks:#?}");
    assert!(seen, "the sampler never saw psql (sampling proved nothing)");
    assert!(!r.stderr().contains("dbstash: warning"), "{}", r.stderr());
    let sig = "select count(*) || ':' || md5(string_agg(v, ',' order by id)) from t";
    assert_eq!(pg.psql("from_env", sig), want);

    // --to-uri-file (one line, as `echo` writes it; 0600 like any secret file)
    let file = t.path("to.uri");
    std::fs::write(
        &file,
        format!(
            "postgresql://postgres:{pw}@127.0.0.1:{}/from_file\n",
            pg.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file_arg = file.display().to_string();
    let (r, leaks, seen) = run_sampled(
        &t,
        &["restore", "app", "--to-uri-file", &file_arg],
        &pw,
        pg.port,
    );
    r.stdout_matches(&support::restored_line(
        "app",
        &format!(
            "postgres postgres@127.0.0.1:{}/from_file (created)",
            pg.port
        ),
    ))
    // log lines carry timestamps; the outcome event is what is stable
    .stderr_matches(&support::logged("restore_succeeded"))
    .success();
    assert!(leaks.is_empty(), "password in argv: {leaks:#?}");
    assert!(seen, "the sampler never saw psql (sampling proved nothing)");
    assert_eq!(pg.psql("from_file", sig), want);

    // verify --restore-to with ${VAR}, and --restore-to-file: real drills on the scram server
    let drill = format!(
        "postgresql://postgres:${{DBSTASH_TEST_TO_PW}}@127.0.0.1:{}/drill_env",
        pg.port
    );
    let (r, leaks, _) = run_sampled(&t, &["verify", "app", "--restore-to", &drill], &pw, pg.port);
    let r = r
        .stdout_matches(r"drill of job app backup \S+: [0-9]+ tables, 60000 rows restored into postgres postgres@127\.0\.0\.1:[0-9]+/drill\w* \(dropped again\) in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    assert!(leaks.is_empty(), "password in argv: {leaks:#?}");
    assert!(r.stdout().contains("60000 rows"), "{}", r.stdout());
    std::fs::write(
        &file,
        format!(
            "postgresql://postgres:{pw}@127.0.0.1:{}/drill_file\n",
            pg.port
        ),
    )
    .unwrap();
    let (r, leaks, _) = run_sampled(
        &t,
        &["verify", "app", "--restore-to-file", &file_arg],
        &pw,
        pg.port,
    );
    let r = r
        .stdout_matches(r"drill of job app backup \S+: [0-9]+ tables, 60000 rows restored into postgres postgres@127\.0\.0\.1:[0-9]+/drill\w* \(dropped again\) in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    assert!(leaks.is_empty(), "password in argv: {leaks:#?}");
    assert!(r.stdout().contains("60000 rows"), "{}", r.stdout());

    // An unset variable is a clear error that names the variable, and touches nothing.
    let r = t
        .run(&[
            "restore",
            "app",
            "--to",
            "postgresql://postgres:${DBSTASH_TEST_UNSET_PW}@127.0.0.1:1/x",
        ])
        .stderr_is("dbstash: --to: environment variable `DBSTASH_TEST_UNSET_PW` is not set (use `${DBSTASH_TEST_UNSET_PW:-default}` for a default)\n")
        .failure(2);
    assert!(
        r.stderr().contains("--to") && r.stderr().contains("DBSTASH_TEST_UNSET_PW"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_literal_password_in_to_or_restore_to_is_warned_about() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("safe_warn", 100);
    let _g1 = support::PgDropGuard(src.clone());
    let dst = unique("safe_warn_dst");
    let _g2 = support::PgDropGuard(dst.clone());
    let t = Test::new().manifest(&manifest(&format!(
        "  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local }}\n"
    )));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let secret = "Lit3ralSecret";
    // The shared server trusts everyone: the restore works, and the password was in argv anyway.
    let r = t
        .run(&[
            "restore",
            "app",
            "--to",
            &format!("postgresql://postgres:{secret}@127.0.0.1:5432/{dst}"),
        ])
        .stdout_matches(&support::restored_line_re(
            "app",
            &format!(r"postgres postgres@127\.0\.0\.1:5432/{dst}( \(created\))?"),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    let stderr = r.stderr();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("dbstash: warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr());
    assert!(warnings[0].contains("--to "), "{}", warnings[0]);
    assert!(!r.stderr().contains(secret), "{}", r.stderr());
    assert_eq!(psql(&dst, "select count(*) from t"), "100");

    let scratch = unique("safe_warn_drill");
    let _g3 = support::PgDropGuard(scratch.clone());
    let r = t
        .run(&[
            "verify",
            "app",
            "--restore-to",
            &format!("postgresql://postgres:{secret}@127.0.0.1:5432/{scratch}"),
        ])
        .stdout_matches(r"drill of job app backup \S+: [0-9]+ tables, [0-9]+ rows restored into postgres postgres@127\.0\.0\.1:5432/\w+ \(dropped again\) in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    assert!(
        r.stderr()
            .lines()
            .any(|l| l.contains("dbstash: warning") && l.contains("--restore-to ")),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains(secret), "{}", r.stderr());
}

/// Run dbstash under `umask 000`.
fn run_umask_000(t: &Test, args: &[&str]) -> support::Run {
    let mut c = t.command(args);
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = c.stdin(Stdio::null()).output().expect("run dbstash");
    support::Run::new(out)
}

#[test]
fn restored_sqlite_and_redis_files_are_0600_under_umask_000() {
    let t = Test::new();
    let db = t.path("src.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "create table t(x integer primary key, y text); insert into t(y) values ('a'), ('b');",
        )
        .unwrap();
    }
    let redis = support::RedisServer::start(None);
    let redis_job = match &redis {
        Some(r) => {
            r.cli(&["debug", "populate", "1000"]);
            format!(
                "  cache: {{ engine: redis, host: 127.0.0.1, port: {}, remote: local }}\n",
                r.port
            )
        }
        None => String::new(),
    };
    let t = t.manifest(&manifest(&format!(
        "  sq_file: {{ engine: sqlite, database: '{{dir}}/src.db', remote: local }}\n  sq_sql: {{ engine: sqlite, database: '{{dir}}/src.db', remote: local, format: sql }}\n{redis_job}"
    )));
    t.run(&["backup", "sq_file", "sq_sql"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for job in ["sq_file", "sq_sql"] {
        let dest = t.path(&format!("{job}-restored.db"));
        run_umask_000(&t, &["restore", job, "--to", &dest.display().to_string()])
            .stdout_matches(&support::restored_line_re(job, r"sqlite \S+-restored\.db"))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("restore_succeeded"))
            .success();
        assert_eq!(support::mode(&dest), 0o600, "{job}: {}", dest.display());
        // Over a world-writable file: the restored one is 0600 all the same.
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o666)).unwrap();
        run_umask_000(
            &t,
            &["restore", job, "--to", &dest.display().to_string(), "--yes"],
        )
        .stdout_matches(&support::restored_line_re(job, r"sqlite \S+-restored\.db"))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
        assert_eq!(support::mode(&dest), 0o600, "{job} over a 0666 file");
        let rows: i64 = rusqlite::Connection::open(&dest)
            .unwrap()
            .query_row("select count(*) from t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2, "{job}");
    }
    if !require(redis.is_some(), "redis-server") {
        return;
    }
    t.run(&["backup", "cache"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let rdb = t.path("restored.rdb");
    run_umask_000(
        &t,
        &["restore", "cache", "--to-file", &rdb.display().to_string()],
    )
    .stdout_matches(&support::restored_line_re(
        "cache",
        r"file \S+/restored\.rdb",
    ))
    // log lines carry timestamps; the outcome event is what is stable
    .stderr_matches(&support::logged("restore_succeeded"))
    .success();
    assert_eq!(support::mode(&rdb), 0o600);
    assert!(std::fs::read(&rdb).unwrap().starts_with(b"REDIS"));
    std::fs::set_permissions(&rdb, std::fs::Permissions::from_mode(0o666)).unwrap();
    run_umask_000(
        &t,
        &[
            "restore",
            "cache",
            "--to-file",
            &rdb.display().to_string(),
            "--yes",
        ],
    )
    .stdout_matches(&support::restored_line_re(
        "cache",
        r"file \S+/restored\.rdb",
    ))
    // log lines carry timestamps; the outcome event is what is stable
    .stderr_matches(&support::logged("restore_succeeded"))
    .success();
    assert_eq!(
        support::mode(&rdb),
        0o600,
        "an RDB file restored over a 0666 file"
    );
    // Nothing but the restored files is left beside them.
    let mut left = t.files("");
    left.retain(|f| f.contains("restored"));
    assert_eq!(
        left,
        ["restored.rdb", "sq_file-restored.db", "sq_sql-restored.db"]
    );
}
