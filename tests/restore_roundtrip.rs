//! `dbstash backup` then `dbstash restore --to` a NEW database, compared with the source, for every
//! engine and compression (real PostgreSQL, MariaDB, Redis, SQLite; MongoDB with fake tools).

use crate::support;
use crate::support::{mariadb, pg_drop, psql, require, unique, Test};
use std::process::Command;

fn manifest(jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

/// Row count and a checksum of every row of tables t and u.
fn pg_sig(db: &str) -> String {
    psql(
        db,
        "select (select count(*) || ':' || md5(string_agg(id || ',' || v, ';' order by id)) from t) || ' ' || \
         (select count(*) || ':' || md5(string_agg(id || ',' || w, ';' order by id)) from u)",
    )
}

fn pg_source(prefix: &str, rows: u32) -> String {
    let db = support::pg_fixture(prefix, rows);
    psql(&db, &format!("create table u(id int primary key, w text not null); insert into u select g, repeat(md5(g::text), 2) from generate_series(1,{rows}) g; create index on u(w)"));
    db
}

fn pg_drop_quoted(db: &str) {
    let _ = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c"])
        .arg(format!(
            "drop database if exists \"{}\" with (force)",
            db.replace('"', "\"\"")
        ))
        .output();
}

#[test]
fn postgres_every_format_and_compression_round_trips_into_new_databases() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = pg_source("rt_src", 1500);
    let jobs = [
        ("plain_none", "compress: none"),
        ("plain_gzip", "compress: gzip"),
        ("plain_zstd", "compress: zstd"),
        ("custom_native", "compress: native"),
        ("custom_none", "format: custom, compress: none"),
    ];
    let yaml: String = jobs
        .iter()
        .map(|(name, extra)| {
            format!("  {name}: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, {extra} }}\n")
        })
        .collect();
    let t = Test::new().manifest(&manifest(&yaml));
    let names: Vec<&str> = jobs.iter().map(|j| j.0).collect();
    let mut args = vec!["backup"];
    args.extend(&names);
    t.run(&args) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let want = pg_sig(&src);
    let mut created = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // A name that needs quoting for one of them; the other forms of --to for the rest.
        let target = if i == 2 {
            format!("{}_we\"ird name;", unique("rt"))
        } else {
            unique("rt")
        };
        created.push(target.clone());
        assert!(!support::pg_exists(&target));
        let to = match i % 3 {
            0 => target.clone(),
            1 => format!("postgresql://postgres@127.0.0.1:5432/{target}"),
            _ => format!(
                "postgres://postgres@127.0.0.1/{}?sslmode=disable",
                target
                    .replace('%', "%25")
                    .replace('"', "%22")
                    .replace(' ', "%20")
                    .replace(';', "%3B")
            ),
        };
        let r = t.run(&["restore", name, "--to", &to]);
        let r = r
            .stdout_matches(&support::restored_line_re(
                name,
                r"postgres postgres@127\.0\.0\.1(:5432)?/.+ \(created\)",
            ))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("restore_succeeded"))
            .success();
        assert!(r.stdout().contains("restored backup"), "{}", r.stdout());
        assert!(
            support::pg_exists(&target),
            "{name}: {target} was not created"
        );
        let got = psql_q(&target);
        assert_eq!(got, want, "{name} restored into {target}");
    }
    // verify passes on every good backup
    for name in &names {
        let r = t
            .run(&["verify", name])
            .stdout_matches(&support::verified_line(r"\w+"))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("verify_succeeded"))
            .success();
        assert!(r.stdout().starts_with("ok "), "{}", r.stdout());
    }
    for db in created {
        pg_drop_quoted(&db);
    }
    pg_drop(&src);
}

