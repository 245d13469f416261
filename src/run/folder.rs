//! `tar` mode's first half: the dump tool writes a folder in the run's private temp space (checked
//! for room first), which is then streamed as a tar archive into the same relay as stream mode.

use crate::cancel::{Cancel, StopWriter};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Free bytes for an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// The temp space cannot hold the dump folder, or its free space cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("cannot read free space of {}: {source}", dir.display())]
    Unreadable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("not enough temp space in {}: {} free, about {} needed for the dump folder (previous backup's size or `expected_size`, plus 10%); free space or point `settings.temp_dir` elsewhere", dir.display(), crate::domain::units::human_size(*free), crate::domain::units::human_size(*need))]
    TooLittle { dir: PathBuf, free: u64, need: u64 },
}

/// Refuse up front when the temp space cannot hold a dump of about `estimate` bytes (the previous
/// backup's raw size, or the job's `expected_size`), with 10% headroom.
pub fn check_space(dir: &Path, estimate: Option<u64>) -> Result<(), SpaceError> {
    let Some(need) = estimate else { return Ok(()) };
    let need = need.saturating_add(need / 10);
    let free = free_bytes(dir).map_err(|source| SpaceError::Unreadable {
        dir: dir.to_path_buf(),
        source,
    })?;
    if free < need {
        return Err(SpaceError::TooLittle {
            dir: dir.to_path_buf(),
            free,
            need,
        });
    }
    Ok(())
}

/// Total bytes of the regular files under `dir` (what the dump tool wrote).
pub fn folder_size(dir: &Path) -> u64 {
    fn walk(d: &Path, total: &mut u64) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), total),
                Ok(t) if t.is_file() => *total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    let mut total = 0;
    walk(dir, &mut total);
    total
}

/// A tar stream of `dir`'s contents (paths relative to it), written by a blocking task into a
/// pipe whose read end is returned for the relay. The task's result must be judged before the
/// backup is committed: if it fails, the relay sees an early EOF that looks like a complete stream.
/// The task stops at its next write once `cancel` is set (a run cut short: dropping the task's
/// handle would not stop it, and the process would wait for it at exit).
pub fn tar_stream(
    dir: PathBuf,
    cancel: Cancel,
) -> io::Result<(File, tokio::task::JoinHandle<io::Result<()>>)> {
    let (r, w) = crate::proc::pipe()?;
    let task = tokio::task::spawn_blocking(move || {
        let out = StopWriter {
            inner: File::from(w),
            cancel,
        };
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Deterministic);
        b.append_dir_all(".", &dir)?;
        b.into_inner()?.flush()
    });
    Ok((File::from(r), task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test]
    async fn tar_stream_holds_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("toc.dat"), b"PGDMP...").unwrap();
        std::fs::write(dir.path().join("sub/1.dat"), vec![7u8; 100_000]).unwrap();
        assert_eq!(folder_size(dir.path()), 100_008);
        let (mut r, task) = tar_stream(dir.path().to_path_buf(), Cancel::new()).unwrap();
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        task.await.unwrap().unwrap();
        let out = tempfile::tempdir().unwrap();
        tar::Archive::new(&bytes[..]).unpack(out.path()).unwrap();
        assert_eq!(
            std::fs::read(out.path().join("toc.dat")).unwrap(),
            b"PGDMP..."
        );
        assert_eq!(
            std::fs::read(out.path().join("sub/1.dat")).unwrap().len(),
            100_000
        );
    }

    /// A folder's tar stops at its next write once the flag is set: it ends with an error, not
    /// with a complete stream (the reader drains the pipe slowly to its end throughout).
    #[tokio::test]
    async fn tar_stream_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        // Dense: tar stores sparse files as such. ~5 s at the pace the reader below drains.
        std::fs::write(dir.path().join("big"), vec![1u8; 16 << 20]).unwrap();
        let cancel = Cancel::new();
        let (mut r, task) = tar_stream(dir.path().to_path_buf(), cancel.clone()).unwrap();
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            while r.read(&mut buf).is_ok_and(|n| n > 0) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        cancel.set();
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("stopped"), "{err}");
        drain.join().unwrap();
    }

    #[test]
    fn space_check_refuses_an_impossible_estimate() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_space(dir.path(), None).is_ok());
        assert!(check_space(dir.path(), Some(1)).is_ok());
        let e = check_space(dir.path(), Some(u64::MAX / 2)).unwrap_err();
        assert!(e.to_string().contains("not enough temp space"), "{e}");
    }
}
