//! Issue 8: several remotes per job (tee), age encryption, several databases per job (+ globals),
//! and tar mode — against real PostgreSQL, MariaDB and `rclone serve s3`.

use crate::support;

use crate::support::{pg_drop, pg_fixture, psql, PgDropGuard, Run, Test, S3};
use age::secrecy::ExposeSecret;
use std::process::Command;
use std::time::{Duration, Instant};

fn s3() -> Option<S3> {
    let s = S3::start();
    support::require(s.is_some(), "rclone serve s3").then_some(s?)
}

fn sig(db: &str) -> String {
    psql(
        db,
        "select count(*) || ':' || md5(string_agg(id || ',' || v, ';' order by id)) from t",
    )
}

fn pg_body(db: &str) -> String {
    format!("engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {db}")
}

/// Object (not record) files under `rel` of the test folder.
fn objects(t: &Test, rel: &str) -> Vec<String> {
    t.files(rel)
        .into_iter()
        .filter(|f| !f.ends_with(".dbstash.json"))
        .collect()
}

fn no_run_folders(t: &Test) {
    let left: Vec<String> = t
        .files("tmp")
        .into_iter()
        .filter(|f| f.starts_with("runs/"))
        .collect();
    assert!(left.is_empty(), "temp space not cleaned: {left:?}");
}

// ---------------------------------------------------------------- several remotes

#[test]
fn two_remotes_get_identical_bytes_and_a_record_each() {
    if !support::pg_ready() {
        return;
    }
    let Some(s3) = s3() else { return };
    let db = pg_fixture("tee", 3000);
    let _g = PgDropGuard(db.clone());
    let job = support::unique("tee");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\n  s3: {{ rclone: 't:bucket' }}\njobs:\n  {job}: {{ remote: [local, s3], compress: zstd, {} }}\n",
            pg_body(&db)
        ))
        .envs(&s3.env());
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let local = objects(&t, "out");
    assert_eq!(local.len(), 1, "{local:?}");
    assert_eq!(t.records("out").len(), 1);
    let in_bucket = s3.objects();
    assert_eq!(in_bucket.len(), 2, "object + record: {in_bucket:?}");
    assert!(in_bucket.contains(&local[0]), "{in_bucket:?} vs {local:?}");
    let a = std::fs::read(t.path("out").join(&local[0])).unwrap();
    let b = std::fs::read(s3.root.path().join("bucket").join(&local[0])).unwrap();
    assert!(a.len() > 1000);
    assert_eq!(a, b, "both remotes must hold identical bytes");
    // both listed, and each copy restores
    let list = t
        .run(&["list", "--job", &job])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    assert!(
        list.contains("on local") && list.contains("on s3"),
        "{list}"
    );
    for remote in ["local", "s3"] {
        t.run(&["verify", &job, "--remote", remote])
            .stdout_matches(r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(zstd, [0-9.]+ [KMGT]?i?B decompressed\)\n\z")
            // JSON log lines carry timestamps
            .stderr_contains("\"event\":\"verify_succeeded\"")
            .success();
    }
    let to = format!("{db}_from_s3");
    let _g2 = PgDropGuard(to.clone());
    t.run(&["restore", &job, "--remote", "s3", "--to", &to, "--yes"])
        .stdout_matches(&support::restored_line(
            &job,
            &format!("postgres postgres@127.0.0.1:5432/{to} (created)"),
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    assert_eq!(sig(&to), sig(&db));
    no_run_folders(&t);
}

/// A fake pg_dump writing 40 MB of random bytes, so the upload runs long enough to be killed.
const BIG_DUMP: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
head -c 40000000 /dev/urandom
";

fn kill_s3_upload(optional: bool) {
    let Some(s3) = s3() else { return };
    let job = support::unique(if optional { "teeopt" } else { "teereq" });
    let s3_ref = if optional {
        "{ name: s3, optional: true }"
    } else {
        "s3"
    };
    // a webhook hears about the run (and, for an optional remote, about the dropped copy)
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = rt.block_on(support::notify::Receiver::start());
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', rclone: {{ extra_args: ['--bwlimit', '1M'] }} }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\n  s3: {{ rclone: 't:bucket' }}\nnotifiers:\n  hook: {{ type: webhook, url: '{}', on: always }}\njobs:\n  {job}: {{ remote: [local, {s3_ref}], notify: [hook], {} }}\n",
            hook.url("/hook"),
            pg_body("nodb")
        ))
        .write_executable("pg_dump", BIG_DUMP)
        .envs(&s3.env());
    let mut child = t.spawn(&["backup", &job]);
    let rcat = support::one_data_upload(&job, Duration::from_secs(30), Duration::from_millis(1500))
        .unwrap_or_else(|seen| panic!("no single data upload for {job}: {seen:?}"));
    let killed = Instant::now();
    Command::new("kill")
        .args(["-9", &rcat])
        .status()
        .expect("kill");
    let done = support::wait_until(Duration::from_secs(60), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !done {
        let _ = child.kill();
    }
    let r = Run::new(child.wait_with_output().expect("output"));
    assert!(done, "dbstash did not finish: {}", r.stderr());
    // no record on the failed remote, ever
    let bucket = s3.objects();
    assert!(bucket.is_empty(), "left in the bucket: {bucket:?}");
    let sent = hook.requests();
    assert_eq!(sent.len(), 1, "one notification");
    let body = sent[0].json();
    if optional {
        assert_eq!(body["status"], "success");
        assert!(
            body["warnings"].as_str().unwrap_or("").contains("s3"),
            "{body}"
        );
    } else {
        assert_eq!(body["status"], "failure");
    }
    if optional {
        assert_eq!(
            r.code(),
            0,
            "an optional remote's failure must not fail the run: {}",
            r.stderr()
        );
        assert!(r.stderr().contains("optional remote s3"), "{}", r.stderr());
        assert_eq!(objects(&t, "out").len(), 1);
        assert_eq!(t.records("out").len(), 1);
    } else {
        assert_eq!(r.code(), 1, "{}", r.stderr());
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "noticed after {:?}",
            killed.elapsed()
        );
        assert!(
            r.stderr().contains("upload to `s3` failed"),
            "{}",
            r.stderr()
        );
        let left = t.files("out");
        assert!(left.is_empty(), "a failed run leaves nothing: {left:?}");
    }
    no_run_folders(&t);
}

