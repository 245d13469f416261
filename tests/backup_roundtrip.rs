//! Round trips per engine: back up with dbstash to a local folder AND to `rclone serve s3`, with
//! none/gzip/zstd (and native where it means something), then restore each stored object with the
//! engine's NATIVE tools and compare the data with the source.

use crate::support;

use crate::support::{Test, S3};
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One backup as stored: the object's bytes, decoded back to the dump, plus its record.
struct Stored {
    key: String,
    dump: Vec<u8>,
    record: serde_json::Value,
}

/// The stored object + record of `job` under `root/<job>/`, checked against each other.
fn stored(root: &Path, job: &str) -> Stored {
    let dir = root.join(job);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        2,
        "job {job}: expected exactly one object and its record, got {names:?}"
    );
    let rec_name = names
        .iter()
        .find(|n| n.ends_with(".dbstash.json"))
        .unwrap_or_else(|| panic!("job {job}: no record in {names:?}"))
        .clone();
    let obj_name = rec_name.trim_end_matches(".dbstash.json").to_string();
    assert!(names.contains(&obj_name), "{names:?}");
    let bytes = std::fs::read(dir.join(&obj_name)).expect("object");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&rec_name)).expect("record"))
            .expect("record is JSON");
    assert_eq!(record["job"], job);
    assert_eq!(record["object"], obj_name.as_str());
    assert_eq!(record["size"], bytes.len() as u64, "job {job}: size");
    assert_eq!(
        record["sha256"],
        hex::encode(sha2::Sha256::digest(&bytes)),
        "job {job}: sha256 of the stored bytes"
    );
    let dump = match record["compression"].as_str() {
        Some("none") => bytes,
        Some("gzip") => {
            assert!(obj_name.ends_with(".gz"), "{obj_name}");
            // a standard gzip file: the gzip tool itself must read it
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .expect("gunzip");
            let mut gz = Command::new("gzip")
                .args(["-d", "-c"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("gzip");
            let mut input = gz.stdin.take().expect("stdin");
            let b2 = bytes.clone();
            let feeder = std::thread::spawn(move || {
                use std::io::Write;
                let _ = input.write_all(&b2);
            });
            let o = gz.wait_with_output().expect("gzip -d");
            let _ = feeder.join();
            assert!(o.status.success(), "gzip -d rejects the object");
            assert!(o.stdout == out, "gzip -d and flate2 disagree");
            out
        }
        Some("zstd") => {
            assert!(obj_name.ends_with(".zst"), "{obj_name}");
            zstd::decode_all(&bytes[..]).expect("unzstd")
        }
        other => panic!("job {job}: unexpected compression {other:?}"),
    };
    assert_eq!(record["raw_size"], dump.len() as u64, "job {job}: raw_size");
    Stored {
        key: format!("{job}/{obj_name}"),
        dump,
        record,
    }
}

/// A manifest with one job per (remote, compression): `l-<c>` to a local folder, `s-<c>` to S3.
fn matrix_manifest(conn: &str, codecs: &[&str], extra_settings: &str) -> (String, Vec<String>) {
    let mut y = format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', max_parallel: 3{extra_settings} }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\n  s3: {{ rclone: 't:bucket' }}\njobs:\n"
    );
    let mut jobs = Vec::new();
    for c in codecs {
        for (prefix, remote) in [("l", "local"), ("s", "s3")] {
            let name = format!("{prefix}-{c}");
            let compress = c.split('_').next().unwrap_or(c);
            let fmt = if c.ends_with("_custom") {
                ", format: custom"
            } else if c.ends_with("_sql") {
                ", format: sql"
            } else {
                ""
            };
            y.push_str(&format!(
                "  {name}: {{ {conn}, remote: {remote}, compress: {compress}{fmt} }}\n"
            ));
            jobs.push(name);
        }
    }
    (y, jobs)
}

