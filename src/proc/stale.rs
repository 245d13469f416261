//! Run folders — a backup run's under `<temp_dir>/runs/`, a restore step's under
//! `<temp_dir>/restore/`, the shared rclone daemon's under `<temp_dir>/rclone/` — and the removal
//! of those a dead dbstash left behind.
//!
//! A run's folder holds its dump (tar and directory modes; a restore unpacks a whole backup there)
//! and its tools' option files, which may carry a password. A run killed by SIGKILL cannot remove it, so every folder carries an owner
//! file, `.dbstash-run`, on which the live run holds an exclusive `flock` (the kernel drops it
//! when the process dies, however it dies) and which names the run's process: its pid and that
//! process's start time, so that a reused pid is not taken for it.
//!
//! A folder is dead — and removed by the next backup or restore, `prune`, or the supervisor at
//! start — only when all of these hold, so that a folder is recognised positively and never by
//! its name:
//! - it is a real folder directly in `runs/` or `restore/` (a symlink is never followed nor
//!   removed);
//! - its owner file is a regular file that says it is one (a folder without one was not made
//!   here and stays);
//! - its lock can be taken (no live run holds it);
//! - no live process has the pid and start time it names.

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The owner file inside each run folder.
pub const OWNER_FILE: &str = ".dbstash-run";
/// The first word of an owner file's text: what makes it ours.
const OWNER_TAG: &str = "dbstash-run";
/// An owner file still empty this long after it was made belongs to a run that died between
/// creating it and writing it (microseconds apart in a live run).
const UNWRITTEN_GRACE: Duration = Duration::from_secs(60);
/// Owner files are one short line; anything longer is not ours.
const OWNER_MAX: u64 = 256;
/// The folders of `temp_dir` that hold owned run folders: backup runs, restore steps.
pub const RUNS: &str = "runs";
pub const RESTORE: &str = "restore";
/// The shared `rclone rcd`'s socket and scratch copies (`storage::rcd`).
pub const RCLONE: &str = "rclone";
const KINDS: [&str; 3] = [RUNS, RESTORE, RCLONE];

/// Where restore work goes when no manifest `temp_dir` is at hand (scheduled drills, `verify` of
/// a directory backup); swept with every `temp_dir`.
pub fn system_temp_dir() -> PathBuf {
    std::env::temp_dir().join("dbstash")
}

