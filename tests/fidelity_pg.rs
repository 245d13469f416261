//! Restore fidelity: a restored database equals its source as a whole, not only its rows.
//! PostgreSQL: owners, GRANTs, default privileges and large-object owners/ACLs survive every
//! format (plain, custom, directory, tar); a server without the backup's roles is refused before
//! anything is restored, naming them, and `--no-owner` / `verify.no_owner` restore there anyway.
//! MariaDB: a database that the restore creates gets the source's default charset/collation.

use crate::support;
use crate::support::{mariadb, psql, require, unique, PgScram, Test};
use std::process::Command;

fn manifest(jobs: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n{jobs}"
    )
}

/// Roles and databases of one test on the shared server, removed at the end (a failing test too):
/// the databases first, since the roles own objects in them.
struct Fixture {
    src: String,
    owner: String,
    reader: String,
    dbs: Vec<String>,
}

impl Fixture {
    /// Two roles; schemas, a table, a sequence and views owned by one, GRANTs to the other,
    /// default privileges, and a large object with its owner and a GRANT.
    fn create(prefix: &str) -> Fixture {
        let owner = unique(&format!("{prefix}_owner"));
        let reader = unique(&format!("{prefix}_reader"));
        let src = unique(&format!("{prefix}_src"));
        psql(
            "postgres",
            &format!("create role {owner}; create role {reader}"),
        );
        let f = Fixture {
            src: src.clone(),
            owner: owner.clone(),
            reader: reader.clone(),
            dbs: Vec::new(),
        };
        psql("postgres", &format!("create database {src}"));
        psql(
            &src,
            &format!(
                "create schema app authorization {owner};
                 create schema rpt authorization {owner};
                 create table app.item(id serial primary key, name text not null);
                 alter table app.item owner to {owner};
                 insert into app.item(name) select md5(g::text) from generate_series(1, 300) g;
                 create view rpt.item_names as select name from app.item;
                 alter view rpt.item_names owner to {owner};
                 create table public.plain_t(id int);
                 grant usage on schema app, rpt to {reader};
                 grant select, insert on app.item to {reader};
                 grant usage on sequence app.item_id_seq to {reader};
                 grant select on rpt.item_names to {reader};
                 revoke all on public.plain_t from public;
                 grant select (id) on public.plain_t to {reader};
                 alter default privileges for role {owner} in schema app grant select on tables to {reader};
                 alter default privileges for role {owner} revoke execute on functions from public;
                 select lo_from_bytea(424242, 'large object bytes');
                 alter large object 424242 owner to {owner};
                 grant select on large object 424242 to {reader};"
            ),
        );
        f
    }

    fn roles(&self) -> [&str; 2] {
        [&self.owner, &self.reader]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for db in self.dbs.iter().chain(std::iter::once(&self.src)) {
            support::pg_drop(db);
        }
        for r in [&self.owner, &self.reader] {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c"])
                .arg(format!("drop role if exists {r}"))
                .output();
        }
    }
}