/// Run every job of the matrix once and return what each stored, by job name.
fn run_matrix(t: &Test, s3: &S3, jobs: &[String]) -> Vec<(String, Stored)> {
    let r = t
        .run(&["run", "--once"]) /* stderr differs between runs of this line */
        .ignore_stderr()
        .success();
    assert!(
        r.stderr().contains("backup_succeeded"),
        "JSON log lines expected:\n{}",
        r.stderr()
    );
    jobs.iter()
        .map(|j| {
            let root = if j.starts_with("l-") {
                t.path("out")
            } else {
                s3.root.path().join("bucket")
            };
            (j.clone(), stored(&root, j))
        })
        .collect()
}

fn start_s3() -> Option<S3> {
    let s3 = S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return None;
    }
    s3
}

fn write_temp(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write temp");
    p
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ------------------------------------------------------------------------------------ postgres

const PG_EXTRA: &str = "insert into t values (-1, E'quote '' backslash \\\\ tab \\t newline \\n ünïcødé ✓'), (-2, NULL);
create table b(id int primary key, data bytea, at timestamptz, j jsonb);
insert into b select g, decode(md5(g::text) || md5((g*7)::text), 'hex'), '2026-01-01'::timestamptz + g * interval '1 minute', jsonb_build_object('g', g, 's', repeat('x', g % 13)) from generate_series(1, 500) g;
create view v as select count(*) from t;";

const PG_FINGERPRINT: &str = "select (select md5(string_agg(id::text || ':' || coalesce(v, '<null>'), ',' order by id)) from t) || '/' || (select md5(string_agg(id::text || encode(data, 'hex') || at::text || j::text, ',' order by id)) from b) || '/' || (select count(*) from v)";

fn pg_fingerprint(db: &str) -> String {
    support::psql(db, PG_FINGERPRINT)
}

#[test]
fn postgres_plain_and_custom_round_trip_locally_and_over_s3() {
    if !support::require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let Some(s3) = start_s3() else { return };
    let db = support::pg_fixture("rt_pg", 3000);
    let _guard = support::PgDropGuard(db.clone());
    support::psql(&db, PG_EXTRA);
    let want = pg_fingerprint(&db);
    let conn =
        format!("engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}");
    let (yaml, jobs) = matrix_manifest(
        &conn,
        &[
            "none",
            "gzip",
            "zstd",
            "native",
            "none_custom",
            "gzip_custom",
        ],
        "",
    );
    let t = Test::new().manifest(&yaml).envs(&s3.env());
    let results = run_matrix(&t, &s3, &jobs);
    let mut restored = Vec::new();
    for (job, s) in &results {
        let target = support::unique("rt_pg_restore");
        support::psql("postgres", &format!("create database {target}"));
        restored.push(support::PgDropGuard(target.clone()));
        let custom = job.contains("native") || job.contains("custom");
        let file = write_temp(t.dir.path(), &format!("{job}.dump"), &s.dump);
        if custom {
            assert!(
                s.dump.starts_with(b"PGDMP"),
                "{job}: not a custom-format archive"
            );
            assert!(s.key.contains(".dump"), "{job}: {}", s.key);
            run_ok(
                Command::new("pg_restore")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "--exit-on-error",
                        "-d",
                        &target,
                    ])
                    .arg(&file),
                &format!("pg_restore of {job}"),
            );
        } else {
            assert!(s.key.contains(".sql"), "{job}: {}", s.key);
            run_ok(
                Command::new("psql")
                    .args([
                        "-X",
                        "-q",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-d",
                        &target,
                        "-f",
                    ])
                    .arg(&file),
                &format!("psql restore of {job}"),
            );
        }
        assert_eq!(
            pg_fingerprint(&target),
            want,
            "{job}: restored data differs"
        );
        assert_eq!(s.record["engine"], "postgres");
        assert_eq!(s.record["database"], db.as_str());
        assert!(
            s.record["tool_versions"]["pg_dump"]
                .as_str()
                .is_some_and(|v| v.contains("pg_dump")),
            "{job}: tool version recorded: {}",
            s.record
        );
    }
    // `native` is the custom format compressed by dbstash with zstd.
    let native = &results
        .iter()
        .find(|(j, _)| j == "l-native")
        .expect("l-native")
        .1;
    assert_eq!(native.record["compression"], "zstd");
    drop(restored);
}

// ------------------------------------------------------------------------------ mariadb / mysql

