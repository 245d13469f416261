//! Restore and verify: a backup streamed back from its remote through an integrity-checking,
//! decompressing pump into the engine's restore tool (no temporary file), `verify` (re-read,
//! check size + sha256 against the record, test-decompress), and drills (restore into a scratch
//! database, count, drop).
//!
//! The rule that matters: a restore tool never sees end-of-file before the whole object has been
//! read and found to match its record; on any failure the tool is killed first (see `pipeline`).
//! That is enough for tools that roll back (psql, pg_restore). Tools that apply what they read
//! (mysql, mongorestore) see nothing of a backup restored over an existing database until a first
//! pass has read and checked all of it (`first_pass`).

mod ahead;
pub mod drill;
mod error;
mod folder;
mod gate;
pub mod layout;
pub mod pipeline;
pub mod pump;
pub mod rdb;
pub mod roles;
mod run_dir;
mod tap;
pub mod target;

pub use drill::{drill, drill_backup, DrillReport, TableCount};
pub use error::{
    BackupProblem, CheckError, FolderProblem, NotConfirmed, Occupied, RestoreError, SqliteProblem,
    TargetProblem, Unsupported, UsageError,
};

use crate::catalog::record::{self, Backup};
use crate::catalog::retention;
use crate::engine::restore::Route;
use crate::engine::{self, Codec};
use crate::model::{Engine, Job};
use crate::plan::JobPlan;
use crate::secret::Secret;
use crate::storage::AnyStorage;
use layout::{Layout, Payload};
use pipeline::Source;
use pump::Pumped;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use target::Target;

/// `work`, unless SIGINT or SIGTERM comes first: then `work` is dropped — its tools killed with
/// their process groups, its blocking copies stopped (`crate::cancel`), its temp files removed —
/// and the restore fails with `Stopped` (the caller then drops a database it created).
async fn unless_stopped<T>(
    work: impl std::future::Future<Output = Result<T, RestoreError>>,
) -> Result<T, RestoreError> {
    tokio::select! {
        r = work => r,
        () = crate::signals::wait_for_stop() => Err(RestoreError::Stopped),
    }
}

/// May dbstash overwrite the target?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// `--yes`.
    Given,
    /// Ask on the terminal.
    Ask,
    /// stdin is not a terminal and no `--yes`: refuse whenever confirmation is needed.
    NoTerminal,
}

/// `dbstash restore J ...`.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Backup id (object name) or `latest`.
    pub backup: &'a str,
    pub to: Option<&'a str>,
    pub to_file: Option<&'a Path>,
    pub consent: Consent,
    /// Parent of the private folders for option files.
    pub temp_dir: &'a Path,
    pub progress: bool,
    /// postgres: restore without the backup's owners and privileges (`--no-owner`).
    pub no_owner: bool,
}

#[derive(Debug, Clone)]
pub struct Restored {
    pub backup: String,
    pub target: String,
    pub created: bool,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
    pub sha256: String,
    pub duration: Duration,
}

fn job_of(plan: &JobPlan) -> Result<&Job, RestoreError> {
    plan.job().ok_or_else(|| {
        UsageError::Unresolved {
            job: plan.job.clone(),
        }
        .into()
    })
}

/// Complete backups of the job, chosen by `which`: an id (object name or key), `latest` or `all`.
pub async fn select(
    plan: &JobPlan,
    store: &AnyStorage,
    which: &str,
) -> Result<Vec<Backup>, RestoreError> {
    let folder = retention::folder(plan, jiff::Timestamp::now());
    let (backups, _) = record::complete_backups(store, &folder, &plan.job)
        .await
        .map_err(|source| RestoreError::Storage {
            remote: plan.remote.name.clone(),
            source,
        })?;
    // One database of a several-database job: only its own backups.
    let backups: Vec<Backup> = if plan.per_database && !plan.databases.is_many() {
        backups
            .into_iter()
            .filter(|b| b.record.database == plan.database)
            .collect()
    } else {
        backups
    };
    if plan.databases.is_many() && matches!(which, "latest" | "") {
        return Err(UsageError::SeveralDatabases {
            job: plan.job.clone(),
        }
        .into());
    }
    if backups.is_empty() {
        return Err(RestoreError::NoBackups {
            job: plan.job.clone(),
            remote: plan.remote.name.clone(),
        });
    }
    match which {
        "all" => Ok(backups),
        "latest" | "" => Ok(backups.into_iter().take(1).collect()),
        id => backups
            .into_iter()
            .find(|b| b.id == id || b.key == id)
            .map(|b| vec![b])
            .ok_or_else(|| RestoreError::UnknownBackup {
                job: plan.job.clone(),
                id: id.to_string(),
                remote: plan.remote.name.clone(),
            }),
    }
}

