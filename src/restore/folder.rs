//! Restoring a `tar`-mode backup: the verified stream is unpacked into a private folder, and only
//! when size and sha256 matched the record does the restore tool read that folder
//! (`pg_restore --format=directory`, `mongorestore --dir`).

use super::layout::Payload;
use super::pipeline::{self, Source, ToolDone};
use super::pump::Pumped;
use super::run_dir::{self, RunDir};
use super::target::Target;
use super::{BackupProblem, CheckError, FolderProblem, RestoreError};
use crate::cancel::{Cancel, StopReader};
use crate::catalog::record::{self, FileSum};
use crate::engine;
use crate::model::Job;
use crate::proc::ProcGroup;
use crate::secret::{redact, Secret};
use crate::storage::Storage;
use std::fs::File;
use std::path::Component;
use std::path::Path;
use std::process::Stdio;

fn io(what: &str) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        what: what.to_string(),
        source,
    }
}

/// Does the unpacked mongodump folder hold gzipped files (`compress: native`)?
fn has_gz(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            has_gz(&p)
        } else {
            p.extension().is_some_and(|x| x == "gz")
        }
    })
}

/// Unpack a `tar`-mode backup into `out`, the stream checked (size, sha256) as it arrives.
async fn fetch_tar(src: &Source<'_>, out: &Path) -> Result<Pumped, RestoreError> {
    std::fs::create_dir(out).map_err(io("create the unpack folder"))?;
    let (r, w) = crate::proc::pipe().map_err(io("pipe"))?;
    let dest = out.to_path_buf();
    // Stops the unpacking thread at its next read if the restore is interrupted.
    let cancel = Cancel::new();
    let _stop_unpack = cancel.on_drop();
    let unpack = tokio::task::spawn_blocking(move || {
        let mut a = tar::Archive::new(StopReader {
            inner: File::from(r),
            cancel,
        });
        a.set_preserve_permissions(false);
        a.set_overwrite(false);
        // `unpack` refuses absolute paths and `..` components.
        a.unpack(&dest)
    });
    let group = ProcGroup::new();
    let pumped = pipeline::transfer(src, &group, File::from(w)).await;
    let unpacked = unpack
        .await
        .map_err(|e| io("unpack task")(std::io::Error::other(e)))?;
    let pumped = pumped?;
    unpacked.map_err(io("unpack the tar stream"))?;
    Ok(pumped)
}

/// Copy a `directory`-mode backup into `dest` and check every file against the record: the
/// same set of files, each with its size and sha256. Nothing else is trusted.
pub async fn fetch_dir(src: &Source<'_>, dest: &Path) -> Result<Pumped, RestoreError> {
    let rec = &src.backup.record;
    let key = src.backup.key.clone();
    let integrity = |problem: BackupProblem| RestoreError::from(CheckError::backup(&key, problem));
    if record::folder_digest(&rec.files) != rec.sha256 {
        return Err(integrity(BackupProblem::RecordDigest));
    }
    for f in &rec.files {
        let p = Path::new(&f.path);
        if p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(integrity(BackupProblem::UnsafePath {
                path: f.path.clone(),
            }));
        }
    }
    std::fs::create_dir_all(dest).map_err(io("create the download folder"))?;
    let group = ProcGroup::new();
    let fetched = src.store.download_dir(&key, dest, &group).await;
    group.kill();
    fetched.map_err(|e| RestoreError::Download {
        key: key.clone(),
        source: e,
    })?;
    let root = dest.to_path_buf();
    let files = rec.files.clone();
    let cancel = Cancel::new();
    let _stop_check = cancel.on_drop();
    let checked = tokio::task::spawn_blocking(move || check_tree(&root, &files, &cancel))
        .await
        .map_err(|e| io("check task")(std::io::Error::other(e)))?;
    checked.map_err(|e| integrity(e.into()))?;
    Ok(Pumped {
        stored: rec.size,
        raw: rec.raw_size,
        sha256: rec.sha256.clone(),
        head: Vec::new(),
    })
}

/// Every recorded file present with its size and sha256, and no file the record does not name.
/// Stops at its next read once `cancel` is set.
fn check_tree(root: &Path, files: &[FileSum], cancel: &Cancel) -> Result<(), FolderProblem> {
    use crate::run::relay::HashingWriter;
    let mut seen = 0usize;
    fn count(d: &Path) -> usize {
        std::fs::read_dir(d).map_or(0, |rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => count(&e.path()),
                    _ => 1,
                })
                .sum()
        })
    }
    for f in files {
        let path = root.join(&f.path);
        let mut file = StopReader {
            inner: File::open(&path).map_err(|source| FolderProblem::Missing {
                path: f.path.clone(),
                source,
            })?,
            cancel: cancel.clone(),
        };
        let mut h = HashingWriter::new(std::io::sink());
        let size = std::io::copy(&mut file, &mut h).map_err(|source| FolderProblem::Read {
            path: f.path.clone(),
            source,
        })?;
        let (_, _, sha) = h.finish();
        if size != f.size {
            return Err(FolderProblem::Size {
                path: f.path.clone(),
                size,
                expected: f.size,
            });
        }
        if sha != f.sha256 {
            return Err(FolderProblem::Digest {
                path: f.path.clone(),
                sha256: sha,
                expected: f.sha256.clone(),
            });
        }
        seen += 1;
    }
    let present = count(root);
    if present != seen {
        return Err(FolderProblem::Count {
            present,
            named: seen,
        });
    }
    Ok(())
}

/// Restore a `tar` or `directory` backup: the folder is rebuilt in a private place and checked,
/// and only then does the restore tool read it.
pub async fn restore_folder(
    job: &Job,
    target: &Target,
    src: &Source<'_>,
    base: &Path,
    secrets: &[Secret],
) -> Result<ToolDone, RestoreError> {
    let refs: Vec<&Secret> = secrets.iter().collect();
    let work = RunDir::create(base)?;
    let out = work.path().join("dump");
    let pumped = match src.layout.payload {
        Payload::Directory => fetch_dir(src, &out).await?,
        _ => fetch_tar(src, &out).await?,
    };
    let stderr = run_tool(job, target, &out, base, &refs).await?;
    Ok(ToolDone { pumped, stderr })
}

/// The engine's folder tool (`pg_restore --format=directory DIR`, `mongorestore --dir DIR`),
/// into the target.
async fn run_tool(
    job: &Job,
    target: &Target,
    out: &Path,
    base: &Path,
    refs: &[&Secret],
) -> Result<String, RestoreError> {
    let spec = engine::restore::folder_tool(job, &target.job, target.owners, out, has_gz(out));
    let run_dir::Started {
        dir: _dir,
        group,
        mut child,
        mut tail,
    } = run_dir::start(&spec, base, Stdio::null(), "restore")?;
    drop(child.stdin.take());
    let status = child.wait().await;
    let stderr = redact(&tail.finish().await, refs);
    group.kill();
    match status {
        Ok(s) if s.success() => Ok(stderr),
        Ok(s) => Err(RestoreError::Tool {
            program: spec.program.clone(),
            status: super::error::ToolEnd::of(s),
            tail: if stderr.is_empty() {
                "(no output on stderr)".into()
            } else {
                stderr
            },
        }),
        Err(e) => Err(io("wait for the restore tool")(e)),
    }
}