#[test]
fn a_required_remote_killed_mid_stream_fails_the_run_everywhere() {
    kill_s3_upload(false);
}

#[test]
fn an_optional_remote_killed_mid_stream_is_dropped_and_the_run_succeeds() {
    kill_s3_upload(true);
}

// ---------------------------------------------------------------- age

#[test]
fn age_encrypted_backups_need_the_identity_and_restore_with_it() {
    if !support::pg_ready() {
        return;
    }
    let db = pg_fixture("age", 2000);
    let _g = PgDropGuard(db.clone());
    let id = x25519_identity();
    let other = x25519_identity();
    let job = support::unique("age");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, compress: gzip, encrypt: {{ age_recipients: ['{}'] }}, {} }}\n",
            id.to_public(),
            pg_body(&db)
        ))
        .write("id.txt", &format!("# test key\n{}\n", id.to_string().expose_secret()))
        .write("other.txt", &format!("{}\n", other.to_string().expose_secret()));
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let objs = objects(&t, "out");
    assert_eq!(objs.len(), 1);
    assert!(objs[0].ends_with(".sql.gz.age"), "{objs:?}");
    let bytes = std::fs::read(t.path("out").join(&objs[0])).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    assert!(
        !bytes.windows(6).any(|w| w == b"CREATE"),
        "plaintext leaked"
    );
    let rec =
        std::fs::read_to_string(t.path("out").join(format!("{}.dbstash.json", objs[0]))).unwrap();
    assert!(rec.contains("\"encryption\": \"age\""), "{rec}");

    // without the identity: refused clearly, nothing created
    let to = format!("{db}_r");
    let _g2 = PgDropGuard(to.clone());
    let r = t
        .run(&["restore", &job, "--to", &to, "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("--identity"), "{}", r.stderr());
    assert!(!r.stderr().contains("panicked"));
    // the wrong identity: a clean failure, the new database dropped again
    let r = t
        .run(&[
            "restore",
            &job,
            "--to",
            &to,
            "--yes",
            "--identity",
            &t.path("other.txt").display().to_string(),
        ])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("no identity matches"), "{}", r.stderr());
    assert_eq!(
        psql(
            "postgres",
            &format!("select count(*) from pg_database where datname = '{to}'")
        ),
        "0"
    );
    // verify without the identity checks the stored bytes only; with it, the contents too
    let v = t
        .run(&["verify", &job])
        .stdout_matches(r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(none, [0-9.]+ [KMGT]?i?B decompressed\); encrypted with age: size and sha256 checked; pass --identity to check the contents\n\z")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_succeeded\"")
        .success()
        .stdout();
    assert!(v.contains("encrypted with age"), "{v}");
    let idf = t.path("id.txt").display().to_string();
    let v = t
        .run(&["verify", &job, "--identity", &idf])
        .stdout_matches(r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(gzip, [0-9.]+ [KMGT]?i?B decompressed\)\n\z")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_succeeded\"")
        .success()
        .stdout();
    assert!(
        v.contains("gzip") && !v.contains("encrypted with age"),
        "{v}"
    );
    // the right identity restores it
    t.run(&["restore", &job, "--to", &to, "--yes", "--identity", &idf])
        .stdout_matches(&support::restored_line(
            &job,
            &format!("postgres postgres@127.0.0.1:5432/{to} (created)"),
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    assert_eq!(sig(&to), sig(&db));
}

#[test]
fn bad_recipients_are_manifest_errors() {
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  j: { remote: l, engine: postgres, database: x, encrypt: { age_recipients: ['age1nope'] } }\n",
    );
    let r = t
        .run(&["validate"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2);
    assert!(
        r.stderr().contains(":4:") && r.stderr().contains("not an age recipient"),
        "{}",
        r.stderr()
    );
}

// ---------------------------------------------------------------- several databases

#[test]
fn every_postgres_database_plus_globals_one_backup_each_and_one_restores() {
    let Some(pg) = support::PgScram::start("s3cr3t-multi") else {
        assert!(!support::strict(), "cannot start a private PostgreSQL");
        return;
    };
    for db in ["alpha", "beta", "scratch_1"] {
        pg.psql("postgres", &format!("create database {db}"));
        pg.psql(db, &format!("create table t(id int primary key, v text); insert into t select g, '{db}' || g from generate_series(1,500) g"));
    }
    pg.psql("postgres", "create role reporting login password 'x'");
    let job = support::unique("pgall");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, engine: postgres, host: 127.0.0.1, port: {}, user: postgres, password: '${{PGPW}}', database: '*', exclude: ['scratch_*', postgres], globals: true, compress: zstd, name: '{{db}}-{{date}}-{{time}}' }}\n",
            pg.port
        ))
        .env("PGPW", &pg.password);
    // plan asks the server which databases a run would back up now (and never prints the password)
    let plan = t
        .run(&["plan", "--job", &job])
        .stdout_matches(&format!(r"\Ajob {job}\n  engine       postgres  \(job\)\n"))
        .stderr_is(&format!(
            "{{dir}}/dbstash.yaml:6:3: warning: job `{job}` has no schedule: it runs only with `dbstash backup {job}`\n"
        ))
        .success()
        .stdout();
    assert!(plan.contains("found now    alpha, beta"), "{plan}");
    assert!(!plan.contains(&pg.password), "{plan}");
    let offline = t
        .run(&["plan", "--job", &job, "--offline"])
        .stdout_matches(&format!(r"\Ajob {job}\n  engine       postgres  \(job\)\n"))
        .stderr_is(&format!(
            "{{dir}}/dbstash.yaml:6:3: warning: job `{job}` has no schedule: it runs only with `dbstash backup {job}`\n"
        ))
        .success()
        .stdout();
    assert!(!offline.contains("found now"), "{offline}");
    let r = t
        .run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let mut objs = objects(&t, "out");
    objs.sort();
    let names: Vec<&str> = objs
        .iter()
        .map(|o| o.rsplit('/').next().unwrap_or(o))
        .collect();
    assert_eq!(names.len(), 3, "{objs:?}\n{}", r.stderr());
    assert!(
        names[0].starts_with("_globals-") && names[0].ends_with(".sql.zst"),
        "{names:?}"
    );
    assert!(names[1].starts_with("alpha-"), "{names:?}");
    assert!(names[2].starts_with("beta-"), "{names:?}");
    assert_eq!(t.records("out").len(), 3);
    let globals =
        zstd::decode_all(&std::fs::read(t.path("out").join(&objs[0])).unwrap()[..]).unwrap();
    assert!(String::from_utf8_lossy(&globals).contains("CREATE ROLE reporting"));
    // restoring needs a database; then only that database's backups count
    let r = t
        .run(&["restore", &job, "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2);
    assert!(r.stderr().contains("--database"), "{}", r.stderr());
    let r = t
        .run(&["restore", &job, "--database", "_globals", "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2);
    assert!(r.stderr().contains("psql -f"), "{}", r.stderr());
    t.run(&[
        "restore",
        &job,
        "--database",
        "beta",
        "--to",
        "beta_copy",
        "--yes",
    ])
    .stdout_matches(&support::restored_line(
        &job,
        &format!(
            "postgres postgres@127.0.0.1:{}/beta_copy (created)",
            pg.port
        ),
    ))
    // JSON log lines carry timestamps
    .stderr_contains("\"event\":\"restore_succeeded\"")
    .success();
    let q = "select count(*) || ':' || min(v) from t";
    assert_eq!(pg.psql("beta_copy", q), pg.psql("beta", q));
    assert_eq!(pg.psql("beta_copy", q), "500:beta1");
    t.run(&["verify", &job, "--backup", "all"])
        // globals, beta and alpha, in the order of the records
        .stdout_matches(r"\A(ok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(zstd, [0-9.]+ [KMGT]?i?B decompressed\)\n){3}\z")
        .stdout_matches(r"(?m)^ok +_globals-\S+\.sql\.zst ")
        .stdout_matches(r"(?m)^ok +alpha-\S+\.sql\.zst ")
        .stdout_matches(r"(?m)^ok +beta-\S+\.sql\.zst ")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_succeeded\"")
        .success();
    let drill = t
        .run(&[
            "verify",
            &job,
            "--database",
            "alpha",
            "--restore-to",
            "alpha_drill",
        ])
        .stdout_matches(&format!(
            r"\A  public\.t +500\ndrill of job {job} backup alpha-\S+\.sql\.zst: 1 tables, 500 rows restored into postgres postgres@127\.0\.0\.1:{}/alpha_drill \(dropped again\) in [0-9.]+s\n\z",
            pg.port
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_target_dropped\"")
        .success()
        .stdout();
    assert!(drill.contains("500"), "{drill}");
    assert_eq!(
        pg.psql(
            "postgres",
            "select count(*) from pg_database where datname = 'alpha_drill'"
        ),
        "0"
    );
    // retention keeps one per database
    let t = t.manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, engine: postgres, host: 127.0.0.1, port: {}, user: postgres, password: '${{PGPW}}', database: [alpha, beta], compress: zstd, name: '{{db}}-{{date}}-{{time}}-{{uuid}}', retention: {{ keep_last: 1 }} }}\n",
        pg.port
    ));
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let mut after: Vec<String> = objects(&t, "out")
        .iter()
        .map(|o| {
            o.rsplit('/')
                .next()
                .unwrap_or(o)
                .split('-')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    after.sort();
    assert_eq!(
        after,
        vec!["_globals", "alpha", "beta"],
        "one newest per database survives"
    );
}

#[test]
fn every_mariadb_database_the_user_can_see_one_backup_each() {
    if !support::require(support::mariadb_available(), "MariaDB") {
        return;
    }
    let u = support::unique("mu");
    let (d1, d2) = (format!("{u}_a"), format!("{u}_b"));
    support::mariadb(&format!(
        "create database {d1}; create database {d2}; create table {d1}.t(id int primary key, v text); insert into {d1}.t values (1,'one'),(2,'two'); create table {d2}.t(id int primary key); insert into {d2}.t values (7); create user '{u}'@'localhost' identified by 'pw-{u}'; create user '{u}'@'127.0.0.1' identified by 'pw-{u}'; grant all on {d1}.* to '{u}'@'localhost'; grant all on {d2}.* to '{u}'@'localhost'; grant all on {d1}.* to '{u}'@'127.0.0.1'; grant all on {d2}.* to '{u}'@'127.0.0.1'"
    ));
    let cleanup = format!("drop database if exists {d1}; drop database if exists {d2}; drop database if exists {d1}_copy; drop user if exists '{u}'@'localhost'; drop user if exists '{u}'@'127.0.0.1'");
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("mariadb").args(["-e", &self.0]).output();
        }
    }
    let _c = Cleanup(cleanup);
    let job = support::unique("myall");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, engine: mariadb, host: 127.0.0.1, port: 3306, user: {u}, password: 'pw-{u}', database: '*', compress: gzip }}\n"
        ));
    let r = t
        .run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let mut objs: Vec<String> = objects(&t, "out")
        .iter()
        .map(|o| o.rsplit('/').next().unwrap_or(o).to_string())
        .collect();
    objs.sort();
    assert_eq!(objs.len(), 2, "{objs:?}\n{}", r.stderr());
    assert!(
        objs[0].starts_with(&d1) && objs[1].starts_with(&d2),
        "{objs:?}"
    );
    // restore one of them into a new database (as root: the test user cannot create databases)
    let t = t.manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, engine: mariadb, host: 127.0.0.1, port: 3306, user: root, database: '*', compress: gzip }}\n"
    ));
    t.run(&[
        "restore",
        &job,
        "--database",
        &d1,
        "--to",
        &format!("{d1}_copy"),
        "--yes",
    ])
    .stdout_matches(&support::restored_line(
        &job,
        &format!("mariadb root@127.0.0.1:3306/{d1}_copy (created)"),
    ))
    // JSON log lines carry timestamps
    .stderr_contains("\"event\":\"restore_succeeded\"")
    .success();
    assert_eq!(
        support::mariadb(&format!(
            "select group_concat(v order by id) from {d1}_copy.t"
        )),
        "one,two"
    );
}