fn layout_of(job: &Job, b: &Backup) -> Result<Layout, RestoreError> {
    layout::detect(job.engine, &b.id, Some(&b.record))
}

fn confirm(consent: Consent, question: &str) -> Result<(), RestoreError> {
    match consent {
        Consent::Given => Ok(()),
        Consent::NoTerminal => Err(NotConfirmed::NoTerminal {
            question: question.to_string(),
        }
        .into()),
        Consent::Ask => {
            eprint!("dbstash: {question}? Its current contents will be replaced. Type 'yes' to continue: ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            if matches!(line.trim(), "yes" | "y" | "YES" | "Yes") {
                Ok(())
            } else {
                Err(NotConfirmed::Cancelled.into())
            }
        }
    }
}

/// Restore `backup` into `target` (which exists now). Used by `restore` and by drills. `fresh`:
/// this restore created the target and drops it on failure, so nothing of value is at stake there.
pub(crate) async fn apply(
    job: &Job,
    target: &Target,
    src: &Source<'_>,
    base: &Path,
    fresh: bool,
) -> Result<pipeline::ToolDone, RestoreError> {
    if needs_first_pass(job.engine, src.layout.payload, fresh) {
        first_pass(job, src).await?;
    }
    let secrets = target.secrets();
    let t = &target.job;
    match engine::restore::route(job, t, src.layout.payload, target.owners) {
        Route::Stream(spec) => pipeline::into_tool(src, &spec, base, &secrets).await,
        Route::File => {
            let dest = PathBuf::from(target.database());
            let (sib, pumped) = pipeline::into_file(src, &dest).await?;
            sqlite_check(&sib.path).await?;
            sib.commit(&dest, engine::restore::SQLITE_SIDE_FILES)?;
            Ok(pipeline::ToolDone {
                pumped,
                stderr: String::new(),
            })
        }
        Route::SqlIntoFile => {
            let dest = PathBuf::from(target.database());
            // Created here (0600), not by sqlite3, whose new files follow the umask.
            let (sib, _empty) = pipeline::Sibling::create(&dest)?;
            let spec = engine::restore::sql_into_file(t, &sib.path);
            let done = pipeline::into_tool(src, &spec, base, &secrets).await?;
            sqlite_check(&sib.path).await?;
            sib.commit(&dest, engine::restore::SQLITE_SIDE_FILES)?;
            Ok(done)
        }
        Route::Folder => folder::restore_folder(job, target, src, base, &secrets).await,
        Route::NotFromClient => Err(redis_unsupported()),
        Route::Unsupported => Err(Unsupported::Payload {
            payload: src.layout.payload,
            engine: job.engine.as_str(),
        }
        .into()),
    }
}

/// A tool that applies what it reads as it reads it (see [`engine::restore_is_atomic`]), fed
/// straight from the stream, into a database that was there before: the damage would be seen only
/// after the tool had already replaced part of it. (Folder payloads are checked before their tool
/// starts; file payloads are renamed into place only when complete.)
fn needs_first_pass(engine: Engine, payload: Payload, fresh: bool) -> bool {
    let streamed = matches!(
        payload,
        Payload::Sql | Payload::PgCustom | Payload::MongoArchive { .. }
    );
    streamed && !fresh && !engine::restore_is_atomic(engine)
}

/// Read the whole backup once and check it (size, sha256, decryption, decompression, signature)
/// before the restore tool sees a byte; the second pass that feeds the tool checks it again, so
/// an object replaced in between still fails (though by then the tool has applied part of it).
async fn first_pass(job: &Job, src: &Source<'_>) -> Result<(), RestoreError> {
    let checked = pipeline::check(src).await?;
    check_signature(&src.layout, &checked, &src.backup.key)?;
    tracing::info!(job = %job.name, event = "restore_prechecked", backup = %src.backup.id,
        size = checked.stored, sha256 = %checked.sha256,
        "backup checked in full before {} sees it (its restore cannot roll back)", job.engine.as_str());
    Ok(())
}

