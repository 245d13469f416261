//! SQLite in-process: the snapshot a backup uploads, and opening a restored file to check it.
//!
//! The snapshot is SQLite's online backup API run inside ONE read transaction on the source.
//! Stepping the backup without one lets every commit in between restart the copy from page 1
//! (a livelock under a steady writer); with it, the copy reads one frozen version of the
//! database however many commits land meanwhile. In WAL mode readers do not block writers, so the
//! application keeps committing; in rollback-journal mode its commits wait for the copy (as they
//! would for any reader).
//!
//! The copy runs on a blocking thread in bounded chunks and stops between two chunks when its
//! future is dropped — which is how a run's timeout and dbstash's shutdown reach it
//! (`run::backup` drops the unfinished work) — so it never outlives its run nor holds the process
//! up at exit. The same holds while it waits for another connection's lock. The relay that then
//! reads the copy (compressing it into a local file can take minutes) is stopped the same way:
//! see [`Snapshot::stop`].

use crate::cancel::Cancel;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pages copied per step: between two steps the copy looks for cancellation. 1024 pages is
/// 4 MiB at the default page size, a few milliseconds of work.
const PAGES_PER_STEP: i32 = 1024;
/// Pause before asking again when another connection holds a lock the copy needs.
const BUSY_PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("SQLite database {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot open SQLite database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("snapshot: cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot: cannot open the copy {path}: {source}")]
    Copy {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("SQLite snapshot of {path} failed: {source}")]
    Step {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("SQLite snapshot of {0} was stopped")]
    Cancelled(PathBuf),
    #[error("snapshot task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A finished snapshot: the file for the relay to read, and what stops that relay.
#[derive(Debug)]
pub struct Snapshot {
    pub file: File,
    /// Keep it alive as long as the relay may read `file`: dropping it cuts the file to zero
    /// length, so a relay still reading it (its run cut short by a timeout or by shutdown, the
    /// future that awaited it dropped) sees its end at once instead of reading on. The file is
    /// the run's private scratch copy, deleted with the run's folder either way.
    pub stop: StopReading,
}

/// See [`Snapshot::stop`]: a second handle on the snapshot file, which truncates it when dropped.
#[derive(Debug)]
pub struct StopReading(File);

impl Drop for StopReading {
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}

/// A consistent copy of the SQLite database `src` in the new private file `dst` (0600). Dropping
/// the future stops the copy within one step and removes `dst`.
pub async fn snapshot(src: PathBuf, dst: PathBuf) -> Result<Snapshot, SnapshotError> {
    let cancel = Cancel::new();
    let _stop_on_drop = cancel.on_drop();
    tokio::task::spawn_blocking(move || {
        let copied = copy(&src, &dst, &cancel).and_then(|()| open_copy(&dst));
        if copied.is_err() {
            let _ = std::fs::remove_file(&dst);
        }
        copied
    })
    .await?
}

fn open_copy(dst: &Path) -> Result<Snapshot, SnapshotError> {
    let failed = |source| SnapshotError::Create {
        path: dst.to_path_buf(),
        source,
    };
    let file = File::options()
        .read(true)
        .write(true)
        .open(dst)
        .map_err(failed)?;
    let stop = StopReading(file.try_clone().map_err(failed)?);
    Ok(Snapshot { file, stop })
}

/// The copy's stages: open the source, freeze one version of it, copy it page by page.
fn copy(src: &Path, dst: &Path, cancel: &Cancel) -> Result<(), SnapshotError> {
    if !src.exists() {
        return Err(SnapshotError::Missing(src.to_path_buf()));
    }
    let from = open_source(src)?;
    begin_read(&from, src, cancel)?;
    let mut to = create_copy(dst)?;
    copy_pages(&from, &mut to, src, cancel)
}

fn open_source(src: &Path) -> Result<Connection, SnapshotError> {
    Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| SnapshotError::Open {
        path: src.to_path_buf(),
        source,
    })
}

/// Open a read transaction and read from it, so it holds its snapshot of the database until the
/// connection closes (a bare `BEGIN` takes no lock). Waits, cancellably, while another connection
/// holds an exclusive lock.
fn begin_read(from: &Connection, src: &Path, cancel: &Cancel) -> Result<(), SnapshotError> {
    let failed = |source| SnapshotError::Open {
        path: src.to_path_buf(),
        source,
    };
    from.execute_batch("BEGIN").map_err(failed)?;
    loop {
        match from.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
            Ok(()) => return Ok(()),
            Err(e) if is_busy(&e) => wait_busy(src, cancel)?,
            Err(e) => return Err(failed(e)),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn wait_busy(src: &Path, cancel: &Cancel) -> Result<(), SnapshotError> {
    if cancel.is_set() {
        return Err(SnapshotError::Cancelled(src.to_path_buf()));
    }
    std::thread::sleep(BUSY_PAUSE);
    Ok(())
}

/// The destination: created 0600 first (SQLite would use the umask), no journal and no fsync —
/// it is a private scratch file, uploaded and deleted; a crash just means another run.
fn create_copy(dst: &Path) -> Result<Connection, SnapshotError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(|source| SnapshotError::Create {
            path: dst.to_path_buf(),
            source,
        })?;
    let copy_failed = |source| SnapshotError::Copy {
        path: dst.to_path_buf(),
        source,
    };
    let to = Connection::open(dst).map_err(copy_failed)?;
    to.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")
        .map_err(copy_failed)?;
    Ok(to)
}

/// Every page of the source's frozen version, `PAGES_PER_STEP` at a time, looking for
/// cancellation between steps.
fn copy_pages(
    from: &Connection,
    to: &mut Connection,
    src: &Path,
    cancel: &Cancel,
) -> Result<(), SnapshotError> {
    let failed = |source| SnapshotError::Step {
        path: src.to_path_buf(),
        source,
    };
    let backup = Backup::new(from, to).map_err(failed)?;
    loop {
        if cancel.is_set() {
            return Err(SnapshotError::Cancelled(src.to_path_buf()));
        }
        match backup.step(PAGES_PER_STEP).map_err(failed)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => wait_busy(src, cancel)?,
            // StepResult is non-exhaustive; anything new is treated as "try again".
            _ => wait_busy(src, cancel)?,
        }
    }
}