// ---------------------------------------------------------------- tar mode

#[test]
fn postgres_tar_mode_with_parallel_dump_restores_and_cleans_its_temp_space() {
    if !support::pg_ready() {
        return;
    }
    let db = pg_fixture("tarm", 5000);
    let _g = PgDropGuard(db.clone());
    psql(
        &db,
        "create table u as select g as id, repeat('x', 50) as w from generate_series(1, 3000) g",
    );
    let job = support::unique("tar");
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, mode: tar, compress: zstd, dump_args: ['--jobs=2'], {} }}\n",
        pg_body(&db)
    ));
    let plan = t
        .run(&["plan", "--job", &job, "--offline"])
        .stdout_matches(&format!(r"\Ajob {job}\n  engine       postgres  \(job\)\n"))
        .stdout_matches(r"\n  mode         tar: the dump tool writes a folder in settings\.temp_dir, streamed as a tar archive\n")
        .stderr_is(&format!(
            "{{dir}}/dbstash.yaml:6:3: warning: job `{job}` has no schedule: it runs only with `dbstash backup {job}`\n"
        ))
        .success()
        .stdout();
    assert!(
        plan.contains("--format=directory") && plan.contains("--jobs=2"),
        "{plan}"
    );
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let objs = objects(&t, "out");
    assert_eq!(objs.len(), 1);
    assert!(objs[0].ends_with(".tar.zst"), "{objs:?}");
    // a real tar of pg_dump's folder
    let tar = zstd::decode_all(&std::fs::read(t.path("out").join(&objs[0])).unwrap()[..]).unwrap();
    let mut names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .filter_map(|e| e.ok()?.path().ok().map(|p| p.display().to_string()))
        .collect();
    names.sort();
    assert!(names.iter().any(|n| n.ends_with("toc.dat")), "{names:?}");
    no_run_folders(&t);
    let to = format!("{db}_tar");
    let _g2 = PgDropGuard(to.clone());
    t.run(&["restore", &job, "--to", &to, "--yes"])
        .stdout_matches(&support::restored_line(
            &job,
            &format!("postgres postgres@127.0.0.1:5432/{to} (created)"),
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    assert_eq!(sig(&to), sig(&db));
    assert_eq!(psql(&to, "select count(*) from u"), "3000");
    t.run(&["verify", &job])
        .stdout_matches(r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(zstd, [0-9.]+ [KMGT]?i?B decompressed\)\n\z")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_succeeded\"")
        .success();
    let restore_left: Vec<String> = t
        .files("tmp")
        .into_iter()
        .filter(|f| f.starts_with("restore/"))
        .collect();
    assert!(restore_left.is_empty(), "{restore_left:?}");
}

/// pg_dump stand-ins for tar mode: write part of a folder, then die / hang.
fn folder_dump(then: &str) -> String {
    format!(
        "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'pg_dump (fake) 15'; exit 0; fi
touch \"$DBSTASH_TEST_MARK\"
for a; do case \"$a\" in --file=*) d=\"${{a#--file=}}\";; esac; done
mkdir -p \"$d\" && head -c 2000000 /dev/urandom > \"$d/toc.dat\"
{then}
"
    )
}

fn tar_fault(dump_then: &str, extra: &str) -> (Test, Run) {
    let job = support::unique("tarf");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, mode: tar, {}{extra} }}\n",
            pg_body("nodb")
        ))
        .write_executable("pg_dump", &folder_dump(dump_then));
    let mark = t.path("started").display().to_string();
    let t = t.env("DBSTASH_TEST_MARK", &mark);
    let r = t.run(&["backup", &job]);
    (t, r)
}