/// pg_sig for names that need quoting (psql -d takes the name verbatim).
fn psql_q(db: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1"])
        .arg(format!("--dbname=dbname='{}'", db.replace('\\', "\\\\").replace('\'', "\\'")))
        .arg("-c")
        .arg("select (select count(*) || ':' || md5(string_agg(id || ',' || v, ';' order by id)) from t) || ' ' || \
              (select count(*) || ':' || md5(string_agg(id || ',' || w, ';' order by id)) from u)")
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn my_sig(db: &str) -> String {
    let q = db.replace('`', "``");
    mariadb(&format!(
        "select count(*), md5(group_concat(id, ',', v order by id separator ';')) from `{q}`.t"
    ))
}

fn my_exists(db: &str) -> bool {
    mariadb(&format!(
        "select count(*) from information_schema.schemata where schema_name = '{}'",
        db.replace('\'', "''")
    )) == "1"
}

#[test]
fn mariadb_every_compression_round_trips_into_new_databases() {
    if !require(support::mariadb_available(), "MariaDB (root on the socket)") {
        return;
    }
    let src = unique("myrt_src");
    mariadb(&format!(
        "create database {src}; use {src}; create table t(id int primary key, v varchar(64)); insert into t select seq, md5(seq) from seq_1_to_2000"
    ));
    let yaml: String = ["none", "gzip", "zstd"]
        .iter()
        .map(|c| {
            format!("  my_{c}: {{ engine: mariadb, uri: 'mysql://root@localhost/{src}', remote: local, compress: {c} }}\n")
        })
        .collect();
    let t = Test::new().manifest(&manifest(&yaml));
    t.run(&["backup", "my_none", "my_gzip", "my_zstd"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let want = my_sig(&src);
    let mut created = Vec::new();
    for (i, c) in ["none", "gzip", "zstd"].iter().enumerate() {
        let target = if i == 1 {
            format!("{}-we`ird", unique("myrt"))
        } else {
            unique("myrt")
        };
        created.push(target.clone());
        assert!(!my_exists(&target));
        let to = match i {
            0 => target.clone(),
            1 => format!("mysql://root@localhost/{}", target.replace('`', "%60")),
            // Go's DSN form
            _ => format!("root@unix(/run/mysqld/mysqld.sock)/{target}"),
        };
        t.run(&["restore", &format!("my_{c}"), "--to", &to])
            .stdout_matches(&support::restored_line_re(
                &format!("my_{c}"),
                r"mariadb root@localhost(:3306)?/.+ \(created\)",
            ))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("restore_succeeded"))
            .success();
        assert!(my_exists(&target), "{target} was not created");
        assert_eq!(my_sig(&target), want, "my_{c} into {target}");
        t.run(&["verify", &format!("my_{c}")])
            .stdout_matches(&support::verified_line(c))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("verify_succeeded"))
            .success();
    }
    for db in created.iter().chain([&src]) {
        mariadb(&format!(
            "drop database if exists `{}`",
            db.replace('`', "``")
        ));
    }
}

fn sqlite_rows(path: &std::path::Path) -> (i64, String) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(
        "select count(*), group_concat(x || ':' || y, ',') from (select * from t order by x)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn sqlite_snapshot_and_sql_round_trip_and_replace_atomically() {
    let have_cli = support::have("sqlite3");
    let t = Test::new().manifest(&manifest(
        "  snap_none: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: none }\n  snap_gzip: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: gzip }\n  sql_zstd: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: zstd, format: sql }\n",
    ));
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("create table t(x integer primary key, y text); with recursive s(i) as (select 1 union all select i+1 from s where i < 500) insert into t select i, hex(randomblob(8)) from s;").unwrap();
    drop(c);
    let want = sqlite_rows(&t.path("app.db"));
    let mut jobs = vec!["snap_none", "snap_gzip"];
    if have_cli {
        jobs.push("sql_zstd");
    }
    let mut args = vec!["backup"];
    args.extend(&jobs);
    t.run(&args) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for job in &jobs {
        // into a new file via --to
        let new = t.path(&format!("restored-{job}.db"));
        t.run(&["restore", job, "--to", &new.display().to_string()])
            .stdout_matches(&support::restored_line(
                job,
                &format!("sqlite {}", new.display()),
            ))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("restore_succeeded"))
            .success();
        assert_eq!(sqlite_rows(&new), want, "{job}");
    }
    // over the job's own database: needs --yes without a terminal, then replaces it whole
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("delete from t where x > 10;").unwrap();
    drop(c);
    let r = t
        .run(&["restore", "snap_gzip"])
        .stderr_is("dbstash: refusing to restore job `snap_gzip` into sqlite {dir}/app.db without confirmation: stdin is not a terminal (pass --yes)\n")
        .failure(1);
    assert!(r.stderr().contains("--yes"), "{}", r.stderr());
    assert_eq!(sqlite_rows(&t.path("app.db")).0, 10);
    t.run(&["restore", "snap_gzip", "--yes"])
        .stdout_matches(&support::restored_line_re(
            "snap_gzip",
            &regex::escape(&format!("sqlite {}", t.path("app.db").display())),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    assert_eq!(sqlite_rows(&t.path("app.db")), want);
    // no temp files left beside it
    let left: Vec<String> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("dbstash-restore"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // a drill into a scratch file counts rows and removes it
    let scratch = t.path("scratch.db");
    let r = t
        .run(&[
            "verify",
            "snap_none",
            "--restore-to",
            &scratch.display().to_string(),
        ])
        .stdout_matches(r"\A  t +500\ndrill of job snap_none backup \S+\.sqlite3: 1 tables, 500 rows restored into sqlite ")
        .stdout_contains("/scratch.db (dropped again) in ")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("drill_succeeded"))
        .success();
    assert!(r.stdout().contains("500"), "{}", r.stdout());
    assert!(!scratch.exists());
}

struct RedisServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start(password: &str, rdb: Option<&std::path::Path>) -> Option<RedisServer> {
        let dir = tempfile::tempdir().ok()?;
        let port = support::free_port();
        let mut c = Command::new("redis-server");
        c.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        if !password.is_empty() {
            c.args(["--requirepass", password]);
        }
        match rdb {
            Some(p) => {
                c.arg("--dir")
                    .arg(p.parent()?)
                    .arg("--dbfilename")
                    .arg(p.file_name()?);
            }
            None => {
                c.arg("--dir").arg(dir.path());
            }
        }
        let child = c
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let s = RedisServer {
            child,
            port,
            _dir: dir,
        };
        support::wait_port(port, std::time::Duration::from_secs(10)).then_some(s)
    }

    fn cli(&self, password: &str, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .env("REDISCLI_AUTH", password)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_rdb_goes_to_a_file_that_a_server_loads() {
    if !require(support::have("redis-server"), "redis-server") {
        return;
    }
    let pw = "redis-pw-123";
    let Some(src) = RedisServer::start(pw, None) else {
        panic!("redis-server did not start");
    };
    let mut script = String::new();
    for i in 0..300 {
        script.push_str(&format!("SET key:{i} value-{i}\n"));
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("redis-cli -p {} > /dev/null", src.port))
        .env("REDISCLI_AUTH", pw)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(out.success());
    assert_eq!(src.cli(pw, &["dbsize"]), "300");
    let t = Test::new().manifest(&manifest(&format!(
        "  cache: {{ engine: redis, uri: 'redis://:{pw}@127.0.0.1:{}', remote: local, compress: gzip }}\n",
        src.port
    )));
    t.run(&["backup", "cache"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    // no client-side restore: a clear refusal that points at --to-file
    let r = t
        .run(&["restore", "cache", "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("--to-file"), "{}", r.stderr());
    let rdb = t.path("loaded/dump.rdb");
    std::fs::create_dir_all(rdb.parent().unwrap()).unwrap();
    t.run(&["restore", "cache", "--to-file", &rdb.display().to_string()])
        .stdout_matches(&support::restored_line(
            "cache",
            &format!("file {}", rdb.display()),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    let loaded = RedisServer::start("", Some(&rdb)).expect("redis-server with the restored RDB");
    assert_eq!(loaded.cli("", &["dbsize"]), "300");
    assert_eq!(loaded.cli("", &["get", "key:42"]), "value-42");
    // verify checks the RDB's own checksum too; the drill says it could not restore
    let v = t
        .run(&["verify", "cache"])
        .stdout_matches(r"\Aok +redis-\S+\.rdb\.gz +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(gzip, [0-9.]+ [KMGT]?i?B decompressed\); RDB version [0-9]+, [0-9]+ bytes, CRC-64 checksum ok, followed by redis-cli's 40-byte transfer mark\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("verify_succeeded"))
        .success();
    assert!(v.stdout().contains("CRC-64 checksum ok"), "{}", v.stdout());
    let d = t
        .run(&["verify", "cache", "--restore-to", "redis://127.0.0.1:1/0"])
        .stdout_matches(r"\Anote: Redis cannot be restored from a client, so the drill checked the RDB instead: RDB version [0-9]+, [0-9]+ bytes, CRC-64 checksum ok, followed by redis-cli's 40-byte transfer mark\ndrill of job cache backup redis-\S+\.rdb\.gz: Redis cannot be restored from a client, so the drill checked the RDB instead: RDB version [0-9]+, [0-9]+ bytes, CRC-64 checksum ok, followed by redis-cli's 40-byte transfer mark in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("drill_succeeded"))
        .success();
    assert!(
        d.stdout().contains("cannot be restored from a client"),
        "{}",
        d.stdout()
    );
    assert!(!t.run(&["verify", "cache"]).stderr().contains(pw));
}

const MONGODUMP: &str = r#"#!/bin/sh
# fake mongodump: a recognisable archive on stdout
printf '\155\342\231\201' 
i=0; while [ $i -lt 2000 ]; do echo "document $i of the fake archive"; i=$((i+1)); done
"#;

const MONGORESTORE: &str = r#"#!/bin/sh
# fake mongorestore: record argv, the --config file and stdin
n=$(ls {dir}/calls 2>/dev/null | wc -l)
d={dir}/calls/$n; mkdir -p $d
printf '%s\n' "$@" > $d/argv
for a in "$@"; do case "$a" in --config=*) cp "${a#--config=}" $d/config ;; esac; done
env > $d/env
cat > $d/stdin
echo "2000 document(s) restored successfully. 0 document(s) failed to restore." >&2
"#;

#[test]
fn mongo_archives_stream_into_mongorestore_with_the_right_flags() {
    let t = Test::new()
        .manifest(&manifest(
            "  m_none: { engine: mongo, uri: 'mongodb://app:s3cr%40t@127.0.0.1:27017/shop?authSource=admin', remote: local }\n  m_native: { engine: mongo, uri: 'mongodb://app:s3cr%40t@127.0.0.1:27017/shop', remote: local, compress: native }\n  m_zstd: { engine: mongo, uri: 'mongodb://app:s3cr%40t@127.0.0.1:27017/shop', remote: local, compress: zstd }\n",
        ))
        .write_executable("mongodump", MONGODUMP)
        .write_executable("mongorestore", MONGORESTORE);
    t.run(&["backup", "m_none", "m_native", "m_zstd"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let dumped = Command::new("sh")
        .arg("-c")
        .arg(MONGODUMP)
        .output()
        .unwrap()
        .stdout;
    let cases = [
        ("m_none", None, false),
        ("m_native", Some("shop_restored"), true),
        (
            "m_zstd",
            Some("mongodb://other:pw2@127.0.0.1:27018/shop_zstd"),
            false,
        ),
    ];
    for (i, (job, to, gzip)) in cases.iter().enumerate() {
        let mut args = vec!["restore", job, "--yes"];
        if let Some(to) = to {
            args.extend(["--to", to]);
        }
        t.run(&args)
            .stdout_matches(&support::restored_line_re(
                job,
                r"mongo \S+@127\.0\.0\.1:2701[78]/shop\w*",
            ))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("restore_succeeded"))
            .success();
        let call = t.path(&format!("calls/{i}"));
        let stdin = std::fs::read(call.join("stdin")).unwrap();
        assert_eq!(stdin, dumped, "{job}: mongorestore got other bytes");
        let argv = std::fs::read_to_string(call.join("argv")).unwrap();
        let lines: Vec<&str> = argv.lines().collect();
        assert!(
            lines.contains(&"--archive") && lines.contains(&"--drop"),
            "{argv}"
        );
        assert_eq!(lines.contains(&"--gzip"), *gzip, "{job}: {argv}");
        assert!(
            !argv.contains("s3cr") && !argv.contains("pw2"),
            "secret in argv: {argv}"
        );
        assert!(lines.contains(&"--nsInclude=shop.*"), "{argv}");
        let config = std::fs::read_to_string(call.join("config")).unwrap();
        match to {
            None => {
                assert!(!lines.iter().any(|l| l.starts_with("--nsTo")), "{argv}");
                assert!(
                    config.contains("mongodb://app:s3cr%40t@127.0.0.1:27017/?authSource=admin"),
                    "{config}"
                );
            }
            Some(t) if t.starts_with("mongodb://") => {
                assert!(lines.contains(&"--nsTo=shop_zstd.*"), "{argv}");
                assert!(config.contains("other:pw2@127.0.0.1:27018/"), "{config}");
            }
            Some(_) => {
                assert!(
                    lines.contains(&"--nsFrom=shop.*") && lines.contains(&"--nsTo=shop_restored.*"),
                    "{argv}"
                );
            }
        }
    }
    // the config file (with the password) is gone after the run
    assert!(
        t.files("tmp").iter().all(|f| !f.ends_with("mongo.yaml")),
        "{:?}",
        t.files("tmp")
    );
    t.run(&["verify", "m_native"])
        .stdout_matches(&support::verified_line("none"))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("verify_succeeded"))
        .success();
    t.run(&["verify", "m_zstd"])
        .stdout_matches(&support::verified_line("zstd"))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("verify_succeeded"))
        .success();
}

#[test]
fn restore_refuses_without_yes_when_stdin_is_not_a_terminal() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("rt_refuse", 50);
    let other = support::pg_fixture("rt_refuse_other", 7);
    let t = Test::new().manifest(&manifest(&format!(
        "  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local }}\n"
    )));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    // the job's own database
    let r = t
        .run(&["restore", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(lines.len(), 1, "one clear line: {err}");
    assert!(
        lines[0].contains("--yes") && lines[0].contains("not a terminal"),
        "{err}"
    );
    // an existing database named by --to
    let r = t
        .run(&["restore", "app", "--to", &other])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("--yes"), "{}", r.stderr());
    assert_eq!(psql(&other, "select count(*) from t"), "7");
    pg_drop(&src);
    pg_drop(&other);
}

/// `script` gives dbstash a terminal on stdin; the answer is typed into it.
fn on_terminal(t: &Test, args: &str, answer: &str) -> (bool, String) {
    use std::io::Write;
    let cmd = format!(
        "{} -c {} {args}",
        env!("CARGO_BIN_EXE_dbstash"),
        t.path("dbstash.yaml").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(t.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    stdin.write_all(answer.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_restore_asks_before_replacing_the_jobs_database() {
    if !require(support::have("script"), "script (util-linux)") {
        return;
    }
    let t = Test::new().manifest(&manifest(
        "  app: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: zstd }\n",
    ));
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch(
        "create table t(x integer primary key, y text); insert into t values (1, 'a'), (2, 'b');",
    )
    .unwrap();
    drop(c);
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("delete from t where x = 2;").unwrap();
    drop(c);
    let (ok, out) = on_terminal(&t, "restore app", "no\n");
    assert!(!ok, "{out}");
    assert!(out.contains("Type 'yes'"), "{out}");
    assert!(out.contains("cancelled"), "{out}");
    assert_eq!(sqlite_rows(&t.path("app.db")).0, 1);
    let (ok, out) = on_terminal(&t, "restore app", "yes\n");
    assert!(ok, "{out}");
    assert_eq!(sqlite_rows(&t.path("app.db")).0, 2);
}

#[test]
fn postgres_with_password_auth_restores_creates_and_drills() {
    if !require(support::pg_available(), "PostgreSQL binaries") {
        return;
    }
    let pw = "scr4m-p@ss w0rd";
    let Some(pg) = support::PgScram::start(pw) else {
        require(false, "a scram PostgreSQL of our own");
        return;
    };
    pg.psql("postgres", "create database src");
    pg.psql("src", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 700) g; create table u(id int, w text)");
    let enc = pw.replace('@', "%40").replace(' ', "%20");
    let t = Test::new().manifest(&manifest(&format!(
        "  app: {{ engine: postgres, uri: 'postgresql://postgres:{enc}@127.0.0.1:{}/src', remote: local, compress: native }}\n",
        pg.port
    )));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    // --to with the password in the URI: created, restored, password never printed
    let r = t
        .run(&[
            "restore",
            "app",
            "--to",
            &format!("postgresql://postgres:{enc}@127.0.0.1:{}/copy", pg.port),
        ])
        .stdout_matches(&support::restored_line_re("app", &format!(r"postgres postgres@127\.0\.0\.1:{}/copy \(created\)", pg.port)))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .stderr_contains("dbstash: warning: --to holds a password in plain text, which every user of this host can read in the process list; use ${VAR} or --to-uri-file PATH instead\n")
        .success();
    assert_eq!(pg.psql("copy", "select count(*) from t"), "700");
    // a bare name on the job's own server, with the job's credentials
    t.run(&["restore", "app", "--to", "copy2"])
        .stdout_matches(&support::restored_line_re(
            "app",
            &format!(
                r"postgres postgres@127\.0\.0\.1:{}/copy2 \(created\)",
                pg.port
            ),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    assert_eq!(pg.psql("copy2", "select count(*) from t"), "700");
    let d = t
        .run(&["verify", "app", "--restore-to", "drill"])
        .stdout_matches(&format!(
            r"\A  public\.t +700\n  public\.u +0\ndrill of job app backup \S+: 2 tables, 700 rows restored into postgres postgres@127\.0\.0\.1:{}/drill \(dropped again\) in [0-9.]+s\n\z",
            pg.port
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    assert!(d.stdout().contains("2 tables, 700 rows"), "{}", d.stdout());
    assert_eq!(
        pg.psql(
            "postgres",
            "select count(*) from pg_database where datname = 'drill'"
        ),
        "0"
    );
    // a wrong password fails cleanly and says nothing secret
    let bad = t
        .run(&[
            "restore",
            "app",
            "--to",
            &format!(
                "postgresql://postgres:wrong-{enc}@127.0.0.1:{}/copy3",
                pg.port
            ),
        ])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        bad.stderr().contains("password authentication failed"),
        "{}",
        bad.stderr()
    );
    for out in [r.stdout(), r.stderr(), d.stdout(), d.stderr(), bad.stderr()] {
        assert!(
            !out.contains(pw) && !out.contains(&enc),
            "password printed: {out}"
        );
    }
}

#[test]
fn postgis_creates_the_extension_as_admin_user_first_and_skips_without_one() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let has_postgis = psql(
        "postgres",
        "select count(*) from pg_available_extensions where name = 'postgis'",
    ) == "1";
    let src = support::pg_fixture("gis_src", 20);
    let t = Test::new().manifest(&manifest(&format!(
        "  gis: {{ engine: postgis, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, admin_user: postgres }}\n  gis_noadmin: {{ engine: postgis, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local }}\n"
    )));
    t.run(&["backup", "gis", "gis_noadmin"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let with_admin = unique("gis_a");
    let r = t.run(&["restore", "gis", "--to", &with_admin]);
    if has_postgis {
        r.stdout_matches(&support::restored_line(
            "gis",
            &format!("postgis postgres@127.0.0.1:5432/{with_admin} (created)"),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
        assert_eq!(
            psql(
                &with_admin,
                "select count(*) from pg_extension where extname = 'postgis'"
            ),
            "1"
        );
    } else {
        // The step ran (as admin_user) and its failure fails the restore; the database dbstash
        // created for it is gone again.
        let r = r /* stderr holds run-specific names, times or sizes */
            .ignore_stderr()
            .failure(1);
        assert!(
            r.stderr()
                .contains("CREATE EXTENSION postgis as `postgres`"),
            "{}",
            r.stderr()
        );
        assert!(!support::pg_exists(&with_admin));
    }
    let without = unique("gis_n");
    t.run(&["restore", "gis_noadmin", "--to", &without])
        .stdout_matches(&support::restored_line_re(
            "gis_noadmin",
            &format!(r"postgis postgres@127\.0\.0\.1:5432/{without} \(created\)"),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_succeeded"))
        .success();
    assert_eq!(psql(&without, "select count(*) from t"), "20");
    for db in [&src, &with_admin, &without] {
        pg_drop(db);
    }
}

#[test]
fn postgres_restores_in_place_over_the_jobs_own_database_with_yes() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("inplace", 100);
    psql(&src, "create view vv as select * from t");
    let t = Test::new().manifest(&manifest(&format!(
        "  custom: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, compress: native }}\n  plain: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, compress: gzip, dump_args: ['--clean', '--if-exists'] }}\n"
    )));
    t.run(&["backup", "custom", "plain"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for job in ["custom", "plain"] {
        psql(
            &src,
            "delete from t where id > 10; insert into t values (1000, 'new')",
        );
        t.run(&["restore", job, "--yes"])
            .stdout_matches(&support::restored_line_re(
                job,
                &format!(r"postgres postgres@127\.0\.0\.1:5432/{src}"),
            ))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("restore_succeeded"))
            .success();
        assert_eq!(
            psql(&src, "select count(*) || ':' || max(id) from t"),
            "100:100",
            "{job}"
        );
        assert_eq!(psql(&src, "select count(*) from vv"), "100");
    }
    pg_drop(&src);
}
