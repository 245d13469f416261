//! What each engine's restore is made of, as pure data: which tool reads which payload, the SQL
//! that checks, creates and drops a target database, and how a drill counts what arrived.
//! `restore` runs these (fetch, verify, feed the tool, run the SQL); it decides nothing per engine.
//! Identifiers are always quoted and literals hex-encoded: a name is never interpolated raw.

use super::mysql::{mysql_bytes, quote_mysql_ident};
use super::payload::Payload;
use super::postgres::{pg_text, quote_pg_ident, Owners};
use super::{mongo, mysql, postgres, sqlite};
use crate::domain::command::CommandSpec;
use crate::model::{DumpFormat, Engine, Job};
use std::path::{Path, PathBuf};

/// How a payload reaches an engine's target.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// A tool reading the decompressed stream on its stdin.
    Stream(CommandSpec),
    /// The stream is the database file itself: written beside the target, checked, renamed in.
    File,
    /// SQL that `sqlite3` ([`sql_into_file`]) replays into a new file beside the target, which is
    /// checked and renamed in.
    SqlIntoFile,
    /// A `tar`/`directory` backup: rebuilt in a private folder, checked, then [`folder_tool`].
    Folder,
    /// Redis cannot be restored from a client (only into an RDB file).
    NotFromClient,
    /// The engine writes no such payload.
    Unsupported,
}

/// The route of `payload` from a `source` job's backup into `target` (the job with the target's
/// connection).
pub fn route(source: &Job, target: &Job, payload: Payload, owners: Owners) -> Route {
    match (source.engine, payload) {
        (Engine::Postgres | Engine::Postgis, Payload::Sql) => {
            Route::Stream(postgres::restore(target, DumpFormat::Plain, owners))
        }
        (Engine::Postgres | Engine::Postgis, Payload::PgCustom) => {
            Route::Stream(postgres::restore(target, DumpFormat::Custom, owners))
        }
        (Engine::Mysql | Engine::Mariadb, Payload::Sql) => Route::Stream(mysql::restore(target)),
        (Engine::Mongo, Payload::MongoArchive { gzip }) => Route::Stream(mongo::restore(
            target,
            source.connection.database.as_deref(),
            gzip,
        )),
        (Engine::Sqlite, Payload::SqliteFile) => Route::File,
        (Engine::Sqlite, Payload::Sql) => Route::SqlIntoFile,
        (Engine::Postgres | Engine::Postgis | Engine::Mongo, Payload::Tar | Payload::Directory) => {
            Route::Folder
        }
        (Engine::Redis, _) => Route::NotFromClient,
        _ => Route::Unsupported,
    }
}

/// [`Route::SqlIntoFile`]: `sqlite3` replaying SQL into `file`.
pub fn sql_into_file(target: &Job, file: &Path) -> CommandSpec {
    sqlite::restore_sql(target, file)
}

/// Files beside a SQLite database that belong to it (removed or replaced with it).
pub const SQLITE_SIDE_FILES: &[&str] = &["-wal", "-shm", "-journal"];

/// [`Route::Folder`]: `pg_restore --format=directory DIR` or `mongorestore --dir=DIR`.
/// `gzip`: the mongodump folder holds gzipped files (`compress: native`).
pub fn folder_tool(
    source: &Job,
    target: &Job,
    owners: Owners,
    dir: &Path,
    gzip: bool,
) -> CommandSpec {
    match source.engine {
        Engine::Mongo => {
            let mut s = mongo::restore(target, source.connection.database.as_deref(), gzip);
            s.args.retain(|a| a != "--archive");
            s.arg(format!("--dir={}", dir.display()));
            s
        }
        _ => {
            let mut s = postgres::restore(target, DumpFormat::Custom, owners);
            s.arg("--format=directory");
            s.arg(dir.display().to_string());
            s
        }
    }
}

/// Can a client restore into a running server? Not Redis: its backups are restored as an RDB
/// file (`--to-file`), and its drills check the RDB instead.
pub fn restores_from_client(engine: Engine) -> bool {
    engine != Engine::Redis
}

/// Do the backups name server roles the target must have (`--no-owner` to leave them out)?
/// Only PostgreSQL's owners and grants.
pub fn names_roles(engine: Engine) -> bool {
    matches!(engine, Engine::Postgres | Engine::Postgis)
}

/// Must `--to` name a database? Not for Redis, whose restore writes an RDB file.
pub fn target_needs_database(engine: Engine) -> bool {
    engine != Engine::Redis
}