/// `pg_dump --schema-only` of `db` (owners and ACLs included), with only what must differ
/// normalised: the database's name and psql's per-dump `\restrict` keys.
fn schema_of(db: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", "postgres", "--schema-only", db])
        .output()
        .expect("pg_dump");
    assert!(
        out.status.success(),
        "pg_dump {db}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .map(|l| l.replace(db, "DB"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Large objects with their owner and ACL, by role name.
fn large_objects(db: &str) -> String {
    psql(
        db,
        "select string_agg(m.oid || ':' || r.rolname || ':' || coalesce(m.lomacl::text, '-'), ' ' order by m.oid) \
         from pg_largeobject_metadata m join pg_roles r on r.oid = m.lomowner",
    )
}

fn rows(db: &str) -> String {
    psql(
        db,
        "select count(*) || ':' || md5(string_agg(id || name, ',' order by id)) from app.item",
    )
}

fn pg_exists_on(pg: &PgScram, db: &str) -> bool {
    pg.psql(
        "postgres",
        &format!("select count(*) from pg_database where datname = '{db}'"),
    ) == "1"
}

const FORMATS: [(&str, &str); 4] = [
    ("plain", "compress: gzip"),
    ("custom", "format: custom, compress: zstd"),
    ("directory", "mode: directory"),
    ("tar", "mode: tar, compress: gzip"),
];

#[test]
fn postgres_every_format_restores_owners_privileges_and_large_object_acls() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let mut fx = Fixture::create("fid");
    let yaml: String = FORMATS
        .iter()
        .map(|(name, extra)| {
            format!(
                "  {name}: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{}', remote: local, {extra} }}\n",
                fx.src
            )
        })
        .collect();
    let t = Test::new().manifest(&manifest(&yaml));
    let mut args = vec!["backup"];
    args.extend(FORMATS.iter().map(|f| f.0));
    t.run(&args) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();

    let want_schema = schema_of(&fx.src);
    let want_lo = large_objects(&fx.src);
    let want_rows = rows(&fx.src);
    // The fixture is what this test is about: owners, grants and the large object's ACL are there.
    for needle in [
        format!("ALTER SCHEMA app OWNER TO {}", fx.owner),
        format!("ALTER TABLE rpt.item_names OWNER TO {}", fx.owner),
        format!("GRANT SELECT,INSERT ON TABLE app.item TO {}", fx.reader),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA app GRANT SELECT ON TABLES  TO {}",
            fx.owner, fx.reader
        ),
    ] {
        assert!(
            want_schema.contains(&needle),
            "fixture lacks {needle}:\n{want_schema}"
        );
    }
    assert!(
        want_lo.contains(&format!("424242:{}:", fx.owner))
            && want_lo.contains(&format!("{}=r/", fx.reader)),
        "{want_lo}"
    );

    for (name, _) in FORMATS {
        let target = unique(&format!("fid_{name}"));
        fx.dbs.push(target.clone());
        t.run(&["restore", name, "--to", &target])
            .stdout_matches(&support::restored_line(
                name,
                &format!("postgres postgres@127.0.0.1:5432/{target} (created)"),
            ))
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_contains("event=\"restore_succeeded\"")
            .success();
        assert_eq!(rows(&target), want_rows, "{name}: rows");
        assert_eq!(
            schema_of(&target),
            want_schema,
            "{name}: schema, owners and privileges"
        );
        assert_eq!(
            large_objects(&target),
            want_lo,
            "{name}: large-object owner and ACL"
        );
    }
}

