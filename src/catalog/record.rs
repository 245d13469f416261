//! The record `NAME.EXT.dbstash.json`, written last: a backup without one is not a backup.
//! Listing, restore, verify and retention see only objects whose record is present and names them.

use crate::storage::{join_key, Entry, Storage, StorageError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

pub const SUFFIX: &str = ".dbstash.json";
pub const FORMAT: &str = "dbstash-record/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    pub job: String,
    pub engine: String,
    pub database: String,
    /// Object file name (relative to its folder).
    pub object: String,
    pub run_id: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    /// Bytes stored.
    pub size: u64,
    /// Bytes the dump produced, before compression.
    pub raw_size: u64,
    pub sha256: String,
    pub compression: String,
    pub dump_format: String,
    /// `stream` (one dump stream) or `tar` (a tar of the dump tool's folder).
    #[serde(default = "stream")]
    pub mode: String,
    /// `none` or `age` (the stored bytes are an age file; `--identity` reads them).
    #[serde(default = "none")]
    pub encryption: String,
    /// `directory` mode: every file of the folder, with its size and sha256 (the record's own
    /// `sha256` is then the digest of this list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSum>,
    #[serde(default)]
    pub tool_versions: BTreeMap<String, String>,
    pub dbstash_version: String,
    pub host: String,
    /// mysql/mariadb: the database's default character set and collation, for a restore that
    /// creates its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<crate::engine::mysql::DbCharset>,
    /// postgres `pitr` base backups: start/stop LSN, timeline and times, from the tar's
    /// `backup_label` and `backup_manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_wal: Option<crate::engine::postgres::base::BaseWal>,
    /// mysql/mariadb `pitr` dumps: the server's binlog position at the dump's snapshot, where a
    /// restore to an instant starts replaying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<crate::engine::mysql_pitr::BinlogPosition>,
}

/// One file of a `directory`-mode backup, relative to its folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The digest of a folder's file list: sha256 over `path\tsize\tsha256\n` lines in path order.
pub fn folder_digest(files: &[FileSum]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in files {
        h.update(format!("{}\t{}\t{}\n", f.path, f.size, f.sha256).as_bytes());
    }
    hex::encode(h.finalize())
}

/// Where an object named in a record lives: a file in the listing, or (directory mode) a folder,
/// looked up only when some record needs it.
struct Present<'a, S: Storage> {
    store: &'a S,
    folder: &'a str,
    files: HashSet<String>,
    folders: Option<HashSet<String>>,
}

impl<'a, S: Storage> Present<'a, S> {
    fn new(store: &'a S, folder: &'a str, entries: &[Entry]) -> Self {
        Present {
            store,
            folder,
            files: entries.iter().map(|e| e.name.clone()).collect(),
            folders: None,
        }
    }

    async fn has(&mut self, object: &str) -> bool {
        if self.files.contains(object) {
            return true;
        }
        if self.folders.is_none() {
            let listed = self
                .store
                .list_folders(self.folder)
                .await
                .unwrap_or_default();
            self.folders = Some(listed.into_iter().map(|e| e.name).collect());
        }
        self.folders.as_ref().is_some_and(|f| f.contains(object))
    }
}

fn stream() -> String {
    "stream".into()
}

fn none() -> String {
    "none".into()
}

/// A complete backup: object + record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    /// The object's file name; also the backup's id.
    pub id: String,
    pub key: String,
    pub record: Record,
}

pub fn record_key(object_key: &str) -> String {
    format!("{object_key}{SUFFIX}")
}

/// Records read at once by `complete_backups`.
const RECORD_READS: usize = 8;