#[test]
fn tar_mode_dump_killed_leaves_nothing_and_an_empty_temp_folder() {
    let (t, r) = tar_fault("kill -9 $$", "");
    let r = r /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("pg_dump failed"), "{}", r.stderr());
    assert!(t.files("out").is_empty(), "{:?}", t.files("out"));
    no_run_folders(&t);
}

#[test]
fn tar_mode_timeout_leaves_nothing_and_an_empty_temp_folder() {
    let start = Instant::now();
    let (t, r) = tar_fault("sleep 30", ", timeout: 2s");
    let r = r /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("timed out"), "{}", r.stderr());
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(t.files("out").is_empty());
    no_run_folders(&t);
}

#[test]
fn tar_mode_without_room_for_the_dump_is_refused_before_it_starts() {
    let (t, r) = tar_fault("exit 0", ", expected_size: 900TiB");
    let r = r /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        r.stderr().contains("not enough temp space"),
        "{}",
        r.stderr()
    );
    assert!(!t.path("started").exists(), "the dump must not start");
    assert!(t.files("out").is_empty());
    no_run_folders(&t);
}

#[test]
fn modes_and_fanout_are_checked_by_validate() {
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: '{dir}/out' }, m: { path: '{dir}/m' } }\njobs:\n  a: { remote: l, engine: redis, mode: tar }\n  b: { remote: l, engine: postgres, database: '*', name: 'x-{date}' }\n  c: { remote: [{ name: l, optional: true }, { name: m, optional: true }], engine: postgres, database: x }\n  d: { remote: [l, l], engine: postgres, database: x }\n  e: { remote: l, engine: sqlite, database: '*' }\n",
    );
    let r = t
        .run(&["validate"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2);
    let e = r.stderr();
    for want in [
        ":4:",
        "streams only",
        ":5:",
        "put `{db}` in `name`",
        ":6:",
        "at least one must be required",
        ":7:",
        "listed twice",
        ":8:",
        "several databases per job are for",
    ] {
        assert!(e.contains(want), "missing {want}: {e}");
    }
    let _ = pg_drop;
}