#[derive(Debug, thiserror::Error)]
pub enum RunFolderError {
    #[error("cannot create run folder {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the run folders in {path}: {source}")]
    Scan {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not cleaning {path}: it is a symlink or not a folder")]
    NotAFolder { path: String },
    #[error("cannot remove the dead run's folder {path}: {source}")]
    Remove {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The process behind a run folder, as written in its owner file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/PID/stat` field 22); 0 when
    /// unknown (no /proc), which then never matches a live process.
    start: u64,
}

impl Owner {
    fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: crate::proc::start_time(pid).unwrap_or(0),
        }
    }

    fn line(&self) -> String {
        format!("{OWNER_TAG} pid={} start={}\n", self.pid, self.start)
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut words = text.split_whitespace();
        if words.next()? != OWNER_TAG {
            return None;
        }
        let pid = words.next()?.strip_prefix("pid=")?.parse().ok()?;
        let start = words.next()?.strip_prefix("start=")?.parse().ok()?;
        Some(Owner { pid, start })
    }

    /// Is the process that wrote this still running (same pid, same start time)?
    fn alive(&self) -> bool {
        self.start != 0 && crate::proc::start_time(self.pid) == Some(self.start)
    }
}

/// A live run's private folder `<temp_dir>/runs/<id>` or `<temp_dir>/restore/<id>` (0700), owned
/// through its locked owner file. Dropping it removes the folder, then releases the lock.
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
    _owner: Flock<File>,
}

impl RunFolder {
    /// A backup run's folder, `<temp_dir>/runs/<id>`.
    pub fn create(temp_dir: &Path, id: &str) -> Result<Self, RunFolderError> {
        Self::create_in(temp_dir, RUNS, id)
    }

    /// `<temp_dir>/<kind>/<id>`, `kind` one of [`RUNS`], [`RESTORE`], [`RCLONE`] (the folders
    /// `sweep` looks in).
    pub fn create_in(
        temp_dir: &Path,
        kind: &'static str,
        id: &str,
    ) -> Result<Self, RunFolderError> {
        debug_assert!(KINDS.contains(&kind));
        let runs = temp_dir.join(kind);
        let path = runs.join(id);
        let err = |source| RunFolderError::Create {
            path: path.display().to_string(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&runs)
            .map_err(err)?;
        // Not recursive: the id is fresh, an existing folder of that name is not ours to reuse.
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(err)?;
        match claim(&path) {
            Ok(owner) => Ok(RunFolder {
                path,
                _owner: owner,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&path);
                Err(err(e))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        // Removed while still locked, so no sweeper can take the folder for a dead one's first.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Create the owner file in the new folder `dir`, lock it, and write who we are.
fn claim(dir: &Path) -> std::io::Result<Flock<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(OWNER_FILE))?;
    // Blocking: a sweeper may hold the lock for the instant it takes to see the file is empty.
    let mut owner =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))?;
    owner.write_all(Owner::me().line().as_bytes())?;
    Ok(owner)
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: Vec<PathBuf>,
    pub errors: Vec<RunFolderError>,
}

/// Remove every dead run's folder in `<temp_dir>/runs/`, `restore/` and `rclone/` (see the
/// module comment for "dead").
pub fn sweep(temp_dir: &Path) -> Swept {
    let mut out = Swept::default();
    for kind in KINDS {
        let Swept { removed, errors } = sweep_folder(&temp_dir.join(kind));
        out.removed.extend(removed);
        out.errors.extend(errors);
    }
    out
}

/// Remove every dead run's folder directly in `runs`.
fn sweep_folder(runs: &Path) -> Swept {
    let mut out = Swept::default();
    match fs::symlink_metadata(runs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(source) => {
            out.errors.push(RunFolderError::Scan {
                path: runs.display().to_string(),
                source,
            });
            return out;
        }
        Ok(m) if !m.file_type().is_dir() => {
            out.errors.push(RunFolderError::NotAFolder {
                path: runs.display().to_string(),
            });
            return out;
        }
        Ok(_) => {}
    }
    let entries = match fs::read_dir(runs) {
        Ok(rd) => rd,
        Err(source) => {
            out.errors.push(RunFolderError::Scan {
                path: runs.display().to_string(),
                source,
            });
            return out;
        }
    };
    for entry in entries.flatten() {
        // `file_type` does not follow symlinks: only real folders are looked into.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let Some(lock) = dead_owner(&dir) else {
            continue;
        };
        // Removed while we hold the dead owner's lock: a second sweeper skips it meanwhile.
        match fs::remove_dir_all(&dir) {
            Ok(()) => out.removed.push(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => out.errors.push(RunFolderError::Remove {
                path: dir.display().to_string(),
                source,
            }),
        }
        drop(lock);
    }
    out
}

/// `sweep` of `temp_dir` and of [`system_temp_dir`], with what it removed and what failed logged.
pub fn sweep_logged(temp_dir: &Path) -> Swept {
    let mut swept = sweep(temp_dir);
    let system = system_temp_dir();
    if system != temp_dir {
        let more = sweep(&system);
        swept.removed.extend(more.removed);
        swept.errors.extend(more.errors);
    }
    for dir in &swept.removed {
        tracing::info!(event = "stale_run_removed", folder = %dir.display(), "removed a dead run's temp folder");
    }
    for e in &swept.errors {
        tracing::warn!(event = "stale_run_cleanup_failed", error = %e);
    }
    swept
}

/// The locked owner file of `dir` when the folder is a dead run's; `None` when it is live, not
/// ours, or cannot be judged.
fn dead_owner(dir: &Path) -> Option<Flock<File>> {
    let file = open_owner(dir)?;
    let opened = file.metadata().ok()?;
    if !opened.file_type().is_file() || opened.len() > OWNER_MAX {
        return None;
    }
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    // Still the file at that path, not one another sweeper removed while we waited.
    let now = fs::symlink_metadata(dir.join(OWNER_FILE)).ok()?;
    if (now.dev(), now.ino()) != (opened.dev(), opened.ino()) {
        return None;
    }
    let mut text = String::new();
    (&mut *lock)
        .take(OWNER_MAX)
        .read_to_string(&mut text)
        .ok()?;
    match Owner::parse(&text) {
        Some(owner) if owner.alive() => None,
        Some(_) => Some(lock),
        None if text.is_empty() && older_than(&opened, UNWRITTEN_GRACE) => Some(lock),
        None => None,
    }
}

/// Open `dir/OWNER_FILE` read-only without following a symlink at either step.
fn open_owner(dir: &Path) -> Option<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let d = nix::fcntl::open(dir, flags | OFlag::O_DIRECTORY, Mode::empty()).ok()?;
    let f = nix::fcntl::openat(&d, OWNER_FILE, flags | OFlag::O_NONBLOCK, Mode::empty()).ok()?;
    Some(File::from(f))
}

fn older_than(meta: &fs::Metadata, age: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|d| d > age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A folder as a run that died would leave it: owner file naming a process that is gone.
    fn dead_folder(temp: &Path, id: &str) -> PathBuf {
        let dir = temp.join("runs").join(id);
        fs::create_dir_all(dir.join("u0/dump")).unwrap();
        fs::write(dir.join("u0/dump/toc.dat"), "data").unwrap();
        // pid_max is at most 2^22: this pid is never running.
        fs::write(dir.join(OWNER_FILE), "dbstash-run pid=4194305 start=1\n").unwrap();
        dir
    }

    #[test]
    fn owner_line_round_trips() {
        let me = Owner::me();
        assert_eq!(Owner::parse(&me.line()), Some(me));
        assert!(me.alive(), "{me:?}");
        assert_eq!(Owner::parse("something else pid=1 start=2"), None);
        assert_eq!(Owner::parse(""), None);
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        let me = Owner::me();
        let other = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!other.alive());
    }

    #[test]
    fn live_folder_is_private_kept_and_removed_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let f = RunFolder::create(t.path(), "abc").unwrap();
        assert_eq!(mode(f.path()), 0o700);
        assert_eq!(mode(&f.path().join(OWNER_FILE)), 0o600);
        assert_eq!(mode(&t.path().join("runs")), 0o700);
        // Our own pid is alive and the lock is held: a sweep keeps it.
        let s = sweep(t.path());
        assert!(s.removed.is_empty() && s.errors.is_empty(), "{s:?}");
        assert!(f.path().exists());
        let p = f.path().to_path_buf();
        drop(f);
        assert!(!p.exists());
    }

    #[test]
    fn folder_of_a_live_holder_is_kept_even_when_its_pid_looks_dead() {
        let t = tempfile::tempdir().unwrap();
        let dir = dead_folder(t.path(), "held");
        let f = File::open(dir.join(OWNER_FILE)).unwrap();
        let held = Flock::lock(f, FlockArg::LockExclusiveNonblock).unwrap();
        assert!(sweep(t.path()).removed.is_empty());
        assert!(dir.join("u0/dump/toc.dat").exists());
        drop(held);
        assert_eq!(sweep(t.path()).removed, vec![dir.clone()]);
        assert!(!dir.exists());
    }

    #[test]
    fn only_dead_owned_folders_go_and_symlinks_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dead = dead_folder(t.path(), "dead1");
        // A folder without an owner file: not made by dbstash.
        let foreign = t.path().join("runs/foreign");
        fs::create_dir_all(&foreign).unwrap();
        fs::write(foreign.join("keep"), "x").unwrap();
        // An owner file that is not ours.
        let odd = t.path().join("runs/odd");
        fs::create_dir_all(&odd).unwrap();
        fs::write(odd.join(OWNER_FILE), "hello").unwrap();
        // A symlink in runs/ to a folder that looks like a dead run's.
        let target = dead_folder(outside.path(), "victim");
        std::os::unix::fs::symlink(&target, t.path().join("runs/link")).unwrap();
        // The owner file itself a symlink to a dead-looking owner file.
        let sneaky = t.path().join("runs/sneaky");
        fs::create_dir_all(&sneaky).unwrap();
        std::os::unix::fs::symlink(target.join(OWNER_FILE), sneaky.join(OWNER_FILE)).unwrap();
        // Something else in temp_dir.
        fs::write(t.path().join("other"), "x").unwrap();

        let s = sweep(t.path());
        assert_eq!(s.removed, vec![dead], "{s:?}");
        assert!(s.errors.is_empty(), "{s:?}");
        assert!(foreign.join("keep").exists());
        assert!(odd.join(OWNER_FILE).exists());
        assert!(t.path().join("runs/link").symlink_metadata().is_ok());
        assert!(target.join("u0/dump/toc.dat").exists());
        assert!(sneaky.exists());
        assert!(t.path().join("other").exists());
    }

    #[test]
    fn runs_as_a_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = dead_folder(outside.path(), "v");
        std::os::unix::fs::symlink(outside.path().join("runs"), t.path().join("runs")).unwrap();
        let s = sweep(t.path());
        assert!(s.removed.is_empty());
        assert!(
            matches!(s.errors[..], [RunFolderError::NotAFolder { .. }]),
            "{s:?}"
        );
        assert!(victim.join("u0/dump/toc.dat").exists());
    }

    #[test]
    fn restore_folders_are_owned_and_swept_like_runs() {
        let t = tempfile::tempdir().unwrap();
        let live = RunFolder::create_in(t.path(), RESTORE, "live").unwrap();
        assert_eq!(live.path(), t.path().join("restore/live"));
        assert_eq!(mode(&t.path().join("restore")), 0o700);
        let dead = t.path().join("restore/dead");
        fs::create_dir_all(dead.join("dump")).unwrap();
        fs::write(dead.join("pg.pass"), "secret").unwrap();
        fs::write(dead.join(OWNER_FILE), "dbstash-run pid=4194305 start=1\n").unwrap();
        let run = dead_folder(t.path(), "run");
        let mut removed = sweep(t.path()).removed;
        removed.sort();
        assert_eq!(removed, vec![dead, run]);
        assert!(live.path().join(OWNER_FILE).exists());
    }

    #[test]
    fn an_owner_file_never_written_is_dead_only_when_old() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("runs/new");
        fs::create_dir_all(&dir).unwrap();
        let f = File::create(dir.join(OWNER_FILE)).unwrap();
        assert!(
            sweep(t.path()).removed.is_empty(),
            "a fresh empty owner file"
        );
        let old = SystemTime::now() - Duration::from_secs(3600);
        f.set_modified(old).unwrap();
        assert_eq!(sweep(t.path()).removed, vec![dir]);
    }
}
