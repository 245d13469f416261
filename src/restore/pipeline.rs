//! Moving a stored backup into its destination: storage → [`pump`] (size, sha256, decompression)
//! on a blocking thread → a restore tool's stdin, a new file, or nowhere (verify).
//!
//! The restore tool must never see end-of-file before the verdict: dbstash keeps a duplicate of the
//! tool's stdin descriptor (as `storage::Upload` does for uploads) and closes it only after the
//! whole object was read, its size and sha256 matched the record, the decompressor reached a proper
//! end and the download tool exited cleanly. On anything else the tool is SIGKILLed first, so
//! `psql --single-transaction` / `pg_restore --single-transaction` never reach COMMIT.

use super::layout::Layout;
use super::pump::{self, Expect, PumpError, Pumped};
use super::run_dir;
use super::RestoreError;
use crate::cancel::{Cancel, StopReader};
use crate::catalog::record::Backup;
use crate::domain::command::CommandSpec;
use crate::proc::ProcGroup;
use crate::secret::{redact, Secret};
use crate::storage::{AnyStorage, Download, Storage};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// One backup to read.
pub struct Source<'a> {
    pub store: &'a AnyStorage,
    pub backup: &'a Backup,
    pub layout: Layout,
    pub progress: Option<Arc<AtomicU64>>,
    /// Needed when `layout.encrypted`.
    pub identities: Option<crate::crypt::Identities>,
}

/// Read, check and decompress the backup into `writer`. On failure every process of `group`
/// (the download, and the restore tool if the caller put it there) has been killed.
pub async fn transfer<W: Write + Send + 'static>(
    src: &Source<'_>,
    group: &ProcGroup,
    writer: W,
) -> Result<Pumped, RestoreError> {
    let key = src.backup.key.clone();
    let identities = match (&src.layout.encrypted, &src.identities) {
        (false, _) => None,
        (true, Some(ids)) => Some(ids.clone()),
        (true, None) => {
            return Err(super::UsageError::NeedsIdentity {
                backup: src.backup.id.clone(),
            }
            .into())
        }
    };
    let download = src
        .store
        .open_read(&key, Some(src.backup.record.size), group)
        .await
        .map_err(|e| RestoreError::Download {
            key: key.clone(),
            source: e,
        })?;
    let Download { reader, kind } = download;
    let expect = Expect {
        size: src.backup.record.size,
        sha256: src.backup.record.sha256.clone(),
    };
    let codec = src.layout.codec;
    let progress = src.progress.clone();
    // The pump is a blocking thread: this guard stops it at its next read when the restore is
    // interrupted (its future dropped), so it neither writes on nor holds the process at exit.
    let cancel = Cancel::new();
    let _stop_pump = cancel.on_drop();
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = StopReader {
            inner: reader,
            cancel,
        };
        let mut writer = writer;
        let ids = identities.as_ref().map(|i| i.0.as_slice());
        let r = pump::pump_with(&mut reader, codec, ids, &expect, &mut writer, progress);
        drop(writer);
        (r, reader.inner)
    });
    let (pumped, reader) = match task.await {
        Ok(x) => x,
        Err(e) => {
            group.kill();
            return Err(RestoreError::Io {
                what: "restore thread".into(),
                source: std::io::Error::other(e),
            });
        }
    };
    if pumped.is_err() {
        fault_delay().await;
        // Stop the download (it may still be writing) and anything else of this restore.
        group.kill();
    }
    drop(reader);
    let finished = Download {
        reader: dev_null()?,
        kind,
    }
    .finish()
    .await;
    match (pumped, finished) {
        (Ok(p), Ok(())) => Ok(p),
        (Ok(_), Err(e)) => {
            group.kill();
            Err(RestoreError::Download { key, source: e })
        }
        // A failed download explains a short read better than the size check does.
        (Err(PumpError::Size { .. } | PumpError::Source(_)), Err(e)) => {
            Err(RestoreError::Download { key, source: e })
        }
        (Err(source), _) => Err(RestoreError::Integrity { key, source }),
    }
}

