//! Where backups live: a local folder (written natively, fsync'd) or any rclone remote, behind one
//! `Storage` contract. Both are exercised by the same contract test (tests/storage_contract.rs).
//!
//! An upload is a byte sink whose far end must not see end-of-file until the run decides the
//! backup is good: `Upload` keeps its own duplicate of the sink's descriptor, so whatever the relay
//! thread does with its copy, rclone only sees EOF in `commit`; `abort` kills rclone first.

pub mod local;
pub mod rcd;
pub mod rcd_download;
pub mod rcd_upload;
pub mod rclone;
pub mod rclone_args;
mod rclone_rc;

use crate::plan::{JobPlan, RemotePlan, Target};
use crate::proc::ProcGroup;
use std::fs::File;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {key}: {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// rclone ran and failed; `code` is how it exited (3, 4 and 9 mean "not found").
    #[error("rclone {op} {key} failed ({code}): {}", crate::proc::tail::brief(.tail))]
    Rclone {
        op: &'static str,
        key: String,
        code: crate::proc::status::ExitReason,
        tail: String,
    },
    /// rclone could not be started or waited for.
    #[error("rclone {op} {key}: cannot start rclone: {source}")]
    Start {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// The long-lived `rclone rcd` ran the operation and it failed: its HTTP status (404: not
    /// found) and rclone's message.
    #[error("rclone {op} {key} failed: {message}")]
    Rc {
        op: &'static str,
        key: String,
        status: u16,
        message: String,
    },
    #[error("rclone {op}: no pipe")]
    NoPipe { op: &'static str },
    /// Handing rclone its input failed.
    #[error("rclone {op} {key}: {source}")]
    Input {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// rclone exited successfully without reading all its input: not a complete write.
    #[error("rclone {op} {key}: exited before reading its input: {source}")]
    Unread {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("rclone {op} {key}: timed out")]
    TimedOut { op: &'static str, key: String },
    #[error("rclone lsjson {folder}: unexpected output: {source}")]
    Listing {
        folder: String,
        #[source]
        source: serde_json::Error,
    },
    /// A blocking file system task (fsync, a folder copy) panicked or was cancelled.
    #[error("{what} task failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// `rclone cat` was asked for a key that is not one existing file.
    #[error("rclone cat {key} failed (not found): {object} is not a file (object not found)")]
    NotAFile { key: String, object: String },
    #[error("{} is not a folder (backup not found)", path.display())]
    NotAFolder { path: std::path::PathBuf },
}

/// One file in a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub modified: Option<jiff::Timestamp>,
}

/// What `Storage::reserve` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The (empty) object now exists and is the caller's.
    Made,
    /// The name exists already: choose another.
    Taken,
    /// The storage cannot reserve names; nothing was created.
    Unsupported,
}

/// A running upload: write into `writer`, then `commit` or `abort`.
pub struct Upload {
    pub writer: File,
    /// Our own copy of the sink descriptor: the far end sees EOF only when this is dropped.
    hold: Option<File>,
    kind: UploadKind,
}

enum UploadKind {
    Local(local::LocalUpload),
    Rclone(Box<rclone::RcloneUpload>),
    /// Through the shared `rclone rcd` (`rcd_upload`).
    Daemon(Box<rcd_upload::DaemonUpload>),
}

impl Upload {
    fn new(writer: File, kind: UploadKind) -> std::io::Result<Self> {
        let hold = writer.try_clone()?;
        Ok(Upload {
            writer,
            hold: Some(hold),
            kind,
        })
    }

    /// Split off the writer for the relay thread; the hold stays here.
    pub fn take_writer(&mut self) -> std::io::Result<File> {
        let spare = self.writer.try_clone()?;
        Ok(std::mem::replace(&mut self.writer, spare))
    }

    /// Close the stream and wait until the object is durable.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        match self.kind {
            UploadKind::Local(l) => {
                let hold = self.hold.take();
                drop(self.writer);
                l.commit(hold).await
            }
            UploadKind::Rclone(r) => {
                drop(self.hold.take());
                drop(self.writer);
                r.commit().await
            }
            UploadKind::Daemon(d) => {
                // Before the pipe ends: its end then closes the object instead of breaking it.
                d.will_commit();
                drop(self.hold.take());
                drop(self.writer);
                d.commit().await
            }
        }
    }

    /// Resolves if the upload process ends on its own before `commit` (it crashed, was killed, or
    /// gave up): the run must then stop its dump instead of writing into a dead pipe. Never
    /// resolves for local folders. Cancel-safe.
    pub async fn exited(&mut self) -> String {
        match &mut self.kind {
            UploadKind::Local(_) => std::future::pending().await,
            UploadKind::Rclone(r) => r.exited().await,
            UploadKind::Daemon(d) => d.exited().await,
        }
    }

    /// Kill the upload before it sees EOF, then remove whatever reached the storage.
    /// Returns the upload tool's stderr tail (empty for local folders).
    pub async fn abort<S: Storage>(mut self, store: &S, key: &str) -> String {
        let tail = match self.kind {
            UploadKind::Local(_) => {
                drop(self.hold.take());
                drop(self.writer);
                String::new()
            }
            UploadKind::Rclone(r) => {
                let tail = r.kill().await;
                drop(self.hold.take());
                drop(self.writer);
                crate::proc::tail::brief(&tail)
            }
            UploadKind::Daemon(d) => {
                let said = d.abort().await;
                drop(self.hold.take());
                drop(self.writer);
                crate::proc::tail::brief(&said)
            }
        };
        if let Err(e) = store.delete(key).await {
            tracing::warn!(event = "cleanup_failed", key, error = %e, "could not delete a partial object");
        }
        tail
    }
}

