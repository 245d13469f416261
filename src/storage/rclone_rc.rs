//! `RcloneStorage`'s small calls through the long-lived `rclone rcd` (see `rcd`): listings
//! (`operations/list`), stats (`operations/stat`), deletes (`operations/deletefile`,
//! `operations/purge`), and small reads and writes as `operations/copyfile` between the remote
//! and a file in the daemon's private folder. Each returns `None` when there is no daemon (off,
//! not startable, lost): the caller then runs one rclone process as before.

use super::rcd::{self, Daemon, RcFail};
use super::rclone::{entries_of, LsEntry, RcloneStorage, SMALL_CALL_ATTEMPTS};
use super::{
    rcd_download, rcd_upload, Download, DownloadKind, Entry, StorageError, Upload, UploadKind,
};
use serde_json::{json, Value};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

impl RcloneStorage {
    /// The shared daemon for this remote's rclone setup, unless this storage is per-call only.
    pub(super) async fn daemon(&self) -> Option<Arc<Daemon>> {
        if self.per_call {
            return None;
        }
        rcd::get(&self.conf).await
    }

    /// Start the daemon in the background (see `AnyStorage::warm_up`); the first call waits for
    /// the same start.
    pub(super) fn warm_up(&self) {
        if self.per_call || !rcd::enabled() {
            return;
        }
        let conf = self.conf.clone();
        tokio::spawn(async move {
            rcd::get(&conf).await;
        });
    }