// ---------------------------------------------------------------- directory mode

#[test]
fn postgres_directory_mode_to_two_remotes_restores_verifies_and_prunes_folders() {
    if !support::pg_ready() {
        return;
    }
    let Some(s3) = s3() else { return };
    let db = pg_fixture("dirm", 4000);
    let _g = PgDropGuard(db.clone());
    let job = support::unique("dir");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\n  s3: {{ rclone: 't:bucket' }}\njobs:\n  {job}: {{ remote: [local, s3], mode: directory, compress: native, dump_args: ['--jobs=2'], name: '{{db}}-{{date}}-{{time}}-{{uuid}}', retention: {{ keep_last: 1 }}, {} }}\n",
            pg_body(&db)
        ))
        .envs(&s3.env());
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    no_run_folders(&t);
    let local = t.files("out");
    let recs: Vec<&String> = local
        .iter()
        .filter(|f| f.ends_with(".dbstash.json"))
        .collect();
    assert_eq!(recs.len(), 1, "{local:?}");
    let folder = recs[0].trim_end_matches(".dbstash.json").to_string();
    assert!(
        local.contains(&format!("{folder}/toc.dat")),
        "pg_dump's folder, file by file: {local:?}"
    );
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("out").join(recs[0])).unwrap())
            .unwrap();
    assert_eq!(rec["mode"], "directory");
    let files = rec["files"].as_array().expect("files in the record");
    assert_eq!(
        files.len(),
        local
            .iter()
            .filter(|f| f.starts_with(&format!("{folder}/")))
            .count()
    );
    // the same folder on S3
    let bucket = s3.objects();
    for f in local.iter() {
        assert!(bucket.contains(f), "{f} missing on s3: {bucket:?}");
    }
    t.run(&["verify", &job, "--remote", "s3"])
        .stdout_matches(r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(none, [0-9.]+ [KMGT]?i?B decompressed\)\n\z")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_succeeded\"")
        .success();
    for remote in ["local", "s3"] {
        let to = format!("{db}_{remote}");
        let _g = PgDropGuard(to.clone());
        t.run(&["restore", &job, "--remote", remote, "--to", &to, "--yes"])
            .stdout_matches(&support::restored_line(
                &job,
                &format!("postgres postgres@127.0.0.1:5432/{to} (created)"),
            ))
            // JSON log lines carry timestamps
            .stderr_contains("\"event\":\"restore_succeeded\"")
            .success();
        assert_eq!(sig(&to), sig(&db));
    }
    // a damaged file fails verify and restore, naming the file
    let data = files
        .iter()
        .filter_map(|f| f["path"].as_str())
        .find(|p| p.ends_with(".dat.gz") || (p.ends_with(".dat") && *p != "toc.dat"))
        .expect("a table data file")
        .to_string();
    let victim = t.path("out").join(&folder).join(&data);
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    let r = t
        .run(&["verify", &job, "--remote", "local"])
        .stdout_matches(r"\AFAILED  \S+: \S+: [0-9]+\.dat\.gz: sha256 [0-9a-f]{64} does not match its record's [0-9a-f]{64} \(corrupted or replaced\)\n\z")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_failed\"")
        .failure(1);
    assert!(
        r.stdout().contains(&data) && r.stdout().contains("sha256"),
        "{}",
        r.stdout()
    );
    let to = format!("{db}_bad");
    let _g = PgDropGuard(to.clone());
    t.run(&["restore", &job, "--remote", "local", "--to", &to, "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert_eq!(
        psql(
            "postgres",
            &format!("select count(*) from pg_database where datname = '{to}'")
        ),
        "0",
        "a failed restore drops the database it created"
    );
    // a second backup: retention (keep_last 1) deletes the old folder and its record everywhere
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let after = t.files("out");
    let recs: Vec<&String> = after
        .iter()
        .filter(|f| f.ends_with(".dbstash.json"))
        .collect();
    assert_eq!(recs.len(), 1, "{after:?}");
    assert!(
        !after.iter().any(|f| f.starts_with(&format!("{folder}/"))),
        "old folder kept: {after:?}"
    );
    assert!(!s3
        .objects()
        .iter()
        .any(|f| f.starts_with(&format!("{folder}/"))));
    no_run_folders(&t);
}

