//! Any rclone remote: `rcat` for streaming uploads, `cat` to read, `lsjson`, `deletefile`.
//! rclone children run in the caller's process group (uploads) or their own (small calls).

use super::rclone_args::{self, join};
use super::{Download, DownloadKind, Entry, Storage, StorageError, Upload, UploadKind};
use crate::plan::RcloneConf;
use crate::proc::status::ExitReason;
use crate::proc::{self, ProcGroup, StderrTail};
use std::fs::File;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

/// Small calls (list, read a record, delete) give up after this long.
const SMALL_CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an aborted upload gets to cancel its multipart upload before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(3);
/// Attempts of a small call that fails with rclone's "temporary error" exit status.
pub(super) const SMALL_CALL_ATTEMPTS: u64 = 3;
/// One attempt per rclone call (low-level and high-level); `call` retries temporary errors itself.
const SMALL_CALL_RETRIES: [&str; 2] = ["--low-level-retries=1", "--retries=1"];

pub struct RcloneStorage {
    pub(super) remote: String,
    pub(super) conf: RcloneConf,
    /// Never use the shared `rclone rcd` (one process per call, as before it existed).
    pub(super) per_call: bool,
}

pub struct RcloneUpload {
    child: Child,
    tail: StderrTail,
    key: String,
}

pub struct RcloneDownload {
    child: Child,
    tail: StderrTail,
    key: String,
}

fn spawn_err<'a>(
    op: &'static str,
    key: &'a str,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Start {
        op,
        key: key.to_string(),
        source,
    }
}

/// Which end of a streaming rclone call dbstash holds.
enum Pipe {
    Stdin,
    Stdout,
}

/// Start a streaming rclone call (`rcat` or `cat`) in `group`: its stderr drained into a tail, the
/// streaming pipe handed back as a blocking file for the relay thread.
fn spawn_streaming(
    spec: &crate::domain::command::CommandSpec,
    group: &ProcGroup,
    op: &'static str,
    key: &str,
    pipe: Pipe,
) -> Result<(Child, StderrTail, File), StorageError> {
    let mut cmd = proc::command(spec, None);
    match pipe {
        Pipe::Stdin => cmd.stdin(Stdio::piped()).stdout(Stdio::null()),
        Pipe::Stdout => cmd.stdout(Stdio::piped()),
    };
    cmd.stderr(Stdio::piped());
    let mut child = group.spawn(&mut cmd).map_err(spawn_err(op, key))?;
    let tail = child
        .stderr
        .take()
        .map_or_else(StderrTail::empty, |e| StderrTail::spawn(e, "rclone"));
    let no_pipe = || StorageError::NoPipe { op };
    let fd = match pipe {
        Pipe::Stdin => child.stdin.take().ok_or_else(no_pipe)?.into_owned_fd(),
        Pipe::Stdout => child.stdout.take().ok_or_else(no_pipe)?.into_owned_fd(),
    }
    .map_err(spawn_err(op, key))?;
    crate::proc::widen_pipe(&fd);
    Ok((child, tail, File::from(fd)))
}

/// Wait for a streaming rclone call to exit; its stderr tail in the error.
async fn finish_child(
    mut child: Child,
    mut tail: StderrTail,
    op: &'static str,
    key: String,
) -> Result<(), StorageError> {
    let status = child.wait().await.map_err(spawn_err(op, &key))?;
    let tail = tail.finish().await;
    if status.success() {
        Ok(())
    } else {
        Err(StorageError::Rclone {
            op,
            key,
            code: ExitReason::of(status),
            tail,
        })
    }
}

impl RcloneUpload {
    pub(super) async fn commit(self) -> Result<(), StorageError> {
        finish_child(self.child, self.tail, "rcat", self.key).await
    }

    /// Wait for rclone to exit (cancel-safe); the status for messages.
    pub(super) async fn exited(&mut self) -> String {
        match self.child.wait().await {
            Ok(s) => proc::describe_status(s),
            Err(e) => e.to_string(),
        }
    }

    /// Stop rclone while its stdin is still open, so it never completes a partial object: SIGTERM
    /// first (rclone then aborts an S3 multipart upload instead of leaving its parts behind), and
    /// SIGKILL if it has not exited within a few seconds.
    pub(super) async fn kill(mut self) -> String {
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(ABORT_GRACE, self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.start_kill();
            }
        }
        let _ = self.child.wait().await;
        self.tail.finish().await
    }
}

/// `rclone rcat KEY` started early, waiting for its few bytes (see `PendingSmall`).
pub struct PendingRcat {
    child: Child,
    tail: StderrTail,
    stdin: Option<File>,
    key: String,
}