/// The admin client of a PostgreSQL (maintenance database `postgres`) or MySQL/MariaDB server;
/// `None` for engines without a server-side "create database".
pub fn server_admin(job: &Job) -> Option<CommandSpec> {
    match job.engine {
        Engine::Postgres | Engine::Postgis => Some(postgres::admin(job, "postgres", None)),
        Engine::Mysql | Engine::Mariadb => Some(mysql::admin(job)),
        _ => None,
    }
}

/// Does a restore into a missing database create it first (and drop it again on failure)?
/// mongorestore creates databases itself; SQLite files are created by the restore.
pub fn creates_database(engine: Engine) -> bool {
    matches!(
        engine,
        Engine::Postgres | Engine::Postgis | Engine::Mysql | Engine::Mariadb
    )
}

/// How to tell whether the target database exists.
#[derive(Debug, Clone)]
pub enum ExistsCheck {
    /// Run `sql` through `admin`; `answer` reads its output.
    Sql {
        admin: CommandSpec,
        sql: String,
        answer: fn(&str) -> bool,
    },
    /// The database is this file.
    File(PathBuf),
    /// dbstash cannot tell (MongoDB, Redis).
    Unknown,
}

pub fn exists_check(job: &Job, db: &str) -> ExistsCheck {
    match job.engine {
        Engine::Postgres | Engine::Postgis => ExistsCheck::Sql {
            admin: postgres::admin(job, "postgres", None),
            sql: format!(
                "SELECT count(*) FROM pg_database WHERE datname = {};\n",
                pg_text(db)
            ),
            answer: |out| out.trim_matches(['\u{1e}', '\n', ' ']) != "0",
        },
        Engine::Mysql | Engine::Mariadb => ExistsCheck::Sql {
            admin: mysql::admin(job),
            sql: format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE CAST(SCHEMA_NAME AS BINARY) = {};\n",
                mysql_bytes(db)
            ),
            answer: |out| out.trim() != "0",
        },
        Engine::Sqlite => ExistsCheck::File(PathBuf::from(db)),
        Engine::Mongo | Engine::Redis => ExistsCheck::Unknown,
    }
}

/// `CREATE DATABASE` for a [`server_admin`] engine; `options` (mysql/mariadb: the source's
/// character set and collation) follow the name.
pub fn create_sql(engine: Engine, db: &str, options: Option<&str>) -> String {
    match (engine, options) {
        (Engine::Mysql | Engine::Mariadb, Some(o)) => {
            format!("CREATE DATABASE {} {o};\n", quote_mysql_ident(db))
        }
        (Engine::Mysql | Engine::Mariadb, None) => {
            format!("CREATE DATABASE {};\n", quote_mysql_ident(db))
        }
        _ => format!("CREATE DATABASE {};\n", quote_pg_ident(db)),
    }
}

/// postgis: `CREATE EXTENSION` in the target, run as the job's `admin_user` (nothing when unset).
pub fn postgis_extension(job: &Job, db: &str) -> Option<(CommandSpec, &'static str)> {
    let (Engine::Postgis, Some(admin)) = (job.engine, job.admin_user.as_deref()) else {
        return None;
    };
    Some((
        postgres::admin(job, db, Some(admin)),
        "CREATE EXTENSION IF NOT EXISTS postgis;\n",
    ))
}

/// How to drop the target database.
#[derive(Debug, Clone, PartialEq)]
pub enum DropStep {
    /// Try each statement in turn through `admin` until one succeeds; the last one's failure is
    /// the drop's.
    Sql {
        admin: CommandSpec,
        attempts: Vec<String>,
    },
    /// A client with its own script (nothing on stdin).
    Script(CommandSpec),
    /// Remove these files (a missing one is fine).
    Files(Vec<String>),
    /// Nothing to drop (Redis).
    Nothing,
}

pub fn drop_step(job: &Job, db: &str) -> DropStep {
    match job.engine {
        Engine::Postgres | Engine::Postgis => {
            let q = quote_pg_ident(db);
            DropStep::Sql {
                admin: postgres::admin(job, "postgres", None),
                // Servers before 13 have no FORCE.
                attempts: vec![
                    format!("DROP DATABASE IF EXISTS {q} WITH (FORCE);\n"),
                    format!("DROP DATABASE IF EXISTS {q};\n"),
                ],
            }
        }
        Engine::Mysql | Engine::Mariadb => DropStep::Sql {
            admin: mysql::admin(job),
            attempts: vec![format!(
                "DROP DATABASE IF EXISTS {};\n",
                quote_mysql_ident(db)
            )],
        },
        Engine::Mongo => DropStep::Script(mongo::shell(mongo::script(job, "db.dropDatabase();"))),
        Engine::Sqlite => DropStep::Files(
            std::iter::once("")
                .chain(SQLITE_SIDE_FILES.iter().copied())
                .map(|suffix| format!("{db}{suffix}"))
                .collect(),
        ),
        Engine::Redis => DropStep::Nothing,
    }
}