/// A small write (a record) whose uploader is started early, so its start-up cost overlaps the
/// backup instead of following it; the data is handed over at the end. Dropped or cancelled
/// before `write`, nothing is stored (rclone is killed before it sees end-of-file).
pub enum PendingSmall {
    /// Local folders write directly when asked.
    Direct,
    Rclone(Box<rclone::PendingRcat>),
}

impl PendingSmall {
    /// Store `data` at the key it was prepared for; falls back to a plain `write_small` (with
    /// its retries) if the early uploader failed.
    pub async fn write<S: Storage>(
        self,
        store: &S,
        key: &str,
        data: &[u8],
    ) -> Result<(), StorageError> {
        match self {
            PendingSmall::Direct => store.write_small(key, data).await,
            PendingSmall::Rclone(p) => match p.finish(data).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::debug!(event = "record_retry", key, error = %e);
                    store.write_small(key, data).await
                }
            },
        }
    }
}

/// A byte source for reading a backup back.
pub struct Download {
    pub reader: File,
    pub kind: DownloadKind,
}

pub enum DownloadKind {
    Local,
    Rclone(Box<rclone::RcloneDownload>),
    /// Through the shared `rclone rcd` (`rcd_download`).
    Daemon(Box<rcd_download::DaemonDownload>),
}

impl Download {
    /// Wait for the reader process (if any); Err when the download itself failed.
    pub async fn finish(self) -> Result<(), StorageError> {
        match self.kind {
            DownloadKind::Local => Ok(()),
            DownloadKind::Rclone(r) => r.finish().await,
            DownloadKind::Daemon(d) => d.finish().await,
        }
    }
}