impl PendingRcat {
    pub(super) async fn finish(mut self, data: &[u8]) -> Result<(), StorageError> {
        use std::io::Write;
        if let Some(mut w) = self.stdin.take() {
            let written = w.write_all(data).and_then(|_| w.flush());
            drop(w);
            if let Err(e) = written {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                return Err(StorageError::Input {
                    op: "rcat",
                    key: self.key.clone(),
                    source: e,
                });
            }
        }
        let waited = tokio::time::timeout(SMALL_CALL_TIMEOUT, self.child.wait()).await;
        let status = match waited {
            Ok(s) => s.map_err(spawn_err("rcat", &self.key))?,
            Err(_) => {
                let _ = self.child.start_kill();
                return Err(StorageError::TimedOut {
                    op: "rcat",
                    key: self.key.clone(),
                });
            }
        };
        let tail = self.tail.finish().await;
        if status.success() {
            Ok(())
        } else {
            Err(StorageError::Rclone {
                op: "rcat",
                key: self.key.clone(),
                code: ExitReason::of(status),
                tail,
            })
        }
    }
}

impl RcloneDownload {
    pub(super) async fn finish(self) -> Result<(), StorageError> {
        finish_child(self.child, self.tail, "cat", self.key).await
    }
}

impl RcloneStorage {
    /// `rclone cat` of `key`, known to be one file, in `group`.
    pub(super) fn cat(&self, key: &str, group: &ProcGroup) -> Result<Download, StorageError> {
        let spec = rclone_args::command(&self.conf, "cat", &cat_args(&self.remote, key));
        let (child, tail, pipe) = spawn_streaming(&spec, group, "cat", key, Pipe::Stdout)?;
        Ok(Download {
            reader: pipe,
            kind: DownloadKind::Rclone(Box::new(RcloneDownload {
                child,
                tail,
                key: key.to_string(),
            })),
        })
    }

    pub(super) fn not_a_file(&self, key: &str) -> StorageError {
        StorageError::NotAFile {
            key: key.to_string(),
            object: join(&self.remote, key),
        }
    }

    pub fn new(remote: String, conf: RcloneConf) -> Self {
        RcloneStorage {
            remote,
            conf,
            per_call: false,
        }
    }

    /// The same storage without the shared `rclone rcd`: one rclone process per call.
    pub fn per_call(mut self) -> Self {
        self.per_call = true;
        self
    }