/// Reads a counting query's output into `(table, rows)`.
pub type ParseCounts = fn(&str, &[String]) -> Vec<(String, u64)>;

/// How a drill counts the rows (documents) that arrived.
#[derive(Debug, Clone)]
pub enum Counting {
    /// One query through `admin` answers every table (`parse` gets no names).
    Query {
        admin: CommandSpec,
        sql: String,
        parse: ParseCounts,
    },
    /// First list the tables (`list`, read by `names`), then one query (`count`) counts them
    /// all; no tables, no second query.
    ListThenCount {
        admin: CommandSpec,
        list: String,
        names: fn(&str) -> Vec<String>,
        count: fn(&str, &[String]) -> String,
        parse: ParseCounts,
    },
    /// Open the SQLite file and count each table ([`sqlite::TABLES_SQL`], [`sqlite::count_sql`]).
    SqliteFile(PathBuf),
    /// Nothing to count (Redis).
    Nothing,
}

pub fn counting(job: &Job, db: &str) -> Counting {
    match job.engine {
        Engine::Postgres | Engine::Postgis => Counting::Query {
            admin: postgres::admin(job, db, None),
            sql: postgres::COUNTS_SQL.to_string(),
            parse: |out, _| postgres::parse_counts(out),
        },
        Engine::Mysql | Engine::Mariadb => Counting::ListThenCount {
            admin: mysql::admin(job),
            list: mysql::tables_sql(db),
            names: mysql::parse_tables,
            count: mysql::counts_sql,
            parse: mysql::parse_counts,
        },
        Engine::Mongo => Counting::Query {
            admin: mongo::shell(mongo::script(job, mongo::COUNTS_JS)),
            sql: String::new(),
            parse: |out, _| mongo::parse_counts(out),
        },
        Engine::Sqlite => Counting::SqliteFile(PathBuf::from(db)),
        Engine::Redis => Counting::Nothing,
    }
}

/// The client a drill needs beyond the restore tool (checked before anything is created).
pub fn drill_client(engine: Engine) -> Option<&'static str> {
    (engine == Engine::Mongo).then_some("mongosh")
}

/// How a drill makes sure its scratch target holds nothing before it restores (and later drops)
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchCheck {
    /// The database must not exist ([`exists_check`]).
    Missing,
    /// MongoDB has no "create database" (a database exists while it holds collections, and
    /// mongorestore makes it): the target must hold no collections ([`mongo_collections`]).
    NoCollections,
}

pub fn scratch_check(engine: Engine) -> ScratchCheck {
    match engine {
        Engine::Mongo => ScratchCheck::NoCollections,
        _ => ScratchCheck::Missing,
    }
}

