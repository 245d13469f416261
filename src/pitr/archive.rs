//! Moving one log file (a WAL segment, a binlog file) to and from the archive, streamed both
//! ways so that memory stays flat whatever the file's size (a binlog file can be 1 GiB).
//!
//! Storing: the relay compresses (and seals) the file into a private temp file beside it, which
//! is then uploaded to every remote, its record written last on each. Fetching: the object is read
//! from the remote straight through the check (size and sha256 against its record) into a temp
//! file, renamed to its name only once it passed.

use super::error::{io, PitrError};
use crate::catalog::record::{self, Backup, Record};
use crate::engine::Codec;
use crate::plan::JobPlan;
use crate::proc::ProcGroup;
use crate::restore::pump::{pump_with, Expect, PumpError};
use crate::run::relay::{self, RelayStats};
use crate::storage::{AnyStorage, Storage};
use jiff::Timestamp;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Files being compressed at once, over every stream of the supervisor: each compression holds a
/// zstd pool's buffers, and ten streams compressing at once held 200 MiB (docs/PERFORMANCE.md).
/// Uploads, which hold no more than a pipe's buffer, run side by side.
static PACKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// One log file to store.
pub struct LogFile<'a> {
    /// The file in the spool.
    pub path: &'a Path,
    /// Its name in messages (`000000010000000000000002`, `binlog.000003`).
    pub name: &'a str,
    /// Where it goes on each remote.
    pub key: &'a str,
    /// The record's `dump_format` (`wal`, `binlog`).
    pub format: &'static str,
    /// The record's start and finish instants.
    pub started: Timestamp,
    pub finished: Timestamp,
    /// The log line an optional remote's failure is reported with.
    pub failed_event: &'static str,
}

/// Compress `file` beside itself, store it on every remote (the record last on each), and return
/// its record. A required remote that fails fails the whole; an optional one is logged. The temp
/// file is removed whatever happens.
pub async fn store(
    plan: &JobPlan,
    file: LogFile<'_>,
    stores: &[(bool, AnyStorage)],
) -> Result<Record, PitrError> {
    let packed = TempFile(file.path.with_file_name(format!(".{}.dbstash", file.name)));
    let stats = {
        let _one = PACKING
            .acquire()
            .await
            .map_err(|e| io("archive slot")(std::io::Error::other(e.to_string())))?;
        pack(plan, file.path, &packed.0).await?
    };
    let rec = record_of(plan, &file, &stats);
    let body = serde_json::to_vec_pretty(&rec)
        .map_err(|e| io("record")(std::io::Error::other(e.to_string())))?;
    for (optional, store) in stores {
        let put = async {
            upload(store, file.key, &packed.0, stats.stored_bytes).await?;
            store
                .write_small(&record::record_key(file.key), &body)
                .await
                .map_err(PitrError::from)
        };
        match put.await {
            Ok(()) => {}
            Err(e) if *optional => {
                tracing::warn!(event = file.failed_event, job = %plan.job, file = file.name, optional = true, error = %e);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(rec)
}

/// Fetch the object of `b` into `dest`, checked against its record on the way; nothing is at
/// `dest` unless every byte passed.
pub async fn fetch(
    plan: &JobPlan,
    store: &AnyStorage,
    b: &Backup,
    dest: &Path,
) -> Result<(), PitrError> {
    let name = dest
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let part = TempFile(dest.with_file_name(format!(".{name}.dbstash")));
    let group = ProcGroup::new();
    let crate::storage::Download { mut reader, kind } =
        store.open_read(&b.key, Some(b.record.size), &group).await?;
    let mut out = private_file(&part.0)?;
    let ids: Option<Vec<age::x25519::Identity>> =
        plan.identities.as_ref().map(|i| i.0.as_ref().clone());
    let expect = Expect {
        size: b.record.size,
        sha256: b.record.sha256.clone(),
    };
    let codec = Codec::for_reading(&b.record.compression);
    let (checked, reader) = tokio::task::spawn_blocking(move || {
        let checked = pump_with(&mut reader, codec, ids.as_deref(), &expect, &mut out, None)
            .and_then(|p| out.sync_all().map(|()| p).map_err(PumpError::Sink));
        (checked, reader)
    })
    .await
    .map_err(|e| io("fetch task")(std::io::Error::other(e.to_string())))?;
    if let Err(source) = checked {
        group.kill();
        return Err(PitrError::Segment {
            key: b.key.clone(),
            source,
        });
    }
    crate::storage::Download { reader, kind }.finish().await?;
    std::fs::rename(&part.0, dest).map_err(io(format!("rename into {}", dest.display())))?;
    Ok(())
}

/// The file through the relay into `to` (0600): the stored bytes and their sha256.
async fn pack(plan: &JobPlan, from: &Path, to: &Path) -> Result<RelayStats, PitrError> {
    let src = File::open(from).map_err(io(format!("read {}", from.display())))?;
    let dst = private_file(to)?;
    let codec = plan.codec;
    let recipients = plan.encrypt.as_ref().map(|e| e.recipients.clone());
    let (stats, dst) = tokio::task::spawn_blocking(move || {
        relay::relay(src, dst, codec, recipients.as_deref(), None)
    })
    .await
    .map_err(|e| io("compress task")(std::io::Error::other(e.to_string())))?
    .map_err(io(format!("compress {}", from.display())))?;
    dst.sync_all()
        .map_err(io(format!("sync {}", to.display())))?;
    Ok(stats)
}

/// The packed file into `key` on one remote: a streamed upload, committed only when every byte
/// went in (aborted, and whatever reached the remote deleted, otherwise).
async fn upload(store: &AnyStorage, key: &str, packed: &Path, size: u64) -> Result<(), PitrError> {
    let group = ProcGroup::new();
    let mut up = store.begin_upload(key, &group, Some(size)).await?;
    let mut writer = up.take_writer().map_err(io("upload"))?;
    let mut src = File::open(packed).map_err(io(format!("read {}", packed.display())))?;
    let copied = tokio::task::spawn_blocking(move || std::io::copy(&mut src, &mut writer))
        .await
        .map_err(|e| io("upload task")(std::io::Error::other(e.to_string())))?;
    match copied {
        Ok(n) if n == size => Ok(up.commit().await?),
        Ok(n) => {
            up.abort(store, key).await;
            Err(io(format!("upload {key}"))(std::io::Error::other(format!(
                "{n} of {size} bytes written"
            ))))
        }
        Err(e) => {
            let tail = up.abort(store, key).await;
            Err(io(format!("upload {key} ({tail})"))(e))
        }
    }
}

fn record_of(plan: &JobPlan, file: &LogFile<'_>, stats: &RelayStats) -> Record {
    Record {
        format: record::FORMAT.into(),
        job: plan.job.clone(),
        engine: plan.engine.as_str().into(),
        database: plan.database.clone(),
        object: file.key.rsplit('/').next().unwrap_or(file.key).to_string(),
        run_id: "stream".into(),
        started: file.started,
        finished: file.finished,
        size: stats.stored_bytes,
        raw_size: stats.raw_bytes,
        sha256: stats.sha256.clone(),
        compression: plan.codec.name().into(),
        dump_format: file.format.into(),
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
    }
}

fn private_file(path: &Path) -> Result<File, PitrError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("create {}", path.display())))
}

