//! `dbstash verify`: passes on good backups, fails on every kind of damage for every codec;
//! drills (`verify --restore-to`) report counts and leave no scratch database behind.

use crate::support;
use crate::support::{mariadb, pg_drop, psql, require, unique, Test};
use std::process::Command;

fn manifest(jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

/// The backup object of `job` (not its record) under the local remote.
fn object(t: &Test, job: &str) -> std::path::PathBuf {
    let files: Vec<String> = t
        .files("out")
        .into_iter()
        .filter(|f| f.starts_with(&format!("{job}/")) && !f.ends_with(".dbstash.json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    t.path("out").join(&files[0])
}

#[test]
fn verify_fails_on_every_kind_of_damage_for_every_codec() {
    let t = Test::new().manifest(&manifest(
        "  none: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: none }\n  gz: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: gzip }\n  zst: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: zstd }\n",
    ));
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("create table t(x integer primary key, y text); with recursive s(i) as (select 1 union all select i+1 from s where i < 3000) insert into t select i, hex(randomblob(16)) from s;").unwrap();
    drop(c);
    t.run(&["backup", "none", "gz", "zst"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for job in ["none", "gz", "zst"] {
        let r = t
            .run(&["verify", job, "--backup", "all"])
            .stdout_matches(r"\A(ok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{64} +\(\w+, [0-9.]+ [KMGT]?i?B decompressed\)\n)+\z")
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("verify_succeeded"))
            .success();
        assert!(r.stdout().starts_with("ok "), "{}", r.stdout());
        let path = object(&t, job);
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x20;
        let mut longer = good.clone();
        longer.extend_from_slice(b"appended");
        let damages = [
            ("flipped", flipped),
            ("truncated", good[..good.len() * 2 / 3].to_vec()),
            ("one byte short", good[..good.len() - 1].to_vec()),
            ("longer", longer),
            ("empty", Vec::new()),
        ];
        for (kind, bytes) in damages {
            std::fs::write(&path, &bytes).unwrap();
            let r = t
                .run(&["verify", job])
                .stdout_matches(r"\AFAILED  \S+: [^\n]+\n\z")
                // log lines carry timestamps; the outcome event is what is stable
                .stderr_matches(&support::logged("verify_failed"))
                .stderr_contains(&format!(
                    "dbstash: 1 of 1 backup(s) of job {job} failed verification\n"
                ))
                .failure(1);
            assert!(
                r.stdout().contains("FAILED"),
                "{job} {kind}: {}",
                r.stdout()
            );
            // and restore refuses it too, leaving no file behind
            let to = t.path(&format!("r-{job}.db"));
            let rr = t.run(&["restore", job, "--to", &to.display().to_string()]);
            assert_eq!(rr.code(), 1, "{job} {kind}: {}", rr.stderr());
            assert!(!to.exists(), "{job} {kind}: a damaged restore left a file");
        }
        std::fs::write(&path, &good).unwrap();
        t.run(&["verify", job])
            .stdout_matches(&support::verified_line(r"\w+"))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_matches(&support::logged("verify_succeeded"))
            .success();
    }
    // an unknown backup id
    let r = t
        .run(&["verify", "gz", "--backup", "nope.sqlite3"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        r.stderr().contains("no complete backup `nope.sqlite3`"),
        "{}",
        r.stderr()
    );
}

#[test]
fn postgres_drill_reports_counts_and_drops_its_scratch_database() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("drill_src", 1234);
    psql(&src, "create schema s2; create table s2.other(a int); insert into s2.other select generate_series(1, 17)");
    let t = Test::new().manifest(&manifest(&format!(
        "  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, compress: native }}\n"
    )));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let scratch = unique("drill_scratch");
    let r = t
        .run(&[
            "verify",
            "app",
            "--restore-to",
            &format!("postgresql://postgres@127.0.0.1:5432/{scratch}"),
        ])
        .stdout_matches(&format!(
            r"drill of job app backup \S+: [0-9]+ tables, [0-9]+ rows restored into postgres postgres@127\.0\.0\.1:5432/{scratch} \(dropped again\) in [0-9.]+s\n\z"
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    let out = r.stdout();
    let line_t = out
        .lines()
        .find(|l| l.contains("public.t"))
        .unwrap_or_default();
    assert!(line_t.trim_end().ends_with("1234"), "{out}");
    let line_o = out
        .lines()
        .find(|l| l.contains("s2.other"))
        .unwrap_or_default();
    assert!(line_o.trim_end().ends_with("17"), "{out}");
    assert!(out.contains("2 tables, 1251 rows"), "{out}");
    assert!(
        !support::pg_exists(&scratch),
        "the scratch database was left behind"
    );
    // never the job's own database
    let r = t
        .run(&["verify", "app", "--restore-to", &src])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("own database"), "{}", r.stderr());
    assert_eq!(psql(&src, "select count(*) from t"), "1234");
    // never a database it did not create
    let existing = support::pg_fixture("drill_existing", 3);
    let r = t
        .run(&["verify", "app", "--restore-to", &existing])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("already exists"), "{}", r.stderr());
    assert_eq!(psql(&existing, "select count(*) from t"), "3");
    pg_drop(&src);
    pg_drop(&existing);
}

#[test]
fn the_drill_api_for_the_supervisor() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("drill_api", 42);
    let scratch = unique("drill_api_scratch");
    let t = Test::new().manifest(&manifest(&format!(
        "  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, compress: gzip, verify: {{ schedule: '0 5 * * 0', restore_to: 'postgresql://postgres@127.0.0.1:5432/{scratch}' }} }}\n"
    )));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let m = dbstash::manifest::load(&t.path("dbstash.yaml")).expect("manifest");
    let plans = dbstash::plan::build_all(&m, &["app".to_string()]).expect("plan");
    let target = plans[0]
        .job()
        .and_then(|j| j.verify.as_ref())
        .and_then(|v| v.restore_to.clone())
        .expect("verify.restore_to");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt
        .block_on(dbstash::restore::drill(&plans[0], &target))
        .expect("drill");
    assert_eq!(report.total_rows, 42);
    assert_eq!(report.tables.len(), 1);
    assert!(report.dropped);
    assert!(
        report.summary().contains("1 tables, 42 rows"),
        "{}",
        report.summary()
    );
    assert!(!support::pg_exists(&scratch));
    pg_drop(&src);
}

#[test]
fn mariadb_drill_reports_counts_and_drops_its_scratch_database() {
    if !require(support::mariadb_available(), "MariaDB (root on the socket)") {
        return;
    }
    let src = unique("mydrill_src");
    mariadb(&format!(
        "create database {src}; use {src}; create table a(id int primary key); insert into a select seq from seq_1_to_321; create table b(x text); insert into b values ('one'), ('two')"
    ));
    let t = Test::new().manifest(&manifest(&format!(
        "  shop: {{ engine: mariadb, uri: 'mysql://root@localhost/{src}', remote: local, compress: zstd }}\n"
    )));
    t.run(&["backup", "shop"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let scratch = format!("{}-s`cratch", unique("mydrill"));
    let r = t
        .run(&[
            "verify",
            "shop",
            "--restore-to",
            &format!("mysql://root@localhost/{}", scratch.replace('`', "%60")),
        ])
        .stdout_matches(r"drill of job shop backup \S+: 2 tables, 323 rows restored into mariadb .+ \(dropped again\) in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    assert!(r.stdout().contains("2 tables, 323 rows"), "{}", r.stdout());
    assert_eq!(
        mariadb(&format!(
            "select count(*) from information_schema.schemata where schema_name = '{scratch}'"
        )),
        "0",
        "scratch database left behind"
    );
    mariadb(&format!("drop database {src}"));
}

const MONGODUMP: &str = "#!/bin/sh\nprintf '\\155\\342\\231\\201archive'\n";
const MONGORESTORE: &str =
    "#!/bin/sh\nprintf '%s\\n' \"$@\" > {dir}/restore.argv\ncat > {dir}/restore.stdin\n";
const MONGOSH: &str = r#"#!/bin/sh
# fake mongosh: record argv and the script; answer the listing (an empty database) and the count
n=$(ls {dir}/sh 2>/dev/null | wc -l); mkdir -p {dir}/sh/$n
printf '%s\n' "$@" > {dir}/sh/$n/argv
for a in "$@"; do case "$a" in *.js) cp "$a" {dir}/sh/$n/script ;; esac; done
if grep -q dbstash-collections {dir}/sh/$n/script; then printf 'dbstash-collections 0\n'; fi
if grep -q countDocuments {dir}/sh/$n/script; then printf 'orders\t12\nusers\t3\n'; fi
"#;

#[test]
fn mongo_drill_counts_and_drops_through_mongosh() {
    let t = Test::new()
        .manifest(&manifest(
            "  m: { engine: mongo, uri: 'mongodb://app:pa55word@127.0.0.1:27017/shop', remote: local, compress: gzip }\n",
        ))
        .write_executable("mongodump", MONGODUMP)
        .write_executable("mongorestore", MONGORESTORE)
        .write_executable("mongosh", MONGOSH);
    t.run(&["backup", "m"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let r = t
        .run(&[
            "verify",
            "m",
            "--restore-to",
            "mongodb://app:pa55word@127.0.0.1:27017/shop_drill",
        ])
        .stdout_matches(r"drill of job m backup \S+: 2 collections, 15 documents restored into mongo app@127\.0\.0\.1:27017/shop_drill \(dropped again\) in [0-9.]+s\n\z")
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_matches(&support::logged("restore_target_dropped"))
        .success();
    assert!(
        r.stdout().contains("2 collections, 15 documents"),
        "{}",
        r.stdout()
    );
    let argv = std::fs::read_to_string(t.path("restore.argv")).unwrap();
    assert!(argv.contains("--nsTo=shop_drill.*"), "{argv}");
    // First the check that the target holds no collections, then the count, then the drop.
    let scripts: Vec<String> = (0..3)
        .map(|i| std::fs::read_to_string(t.path(&format!("sh/{i}/script"))).unwrap())
        .collect();
    assert!(scripts[0].contains("getCollectionNames"), "{scripts:?}");
    assert!(scripts[0].contains("/shop_drill"), "{scripts:?}");
    assert!(scripts[1].contains("countDocuments"), "{scripts:?}");
    assert!(scripts[2].contains("dropDatabase"), "{scripts:?}");
    assert!(scripts[2].contains("/shop_drill"), "{scripts:?}");
    for i in 0..3 {
        let argv = std::fs::read_to_string(t.path(&format!("sh/{i}/argv"))).unwrap();
        assert!(!argv.contains("pa55word"), "secret in mongosh argv: {argv}");
    }
    assert!(!r.stderr().contains("pa55word"));
    // without mongosh the drill refuses up front (it could not clean up)
    let no_sh = Command::new("sh")
        .arg("-c")
        .arg(format!("rm {}", t.path("bin/mongosh").display()))
        .status()
        .unwrap();
    assert!(no_sh.success());
    let r = t
        .run(&["verify", "m", "--restore-to", "shop_drill2"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("mongosh"), "{}", r.stderr());
}