#[test]
fn directory_mode_failed_copy_to_a_required_remote_leaves_no_folder_and_no_record() {
    if !support::pg_ready() {
        return;
    }
    let Some(s3) = s3() else { return };
    let real = support::path_of("rclone");
    let db = pg_fixture("dirf", 300);
    let _g = PgDropGuard(db.clone());
    let job = support::unique("dirf");
    // an rclone whose `copy` transfers everything and then reports failure: the folder is on S3
    // and must be removed again
    let t = Test::new()
        .write_executable(
            "rclone-flaky",
            &format!("#!/bin/sh\nfor a; do if [ \"$a\" = copy ]; then {real} \"$@\"; echo 'copy: simulated failure' >&2; exit 1; fi; done\nexec {real} \"$@\"\n"),
        )
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', rclone: {{ binary: '{{dir}}/bin/rclone-flaky' }} }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\n  s3: {{ rclone: 't:bucket' }}\njobs:\n  {job}: {{ remote: [local, s3], mode: directory, {} }}\n",
            pg_body(&db)
        ))
        .envs(&s3.env());
    let r = t
        .run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        r.stderr().contains("copy to `s3` failed") && r.stderr().contains("simulated failure"),
        "{}",
        r.stderr()
    );
    let left = t.files("out");
    assert!(left.is_empty(), "the local copy is undone too: {left:?}");
    let bucket = s3.objects();
    assert!(bucket.is_empty(), "nothing left on s3: {bucket:?}");
    no_run_folders(&t);
}