#[test]
fn postgres_restore_into_a_server_without_the_roles_is_refused_first_and_works_with_no_owner() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let Some(pg) = PgScram::start("fid-pw") else {
        require(false, "a scratch PostgreSQL of our own");
        return;
    };
    let fx = Fixture::create("fidm");
    let yaml: String = FORMATS
        .iter()
        .map(|(name, extra)| {
            format!(
                "  {name}: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{}', remote: local, {extra} }}\n",
                fx.src
            )
        })
        .collect();
    let t = Test::new().manifest(&manifest(&yaml));
    let mut args = vec!["backup"];
    args.extend(FORMATS.iter().map(|f| f.0));
    t.run(&args) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let want_rows = rows(&fx.src);
    let scratch = |db: &str| format!("postgresql://postgres:fid-pw@127.0.0.1:{}/{db}", pg.port);

    // An existing database there, holding something of its own.
    pg.psql("postgres", "create database keep");
    pg.psql(
        "keep",
        "create table mine(x int); insert into mine values (7)",
    );
    let keep_before = pg.psql("keep", "select string_agg(table_schema || '.' || table_name, ',' order by 1, 2) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')");

    for (name, _) in FORMATS.iter().filter(|f| f.0 != "plain") {
        // Into a database the restore would create: refused, naming both roles, nothing created.
        let db = format!("new_{name}");
        let r = t
            .run(&["restore", name, "--to", &scratch(&db)])
            /* stderr differs between runs of this line */
            .ignore_stderr()
            .failure(1);
        let err = r.stderr();
        for role in fx.roles() {
            assert!(err.contains(role), "{name}: role {role} not named: {err}");
        }
        assert!(
            err.contains(&format!("dbstash restore {name} --no-owner")),
            "{name}: no hint: {err}"
        );
        assert!(!err.contains("fid-pw"), "{err}");
        assert!(!pg_exists_on(&pg, &db), "{name}: {db} was created");

        // Into an existing database (--yes): refused before it is touched.
        let r = t
            .run(&["restore", name, "--to", &scratch("keep"), "--yes"])
            /* stderr differs between runs of this line */
            .ignore_stderr()
            .failure(1);
        assert!(r.stderr().contains(&fx.owner), "{}", r.stderr());
        assert_eq!(
            pg.psql("keep", "select string_agg(table_schema || '.' || table_name, ',' order by 1, 2) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')"),
            keep_before,
            "{name}: the existing database was changed"
        );
        assert_eq!(pg.psql("keep", "select x from mine"), "7");

        // With --no-owner: restored, everything owned by the restoring role, no grants.
        t.run(&["restore", name, "--to", &scratch(&db), "--no-owner"])
            .stdout_matches(&support::restored_line(
                name,
                &format!("postgres postgres@127.0.0.1:{}/{db} (created)", pg.port),
            ))
            .stderr_contains("dbstash: warning: --to holds a password in plain text, which every user of this host can read in the process list; use ${VAR} or --to-uri-file PATH instead\n")
            // log lines carry timestamps; the outcome event is what is stable
            .stderr_contains("event=\"restore_succeeded\"")
            .success();
        assert_eq!(
            pg.psql(&db, "select count(*) || ':' || md5(string_agg(id || name, ',' order by id)) from app.item"),
            want_rows,
            "{name}"
        );
        assert_eq!(
            pg.psql(&db, "select string_agg(distinct nspowner::regrole::text, ',') from pg_namespace where nspname in ('app', 'rpt')"),
            "postgres"
        );
        assert_eq!(
            pg.psql(
                &db,
                "select count(*) from pg_largeobject_metadata where lomacl is not null"
            ),
            "0"
        );
    }

    // A plain SQL backup: psql's single transaction fails on the first missing role; the database
    // the restore created is gone again. --no-owner cannot apply to it and says so.
    let r = t
        .run(&["restore", "plain", "--to", &scratch("new_plain")])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        r.stderr()
            .contains(&format!("role \"{}\" does not exist", fx.owner))
            && r.stderr().contains("nothing was restored"),
        "{}",
        r.stderr()
    );
    assert!(!pg_exists_on(&pg, "new_plain"));
    let r = t
        .run(&[
            "restore",
            "plain",
            "--to",
            &scratch("new_plain"),
            "--no-owner",
        ])
        .stderr_is("dbstash: warning: --to holds a password in plain text, which every user of this host can read in the process list; use ${VAR} or --to-uri-file PATH instead\ndbstash: --no-owner (verify.no_owner) needs a custom, directory or tar backup: a plain SQL backup sets its owners and privileges in its own statements; restore it into a server that has the backup's roles\n")
        .failure(1);
    assert!(r.stderr().contains("plain SQL backup"), "{}", r.stderr());
    assert!(!pg_exists_on(&pg, "new_plain"));
}