/// Complete backups of `job` in `folder`, newest first. Records that do not parse, name another job
/// or another object, or whose object is missing are ignored (never deleted from here).
pub async fn complete_backups<S: Storage>(
    store: &S,
    folder: &str,
    job: &str,
) -> Result<(Vec<Backup>, Vec<Entry>), StorageError> {
    use futures_util::stream::{self, StreamExt};
    let entries = store.list(folder).await?;
    let mut present = Present::new(store, folder, &entries);
    let mut objects = Vec::new();
    for e in &entries {
        if let Some(object) = e.name.strip_suffix(SUFFIX) {
            if present.has(object).await {
                objects.push((object.to_string(), join_key(folder, &e.name)));
            }
        }
    }
    // Records are read a few at a time: each read is a round trip to the remote (a folder of a
    // month of backups, a WAL folder of thousands of segments), and they do not depend on each
    // other.
    let read = |(object, key): (String, String)| async move {
        let bytes = match store.read_small(&key).await {
            Ok(b) => b,
            Err(err) => {
                tracing::warn!(event = "record_unreadable", key, error = %err);
                return None;
            }
        };
        let record = serde_json::from_slice::<Record>(&bytes).ok()?;
        if record.job != job || record.object != object || record.format != FORMAT {
            return None;
        }
        Some(Backup {
            key: join_key(folder, &object),
            id: object,
            record,
        })
    };
    let mut out: Vec<Backup> = stream::iter(objects)
        .map(read)
        .buffer_unordered(RECORD_READS)
        .filter_map(std::future::ready)
        .collect()
        .await;
    out.sort_by(|a, b| {
        b.record
            .finished
            .cmp(&a.record.finished)
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok((out, entries))
}

/// What a run needs to know of its folder before it uploads: the listing (names taken, leftovers)
/// and what the last backup weighed (to size the upload's chunks and the temp space).
pub struct Previous {
    pub entries: Vec<Entry>,
    /// The newest complete backup of the job, when its record was asked for.
    pub backup: Option<Backup>,
    /// The largest object in the folder that has a record (any job): an upper bound for the next
    /// upload's size, known from the listing alone.
    pub largest: Option<u64>,
}

/// List `folder` and, with `read_record`, find the newest complete backup of `job`: records are read
/// newest first, stopping at the first that qualifies (one record read in the usual case, instead
/// of one per backup: each read is an rclone process on a remote). Stream mode needs only a
/// size bound, which the listing gives, so it reads no record (one rclone start fewer per run);
/// folder modes need the raw size, which only the record has.
pub async fn newest_backup<S: Storage>(
    store: &S,
    folder: &str,
    job: &str,
    read_record: bool,
) -> Result<Previous, StorageError> {
    let entries = store.list(folder).await?;
    let mut present = Present::new(store, folder, &entries);
    let mut records: Vec<&Entry> = Vec::new();
    let sizes: std::collections::HashMap<&str, u64> =
        entries.iter().map(|e| (e.name.as_str(), e.size)).collect();
    let mut largest: Option<u64> = None;
    for e in &entries {
        if let Some(object) = e.name.strip_suffix(SUFFIX) {
            if present.has(object).await {
                records.push(e);
                largest = largest.max(sizes.get(object).copied());
            }
        }
    }
    records.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.name.cmp(&a.name))
    });
    let mut best: Option<Backup> = None;
    for e in records.into_iter().filter(|_| read_record) {
        if best.is_some() {
            break;
        }
        let Some(object) = e.name.strip_suffix(SUFFIX) else {
            continue;
        };
        let key = join_key(folder, &e.name);
        let Ok(bytes) = store.read_small(&key).await else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            continue;
        };
        if record.job != job || record.object != object || record.format != FORMAT {
            continue;
        }
        best = Some(Backup {
            id: object.to_string(),
            key: join_key(folder, object),
            record,
        });
    }
    Ok(Previous {
        entries,
        backup: best,
        largest,
    })
}

#[cfg(test)]
impl Record {
    /// For unit tests: a record of job `app` on `engine`, its object `object` in format
    /// `dump_format`, one byte stored and read, at the epoch; set what a test is about with
    /// `Record { field, ..Record::sample(…) }`.
    pub fn sample(engine: &str, object: &str, dump_format: &str) -> Record {
        Record {
            format: FORMAT.into(),
            job: "app".into(),
            engine: engine.into(),
            database: "app".into(),
            object: object.into(),
            run_id: "r".into(),
            started: Timestamp::UNIX_EPOCH,
            finished: Timestamp::UNIX_EPOCH,
            size: 1,
            raw_size: 1,
            sha256: String::new(),
            compression: "zstd".into(),
            dump_format: dump_format.into(),
            mode: "stream".into(),
            encryption: "none".into(),
            files: Vec::new(),
            tool_versions: Default::default(),
            dbstash_version: String::new(),
            host: String::new(),
            charset: None,
            base_wal: None,
            binlog: None,
        }
    }
}