/// The storage contract. Keys are `/`-separated paths relative to the remote's root.
#[allow(async_fn_in_trait)]
pub trait Storage {
    /// Files directly in `folder` (not recursive). A missing folder is empty, not an error.
    async fn list(&self, folder: &str) -> Result<Vec<Entry>, StorageError>;
    async fn read_small(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    /// Write a small object atomically (records).
    async fn write_small(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Delete one object; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Claim `key` for a new object (a folder with `folder`) where the storage can do so
    /// atomically: a local folder creates it exclusively (an empty placeholder that the upload
    /// then fills; the caller deletes it if the backup does not complete). rclone remotes cannot
    /// (no create-if-absent across backends): runs claim names there with intent markers
    /// (run::claim).
    async fn reserve(&self, key: &str, folder: bool) -> Result<Reservation, StorageError>;
    /// Write into `key`, which the caller has claimed (`reserve`): the upload may replace it.
    async fn begin_upload(
        &self,
        key: &str,
        group: &ProcGroup,
        expected: Option<u64>,
    ) -> Result<Upload, StorageError>;
    /// Read `key`. `size` is what its record says it weighs, when the caller has a record: a
    /// remote may then skip asking for the object's size first (the caller checks every byte
    /// against the record anyway). A missing object is an error here or at `finish`.
    async fn open_read(
        &self,
        key: &str,
        size: Option<u64>,
        group: &ProcGroup,
    ) -> Result<Download, StorageError>;
    /// Start the uploader of a small object now; its data comes later (`PendingSmall::write`).
    async fn prepare_small(&self, key: &str, group: &ProcGroup) -> PendingSmall;
    /// Sub-folders directly in `folder` (`directory`-mode backups are folders).
    async fn list_folders(&self, folder: &str) -> Result<Vec<Entry>, StorageError>;
    /// Copy the local folder `local` to `key` (a folder), in `group`; done when this returns Ok.
    async fn upload_dir(
        &self,
        local: &std::path::Path,
        key: &str,
        group: &ProcGroup,
    ) -> Result<(), StorageError>;
    /// Copy the folder `key` into the local folder `local`.
    async fn download_dir(
        &self,
        key: &str,
        local: &std::path::Path,
        group: &ProcGroup,
    ) -> Result<(), StorageError>;
    /// Delete the folder `key` and everything in it; a missing folder succeeds.
    async fn delete_dir(&self, key: &str) -> Result<(), StorageError>;
    /// Human description for logs and messages (no secrets).
    fn describe(&self, key: &str) -> String;
}

/// Static dispatch over the two implementations.
pub enum AnyStorage {
    Local(local::LocalStorage),
    Rclone(rclone::RcloneStorage),
}

impl AnyStorage {
    /// The storage of the remote this plan addresses (`plan.remote`).
    pub fn for_plan(plan: &JobPlan) -> Self {
        Self::for_remote(&plan.remote)
    }

    pub fn for_remote(remote: &RemotePlan) -> Self {
        match &remote.target {
            Target::Local { root } => AnyStorage::Local(local::LocalStorage::new(root.clone())),
            Target::Rclone { remote, rclone } => {
                AnyStorage::Rclone(rclone::RcloneStorage::new(remote.clone(), rclone.clone()))
            }
        }
    }

    /// Start what the first call will need (the shared `rclone rcd`) in the background, so that
    /// its start-up overlaps the caller's own preparations instead of following them.
    pub fn warm_up(&self) {
        if let AnyStorage::Rclone(r) = self {
            r.warm_up();
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStorage::Local($s) => $e,
            AnyStorage::Rclone($s) => $e,
        }
    };
}

impl Storage for AnyStorage {
    async fn list(&self, folder: &str) -> Result<Vec<Entry>, StorageError> {
        dispatch!(self, s => s.list(folder).await)
    }
    async fn read_small(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        dispatch!(self, s => s.read_small(key).await)
    }
    async fn write_small(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        dispatch!(self, s => s.write_small(key, data).await)
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        dispatch!(self, s => s.delete(key).await)
    }
    async fn reserve(&self, key: &str, folder: bool) -> Result<Reservation, StorageError> {
        dispatch!(self, s => s.reserve(key, folder).await)
    }
    async fn begin_upload(
        &self,
        key: &str,
        group: &ProcGroup,
        expected: Option<u64>,
    ) -> Result<Upload, StorageError> {
        dispatch!(self, s => s.begin_upload(key, group, expected).await)
    }
    async fn open_read(
        &self,
        key: &str,
        size: Option<u64>,
        group: &ProcGroup,
    ) -> Result<Download, StorageError> {
        dispatch!(self, s => s.open_read(key, size, group).await)
    }
    async fn prepare_small(&self, key: &str, group: &ProcGroup) -> PendingSmall {
        dispatch!(self, s => s.prepare_small(key, group).await)
    }
    async fn list_folders(&self, folder: &str) -> Result<Vec<Entry>, StorageError> {
        dispatch!(self, s => s.list_folders(folder).await)
    }
    async fn upload_dir(
        &self,
        local: &std::path::Path,
        key: &str,
        group: &ProcGroup,
    ) -> Result<(), StorageError> {
        dispatch!(self, s => s.upload_dir(local, key, group).await)
    }
    async fn download_dir(
        &self,
        key: &str,
        local: &std::path::Path,
        group: &ProcGroup,
    ) -> Result<(), StorageError> {
        dispatch!(self, s => s.download_dir(key, local, group).await)
    }
    async fn delete_dir(&self, key: &str) -> Result<(), StorageError> {
        dispatch!(self, s => s.delete_dir(key).await)
    }
    fn describe(&self, key: &str) -> String {
        dispatch!(self, s => s.describe(key))
    }
}

/// `folder/name`, or `name` at the root.
pub fn join_key(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", folder.trim_end_matches('/'))
    }
}