#[test]
fn postgres_drill_into_a_server_without_the_roles_needs_verify_no_owner() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let Some(pg) = PgScram::start("drill-pw") else {
        require(false, "a scratch PostgreSQL of our own");
        return;
    };
    let fx = Fixture::create("fidd");
    let uri = format!("postgresql://postgres@127.0.0.1:5432/{}", fx.src);
    let scratch = format!("postgresql://postgres:drill-pw@127.0.0.1:{}/drill", pg.port);
    let t = Test::new().manifest(&manifest(&format!(
        "  strict: {{ engine: postgres, uri: '{uri}', remote: local, compress: native }}\n  \
         drills: {{ engine: postgres, uri: '{uri}', remote: local, mode: tar, verify: {{ restore_to: '{scratch}', no_owner: true }} }}\n"
    )));
    t.run(&["validate"])
        .stdout_is("{dir}/dbstash.yaml: valid (2 jobs)\n")
        .stderr_is(
            "{dir}/dbstash.yaml:5:3: warning: job `strict` has no schedule: it runs only with `dbstash backup strict`\n\
             {dir}/dbstash.yaml:6:3: warning: job `drills` has no schedule: it runs only with `dbstash backup drills`\n",
        )
        .success();
    t.run(&["backup", "strict", "drills"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();

    let r = t
        .run(&["verify", "strict", "--restore-to", &scratch])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    let err = r.stderr();
    for role in fx.roles() {
        assert!(err.contains(role), "role {role} not named: {err}");
    }
    assert!(err.contains("no_owner: true"), "{err}");
    assert!(!pg_exists_on(&pg, "drill"));

    let d = t
        .run(&["verify", "drills", "--restore-to", &scratch])
        .stdout_matches(&format!(
            r"\A  app\.item +300\n  public\.plain_t +0\ndrill of job drills backup \S+\.tar: 2 tables, 300 rows restored into postgres postgres@127\.0\.0\.1:{}/drill \(dropped again\) in [0-9.]+s\n\z",
            pg.port
        ))
        .stderr_contains("dbstash: warning: --restore-to holds a password in plain text, which every user of this host can read in the process list; use ${VAR} or --restore-to-file PATH instead\n")
        // the rest of stderr is timestamped log lines
        .stderr_contains("event=\"restore_target_dropped\"")
        .success();
    assert!(d.stdout().contains("300 rows"), "{}", d.stdout());
    assert!(!pg_exists_on(&pg, "drill"));
}

#[test]
fn mariadb_database_created_by_restore_gets_the_sources_charset_and_collation() {
    if !require(support::mariadb_available(), "MariaDB") {
        return;
    }
    let src = unique("fidcs_src");
    let dst = unique("fidcs_dst");
    let want = "utf8mb4_unicode_520_ci";
    // Meaningful only when the server's default is another collation.
    assert_ne!(mariadb("select @@collation_server"), want);
    mariadb(&format!(
        "create database {src} character set utf8mb4 collate {want}; \
         create table {src}.t(id int primary key, v varchar(20)); insert into {src}.t values (1, 'ä'), (2, 'b')"
    ));
    let t = Test::new().manifest(&manifest(&format!(
        "  my: {{ engine: mariadb, uri: 'mysql://root@localhost/{src}', remote: local, compress: zstd }}\n"
    )));
    t.run(&["backup", "my"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let records = t.files("out");
    let record = records
        .iter()
        .find(|f| f.ends_with(".dbstash.json"))
        .expect("a record");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("out").join(record)).unwrap())
            .unwrap();
    assert_eq!(rec["charset"]["character_set"], "utf8mb4", "{rec}");
    assert_eq!(rec["charset"]["collation"], want, "{rec}");

    t.run(&["restore", "my", "--to", &dst])
        .stdout_matches(&support::restored_line(
            "my",
            &format!("mariadb root@localhost:3306/{dst} (created)"),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_contains("event=\"restore_succeeded\"")
        .success();
    let got = mariadb(&format!(
        "select concat(default_character_set_name, ' ', default_collation_name) from information_schema.schemata where schema_name = '{dst}'"
    ));
    let count = mariadb(&format!("select count(*) from {dst}.t"));
    mariadb(&format!("drop database {src}; drop database {dst}"));
    assert_eq!(got, format!("utf8mb4 {want}"));
    assert_eq!(count, "2");
}