/// Read and check the whole backup (size, sha256, decryption, decompression) and hand its bytes to
/// nobody: the first pass of a restore whose tool cannot roll back.
pub async fn check(src: &Source<'_>) -> Result<Pumped, RestoreError> {
    let group = ProcGroup::new();
    let checked = transfer(src, &group, std::io::sink()).await;
    group.kill();
    checked
}

/// Fault injection for tests: wait this long between a failed check and killing the restore tool,
/// so a test can prove the tool cannot commit in the meantime (it has seen neither EOF nor the
/// stream's last bytes). Unset in normal use.
async fn fault_delay() {
    if let Some(ms) = std::env::var("DBSTASH_TEST_KILL_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000))).await;
    }
}

fn dev_null() -> Result<File, RestoreError> {
    File::open("/dev/null").map_err(|source| RestoreError::Io {
        what: "open /dev/null".into(),
        source,
    })
}

/// What a restore tool said on success.
pub struct ToolDone {
    pub pumped: Pumped,
    pub stderr: String,
}

/// Stream the backup into `spec`'s stdin; the tool sees EOF only after a good verdict.
pub async fn into_tool(
    src: &Source<'_>,
    spec: &CommandSpec,
    base: &Path,
    secrets: &[Secret],
) -> Result<ToolDone, RestoreError> {
    let (tool, writer) = Tool::start(spec, base)?;
    let result = transfer(src, &tool.started.group, writer).await;
    tool.finish(result, secrets).await
}

/// A restore tool reading its stdin, with dbstash's own copy of that stdin: the tool sees EOF
/// only when [`Tool::finish`] has a good verdict.
pub struct Tool<'a> {
    spec: &'a CommandSpec,
    started: run_dir::Started,
    hold: File,
}

impl<'a> Tool<'a> {
    /// Start `spec`; returns it and the writer for the stream.
    pub fn start(spec: &'a CommandSpec, base: &Path) -> Result<(Self, File), RestoreError> {
        let started = run_dir::start(spec, base, Stdio::null(), "restore")?;
        let io_err = |source: std::io::Error| RestoreError::Io {
            what: format!("{} stdin", spec.program),
            source,
        };
        let mut started = started;
        let fds = started
            .child
            .stdin
            .take()
            .ok_or_else(|| io_err(std::io::Error::other("no stdin")))
            .and_then(|s| s.into_owned_fd().map(File::from).map_err(io_err))
            // A 1 MiB pipe (as the download's): the pump decodes ahead while the tool is busy,
            // and the two trade bytes in fewer wake-ups.
            .inspect(crate::proc::widen_pipe)
            // Our own copy: the tool sees EOF only when this is dropped.
            .and_then(|w| w.try_clone().map(|h| (w, h)).map_err(io_err));
        match fds {
            Ok((writer, hold)) => Ok((
                Tool {
                    spec,
                    started,
                    hold,
                },
                writer,
            )),
            Err(e) => {
                started.group.kill();
                Err(e)
            }
        }
    }