    /// One rc call; `None` when the daemon stopped answering (it is then marked lost). rc has no
    /// "temporary error" status like the rclone command's exit 5: a failure on rclone's side
    /// (HTTP 5xx: the remote's own error, a dropped connection) is retried briefly, as the
    /// per-call path retries exit 5, since every small call is idempotent (list, stat, delete,
    /// overwrite a small object). 4xx answers (404 not found, bad parameters) are final.
    async fn rc_call(
        &self,
        d: &Daemon,
        op: &'static str,
        key: &str,
        method: &str,
        params: Value,
    ) -> Option<Result<Value, StorageError>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.rc_call_once(d, op, key, method, &params).await {
                Some(Err(StorageError::Rc { status, .. }))
                    if status >= 500 && attempt < SMALL_CALL_ATTEMPTS =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(700 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn rc_call_once(
        &self,
        d: &Daemon,
        op: &'static str,
        key: &str,
        method: &str,
        params: &Value,
    ) -> Option<Result<Value, StorageError>> {
        match d.call(method, params).await {
            Ok(v) => Some(Ok(v)),
            Err(RcFail::Down(e)) => {
                d.lose(&e);
                None
            }
            Err(RcFail::Failed { status, message }) => Some(Err(StorageError::Rc {
                op,
                key: key.to_string(),
                status,
                message,
            })),
            Err(RcFail::TimedOut) => Some(Err(StorageError::TimedOut {
                op,
                key: key.to_string(),
            })),
        }
    }

    /// A streaming upload of `key` through the daemon, where it suits (`rcd_upload::suits`);
    /// `None`: start `rclone rcat` instead.
    pub(super) async fn rc_upload(
        &self,
        key: &str,
        expected: Option<u64>,
    ) -> Option<Result<Upload, StorageError>> {
        if !rcd_upload::suits(&self.conf, key, expected) {
            return None;
        }
        let d = self.daemon().await?;
        match rcd_upload::begin(&d, &self.conf, &self.remote, key) {
            Ok((up, pipe)) => Some(Upload::new(pipe, UploadKind::Daemon(Box::new(up))).map_err(
                |source| StorageError::Start {
                    op: "rcat",
                    key: key.to_string(),
                    source,
                },
            )),
            Err(e) => {
                d.lose(&e);
                None
            }
        }
    }

    /// Open `key` for reading through the daemon when it is there: `None` to use `rclone cat`
    /// (no daemon, or it stopped answering). A key that is not one file is `NotAFile`; a small
    /// file is read through the daemon (`rcd_download`), a large one by `cat` in `group`.
    /// `record`: the size the object's record gives. A small one is asked for at once, without
    /// the stat's round trip (a restore's stream starts that much sooner): the daemon answers 404
    /// for a missing object or a folder. `cat` still needs the stat (it streams a folder's files).
    pub(super) async fn rc_open_read(
        &self,
        key: &str,
        record: Option<u64>,
        group: &crate::proc::ProcGroup,
    ) -> Option<Result<Download, StorageError>> {
        let d = self.daemon().await?;
        let length = match record {
            Some(size) if rcd_download::suits(&self.remote, size) => {
                rcd_download::Length::Record(size)
            }
            _ => match self.rc_stat(key).await? {
                Ok(Some(size)) if rcd_download::suits(&self.remote, size) => {
                    rcd_download::Length::Stat(size)
                }
                Ok(Some(_)) => return Some(self.cat(key, group)),
                Ok(None) => return Some(Err(self.not_a_file(key))),
                Err(e) => return Some(Err(e)),
            },
        };
        Some(
            match rcd_download::begin(&d, &self.remote, key, length).await {
                Ok((reader, dl)) => Ok(Download {
                    reader,
                    kind: DownloadKind::Daemon(Box::new(dl)),
                }),
                // Not reachable after all: `cat` reads it.
                Err(StorageError::Io { source, .. })
                    if source.kind() != std::io::ErrorKind::Other =>
                {
                    d.lose(&source);
                    self.cat(key, group)
                }
                Err(StorageError::Rc { status: 404, .. }) => Err(self.not_a_file(key)),
                Err(e) => Err(e),
            },
        )
    }

    /// Files (or folders) directly in `folder`; a missing folder is empty.
    pub(super) async fn rc_list(
        &self,
        folder: &str,
        dirs: bool,
    ) -> Option<Result<Vec<Entry>, StorageError>> {
        let d = self.daemon().await?;
        let only = if dirs { "dirsOnly" } else { "filesOnly" };
        let params = json!({
            "fs": self.remote,
            "remote": folder,
            "opt": { "noMimeType": true, (only): true },
        });
        let answer = self
            .rc_call(&d, "lsjson", folder, "operations/list", params)
            .await?;
        Some(match answer {
            Ok(mut v) => serde_json::from_value::<Vec<LsEntry>>(v["list"].take())
                .map(|e| entries_of(e, dirs))
                .map_err(|source| StorageError::Listing {
                    folder: folder.to_string(),
                    source,
                }),
            Err(StorageError::Rc { status: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        })
    }

    /// Copy `key` into the daemon's folder and read it from there.
    pub(super) async fn rc_read(&self, key: &str) -> Option<Result<Vec<u8>, StorageError>> {
        let d = self.daemon().await?;
        let dir = d.dir()?;
        let local = d.scratch();
        let params = json!({
            "srcFs": self.remote,
            "srcRemote": key,
            "dstFs": dir,
            "dstRemote": local.file_name().map(|n| n.to_string_lossy().into_owned()),
            "_config": { "NoCheckDest": true },
        });
        let answer = self
            .rc_call(&d, "cat", key, "operations/copyfile", params)
            .await;
        let read = match answer {
            Some(Ok(_)) => Some(
                tokio::fs::read(&local)
                    .await
                    .map_err(|source| StorageError::Io {
                        op: "read",
                        key: key.to_string(),
                        source,
                    }),
            ),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        let _ = tokio::fs::remove_file(&local).await;
        read
    }

    /// Write `data` to a private file and copy it to `key`.
    pub(super) async fn rc_write(
        &self,
        key: &str,
        data: &[u8],
    ) -> Option<Result<(), StorageError>> {
        let d = self.daemon().await?;
        let dir = d.dir()?.to_string();
        let local = d.scratch();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&local)
            .and_then(|mut f| std::io::Write::write_all(&mut f, data));
        if let Err(e) = written {
            // The private folder is unusable (removed under us?): per-call processes instead.
            let _ = std::fs::remove_file(&local);
            d.lose(&e);
            return None;
        }
        let params = json!({
            "srcFs": dir,
            "srcRemote": local.file_name().map(|n| n.to_string_lossy().into_owned()),
            "dstFs": self.remote,
            "dstRemote": key,
            "_config": { "NoCheckDest": true },
        });
        let answer = self
            .rc_call(&d, "rcat", key, "operations/copyfile", params)
            .await;
        let _ = tokio::fs::remove_file(&local).await;
        Some(answer?.map(|_| ()))
    }

    /// `deletefile` of an object or `purge` of a folder; a missing one succeeds.
    pub(super) async fn rc_delete(
        &self,
        op: &'static str,
        key: &str,
    ) -> Option<Result<(), StorageError>> {
        let d = self.daemon().await?;
        let params = json!({ "fs": self.remote, "remote": key });
        let method = if op == "purge" {
            "operations/purge"
        } else {
            "operations/deletefile"
        };
        Some(match self.rc_call(&d, op, key, method, params).await? {
            Ok(_) | Err(StorageError::Rc { status: 404, .. }) => Ok(()),
            // Some backends report a missing folder to `purge` as a plain error: gone is gone.
            Err(e) if op == "purge" => match self.rc_list_any(&d, key).await? {
                Ok(true) => Err(e),
                Ok(false) => Ok(()),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        })
    }

    /// Does `folder` hold anything?
    async fn rc_list_any(&self, d: &Daemon, folder: &str) -> Option<Result<bool, StorageError>> {
        let params = json!({ "fs": self.remote, "remote": folder, "opt": { "noMimeType": true } });
        Some(
            match self
                .rc_call(d, "lsjson", folder, "operations/list", params)
                .await?
            {
                Ok(v) => Ok(v["list"].as_array().is_some_and(|l| !l.is_empty())),
                Err(StorageError::Rc { status: 404, .. }) => Ok(false),
                Err(e) => Err(e),
            },
        )
    }

    /// The size of `key` if it is one existing file (`None` if it is not).
    pub(super) async fn rc_stat(&self, key: &str) -> Option<Result<Option<u64>, StorageError>> {
        let d = self.daemon().await?;
        let params = json!({ "fs": self.remote, "remote": key, "opt": { "noMimeType": true } });
        Some(
            match self
                .rc_call(&d, "lsjson", key, "operations/stat", params)
                .await?
            {
                Ok(mut v) => Ok(match serde_json::from_value::<LsEntry>(v["item"].take()) {
                    Ok(e) if !e.is_dir => u64::try_from(e.size).ok(),
                    _ => None,
                }),
                Err(StorageError::Rc { status: 404, .. }) => Ok(None),
                Err(e) => Err(e),
            },
        )
    }
}