    /// Run a short rclone call; returns stdout, or the error with rclone's stderr tail.
    ///
    /// rclone's own low-level retries back off exponentially (an unreachable S3 endpoint keeps a
    /// `lsjson` busy for many minutes with the defaults), so small calls make one low-level attempt
    /// each and dbstash retries rclone's "temporary error" exit (5) itself, briefly. A user's
    /// `extra_args` still override the flag (they come later on the command line).
    async fn call(
        &self,
        op: &'static str,
        key: &str,
        args: &[String],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, StorageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call_once(op, key, args, input).await {
                Err(StorageError::Rclone { code, .. })
                    if code == ExitReason::Code(5) && attempt < SMALL_CALL_ATTEMPTS =>
                {
                    tokio::time::sleep(Duration::from_millis(700 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        op: &'static str,
        key: &str,
        args: &[String],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, StorageError> {
        let defaults: Vec<String> = SMALL_CALL_RETRIES.iter().map(|s| s.to_string()).collect();
        let spec = rclone_args::command_with(&self.conf, op, &defaults, args);
        let mut cmd = proc::command(&spec, None);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let group = ProcGroup::new();
        let mut child = group.spawn(&mut cmd).map_err(spawn_err(op, key))?;
        let mut tail = child
            .stderr
            .take()
            .map_or_else(StderrTail::empty, |e| StderrTail::spawn(e, "rclone"));
        let mut stdout = child.stdout.take();
        let stdin = child.stdin.take();
        let work = async {
            // rclone may exit before it reads its input (a bad remote, flag or credential): then
            // its exit status and stderr say why, not the broken pipe our write ran into.
            let mut unwritten = None;
            if let (Some(mut w), Some(data)) = (stdin, input) {
                let write = async {
                    w.write_all(data).await?;
                    w.shutdown().await
                };
                unwritten = write.await.err();
            }
            let mut out = Vec::new();
            if let Some(o) = stdout.as_mut() {
                o.read_to_end(&mut out).await?;
            }
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, unwritten))
        };
        let (status, out, unwritten) = match tokio::time::timeout(SMALL_CALL_TIMEOUT, work).await {
            Ok(r) => r.map_err(spawn_err(op, key))?,
            Err(_) => {
                group.kill();
                return Err(StorageError::TimedOut {
                    op,
                    key: key.to_string(),
                });
            }
        };
        let tail = tail.finish().await;
        if status.success() {
            match unwritten {
                // It succeeded without reading all it was given: not a complete write.
                Some(source) => Err(StorageError::Unread {
                    op,
                    key: key.to_string(),
                    source,
                }),
                None => Ok(out),
            }
        } else {
            Err(StorageError::Rclone {
                op,
                key: key.to_string(),
                code: ExitReason::of(status),
                tail,
            })
        }
    }
}

/// Does this failure mean "the object or folder does not exist"? Decided by rclone's documented
/// exit codes (3 directory not found, 4 file not found, 9 nothing transferred by `cat`), never by
/// the stderr text: rclone prints `Config file ... not found - using defaults` on every call made
/// without a config file, which would make every error (an unreachable remote included) look like
/// an empty folder or an already-deleted object.
fn not_found(e: &StorageError) -> bool {
    match e {
        // rclone's exit codes: 3 directory not found, 4 file not found, 9 no files transferred
        // (`--error-on-no-transfer`).
        StorageError::Rclone { code, .. } => {
            matches!(
                code,
                ExitReason::Code(3) | ExitReason::Code(4) | ExitReason::Code(9)
            )
        }
        _ => false,
    }
}

fn cat_args(remote: &str, key: &str) -> Vec<String> {
    vec!["--error-on-no-transfer".into(), join(remote, key)]
}

/// rclone's exit 9 ("no files transferred") from `cat` means the object does not exist.
fn missing_object(e: StorageError) -> StorageError {
    match e {
        StorageError::Rclone {
            op,
            key,
            code,
            tail,
        } if code == ExitReason::Code(9) => StorageError::Rclone {
            op,
            key,
            code,
            tail: if tail.is_empty() {
                "object not found".into()
            } else {
                format!("object not found: {tail}")
            },
        },
        other => other,
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct LsEntry {
    pub(super) name: String,
    pub(super) size: i64,
    pub(super) mod_time: Option<String>,
    #[serde(default)]
    pub(super) is_dir: bool,
}

impl Storage for RcloneStorage {
    async fn list(&self, folder: &str) -> Result<Vec<Entry>, StorageError> {
        if let Some(r) = self.rc_list(folder, false).await {
            return r;
        }
        self.lsjson(folder, false).await
    }

    async fn read_small(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        if let Some(r) = self.rc_read(key).await {
            return r;
        }
        // `rclone cat` of a missing object prints nothing and exits 0 (it treats the path as an
        // empty folder); `--error-on-no-transfer` makes that exit 9.
        self.call("cat", key, &cat_args(&self.remote, key), None)
            .await
            .map_err(missing_object)
    }

    async fn write_small(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        if let Some(r) = self.rc_write(key, data).await {
            return r;
        }
        self.call("rcat", key, &[join(&self.remote, key)], Some(data))
            .await
            .map(|_| ())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        if let Some(r) = self.rc_delete("deletefile", key).await {
            return r;
        }
        match self
            .call("deletefile", key, &[join(&self.remote, key)], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn reserve(&self, _key: &str, _folder: bool) -> Result<super::Reservation, StorageError> {
        // No atomic create-if-absent through rclone: the intent markers claim the name.
        Ok(super::Reservation::Unsupported)
    }

    async fn begin_upload(
        &self,
        key: &str,
        group: &ProcGroup,
        expected: Option<u64>,
    ) -> Result<Upload, StorageError> {
        if let Some(up) = self.rc_upload(key, expected).await {
            return up;
        }
        let spec = rclone_args::rcat(&self.conf, &self.remote, key, expected);
        let (child, tail, pipe) = spawn_streaming(&spec, group, "rcat", key, Pipe::Stdin)?;
        let upload = RcloneUpload {
            child,
            tail,
            key: key.to_string(),
        };
        Upload::new(pipe, UploadKind::Rclone(Box::new(upload))).map_err(spawn_err("rcat", key))
    }

    async fn open_read(
        &self,
        key: &str,
        size: Option<u64>,
        group: &ProcGroup,
    ) -> Result<Download, StorageError> {
        // `rclone cat` of a folder streams every file in it, and of a missing object nothing with
        // exit 0: the key must be one existing file first. Through the daemon the check comes
        // first (a few ms) and says how large the file is: a small one is read through the daemon
        // too, with no process to start. A record's size spares the check (see `rc_open_read`).
        if let Some(r) = self.rc_open_read(key, size, group).await {
            return r;
        }
        // Without the daemon the download starts alongside the check (each rclone start costs a
        // few hundred ms on a busy host), but its pipe is handed out only after it: nothing is
        // read before, and a failed check kills it (kill_on_drop).
        let download = self.cat(key, group)?;
        let stat = self
            .call(
                "lsjson",
                key,
                &[
                    "--stat".into(),
                    "--no-mimetype".into(),
                    join(&self.remote, key),
                ],
                None,
            )
            .await?;
        if !matches!(serde_json::from_slice::<LsEntry>(&stat), Ok(e) if !e.is_dir && e.size >= 0) {
            return Err(self.not_a_file(key));
        }
        Ok(download)
    }

    async fn prepare_small(&self, key: &str, group: &ProcGroup) -> super::PendingSmall {
        // With the daemon, the record's write is one local call at the end: nothing to start.
        if self.daemon().await.is_some() {
            return super::PendingSmall::Direct;
        }
        let defaults: Vec<String> = SMALL_CALL_RETRIES.iter().map(|s| s.to_string()).collect();
        let spec =
            rclone_args::command_with(&self.conf, "rcat", &defaults, &[join(&self.remote, key)]);
        match spawn_streaming(&spec, group, "rcat", key, Pipe::Stdin) {
            Ok((child, tail, stdin)) => super::PendingSmall::Rclone(Box::new(PendingRcat {
                child,
                tail,
                stdin: Some(stdin),
                key: key.to_string(),
            })),
            // Written the ordinary way at the end instead.
            Err(_) => super::PendingSmall::Direct,
        }
    }

    async fn list_folders(&self, folder: &str) -> Result<Vec<Entry>, StorageError> {
        if let Some(r) = self.rc_list(folder, true).await {
            return r;
        }
        self.lsjson(folder, true).await
    }

    async fn upload_dir(
        &self,
        local: &std::path::Path,
        key: &str,
        group: &ProcGroup,
    ) -> Result<(), StorageError> {
        let spec = rclone_args::command(
            &self.conf,
            "copy",
            &[local.display().to_string(), join(&self.remote, key)],
        );
        self.run_in(&spec, group, "copy", key).await
    }

    async fn download_dir(
        &self,
        key: &str,
        local: &std::path::Path,
        group: &ProcGroup,
    ) -> Result<(), StorageError> {
        let spec = rclone_args::command(
            &self.conf,
            "copy",
            &[
                "--error-on-no-transfer".into(),
                join(&self.remote, key),
                local.display().to_string(),
            ],
        );
        self.run_in(&spec, group, "copy", key).await
    }

    async fn delete_dir(&self, key: &str) -> Result<(), StorageError> {
        if let Some(r) = self.rc_delete("purge", key).await {
            return r;
        }
        match self
            .call("purge", key, &[join(&self.remote, key)], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn describe(&self, key: &str) -> String {
        join(&self.remote, key)
    }
}

impl RcloneStorage {
    /// The files (or the sub-folders) directly in `folder`, sorted by name; a missing folder is
    /// empty.
    async fn lsjson(&self, folder: &str, dirs: bool) -> Result<Vec<Entry>, StorageError> {
        let only = if dirs { "--dirs-only" } else { "--files-only" };
        let args = vec![
            only.into(),
            "--no-mimetype".into(),
            join(&self.remote, folder),
        ];
        let out = match self.call("lsjson", folder, &args, None).await {
            Ok(o) => o,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let entries: Vec<LsEntry> =
            serde_json::from_slice(&out).map_err(|source| StorageError::Listing {
                folder: folder.to_string(),
                source,
            })?;
        Ok(entries_of(entries, dirs))
    }

    /// A long rclone call (folder copies) in the run's `group`: no timeout of its own (the
    /// run's covers it), stderr drained into a tail for the error.
    async fn run_in(
        &self,
        spec: &crate::domain::command::CommandSpec,
        group: &ProcGroup,
        op: &'static str,
        key: &str,
    ) -> Result<(), StorageError> {
        let mut cmd = proc::command(spec, None);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = group.spawn(&mut cmd).map_err(spawn_err(op, key))?;
        let tail = child
            .stderr
            .take()
            .map_or_else(StderrTail::empty, |e| StderrTail::spawn(e, "rclone"));
        finish_child(child, tail, op, key.to_string()).await
    }
}

/// The files (or the folders) of a listing, sorted by name.
pub(super) fn entries_of(entries: Vec<LsEntry>, dirs: bool) -> Vec<Entry> {
    let mut v: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.is_dir == dirs)
        .map(|e| Entry {
            name: e.name,
            size: if dirs {
                0
            } else {
                u64::try_from(e.size).unwrap_or(0)
            },
            modified: e.mod_time.and_then(|t| t.parse().ok()),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}