fn maria_fingerprint(db: &str) -> String {
    support::mariadb(&format!(
        "select concat((select md5(group_concat(id, ':', ifnull(v, '<null>'), ':', hex(b), ':', d order by id separator ',')) from `{db}`.t), '/', (select count(*) from information_schema.routines where routine_schema = '{db}'), '/', (select count(*) from information_schema.triggers where trigger_schema = '{db}'))"
    ))
}

#[test]
fn mariadb_and_mysql_engines_round_trip_locally_and_over_s3() {
    if !support::require(support::mariadb_available(), "MariaDB") {
        return;
    }
    let db = support::unique("rt_maria");
    support::mariadb(&format!(
        "create database `{db}`; use `{db}`; create table t (id int primary key, v text, b varbinary(64), d datetime); \
         insert into t select seq, concat(md5(seq), ' \\'q\\' ünï ', repeat('z', seq % 17)), unhex(md5(seq)), '2026-01-01' + interval seq minute from seq_1_to_3000; \
         insert into t values (-1, NULL, NULL, '2000-01-01 00:00:00'); \
         create procedure p() select 1; \
         create trigger tr before insert on t for each row set new.v = new.v;"
    ));
    let want = maria_fingerprint(&db);
    // root over the socket; `mariadb` → mariadb-dump, `mysql` → mysqldump
    let mut all = Vec::new();
    for engine in ["mariadb", "mysql"] {
        // a fresh server per engine (never clear a bucket behind rclone serve's back: its VFS
        // caches listings and then fails GETs with 500 for minutes)
        let Some(s3) = start_s3() else { return };
        let conn = format!("engine: {engine}, user: root, database: {db}");
        let (yaml, jobs) = matrix_manifest(&conn, &["none", "gzip", "zstd"], "");
        let t = Test::new().manifest(&yaml).envs(&s3.env());
        let results = run_matrix(&t, &s3, &jobs);
        for (job, s) in results {
            let program = if engine == "mariadb" {
                "mariadb-dump"
            } else {
                "mysqldump"
            };
            assert!(
                s.record["tool_versions"].get(program).is_some(),
                "{engine}/{job}: expected {program} in {}",
                s.record
            );
            all.push((format!("{engine}/{job}"), s.dump));
        }
    }
    for (label, dump) in all {
        let target = support::unique("rt_maria_restore");
        support::mariadb(&format!("create database `{target}`"));
        let mut child = Command::new("mariadb")
            .arg(&target)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mariadb");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(&dump).expect("feed dump");
        }
        let out = child.wait_with_output().expect("mariadb restore");
        assert!(
            out.status.success(),
            "{label}: restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            maria_fingerprint(&target),
            want,
            "{label}: restored data differs"
        );
        support::mariadb(&format!("drop database `{target}`"));
    }
    support::mariadb(&format!("drop database `{db}`"));
}

// -------------------------------------------------------------------------------------- redis

#[test]
fn redis_rdb_round_trips_locally_and_over_s3() {
    let Some(src) = support::RedisServer::start(None) else {
        support::require(false, "redis-server");
        return;
    };
    let Some(s3) = start_s3() else { return };
    src.cli(&["debug", "populate", "5000", "k", "100"]);
    src.cli(&["set", "marker", "ünïcødé value"]);
    let keys: u64 = src.cli(&["dbsize"]).parse().expect("dbsize");
    assert_eq!(keys, 5001);
    let conn = format!("engine: redis, host: 127.0.0.1, port: {}", src.port);
    let (yaml, jobs) = matrix_manifest(&conn, &["none", "gzip", "zstd"], "");
    let t = Test::new().manifest(&yaml).envs(&s3.env());
    for (job, s) in run_matrix(&t, &s3, &jobs) {
        assert!(s.key.contains(".rdb"), "{job}: {}", s.key);
        assert!(
            s.dump.starts_with(b"REDIS"),
            "{job}: not an RDB file ({:?})",
            &s.dump[..s.dump.len().min(9)]
        );
        // 5000 keys with 100-byte values (LZF-compressed in the RDB): a plausible size
        assert!(
            s.dump.len() > 50_000 && s.dump.len() < 2_000_000,
            "{job}: {} bytes",
            s.dump.len()
        );
        // Load it into a fresh server: every key is back.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("dump.rdb"), &s.dump).expect("rdb");
        let port = support::free_port();
        let mut server = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
                "--dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        assert!(support::wait_port(port, std::time::Duration::from_secs(10)));
        let cli = |args: &[&str]| {
            run_ok(
                Command::new("redis-cli")
                    .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                    .args(args),
                "redis-cli",
            )
            .trim()
            .to_string()
        };
        assert!(
            support::wait_until(std::time::Duration::from_secs(10), || cli(&["dbsize"])
                == "5001"),
            "{job}: restored dbsize {}",
            cli(&["dbsize"])
        );
        assert_eq!(cli(&["get", "marker"]), "ünïcødé value", "{job}");
        let _ = server.kill();
        let _ = server.wait();
    }
}