/// mongosh listing the target's collections (read with [`mongo::parse_collections`]).
pub fn mongo_collections(job: &Job) -> CommandSpec {
    mongo::shell(mongo::script(job, &mongo::collections_js()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest::testing::job;

    fn stream(r: Route) -> CommandSpec {
        match r {
            Route::Stream(c) => c,
            other => panic!("not a stream route: {other:?}"),
        }
    }

    #[test]
    fn each_payload_goes_to_its_tool() {
        let pg = job("engine: postgres, uri: 'postgresql://app@db/app'");
        let plain = stream(route(&pg, &pg, Payload::Sql, Owners::Keep));
        assert_eq!(plain.program, "psql");
        let custom = stream(route(&pg, &pg, Payload::PgCustom, Owners::Keep));
        assert_eq!(custom.program, "pg_restore");
        assert_eq!(route(&pg, &pg, Payload::Tar, Owners::Keep), Route::Folder);
        assert_eq!(
            route(&pg, &pg, Payload::Rdb, Owners::Keep),
            Route::Unsupported
        );

        let my = job("engine: mariadb, uri: 'mysql://app@db/app'");
        assert_eq!(
            stream(route(&my, &my, Payload::Sql, Owners::Keep)).program,
            "mariadb"
        );
        assert_eq!(
            route(&my, &my, Payload::Tar, Owners::Keep),
            Route::Unsupported
        );

        let mg = job("engine: mongo, uri: 'mongodb://db/shop'");
        let mut to = mg.clone();
        to.connection.database = Some("dst".into());
        let a = stream(route(
            &mg,
            &to,
            Payload::MongoArchive { gzip: true },
            Owners::Keep,
        ));
        assert_eq!(a.program, "mongorestore");
        for arg in ["--archive", "--gzip", "--nsFrom=shop.*", "--nsTo=dst.*"] {
            assert!(a.args.contains(&arg.to_string()), "{arg}: {:?}", a.args);
        }
        assert_eq!(
            route(&mg, &mg, Payload::Directory, Owners::Keep),
            Route::Folder
        );

        let lite = job("engine: sqlite, database: /data/app.db");
        assert_eq!(
            route(&lite, &lite, Payload::SqliteFile, Owners::Keep),
            Route::File
        );
        assert_eq!(
            route(&lite, &lite, Payload::Sql, Owners::Keep),
            Route::SqlIntoFile
        );

        let rd = job("engine: redis, uri: 'redis://db:6379'");
        assert_eq!(
            route(&rd, &rd, Payload::Rdb, Owners::Keep),
            Route::NotFromClient
        );
    }

    #[test]
    fn folder_tools_read_the_checked_folder() {
        let dir = Path::new("/tmp/run/dump");
        let pg = job("engine: postgres, uri: 'postgresql://app@db/app'");
        let s = folder_tool(&pg, &pg, Owners::Keep, dir, false);
        assert_eq!(s.program, "pg_restore");
        let n = s.args.len();
        assert_eq!(s.args[n - 2..], ["--format=directory", "/tmp/run/dump"]);
        assert!(s.args.contains(&"--single-transaction".to_string()));

        let mg = job("engine: mongo, uri: 'mongodb://db/shop'");
        let s = folder_tool(&mg, &mg, Owners::Keep, dir, true);
        assert_eq!(s.program, "mongorestore");
        assert!(!s.args.contains(&"--archive".to_string()), "{:?}", s.args);
        assert_eq!(
            s.args.last().map(String::as_str),
            Some("--dir=/tmp/run/dump")
        );
        assert!(s.args.contains(&"--gzip".to_string()));
    }

    #[test]
    fn target_sql_quotes_names() {
        let pg = job("engine: postgres, uri: 'postgresql://app@db/app'");
        let ExistsCheck::Sql { admin, sql, answer } = exists_check(&pg, "a'b") else {
            panic!("postgres checks with SQL")
        };
        assert_eq!(admin.program, "psql");
        assert_eq!(
            sql,
            format!(
                "SELECT count(*) FROM pg_database WHERE datname = {};\n",
                pg_text("a'b")
            )
        );
        assert!(answer("1\u{1e}\n"));
        assert!(!answer("0\u{1e}\n"));
        assert_eq!(
            create_sql(Engine::Postgres, "x\"y", None),
            "CREATE DATABASE \"x\"\"y\";\n"
        );
        let DropStep::Sql { attempts, .. } = drop_step(&pg, "app") else {
            panic!("postgres drops with SQL")
        };
        assert_eq!(
            attempts,
            [
                "DROP DATABASE IF EXISTS \"app\" WITH (FORCE);\n",
                "DROP DATABASE IF EXISTS \"app\";\n"
            ]
        );

        let my = job("engine: mysql, uri: 'mysql://root@db/app'");
        let ExistsCheck::Sql { sql, answer, .. } = exists_check(&my, "ab") else {
            panic!("mysql checks with SQL")
        };
        assert_eq!(sql, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE CAST(SCHEMA_NAME AS BINARY) = X'6162';\n");
        assert!(answer("1\n"));
        assert!(!answer(" 0\n"));
        assert_eq!(
            create_sql(Engine::Mysql, "a`b", Some("CHARACTER SET utf8mb4")),
            "CREATE DATABASE `a``b` CHARACTER SET utf8mb4;\n"
        );
        assert_eq!(
            create_sql(Engine::Mariadb, "db", None),
            "CREATE DATABASE `db`;\n"
        );
        let DropStep::Sql { attempts, .. } = drop_step(&my, "a`b") else {
            panic!("mysql drops with SQL")
        };
        assert_eq!(attempts, ["DROP DATABASE IF EXISTS `a``b`;\n"]);

        let lite = job("engine: sqlite, database: /data/app.db");
        assert!(
            matches!(exists_check(&lite, "/data/app.db"), ExistsCheck::File(p) if p == Path::new("/data/app.db"))
        );
        assert_eq!(
            drop_step(&lite, "/data/app.db"),
            DropStep::Files(vec![
                "/data/app.db".into(),
                "/data/app.db-wal".into(),
                "/data/app.db-shm".into(),
                "/data/app.db-journal".into()
            ])
        );

        let mg = job("engine: mongo, uri: 'mongodb://u:pw@db/shop'");
        assert!(matches!(exists_check(&mg, "shop"), ExistsCheck::Unknown));
        let DropStep::Script(s) = drop_step(&mg, "shop") else {
            panic!("mongo drops with a script")
        };
        assert_eq!(s.program, "mongosh");
        assert!(!s.args.join(" ").contains("pw"), "{:?}", s.args);
        assert!(s.files[0].contents.expose().contains("db.dropDatabase();"));

        assert!(creates_database(Engine::Postgis) && creates_database(Engine::Mariadb));
        assert!(!creates_database(Engine::Mongo) && !creates_database(Engine::Sqlite));
        assert!(server_admin(&mg).is_none());
        assert!(target_needs_database(Engine::Mongo) && target_needs_database(Engine::Sqlite));
        assert!(!target_needs_database(Engine::Redis));
        assert!(!restores_from_client(Engine::Redis) && restores_from_client(Engine::Sqlite));
        assert!(names_roles(Engine::Postgis) && !names_roles(Engine::Mariadb));
    }

    #[test]
    fn postgis_extension_only_with_an_admin_user() {
        let with = job("engine: postgis, uri: 'postgresql://app@db/geo', admin_user: postgres");
        let (spec, sql) = postgis_extension(&with, "geo").expect("admin_user set");
        assert!(spec.args.contains(&"--username=postgres".to_string()));
        assert_eq!(sql, "CREATE EXTENSION IF NOT EXISTS postgis;\n");
        let without = job("engine: postgis, uri: 'postgresql://app@db/geo'");
        assert!(postgis_extension(&without, "geo").is_none());
        let pg = job("engine: postgres, uri: 'postgresql://app@db/geo', admin_user: postgres");
        assert!(postgis_extension(&pg, "geo").is_none());
    }

    #[test]
    fn drills_count_per_engine() {
        let pg = job("engine: postgres, uri: 'postgresql://app@db/app'");
        let Counting::Query { admin, sql, parse } = counting(&pg, "scratch") else {
            panic!("postgres counts with one query")
        };
        assert_eq!(
            admin.args.last().map(String::as_str),
            Some("--dbname=scratch")
        );
        assert!(sql.contains("query_to_xml"), "{sql}");
        assert_eq!(
            parse("public.a\u{1f}3\u{1e}\npublic.b\u{1f}0\u{1e}", &[]),
            [("public.a".to_string(), 3), ("public.b".to_string(), 0)]
        );

        let my = job("engine: mysql, uri: 'mysql://root@db/app'");
        let Counting::ListThenCount {
            list,
            names,
            count,
            parse,
            ..
        } = counting(&my, "ab")
        else {
            panic!("mysql lists then counts")
        };
        assert!(list.contains("= X'6162'"), "{list}");
        let tables = names("6F72646572730A\n75\n");
        assert_eq!(tables, ["orders\n", "u"]);
        assert_eq!(
            count("ab", &tables),
            "SELECT 0, COUNT(*) FROM `ab`.`orders\n` UNION ALL SELECT 1, COUNT(*) FROM `ab`.`u`;\n"
        );
        assert_eq!(
            parse("0\t5\n1\t7\n", &tables),
            [("orders\n".to_string(), 5), ("u".to_string(), 7)]
        );

        let mg = job("engine: mongo, uri: 'mongodb://db/shop'");
        let Counting::Query { admin, sql, parse } = counting(&mg, "shop") else {
            panic!("mongo counts with one script")
        };
        assert_eq!(admin.program, "mongosh");
        assert_eq!(sql, "");
        assert_eq!(
            parse("noise\norders\t2\n", &[]),
            [("orders".to_string(), 2)]
        );
        assert_eq!(drill_client(Engine::Mongo), Some("mongosh"));
        assert_eq!(drill_client(Engine::Postgres), None);
        assert_eq!(scratch_check(Engine::Mongo), ScratchCheck::NoCollections);
        assert_eq!(scratch_check(Engine::Mysql), ScratchCheck::Missing);

        let lite = job("engine: sqlite, database: /data/app.db");
        assert!(
            matches!(counting(&lite, "/data/app.db"), Counting::SqliteFile(p) if p == Path::new("/data/app.db"))
        );
        let rd = job("engine: redis, uri: 'redis://db:6379'");
        assert!(matches!(counting(&rd, ""), Counting::Nothing));
    }
}