/// Does the decompressed stream start with its format's signature (when it has one)?
fn check_signature(layout: &Layout, pumped: &Pumped, key: &str) -> Result<(), RestoreError> {
    match layout.magic() {
        Some(magic) if !pumped.head.starts_with(magic) => Err(CheckError::backup(
            key,
            BackupProblem::Signature {
                payload: layout.payload,
            },
        )
        .into()),
        _ => Ok(()),
    }
}

fn redis_unsupported() -> RestoreError {
    Unsupported::RedisIntoServer.into()
}

/// `PRAGMA quick_check` on a restored SQLite file before it replaces anything.
async fn sqlite_check(path: &Path) -> Result<(), RestoreError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        // Immutable: a read-only open of a WAL-mode file would leave -wal and -shm beside it.
        let c = crate::run::sqlite::open_immutable(&p)
            .map_err(|e| CheckError::Sqlite(SqliteProblem::Open(e)))?;
        let verdict: String = c
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| CheckError::Sqlite(SqliteProblem::NotADatabase(e)))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(CheckError::Sqlite(SqliteProblem::Integrity { verdict }).into())
        }
    })
    .await
    .map_err(|e| CheckError::task("sqlite check", e))?
}

/// `dbstash restore`.
pub async fn restore(plan: &JobPlan, req: &Request<'_>) -> Result<Restored, RestoreError> {
    let clock = Instant::now();
    let job = job_of(plan)?;
    let from_client = engine::restore::restores_from_client(job.engine);
    if req.to_file.is_some() && from_client {
        return Err(UsageError::ToFileNotRedis.into());
    }
    if !from_client {
        let Some(path) = req.to_file else {
            return Err(redis_unsupported());
        };
        if req.to.is_some() {
            return Err(UsageError::RedisTo.into());
        }
        return restore_rdb_file(plan, job, req, path, clock).await;
    }
    let target = target::resolve(job, req.to)?.without_owners(req.no_owner);
    let question = format!("restore job `{}` into {}", plan.job, target.label);
    if target.own && req.consent == Consent::NoTerminal {
        // Refuse before touching anything.
        confirm(req.consent, &question)?;
    }
    let store = AnyStorage::for_plan(plan);
    // The rclone daemon's start (50-80 ms) is the longest step before the stream: begun first.
    store.warm_up();
    // None of these needs another: the backup is picked (the rclone daemon's start, the listing,
    // the record) while the target server says whether the database exists and which roles it
    // has, and dead restores' folders are swept (never a live one: each is locked by its owner).
    let (picked, probe, ()) = tokio::join!(
        select(plan, &store, req.backup),
        target::probe(&target, req.temp_dir),
        run_dir::sweep_dead(req.temp_dir),
    );
    let backup = picked?.into_iter().next();
    let backup = backup.ok_or_else(|| RestoreError::NoBackups {
        job: plan.job.clone(),
        remote: plan.remote.name.clone(),
    })?;
    let layout = layout_of(job, &backup)?;
    let checks_roles = roles::applies(&target, layout.payload)?;
    let probe = probe?;
    let exists = probe.exists;
    let created = exists == Some(false) && engine::restore::creates_database(job.engine);
    let replace = format!(
        "restore backup {} of job `{}` into {}",
        backup.id, plan.job, target.label
    );
    let confirms = target.own || exists != Some(false);
    let progress = req.progress.then(|| Arc::new(AtomicU64::new(0)));
    let src = Source {
        store: &store,
        backup: &backup,
        layout,
        progress: progress.clone(),
        identities: plan.identities.clone(),
    };
    let hint = roles::Hint::Restore(&plan.job);
    let ahead = match engine::restore::route(job, &target.job, layout.payload, target.owners) {
        // The download starts at once (see `ahead`); an interactive question is asked first
        // instead, so that no download waits on a person.
        Route::Stream(spec)
            if req.consent != Consent::Ask
                && engine::restore::names_roles(job.engine)
                && (!checks_roles || layout.payload == Payload::PgCustom) =>
        {
            Some(spec)
        }
        _ => None,
    };
    let bar = |progress: &Option<Arc<AtomicU64>>| {
        progress.clone().map(|p| {
            let size = crate::run::progress::Expected::Exact(backup.record.size);
            crate::run::progress::Progress::expecting(&plan.job, p, Some(size))
        })
    };
    let made = std::sync::atomic::AtomicBool::new(false);
    let (result, bar) = match ahead {
        Some(spec) => {
            tracing::info!(job = %plan.job, event = "restore_started", backup = %backup.id, target = %target.label, compression = layout.codec.name());
            let bar = bar(&progress);
            let prep = ahead::Prep {
                target: &target,
                base: req.temp_dir,
                roles: probe.roles.as_ref().filter(|_| checks_roles),
                hint,
                confirm: confirms.then(|| (req.consent, replace.clone())),
                create: created.then_some(backup.record.charset.as_ref()),
            };
            (ahead::restore(&src, &spec, prep, &made).await, bar)
        }
        None => {
            let head = Source {
                store: &store,
                backup: &backup,
                layout,
                progress: None,
                identities: plan.identities.clone(),
            };
            roles::check(&target, &head, req.temp_dir, hint).await?;
            if confirms {
                confirm(req.consent, &replace)?;
            }
            if created {
                target::create(&target, req.temp_dir, backup.record.charset.as_ref()).await?;
                made.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            tracing::info!(job = %plan.job, event = "restore_started", backup = %backup.id, target = %target.label, compression = layout.codec.name());
            let bar = bar(&progress);
            let result = unless_stopped(async {
                target::postgis(&target, req.temp_dir).await?;
                apply(job, &target, &src, req.temp_dir, created).await
            })
            .await;
            (result, bar)
        }
    };
    let created = made.load(std::sync::atomic::Ordering::SeqCst);
    if let Some(b) = bar {
        b.stop();
    }
    let done = match result {
        Ok(d) => d,
        Err(e) => {
            if created {
                // Leave things as they were: the database did not exist before.
                if let Err(de) = target::drop_database(&target, req.temp_dir).await {
                    tracing::warn!(job = %plan.job, event = "restore_cleanup_failed", target = %target.label, error = %de);
                }
            }
            return Err(roles::explain(e, roles::Hint::Restore(&plan.job)));
        }
    };
    Ok(Restored {
        backup: backup.id.clone(),
        target: target.label.clone(),
        created,
        stored_bytes: done.pumped.stored,
        raw_bytes: done.pumped.raw,
        sha256: done.pumped.sha256,
        duration: clock.elapsed(),
    })
}

async fn restore_rdb_file(
    plan: &JobPlan,
    job: &Job,
    req: &Request<'_>,
    path: &Path,
    clock: Instant,
) -> Result<Restored, RestoreError> {
    let label = format!("file {}", path.display());
    let store = AnyStorage::for_plan(plan);
    let backup = select(plan, &store, req.backup)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| RestoreError::NoBackups {
            job: plan.job.clone(),
            remote: plan.remote.name.clone(),
        })?;
    let layout = layout_of(job, &backup)?;
    if path.exists() {
        confirm(
            req.consent,
            &format!("replace {} with backup {}", path.display(), backup.id),
        )?;
    }
    let src = Source {
        store: &store,
        backup: &backup,
        layout,
        progress: None,
        identities: plan.identities.clone(),
    };
    let (sib, pumped) = unless_stopped(pipeline::into_file(&src, path)).await?;
    let info = check_rdb_file(&sib.path)?;
    if info.trailer > 0 {
        // Leave a clean RDB: drop redis-cli's transfer mark.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&sib.path)
            .and_then(|f| f.set_len(info.bytes))
            .map_err(|source| RestoreError::Io {
                what: format!("truncate {}", sib.path.display()),
                source,
            })?;
    }
    sib.commit(path, &[])?;
    tracing::info!(job = %plan.job, event = "rdb_written", path = %path.display(), rdb_version = info.version);
    Ok(Restored {
        backup: backup.id.clone(),
        target: label,
        created: true,
        stored_bytes: pumped.stored,
        raw_bytes: pumped.raw,
        sha256: pumped.sha256,
        duration: clock.elapsed(),
    })
}

