//! Archiving one completed WAL file: compressed (and sealed with age when the job encrypts) by
//! the relay, uploaded to every remote of the job, its record written last on each; only then
//! is the local file removed. A failure leaves it in the spool for the next sweep.

use super::error::{io, PitrError};
use super::label;
use crate::catalog::record::{self, Record};
use crate::plan::pitr::PitrPlan;
use crate::plan::JobPlan;
use crate::run::relay;
use crate::storage::{join_key, AnyStorage, Storage};
use jiff::Timestamp;
use std::path::Path;

/// Segments being compressed and uploaded at once, over all streams.
static ARCHIVING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// `dump_format` of a segment's record: what `list`, `verify` and retention tell them by.
pub const WAL_FORMAT: &str = "wal";

/// The folder of the job's archive on a remote (`{job folder}/wal`).
pub fn wal_folder(plan: &JobPlan, p: &PitrPlan) -> String {
    let folder = crate::catalog::retention::folder(plan, Timestamp::now());
    join_key(&folder, &p.wal_folder)
}

/// The stored name of WAL file `name`: `000000010000000000000002.zst` (`.age` when encrypted).
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
    // One segment in memory at a time across every stream of the supervisor: ten streams
    // archiving at once held ten segments and ten zstd pools (200 MiB RSS, docs/PERFORMANCE.md).
    let _one = ARCHIVING
        .acquire()
        .await
        .map_err(|e| io("archive slot")(std::io::Error::other(e.to_string())))?;
    let started = Timestamp::now();
    let raw = std::fs::read(path).map_err(io(format!("read {}", path.display())))?;
    let codec = plan.codec;
    let recipients = plan.encrypt.as_ref().map(|e| e.recipients.clone());
    // A segment is 16 MiB at most: compressing it in memory keeps the upload one small write.
    let (stats, stored) = tokio::task::spawn_blocking(move || {
        relay::relay(&raw[..], Vec::new(), codec, recipients.as_deref(), None)
    })
    .await
    .map_err(|e| io("compress task")(std::io::Error::other(e.to_string())))?
    .map_err(io(format!("compress {name}")))?;
    let folder = wal_folder(plan, p);
    let object = object_name(plan, name);
    let key = join_key(&folder, &object);
    let rec = Record {
        format: record::FORMAT.into(),
        job: plan.job.clone(),
        engine: plan.engine.as_str().into(),
        database: plan.database.clone(),
        object: object.clone(),
        run_id: "stream".into(),
        started,
        finished: Timestamp::now(),
        size: stats.stored_bytes,
        raw_size: stats.raw_bytes,
        sha256: stats.sha256,
        compression: codec.name().into(),
        dump_format: WAL_FORMAT.into(),
        mode: "stream".into(),
        encryption: if plan.encrypt.is_some() {
            "age"
        } else {
            "none"
        }
        .into(),
        files: Vec::new(),
        tool_versions: Default::default(),
        dbstash_version: env!("CARGO_PKG_VERSION").into(),
        host: crate::proc::hostname(),
        charset: None,
        base_wal: None,
        binlog: None,
    };
    let body = serde_json::to_vec_pretty(&rec)
        .map_err(|e| io("record")(std::io::Error::other(e.to_string())))?;
    for (optional, store) in stores {
        let put = async {
            store.write_small(&key, &stored).await?;
            store.write_small(&record::record_key(&key), &body).await
        };
        match put.await {
            Ok(()) => {}
            Err(e) if *optional => {
                tracing::warn!(event = "wal_upload_failed", job = %plan.job, segment = name, optional = true, error = %e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rec)
}
