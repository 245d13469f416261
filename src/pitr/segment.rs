//! Archiving one completed WAL file: compressed (and sealed with age when the job encrypts) by
//! the relay, uploaded to every remote of the job, its record written last on each; only then
//! is the local file removed. A failure leaves it in the spool for the next sweep.

use super::error::{io, PitrError};
use super::label;
use crate::catalog::record::Record;
use crate::plan::pitr::PitrPlan;
use crate::plan::JobPlan;
use crate::storage::{join_key, AnyStorage};
use jiff::Timestamp;
use std::path::Path;

/// `dump_format` of a segment's record: what `list`, `verify` and retention tell them by.
pub const WAL_FORMAT: &str = "wal";

/// The folder of the job's archive on a remote (`{job folder}/wal`).
pub fn wal_folder(plan: &JobPlan, p: &PitrPlan) -> String {
    let folder = crate::catalog::retention::folder(plan, Timestamp::now());
    join_key(&folder, &p.wal_folder)
}

/// The stored name of log file `name` (a WAL segment, a binlog file):
/// `000000010000000000000002.zst`, `binlog.000002.zst` (`.age` when encrypted).
pub fn object_name(plan: &JobPlan, name: &str) -> String {
    let age = if plan.encrypt.is_some() { ".age" } else { "" };
    format!("{name}{}{age}", plan.codec.extension())
}

/// The WAL file an object of the archive holds (its name without dbstash's suffixes).
pub fn wal_name(object: &str) -> &str {
    object.split('.').next().unwrap_or(object)
}

/// Archive the spool's completed WAL files, oldest first; stops at the first failure (the rest
/// wait for the next sweep, so the archive never gets a later segment before an earlier one).
pub async fn sweep(
    plan: &JobPlan,
    p: &PitrPlan,
    spool: &Path,
    stores: &[(bool, AnyStorage)],
) -> Result<Vec<Record>, PitrError> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .map_err(io(format!("read {}", spool.display())))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| label::is_archivable(n))
        .collect();
    // History files first: a segment of a new timeline is useless without its history.
    names.sort_by_key(|n| (!label::is_history(n), n.clone()));
    let mut done = Vec::new();
    for name in names {
        let rec = archive(plan, p, &spool.join(&name), &name, stores).await?;
        std::fs::remove_file(spool.join(&name)).map_err(io(format!("remove spooled {name}")))?;
        tracing::info!(event = "wal_archived", job = %plan.job, segment = %name, size = rec.size);
        done.push(rec);
    }
    Ok(done)
}

/// One WAL file onto every remote: the object, then its record.
async fn archive(
    plan: &JobPlan,
    p: &PitrPlan,
    path: &Path,
    name: &str,
    stores: &[(bool, AnyStorage)],
) -> Result<Record, PitrError> {
    let started = Timestamp::now();
    let key = join_key(&wal_folder(plan, p), &object_name(plan, name));
    let file = super::archive::LogFile {
        path,
        name,
        key: &key,
        format: WAL_FORMAT,
        started,
        finished: started,
        failed_event: "wal_upload_failed",
    };
    super::archive::store(plan, file, stores).await
}