// ---------------------------------------------------------------- mongo (fakes: no MongoDB here)

/// mongosh: answers listDatabases (and records that the URI came in its 0600 script, not argv).
const FAKE_MONGOSH: &str = "#!/bin/sh
echo \"$@\" >> {dir}/mongosh.argv
for a; do case \"$a\" in *.js) cat \"$a\" >> {dir}/mongosh.script; stat -c %a \"$a\" >> {dir}/mongosh.mode;; esac; done
printf 'admin\\nconfig\\nlocal\\nshop\\nusers\\n'
";

/// mongodump --out=DIR for the database named in its --config file's URI.
const FAKE_MONGODUMP_DIR: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'mongodump version: 100.9.9-fake'; exit 0; fi
echo \"$@\" >> {dir}/mongodump.argv
for a; do case \"$a\" in --out=*) out=\"${a#--out=}\";; --config=*) cfg=\"${a#--config=}\";; esac; done
db=$(sed -n 's/.*27017\\/\\([^?\"]*\\).*/\\1/p' \"$cfg\")
mkdir -p \"$out/$db\"
head -c 3000 /dev/urandom > \"$out/$db/things.bson\"
echo '{\"indexes\":[]}' > \"$out/$db/things.metadata.json\"
";

/// mongorestore: records argv and what the --dir folder holds.
const FAKE_MONGORESTORE: &str = "#!/bin/sh
echo \"$@\" >> {dir}/mongorestore.argv
for a; do case \"$a\" in --dir=*) (cd \"${a#--dir=}\" && find . -type f | sort) >> {dir}/mongorestore.files;; esac; done
";

#[test]
fn mongo_every_database_in_tar_mode_with_fake_tools() {
    let job = support::unique("mgall");
    let t = Test::new()
        .write_executable("mongosh", FAKE_MONGOSH)
        .write_executable("mongodump", FAKE_MONGODUMP_DIR)
        .write_executable("mongorestore", FAKE_MONGORESTORE)
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, engine: mongo, uri: 'mongodb://app:Sup3rSecret9@127.0.0.1:27017/?authSource=admin', database: '*', exclude: [users], mode: tar, compress: zstd }}\n"
        ));
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let objs = objects(&t, "out");
    assert_eq!(
        objs.len(),
        1,
        "only `shop`: system databases and excludes are skipped: {objs:?}"
    );
    assert!(
        objs[0].contains("shop-") && objs[0].ends_with(".tar.zst"),
        "{objs:?}"
    );
    let argv = std::fs::read_to_string(t.path("mongosh.argv")).unwrap();
    assert!(!argv.contains("Sup3rSecret9"), "{argv}");
    let script = std::fs::read_to_string(t.path("mongosh.script")).unwrap();
    assert!(script.contains("listDatabases") && script.contains("Sup3rSecret9"));
    assert_eq!(
        std::fs::read_to_string(t.path("mongosh.mode"))
            .unwrap()
            .trim(),
        "600"
    );
    let dump = std::fs::read_to_string(t.path("mongodump.argv")).unwrap();
    assert!(
        dump.contains("--out=") && !dump.contains("Sup3rSecret9"),
        "{dump}"
    );
    t.run(&["restore", &job, "--database", "shop", "--yes"])
        .stdout_matches(&support::restored_line(
            &job,
            "mongo app@127.0.0.1:27017/shop",
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    let rargv = std::fs::read_to_string(t.path("mongorestore.argv")).unwrap();
    assert!(
        rargv.contains("--dir=") && rargv.contains("--nsInclude=shop.*"),
        "{rargv}"
    );
    assert!(
        !rargv.contains("--archive") && !rargv.contains("Sup3rSecret9"),
        "{rargv}"
    );
    let files = std::fs::read_to_string(t.path("mongorestore.files")).unwrap();
    assert!(
        files.contains("./shop/things.bson") && files.contains("./shop/things.metadata.json"),
        "{files}"
    );
    no_run_folders(&t);
}

#[test]
fn tar_mode_with_age_encryption_round_trips() {
    if !support::pg_ready() {
        return;
    }
    let db = pg_fixture("tarage", 1500);
    let _g = PgDropGuard(db.clone());
    let id = x25519_identity();
    let job = support::unique("tarage");
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, mode: tar, compress: zstd, encrypt: {{ age_recipients: ['{}'] }}, {} }}\n",
            id.to_public(),
            pg_body(&db)
        ))
        .write("id.txt", &format!("{}\n", id.to_string().expose_secret()));
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let objs = objects(&t, "out");
    assert!(objs[0].ends_with(".tar.zst.age"), "{objs:?}");
    let to = format!("{db}_r");
    let _g2 = PgDropGuard(to.clone());
    let idf = t.path("id.txt").display().to_string();
    t.run(&["restore", &job, "--to", &to, "--yes", "--identity", &idf])
        .stdout_matches(&support::restored_line(
            &job,
            &format!("postgres postgres@127.0.0.1:5432/{to} (created)"),
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    assert_eq!(sig(&to), sig(&db));
    no_run_folders(&t);
}

/// mongodump --out for directory mode (`--gzip` files with compress: native).
const FAKE_MONGODUMP_GZ: &str = "#!/bin/sh
if [ \"$1\" = --version ]; then echo 'mongodump version: 100.9.9-fake'; exit 0; fi
for a; do case \"$a\" in --out=*) out=\"${a#--out=}\";; esac; done
mkdir -p \"$out/events\"
head -c 5000 /dev/urandom | gzip > \"$out/events/hits.bson.gz\"
echo '{}' | gzip > \"$out/events/hits.metadata.json.gz\"
";

#[test]
fn mongo_directory_mode_with_fake_tools_restores_with_gzip_from_the_folder() {
    let job = support::unique("mgdir");
    let t = Test::new()
        .write_executable("mongodump", FAKE_MONGODUMP_GZ)
        .write_executable("mongorestore", FAKE_MONGORESTORE)
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes:\n  local: {{ path: '{{dir}}/out' }}\njobs:\n  {job}: {{ remote: local, engine: mongo, uri: 'mongodb://127.0.0.1:27017/events', mode: directory, compress: native }}\n"
        ));
    t.run(&["backup", &job]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let files = t.files("out");
    assert!(
        files.iter().any(|f| f.ends_with("/events/hits.bson.gz")),
        "{files:?}"
    );
    t.run(&["verify", &job])
        .stdout_matches(r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(none, [0-9.]+ [KMGT]?i?B decompressed\)\n\z")
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"verify_succeeded\"")
        .success();
    t.run(&["restore", &job, "--yes"])
        .stdout_matches(&support::restored_line(
            &job,
            "mongo 127.0.0.1:27017/events",
        ))
        // JSON log lines carry timestamps
        .stderr_contains("\"event\":\"restore_succeeded\"")
        .success();
    let argv = std::fs::read_to_string(t.path("mongorestore.argv")).unwrap();
    assert!(
        argv.contains("--gzip") && argv.contains("--dir=") && argv.contains("--nsInclude=events.*"),
        "{argv}"
    );
    let seen = std::fs::read_to_string(t.path("mongorestore.files")).unwrap();
    assert!(seen.contains("./events/hits.bson.gz"), "{seen}");
    no_run_folders(&t);
}

/// A new X25519 identity: the kind of key operators hold (age 0.13 deprecates generating them in
/// favour of post-quantum ones; `encrypt:` takes X25519 recipients).
#[allow(deprecated)]
fn x25519_identity() -> age::x25519::Identity {
    age::x25519::Identity::generate()
}