/// Open a finished SQLite file to inspect it without touching it: `immutable=1` takes no locks and
/// creates no `-wal`/`-shm` beside it, even for a WAL-mode file (a snapshot of a WAL database is
/// one, and a read-only open of it would otherwise leave both files behind).
pub fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        immutable_uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// `file:PATH?immutable=1`, the path's bytes percent-encoded where a URI needs it (`%`, `?`, `#`,
/// controls, non-ASCII). An absolute path gets an empty authority (`file:///…`), so a path that
/// starts with `//` is never read as a host name.
fn immutable_uri(path: &Path) -> String {
    use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
    use std::os::unix::ffi::OsStrExt;
    const URI_PATH: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#');
    let encoded = percent_encode(path.as_os_str().as_bytes(), URI_PATH);
    let authority = if path.is_absolute() { "//" } else { "" };
    format!("file:{authority}{encoded}?immutable=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn wal_db(path: &Path) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);
             PRAGMA user_version = 7;",
        )
        .unwrap();
    }

    #[test]
    fn uri_escapes_what_sqlite_would_parse() {
        assert_eq!(
            immutable_uri(Path::new("/a b/x?y#z%.db")),
            "file:///a b/x%3Fy%23z%25.db?immutable=1"
        );
        assert_eq!(
            immutable_uri(Path::new("rel/é.db")),
            "file:rel/%C3%A9.db?immutable=1"
        );
        assert_eq!(
            immutable_uri(Path::new("//srv/x.db")),
            "file:////srv/x.db?immutable=1"
        );
    }

    #[test]
    fn immutable_open_reads_a_wal_file_and_leaves_nothing_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let odd = d.path().join("we?ird #1%");
        std::fs::create_dir(&odd).unwrap();
        let src = odd.join("src.db");
        wal_db(&src);
        let copy = odd.join("copy.db");
        std::fs::copy(&src, &copy).unwrap();
        let before = files_in(&odd);
        let c = open_immutable(&copy).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let check: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap();
        drop(c);
        assert_eq!((n, check.as_str()), (2, "ok"));
        assert_eq!(files_in(&odd), before, "immutable open created files");
    }

    #[tokio::test]
    async fn snapshot_copies_pages_and_metadata_into_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src.db");
        wal_db(&src);
        let dst = d.path().join("snap.db");
        let snap = snapshot(src, dst.clone()).await.unwrap();
        drop(snap.file);
        let mode = std::fs::metadata(&dst).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = open_immutable(&dst).unwrap();
        let (n, v): (i64, i64) = c
            .query_row(
                "SELECT (SELECT count(*) FROM t), (SELECT user_version FROM pragma_user_version)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, v), (2, 7));
    }

    /// A relay reading the snapshot when its run is cut short sees the end of the file.
    #[tokio::test]
    async fn dropping_stop_ends_a_reader_of_the_snapshot() {
        use std::io::Read;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src.db");
        wal_db(&src);
        let snap = snapshot(src, d.path().join("snap.db")).await.unwrap();
        let mut file = snap.file;
        let mut first = [0u8; 16];
        file.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"SQLite format 3\0");
        drop(snap.stop);
        let mut rest = Vec::new();
        assert_eq!(
            file.read_to_end(&mut rest).unwrap(),
            0,
            "read on after stop"
        );
    }

    #[tokio::test]
    async fn a_missing_database_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let e = snapshot(d.path().join("nope.db"), d.path().join("snap.db"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert_eq!(files_in(d.path()), Vec::<String>::new());
    }

    /// Waiting for another connection's exclusive lock, the copy stops as soon as its future is
    /// dropped (a run's timeout), and removes its file.
    #[tokio::test]
    async fn dropping_the_snapshot_stops_a_copy_waiting_for_a_lock() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src.db");
        let hold = Connection::open(&src).unwrap();
        hold.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1); BEGIN EXCLUSIVE;")
            .unwrap();
        let dst = d.path().join("snap.db");
        let cut = tokio::time::timeout(
            Duration::from_millis(300),
            snapshot(src.clone(), dst.clone()),
        )
        .await;
        assert!(cut.is_err(), "the copy finished despite the lock");
        // Once the copy thread has seen the drop (within one pause), the lock goes away: a copy
        // that ignored the drop would now go on and write its file.
        std::thread::sleep(Duration::from_millis(200));
        drop(hold);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !dst.exists(),
            "the copy went on after its future was dropped"
        );
    }
}
