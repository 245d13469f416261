//! A private (0700) folder per restore step for the tools' 0600 option files, removed on drop.

use super::RestoreError;
use crate::plan::command::CommandSpec;
use crate::proc::{self, ProcGroup, StderrTail};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn create(base: &Path) -> Result<Self, RestoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let path = base.join("restore").join(&id[..12]);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|source| RestoreError::Io {
                what: format!("cannot create private folder {}", path.display()),
                source,
            })?;
        Ok(RunDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn write_private_files(dir: &Path, spec: &CommandSpec) -> Result<(), RestoreError> {
    use std::io::Write;
    for f in &spec.files {
        let p = dir.join(&f.name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .map_err(|source| RestoreError::Io {
                what: format!("cannot write {}", p.display()),
                source,
            })?;
        file.write_all(f.contents.expose().as_bytes())
            .map_err(|source| RestoreError::Io {
                what: format!("cannot write {}", p.display()),
                source,
            })?;
    }
    Ok(())
}

/// A restore-side tool: its option files in a private folder, the child in its own process group
/// (stdin piped), its stderr drained into a tail.
pub struct Started {
    pub dir: RunDir,
    pub group: ProcGroup,
    pub child: tokio::process::Child,
    pub tail: StderrTail,
}

pub fn start(
    spec: &CommandSpec,
    base: &Path,
    stdout: Stdio,
    who: &'static str,
) -> Result<Started, RestoreError> {
    let dir = RunDir::create(base)?;
    write_private_files(dir.path(), spec)?;
    let mut cmd = proc::command(spec, Some(dir.path()));
    cmd.stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped());
    let group = ProcGroup::new();
    let mut child = group
        .spawn(&mut cmd)
        .map_err(|source| RestoreError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
    let tail = child
        .stderr
        .take()
        .map_or_else(StderrTail::empty, |e| StderrTail::spawn(e, who));
    Ok(Started {
        dir,
        group,
        child,
        tail,
    })
}