// ------------------------------------------------------------------------------------- sqlite

fn sqlite_rows(conn: &rusqlite::Connection) -> Vec<(i64, Option<String>, Option<Vec<u8>>)> {
    let mut st = conn
        .prepare("select id, v, b from t order by id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

#[test]
fn sqlite_snapshot_and_sql_round_trip_locally_and_over_s3() {
    let Some(s3) = start_s3() else { return };
    let t0 = Test::new();
    let db_path = t0.path("app.db");
    let conn = rusqlite::Connection::open(&db_path).expect("open");
    conn.execute_batch(
        "pragma journal_mode=wal; create table t(id integer primary key, v text, b blob);
         with recursive s(n) as (select 1 union all select n+1 from s where n < 4000)
         insert into t select n, 'row ' || n || ' ' || hex(randomblob(16)) || ' ünï', randomblob(n % 50) from s;
         insert into t values (-1, NULL, NULL), (-2, 'it''s', x'00ff');",
    )
    .expect("fixture");
    // keep the connection open (WAL not checkpointed): the snapshot must still be consistent
    let want = sqlite_rows(&conn);
    let have_sqlite3 = support::have("sqlite3");
    let mut codecs = vec!["none", "gzip", "zstd"];
    if have_sqlite3 {
        codecs.extend(["none_sql", "zstd_sql"]);
    } else {
        eprintln!("sqlite3 CLI missing: `format: sql` not tested");
    }
    let conn_yaml = format!("engine: sqlite, database: '{}'", db_path.display());
    let (yaml, jobs) = matrix_manifest(&conn_yaml, &codecs, "");
    let t = t0.manifest(&yaml).envs(&s3.env());
    for (job, s) in run_matrix(&t, &s3, &jobs) {
        let restored = t.path(&format!("restored-{job}.db"));
        if job.ends_with("_sql") {
            assert!(s.key.contains(".sql"), "{job}: {}", s.key);
            let c = rusqlite::Connection::open(&restored).expect("open restored");
            c.execute_batch(std::str::from_utf8(&s.dump).expect("SQL text"))
                .expect("replay .dump");
            assert_eq!(sqlite_rows(&c), want, "{job}: restored rows differ");
        } else {
            assert!(s.key.contains(".sqlite3"), "{job}: {}", s.key);
            assert!(s.dump.starts_with(b"SQLite format 3\0"), "{job}");
            std::fs::write(&restored, &s.dump).expect("write restored");
            let c = rusqlite::Connection::open(&restored).expect("open restored");
            let ok: String = c
                .query_row("pragma integrity_check", [], |r| r.get(0))
                .expect("integrity_check");
            assert_eq!(ok, "ok", "{job}");
            assert_eq!(sqlite_rows(&c), want, "{job}: restored rows differ");
        }
    }
    drop(conn);
}

// -------------------------------------------------------------------------------------- mongo

/// A fake mongodump: records argv, the REDISCLI/PG/MYSQL env it got, and its --config file (and
/// that file's mode), then emits a fixed archive-like byte stream.
const FAKE_MONGODUMP: &str = r#"#!/bin/sh
log={dir}/mongodump.calls
if [ "$1" = "--version" ]; then echo "mongodump version: 100.9.9-fake"; exit 0; fi
{
  echo "ARGV: $*"
  env | grep -i -e pass -e mongo -e secret | sed 's/^/ENV: /'
  for a in "$@"; do
    case "$a" in
      --config=*) f="${a#--config=}"; echo "MODE: $(stat -c %a "$f")"; echo "CONFIG: $(cat "$f")";;
    esac
  done
} >> "$log"
# a recognisable, moderately compressible payload
i=0
printf '\155\342\231\201'   # the archive magic 0x8199e26d, little endian
while [ $i -lt 2000 ]; do echo "document $i {\"_id\": $i, \"v\": \"$(printf '%05d' $i)\"}"; i=$((i+1)); done
"#;

fn fake_mongo_payload() -> Vec<u8> {
    let mut v = vec![0o155u8, 0o342, 0o231, 0o201];
    for i in 0..2000 {
        v.extend(format!("document {i} {{\"_id\": {i}, \"v\": \"{i:05}\"}}\n").into_bytes());
    }
    v
}

#[test]
fn mongo_with_a_fake_mongodump_round_trips_and_keeps_the_password_in_a_0600_config() {
    let Some(s3) = start_s3() else { return };
    let pw = "m0ngo-S3cret-pw";
    let conn = format!(
        "engine: mongo, host: 127.0.0.1, port: 27017, user: app, password: '{pw}', database: shop"
    );
    let (mut yaml, mut jobs) = matrix_manifest(&conn, &["none", "gzip", "zstd"], "");
    yaml.push_str(&format!(
        "  l-native: {{ {conn}, remote: local, compress: native, auth_source: users }}\n"
    ));
    jobs.push("l-native".into());
    let t = Test::new()
        .manifest(&yaml)
        .write_executable("mongodump", FAKE_MONGODUMP)
        .envs(&s3.env());
    let want = fake_mongo_payload();
    for (job, s) in run_matrix(&t, &s3, &jobs) {
        assert!(s.key.contains(".archive"), "{job}: {}", s.key);
        assert!(
            s.dump == want,
            "{job}: the stored dump is not what mongodump emitted"
        );
        if job == "l-native" {
            assert!(s.key.ends_with(".archive.gz"), "{}", s.key);
            assert_eq!(s.record["compression"], "none");
        }
    }
    let calls = std::fs::read_to_string(t.path("mongodump.calls")).expect("calls");
    let dumps: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("ARGV:") && l.contains("--archive"))
        .collect();
    assert_eq!(dumps.len(), jobs.len(), "{calls}");
    for l in calls.lines() {
        if l.starts_with("ARGV:") || l.starts_with("ENV:") {
            assert!(
                !l.contains(pw),
                "password visible outside the config file: {l}"
            );
        }
    }
    for l in calls.lines().filter(|l| l.starts_with("ARGV:")) {
        assert!(l.contains("--config="), "{l}");
    }
    let modes: Vec<&str> = calls.lines().filter(|l| l.starts_with("MODE:")).collect();
    assert_eq!(modes.len(), jobs.len(), "{calls}");
    assert!(modes.iter().all(|m| *m == "MODE: 600"), "{modes:?}");
    let configs: Vec<&str> = calls.lines().filter(|l| l.starts_with("CONFIG:")).collect();
    // `-` is percent-encoded in the URI's userinfo
    let encoded = pw.replace('-', "%2D");
    assert!(
        configs
            .iter()
            .all(|c| c.contains(&format!("mongodb://app:{encoded}@127.0.0.1:27017/shop"))),
        "{configs:?}"
    );
    for l in calls.lines().filter(|l| !l.starts_with("CONFIG:")) {
        assert!(
            !l.contains(&encoded),
            "encoded password outside the config file: {l}"
        );
    }
    assert!(
        configs.iter().any(|c| c.contains("authSource=users")),
        "{configs:?}"
    );
    assert!(
        configs.iter().any(|c| c.contains("authSource=admin")),
        "{configs:?}"
    );
    let native = calls
        .lines()
        .filter(|l| l.starts_with("ARGV:") && l.contains("--gzip"))
        .count();
    assert_eq!(native, 1, "--gzip only with compress: native\n{calls}");
    // The private run folder (with the config file) is gone after the runs.
    let leftovers: Vec<String> = t
        .files("tmp")
        .into_iter()
        .filter(|f| f.starts_with("runs/"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