    /// After the transfer (`result`): on success let the tool see EOF and wait for it; on
    /// failure kill it before it can see EOF.
    pub async fn finish(
        self,
        result: Result<Pumped, RestoreError>,
        secrets: &[Secret],
    ) -> Result<ToolDone, RestoreError> {
        let refs: Vec<&Secret> = secrets.iter().collect();
        let Tool {
            spec,
            started:
                run_dir::Started {
                    dir: _dir, // keeps the option files until the tool is done
                    group,
                    mut child,
                    mut tail,
                },
            hold,
        } = self;
        match result {
            Ok(pumped) => {
                drop(hold);
                let status = child.wait().await;
                let stderr = redact(&tail.finish().await, &refs);
                group.kill();
                match status {
                    Ok(s) if s.success() => Ok(ToolDone { pumped, stderr }),
                    Ok(s) => Err(RestoreError::Tool {
                        program: spec.program.clone(),
                        status: super::error::ToolEnd::of(s),
                        tail: or_silent(stderr),
                    }),
                    Err(e) => Err(RestoreError::Io {
                        what: format!("{} wait", spec.program),
                        source: e,
                    }),
                }
            }
            Err(e) => {
                // Kill before EOF: the tool must not take a partial stream for a complete one.
                group.kill();
                let _ = child.start_kill();
                let status = child.wait().await;
                drop(hold);
                let stderr = redact(&tail.finish().await, &refs);
                if let RestoreError::Integrity {
                    source: PumpError::Sink(_),
                    ..
                } = &e
                {
                    // The tool stopped reading: its own failure is the story.
                    let status = match status {
                        Ok(s) if s.success() => super::error::ToolEnd::StoppedReading,
                        Ok(s) => super::error::ToolEnd::of(s),
                        Err(e) => super::error::ToolEnd::Wait(e),
                    };
                    return Err(RestoreError::Tool {
                        program: spec.program.clone(),
                        status,
                        tail: or_silent(stderr),
                    });
                }
                if !stderr.is_empty() {
                    tracing::debug!(event = "restore_tool_stderr", tool = %spec.program, "{stderr}");
                }
                Err(e)
            }
        }
    }
}

/// A tool's stderr tail for a message, or a note that it said nothing.
pub(super) fn or_silent(t: String) -> String {
    if t.is_empty() {
        "(no output on stderr)".into()
    } else {
        t
    }
}

/// A new file beside `dest` (same folder, so the final rename is atomic), removed unless kept.
pub struct Sibling {
    pub path: PathBuf,
    keep: bool,
}

impl Sibling {
    pub fn name_for(dest: &Path) -> Result<PathBuf, RestoreError> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| super::UsageError::NotAFilePath {
                path: dest.to_path_buf(),
            })?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(dir.join(format!(".{name}.dbstash-restore-{}", &id[..8])))
    }

    /// Reserve a path for a tool to create (the file does not exist yet).
    pub fn reserve(dest: &Path) -> Result<Self, RestoreError> {
        Ok(Sibling {
            path: Self::name_for(dest)?,
            keep: false,
        })
    }

    /// Create the file (0600) and return it.
    pub fn create(dest: &Path) -> Result<(Self, File), RestoreError> {
        let path = Self::name_for(dest)?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| RestoreError::Io {
                what: format!("cannot create {}", path.display()),
                source,
            })?;
        Ok((Sibling { path, keep: false }, f))
    }

    /// fsync, remove `stale` companions, rename over `dest`, fsync the folder. The file keeps the
    /// 0600 it was created with, also when it replaces a file that had a wider mode.
    pub fn commit(mut self, dest: &Path, stale: &[&str]) -> Result<(), RestoreError> {
        let io = |what: String| move |source| RestoreError::Io { what, source };
        let f = File::open(&self.path).map_err(io(format!("open {}", self.path.display())))?;
        f.sync_all()
            .map_err(io(format!("fsync {}", self.path.display())))?;
        for suffix in stale {
            let p = PathBuf::from(format!("{}{suffix}", dest.display()));
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(format!("remove {}", p.display()))(e)),
            }
        }
        std::fs::rename(&self.path, dest).map_err(io(format!(
            "rename {} to {}",
            self.path.display(),
            dest.display()
        )))?;
        self.keep = true;
        if let Some(dir) = dest.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        if !self.keep {
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
            }
        }
    }
}

/// Stream the backup into a new file beside `dest` (not yet renamed: the caller checks it first).
pub async fn into_file(src: &Source<'_>, dest: &Path) -> Result<(Sibling, Pumped), RestoreError> {
    let (sib, file) = Sibling::create(dest)?;
    let group = ProcGroup::new();
    let pumped = transfer(src, &group, file).await?;
    group.kill();
    Ok((sib, pumped))
}