fn check_rdb_file(path: &Path) -> Result<rdb::RdbInfo, RestoreError> {
    let mut f = std::fs::File::open(path).map_err(|source| RestoreError::Io {
        what: format!("open {}", path.display()),
        source,
    })?;
    let mut check = rdb::RdbCheck::new();
    std::io::copy(&mut f, &mut check).map_err(|source| RestoreError::Io {
        what: format!("read {}", path.display()),
        source,
    })?;
    check.finish().map_err(|e| CheckError::RdbFile(e).into())
}

/// A `Write` shared with the blocking pump thread.
struct Shared<W>(Arc<Mutex<W>>);

impl<W: Write> Write for Shared<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One verified backup.
#[derive(Debug, Clone)]
pub struct Verified {
    pub id: String,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
    pub sha256: String,
    pub codec: Codec,
    /// Format-specific findings (e.g. the RDB version and checksum).
    pub note: Option<String>,
}

/// Re-read one backup: size and sha256 against the record, test-decompress, check the format's
/// signature (and an RDB's own checksum).
pub async fn verify(
    plan: &JobPlan,
    store: &AnyStorage,
    backup: &Backup,
) -> Result<Verified, RestoreError> {
    let job = job_of(plan)?;
    let mut layout = layout::detect(job.engine, &backup.id, Some(&backup.record))?;
    let mut note = None;
    if layout.encrypted && plan.identities.is_none() {
        // Without the identity only the stored bytes can be checked (size and sha256).
        layout = Layout {
            codec: Codec::None,
            payload: Payload::Sql,
            encrypted: false,
        };
        note = Some(
            "encrypted with age: size and sha256 checked; pass --identity to check the contents"
                .to_string(),
        );
    }
    let rdb = Arc::new(Mutex::new(rdb::RdbCheck::new()));
    let src = Source {
        store,
        backup,
        layout,
        progress: None,
        identities: plan.identities.clone(),
    };
    let group = crate::proc::ProcGroup::new();
    let pumped: Pumped = if layout.payload == Payload::Directory {
        let work = run_dir::RunDir::create(&crate::run::stale::system_temp_dir())?;
        folder::fetch_dir(&src, &work.path().join("dump")).await?
    } else if layout.payload == Payload::Rdb {
        pipeline::transfer(&src, &group, Shared(rdb.clone())).await?
    } else {
        pipeline::transfer(&src, &group, std::io::sink()).await?
    };
    group.kill();
    if note.is_none() {
        check_signature(&layout, &pumped, &backup.key)?;
    }
    if layout.payload == Payload::Rdb && note.is_none() {
        let info = rdb
            .lock()
            .map_err(|_| CheckError::task("rdb check", error::TaskFailure::Poisoned))?
            .finish()
            .map_err(|e| CheckError::backup(&backup.key, e))?;
        note = Some(rdb_note(&info));
    }
    Ok(Verified {
        id: backup.id.clone(),
        stored_bytes: pumped.stored,
        raw_bytes: pumped.raw,
        sha256: pumped.sha256,
        codec: layout.codec,
        note,
    })
}

