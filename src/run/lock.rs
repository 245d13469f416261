//! One run of a job at a time, across processes: an exclusive `flock` on
//! `<temp_dir>/locks/<job>.lock`. flock locks belong to the open file, so a second attempt in the
//! same process is refused too. The kernel drops the lock when dbstash dies.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
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
    fs::create_dir_all(&dir).map_err(io)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
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
}
