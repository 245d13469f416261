//! A private (0700) folder per restore step — an unpacked backup, the tools' 0600 option files —
//! at `<base>/restore/<id>`, removed on drop. It is a [`RunFolder`]: its locked owner file lets the
//! next restore, `prune` or the supervisor remove it when a killed restore left it behind, and
//! never while its restore lives.

use super::RestoreError;
use crate::domain::command::CommandSpec;
use crate::proc::{self, ProcGroup, StderrTail};
use crate::run::stale::{self, RunFolder};
use std::path::Path;
use std::process::Stdio;

pub struct RunDir {
    folder: RunFolder,
}

impl RunDir {
    pub fn create(base: &Path) -> Result<Self, RestoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let folder = RunFolder::create_in(base, stale::RESTORE, &id[..12])?;
        Ok(RunDir { folder })
    }

    pub fn path(&self) -> &Path {
        self.folder.path()
    }
}

/// Remove what dead restores (and backup runs) left under `base` and the system temp folder,
/// before a restore adds its own. Blocking file system work: a dead restore may have left a whole
/// unpacked backup.
pub async fn sweep_dead(base: &Path) {
    let base = base.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || stale::sweep_logged(&base)).await;
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
    // The folder is new, so the files are created new (never written through something that is
    // already there), exactly as a backup's are.
    proc::write_private_files(dir.path(), spec).map_err(|source| RestoreError::Io {
        what: format!("cannot write the option files in {}", dir.path().display()),
        source,
    })?;
    // Debian's Perl wrapper skipped where it can be (see engine::pg_wrapper).
    let mut cmd = proc::command(&crate::engine::pg_wrapper::direct(spec), Some(dir.path()));
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
