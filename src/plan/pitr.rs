//! The `pitr` section of a `JobPlan`: the WAL stream as data (`plan` prints it, the supervisor
//! runs it) and where its segments go.

use crate::domain::command::CommandSpec;
use crate::engine::mysql_pitr;
use crate::engine::postgres::pitr as pg;
use crate::model::{Engine, Job, Pitr};
use serde::Serialize;
use std::time::Duration;

/// Sub-folder of the job's folder that holds the archived log (`{job folder}/wal/SEGMENT.zst`).
pub const WAL_FOLDER: &str = "wal";
/// mysql/mariadb: `{job folder}/binlog/FILE.zst`.
pub const BINLOG_FOLDER: &str = "binlog";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PitrPlan {
    /// Physical replication slot the stream reads from.
    pub slot: String,
    /// Run once before each start of the stream: creates the slot if it is missing.
    pub create_slot: CommandSpec,
    /// The long-lived stream; `{run_dir}` is its private spool folder under `temp_dir`.
    pub stream: CommandSpec,
    /// Where each completed segment goes, under the job's folder.
    pub wal_folder: String,
    /// `/healthz` reports the job when its stream has been down this long.
    #[serde(serialize_with = "super::ser_duration")]
    pub max_lag: Duration,
    /// mysql/mariadb: the log is the binlog (`stream` is mariadb-binlog, `create_slot` is
    /// `SHOW MASTER STATUS` — MySQL: `SHOW BINARY LOG STATUS`, falling back to the old name —
    /// run before each start; no slot), archived under `binlog/`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binlog: bool,
}

impl PitrPlan {
    /// How messages name the archived log and its pieces.
    pub fn log_words(&self) -> (&'static str, &'static str) {
        if self.binlog {
            ("binlog", "files")
        } else {
            ("WAL", "segments")
        }
    }
}

pub fn plan(job: &Job, p: &Pitr) -> PitrPlan {
    if matches!(job.engine, Engine::Mysql | Engine::Mariadb) {
        return PitrPlan {
            slot: String::new(),
            create_slot: mysql_pitr::master_status(job),
            stream: mysql_pitr::stream(job),
            wal_folder: BINLOG_FOLDER.into(),
            max_lag: p.max_lag,
            binlog: true,
        };
    }
    PitrPlan {
        slot: p.slot.clone(),
        create_slot: pg::create_slot(job, &p.slot),
        stream: pg::receive(job, &p.slot),
        wal_folder: WAL_FOLDER.into(),
        max_lag: p.max_lag,
        binlog: false,
    }
}

/// The spool folder's name under `temp_dir`: one per job, so a restarted stream finds the
/// segments the last one left (`.partial` included: pg_receivewal resumes it).
pub fn spool_name(job: &str) -> String {
    format!("pitr-{job}")
}