/// A temp file removed when dropped (a leftover from a crash is overwritten by the next try).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::record::complete_backups;

    fn plan(root: &Path) -> JobPlan {
        let text = format!(
            "version: 1\nremotes: {{ l: {{ path: {} }} }}\njobs:\n  j: {{ remote: l, engine: mariadb, database: app, compress: zstd }}\n",
            root.display()
        );
        let m = crate::manifest::load_str(Path::new("t.yaml"), &text, &|_| None, &|_| {
            Err(std::io::Error::other("no files"))
        })
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics()));
        crate::plan::build(&m, &m.jobs["j"]).expect("plan")
    }

    /// Several MiB of bytes that do not compress, so the stored object is as large as the file.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn a_stored_file_comes_back_checked_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (remote, spool, out) = (
            dir.path().join("r"),
            dir.path().join("s"),
            dir.path().join("o"),
        );
        for d in [&remote, &spool, &out] {
            std::fs::create_dir_all(d).unwrap();
        }
        let plan = plan(&remote);
        let data = noise(5 << 20);
        let path = spool.join("binlog.000001");
        std::fs::write(&path, &data).unwrap();
        let store = AnyStorage::for_plan(&plan);
        let t = Timestamp::now();
        let file = LogFile {
            path: &path,
            name: "binlog.000001",
            key: "j/binlog/binlog.000001.zst",
            format: "binlog",
            started: t,
            finished: t,
            failed_event: "binlog_upload_failed",
        };
        let rec = super::store(&plan, file, &[(false, AnyStorage::for_plan(&plan))])
            .await
            .unwrap();
        assert_eq!(rec.raw_size, data.len() as u64);
        // The temp file beside the spooled one is gone; the spooled file itself is the caller's.
        let mut left: Vec<_> = std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        left.sort();
        assert_eq!(left, vec![std::ffi::OsString::from("binlog.000001")]);

        let (backups, listed) = complete_backups(&store, "j/binlog", "j").await.unwrap();
        assert_eq!(backups.len(), 1, "{listed:?}");
        let dest = out.join("binlog.000001");
        fetch(&plan, &store, &backups[0], &dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);

        // One byte of the stored object changed: the fetch fails and leaves nothing behind.
        let object = remote.join("j/binlog/binlog.000001.zst");
        let mut stored = std::fs::read(&object).unwrap();
        let mid = stored.len() / 2;
        stored[mid] ^= 1;
        std::fs::write(&object, &stored).unwrap();
        let again = out.join("again");
        let err = fetch(&plan, &store, &backups[0], &again).await.unwrap_err();
        assert!(matches!(err, PitrError::Segment { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            1,
            "only the first fetch's file"
        );
    }
}
