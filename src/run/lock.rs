//! One run of a job at a time, across processes: an exclusive `flock` on
//! `<temp_dir>/locks/<job>.lock`. flock locks belong to the open file, so a second attempt in the
//! same process is refused too. The kernel drops the lock when dbstash dies.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug)]
pub struct JobLock {
    _lock: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("job `{job}` is already running (lock {path} is held{holder})")]
    Busy {
        job: String,
        path: String,
        holder: String,
    },
    #[error("cannot create lock {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub fn try_lock(temp_dir: &Path, job: &str) -> Result<JobLock, LockError> {
    let dir = temp_dir.join("locks");
    let path = dir.join(format!("{job}.lock"));
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    // Private whatever the umask (temp_dir and locks/ 0700, the lock file 0600).
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    // A lock file an older version made under a loose umask is tightened too (best effort: it
    // may belong to another user, whose lock still works).
    let _ = file.set_permissions(fs::Permissions::from_mode(0o600));
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            // Who holds it, for the message another process prints.
            let _ = lock.set_len(0);
            let _ = writeln!(&mut *lock, "pid {}", std::process::id());
            Ok(JobLock { _lock: lock })
        }
        Err((_, _)) => {
            let holder = fs::read_to_string(&path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| format!(" by {s}"))
                .unwrap_or_default();
            Err(LockError::Busy {
                job: job.to_string(),
                path: path.display().to_string(),
                holder,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let a = try_lock(d.path(), "app").unwrap();
        let e = try_lock(d.path(), "app").unwrap_err();
        assert!(e.to_string().contains("already running"), "{e}");
        assert!(try_lock(d.path(), "other").is_ok());
        drop(a);
        assert!(try_lock(d.path(), "app").is_ok());
    }

    #[test]
    fn lock_folder_and_file_are_private() {
        let d = tempfile::tempdir().unwrap();
        let temp = d.path().join("tmp");
        let _l = try_lock(&temp, "app").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&temp), 0o700);
        assert_eq!(mode(&temp.join("locks")), 0o700);
        assert_eq!(mode(&temp.join("locks/app.lock")), 0o600);
    }
}
