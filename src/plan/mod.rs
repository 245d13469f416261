//! `JobPlan`: everything a run will do, as plain data computed from the validated manifest.
//! `dbstash plan` prints this very value; `dbstash run`/`backup` executes it.

pub mod databases;
pub mod pitr;

use crate::domain::command::CommandSpec;
use crate::domain::naming;
use crate::engine::{self, Codec, DumpSpec};
use crate::model::{
    Databases, Encrypt, Engine, Hooks, Job, Manifest, Mode, Origin, RcloneSettings, RemoteKind,
    Retention, Zone,
};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the bytes go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemotePlan {
    pub name: String,
    pub optional: bool,
    #[serde(flatten)]
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Local {
        root: PathBuf,
    },
    Rclone {
        remote: String,
        #[serde(flatten)]
        rclone: RcloneConf,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RcloneConf {
    pub binary: String,
    pub config_file: Option<PathBuf>,
    pub extra_args: Vec<String>,
}

impl From<&RcloneSettings> for RcloneConf {
    fn from(s: &RcloneSettings) -> Self {
        RcloneConf {
            binary: s.binary.clone(),
            config_file: s.config_file.clone(),
            extra_args: s.extra_args.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPlan {
    pub job: String,
    pub engine: Engine,
    pub database: String,
    pub mode: Mode,
    pub dump: DumpSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<CommandSpec>,
    pub codec: Codec,
    /// Full extension added to every object, e.g. `.sql.zst` (empty for `directory` folders).
    pub extension: String,
    /// age recipients: the stored stream is encrypted after compression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<Encrypt>,
    /// The remote this plan addresses (list, prune, restore); the first of `remotes` unless
    /// chosen with `on_remote`.
    #[serde(skip)]
    pub remote: RemotePlan,
    /// Every remote a backup is written to (one dump, one upload each).
    pub remotes: Vec<RemotePlan>,
    /// Several databases: found (or taken from the list) at run time, one backup each.
    #[serde(skip_serializing_if = "is_one")]
    pub databases: Databases,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The command that lists the server's databases (for `database: "*"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_databases: Option<CommandSpec>,
    /// postgres `globals: true`: `pg_dumpall --globals-only`, stored as its own backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub globals: Option<CommandSpec>,
    /// Backups of several databases share the job's folder: retention and cleanup must tell
    /// them apart by database.
    #[serde(skip)]
    pub per_database: bool,
    /// Several databases: how many backups run at the same time (1: one after another).
    pub parallel: usize,
    /// age identities for reading encrypted backups: set by `restore`/`verify --identity` and by
    /// drills from `verify.identity_file`; never part of a backup run.
    #[serde(skip)]
    pub identities: Option<crate::crypt::Identities>,
    pub folder_template: String,
    pub name_template: String,
    pub schedule: Option<String>,
    pub timezone: String,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub retention: Retention,
    pub notify: Vec<String>,
    pub hooks: HooksPlan,
    pub run_on_start: bool,
    pub min_raw_bytes: u64,
    pub allow_empty: bool,
    pub expected_size: Option<u64>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub stale_after: Option<Duration>,
    pub origins: BTreeMap<String, Origin>,
    /// Continuous archiving (`pitr.enabled`): the stream; `dump` is then the base backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitr: Option<pitr::PitrPlan>,
    #[serde(skip)]
    pub zone: Option<Zone>,
    #[serde(skip)]
    pub job_spec: Option<Box<Job>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HooksPlan {
    pub pre: Option<String>,
    pub post: Option<String>,
}

impl From<&Hooks> for HooksPlan {
    fn from(h: &Hooks) -> Self {
        HooksPlan {
            pre: h.pre.clone(),
            post: h.post.clone(),
        }
    }
}

fn is_one(d: &Databases) -> bool {
    !d.is_many()
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::domain::units::human_duration(*d))
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no job named `{0}` in the manifest")]
    UnknownJob(String),
    #[error("job `{job}` refers to remote `{remote}`, which is not declared")]
    UnknownRemote { job: String, remote: String },
    #[error("job `{job}` has no remote: its `remote:` list is empty")]
    NoRemote { job: String },
}

/// Build the plan of one job. Pure: same manifest in, same plan out.
pub fn build(m: &Manifest, job: &Job) -> Result<JobPlan, PlanError> {
    let mut remotes = Vec::new();
    for target in &job.remotes {
        let remote = m
            .remotes
            .get(&target.name)
            .ok_or_else(|| PlanError::UnknownRemote {
                job: job.name.clone(),
                remote: target.name.clone(),
            })?;
        let target_plan = match &remote.kind {
            RemoteKind::Local(root) => Target::Local { root: root.clone() },
            RemoteKind::Rclone(r) => Target::Rclone {
                remote: r.clone(),
                rclone: RcloneConf::from(&m.settings.rclone),
            },
        };
        remotes.push(RemotePlan {
            name: target.name.clone(),
            optional: target.optional,
            target: target_plan,
        });
    }
    let first = remotes
        .first()
        .cloned()
        .ok_or_else(|| PlanError::NoRemote {
            job: job.name.clone(),
        })?;
    // Several databases: the job-level plan shows `{db}` where each run's database goes (each
    // database's own plan comes from `for_database` at run time).
    let shown = if job.databases.is_many() {
        let mut j = job.clone();
        j.connection.database = Some("{db}".into());
        j
    } else {
        job.clone()
    };
    let pitr = job.pitr.as_ref().map(|p| pitr::plan(job, p));
    let (dump, extension, min_raw_bytes) = match &pitr {
        // A tar: at least one 512-byte header and its end-of-archive blocks.
        Some(p) if !p.binlog => (
            DumpSpec::Command(engine::postgres::pitr::base_backup(job)),
            format!(
                ".tar{}{}",
                engine::codec(job).extension(),
                if job.encrypt.is_some() { ".age" } else { "" }
            ),
            1024,
        ),
        // mysql/mariadb: the job's own dump, with its binlog position (see engine::mysql).
        _ => (
            engine::dump(&shown),
            engine::extension(job),
            engine::min_raw_bytes(job),
        ),
    };
    let version = engine::version_command(&dump);
    Ok(JobPlan {
        job: job.name.clone(),
        engine: job.engine,
        database: engine::db_label(&shown),
        mode: job.mode,
        dump,
        version,
        codec: engine::codec(job),
        extension,
        encrypt: job.encrypt.clone(),
        remote: first,
        remotes,
        databases: job.databases.clone(),
        exclude: job.exclude.clone(),
        list_databases: job
            .databases
            .is_many()
            .then(|| engine::list_databases(job))
            .flatten(),
        globals: job.globals.then(|| engine::postgres::globals(job)),
        per_database: job.databases.is_many() || job.globals,
        parallel: job.parallel,
        identities: None,
        folder_template: job.path.clone(),
        name_template: job.name_template.clone(),
        schedule: job.schedule.as_ref().map(|s| s.expr().to_string()),
        timezone: job.timezone.name.clone(),
        timeout: job.timeout,
        retention: job.retention,
        notify: job.notify.clone(),
        hooks: HooksPlan::from(&job.hooks),
        run_on_start: job.run_on_start,
        min_raw_bytes,
        allow_empty: job.allow_empty,
        expected_size: job.expected_size,
        stale_after: job.stale_after,
        origins: job.origins.clone(),
        pitr,
        zone: Some(job.timezone.clone()),
        job_spec: Some(Box::new(job.clone())),
    })
}

/// Plans for the selected jobs (all when `only` is empty), in name order.
pub fn build_all(m: &Manifest, only: &[String]) -> Result<Vec<JobPlan>, PlanError> {
    for name in only {
        if !m.jobs.contains_key(name) {
            return Err(PlanError::UnknownJob(name.clone()));
        }
    }
    m.jobs
        .values()
        .filter(|j| only.is_empty() || only.contains(&j.name))
        .map(|j| build(m, j))
        .collect()
}

impl JobPlan {
    /// This plan addressing remote `name` (for list/prune/restore).
    pub fn on_remote(&self, name: &str) -> Option<JobPlan> {
        let r = self.remotes.iter().find(|r| r.name == name)?;
        let mut p = self.clone();
        p.remote = r.clone();
        Some(p)
    }

    /// One plan per remote.
    pub fn per_remote(&self) -> Vec<JobPlan> {
        self.remotes
            .iter()
            .filter_map(|r| self.on_remote(&r.name))
            .collect()
    }

    /// The plan of one database of a several-database job: its own dump, `{db}` and retention.
    pub fn for_database(&self, db: &str) -> JobPlan {
        let mut p = self.clone();
        if let Some(job) = self.job() {
            let mut job = job.clone();
            job.connection.database = Some(db.to_string());
            job.databases = Databases::One;
            p.dump = engine::dump(&job);
            p.job_spec = Some(Box::new(job));
        }
        p.database = db.to_string();
        p.databases = Databases::One;
        p.list_databases = None;
        p.globals = None;
        p
    }

    /// The plan of the `pg_dumpall --globals-only` backup: a plain SQL stream named `{db}` =
    /// [`GLOBALS_DB`].
    pub fn for_globals(&self) -> Option<JobPlan> {
        let spec = self.globals.clone()?;
        let mut p = self.for_database(GLOBALS_DB);
        p.dump = DumpSpec::Command(spec);
        p.mode = Mode::Stream;
        p.min_raw_bytes = 16;
        p.extension = format!(
            ".sql{}{}",
            p.codec.extension(),
            if p.encrypt.is_some() { ".age" } else { "" }
        );
        Some(p)
    }

    pub fn zone(&self) -> Zone {
        self.zone.clone().unwrap_or_else(Zone::utc)
    }

    pub fn job(&self) -> Option<&Job> {
        self.job_spec.as_deref()
    }

    /// The next `n` run times after `now`, in the job's zone.
    pub fn next_runs(&self, now: Timestamp, n: usize) -> Vec<jiff::Zoned> {
        match self.job().and_then(|j| j.schedule.as_ref()) {
            Some(s) => s.upcoming(now, &self.zone().tz, n),
            None => Vec::new(),
        }
    }

    /// Folder and object name for a run starting at `at`.
    pub fn object_for(&self, vars: &naming::NameVars) -> ObjectName {
        ObjectName {
            folder: naming::render_path(&self.folder_template, vars),
            file: format!(
                "{}{}",
                naming::render(&self.name_template, vars),
                self.extension
            ),
        }
    }

    pub fn name_vars(&self, at: Timestamp) -> naming::NameVars {
        naming::NameVars::new(
            &self.job,
            &self.database,
            self.engine.as_str(),
            at.to_zoned(self.zone().tz),
        )
    }
}

/// `{db}` of the roles/tablespaces backup of a `globals: true` job.
pub const GLOBALS_DB: &str = "_globals";

/// `folder/file` relative to the remote's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectName {
    pub folder: String,
    pub file: String,
}

impl ObjectName {
    pub fn key(&self) -> String {
        if self.folder.is_empty() {
            self.file.clone()
        } else {
            format!("{}/{}", self.folder, self.file)
        }
    }
}