pub(crate) fn rdb_note(info: &rdb::RdbInfo) -> String {
    format!(
        "RDB version {}, {} bytes, {}",
        info.version,
        info.bytes,
        match info.checksum_ok {
            Some(true) => "CRC-64 checksum ok",
            _ => "no checksum stored (rdbchecksum no)",
        }
    ) + if info.trailer > 0 {
        ", followed by redis-cli's 40-byte transfer mark"
    } else {
        ""
    }
}

/// The secrets a request involves (for callers that print errors).
pub fn secrets_of(plan: &JobPlan, extra: Option<&Secret>) -> Vec<Secret> {
    let mut v: Vec<Secret> = plan
        .job()
        .map(|j| j.secrets().into_iter().cloned().collect())
        .unwrap_or_default();
    if let Some(s) = extra {
        v.push(s.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DumpFormat;

    use crate::manifest::testing::job;

    fn no_secret_in_argv(spec: &crate::domain::command::CommandSpec, secret: &str) {
        let line = spec.args.join(" ");
        assert!(!line.contains(secret), "secret in argv: {line}");
        let elsewhere = spec.env.iter().any(|(_, v)| v.expose().contains(secret))
            || spec
                .files
                .iter()
                .any(|f| f.contents.expose().contains(secret));
        assert!(
            elsewhere,
            "the secret reaches the tool neither by env nor by file: {spec:?}"
        );
    }

    #[test]
    fn restore_commands_keep_the_to_password_out_of_argv() {
        let pg = job("engine: postgres, uri: 'postgresql://app:jobpw@db:5432/app'");
        let t = target::resolve(&pg, Some("postgresql://other:to%20pw@db2:6543/new")).unwrap();
        assert_eq!(t.label, "postgres other@db2:6543/new");
        assert!(!t.own);
        for f in [DumpFormat::Plain, DumpFormat::Custom] {
            let spec = engine::postgres::restore(&t.job, f, t.owners);
            no_secret_in_argv(&spec, "to pw");
            assert!(spec.args.contains(&"--single-transaction".to_string()));
            assert_eq!(spec.args.last().map(String::as_str), Some("--dbname=new"));
        }
        no_secret_in_argv(&engine::postgres::admin(&t.job, "postgres", None), "to pw");

        let my = job("engine: mariadb, uri: 'mysql://app:jobpw@db/app'");
        let t = target::resolve(&my, Some("u:se:cret@tcp(h:3307)/x")).unwrap();
        no_secret_in_argv(&engine::mysql::restore(&t.job), "se:cret");
        no_secret_in_argv(&engine::mysql::admin(&t.job), "se:cret");
        assert_eq!(engine::mysql::restore(&t.job).program, "mariadb");

        let mg = job("engine: mongo, uri: 'mongodb://app:jobpw@db/shop'");
        let t = target::resolve(&mg, Some("mongodb+srv://u:mongopw@cluster.example/dst")).unwrap();
        let spec = engine::mongo::restore(&t.job, Some("shop"), true);
        no_secret_in_argv(&spec, "mongopw");
        for a in [
            "--archive",
            "--drop",
            "--gzip",
            "--nsFrom=shop.*",
            "--nsTo=dst.*",
        ] {
            assert!(spec.args.contains(&a.to_string()), "{a}: {:?}", spec.args);
        }
    }

    #[test]
    fn only_tools_that_cannot_roll_back_get_a_first_pass_and_only_over_existing_data() {
        let archive = Payload::MongoArchive { gzip: false };
        for (engine, payload) in [
            (Engine::Mysql, Payload::Sql),
            (Engine::Mariadb, Payload::Sql),
            (Engine::Mongo, archive),
        ] {
            assert!(needs_first_pass(engine, payload, false), "{engine:?}");
            assert!(!needs_first_pass(engine, payload, true), "{engine:?}");
        }
        // Transactional tools, files renamed into place, folders checked before their tool.
        for (engine, payload) in [
            (Engine::Postgres, Payload::Sql),
            (Engine::Postgis, Payload::PgCustom),
            (Engine::Sqlite, Payload::Sql),
            (Engine::Sqlite, Payload::SqliteFile),
            (Engine::Redis, Payload::Rdb),
            (Engine::Mongo, Payload::Tar),
            (Engine::Mongo, Payload::Directory),
        ] {
            assert!(
                !needs_first_pass(engine, payload, false),
                "{engine:?} {payload:?}"
            );
        }
    }

    #[test]
    fn bare_names_keep_the_jobs_server_and_credentials() {
        let pg = job("engine: postgres, uri: 'postgresql://app:jobpw@db:5432/app'");
        let t = target::resolve(&pg, Some("app_copy")).unwrap();
        assert_eq!(t.database(), "app_copy");
        assert_eq!(t.job.connection.host.as_deref(), Some("db"));
        assert!(!t.own);
        assert!(target::resolve(&pg, Some("app")).unwrap().own);
        assert!(target::resolve(&pg, None).unwrap().own);
        assert!(target::resolve(&pg, Some("postgresql://db/")).is_err());
        let e = target::resolve(&pg, Some("mysql://u:hunter22@h/x")).unwrap_err();
        assert!(!e.to_string().contains("hunter22"));
    }

    #[test]
    fn postgis_extension_runs_as_admin_user_without_the_apps_password() {
        let j = job("engine: postgis, uri: 'postgresql://app:jobpw@db/geo', admin_user: postgres");
        let spec = engine::postgres::admin(&j, "geo", j.admin_user.as_deref());
        assert!(spec.args.contains(&"--username=postgres".to_string()));
        assert!(spec.env.iter().all(|(k, _)| k != "PGPASSWORD"));
        let same = engine::postgres::admin(&j, "geo", Some("app"));
        assert!(same.env.iter().any(|(k, _)| k == "PGPASSWORD"));
    }

    #[test]
    fn odd_database_names_reach_libpq_as_one_name() {
        assert_eq!(engine::postgres::dbname_arg("plain"), "--dbname=plain");
        assert_eq!(
            engine::postgres::dbname_arg("a=b 'c'"),
            "--dbname=dbname='a=b \\'c\\''"
        );
        assert_eq!(
            engine::postgres::dbname_arg("postgresql://evil"),
            "--dbname=dbname='postgresql://evil'"
        );
    }
}
