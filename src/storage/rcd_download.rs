//! A small object read back through the shared `rclone rcd` (its `--rc-serve`: `GET
//! /[remote]/key`) instead of a `rclone cat` process of its own. A restore's stream could start
//! only once that process had started (~50 ms of Go start-up, more on a busy host), which is most
//! of what a small restore costs over a shell pipe; the daemon is running already.
//!
//! The caller knows how large the object is: it asked (`operations/stat`, which also says the key
//! is one file), and then the answer must be 200 with exactly that `Content-Length`; or the record
//! says so (a restore), and then the answer's own `Content-Length` is read (a missing object or a
//! folder is a 404), whatever it is: a different length is the integrity check's to report, as a
//! replaced object. Either way the body must be as long as announced. A thread copies
//! the body into a pipe for the reader (as `cat`'s stdout was), counting; `finish` says whether
//! every byte came. The integrity check after it (size, sha256 from the record) is unchanged.
//! Objects over `MAX` keep `cat` (the copy through the thread costs CPU a large restore would
//! feel).

use super::rcd::{self, Daemon};
use super::StorageError;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Objects larger than this are read by their own `rclone cat`.
pub const MAX: u64 = 64 << 20;
/// How long the daemon gets to start answering (it opens the object first).
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// A stalled body fails the read after this long without a byte.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether `key` of `remote`, `size` bytes, may be read through the daemon: small enough, and a
/// remote the URL's `[remote]` part can carry.
pub fn suits(remote: &str, size: u64) -> bool {
    size <= MAX && !remote.contains(']') && !remote.contains('\n')
}

/// `/[remote]/key`, percent-encoded (rclone decodes the path before it splits it).
fn path(remote: &str, key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "/{}/{}",
        utf8_percent_encode(&format!("[{remote}]"), KEEP),
        utf8_percent_encode(key, KEEP)
    )
}

/// What the caller knows of the object's size.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// The remote said so a moment ago: the answer must agree.
    Stat(u64),
    /// Its record says so: the answer says what it is.
    Record(u64),
}

/// A running read through the daemon.
pub struct DaemonDownload {
    copier: Option<std::thread::JoinHandle<io::Result<u64>>>,
    side: UnixStream,
    size: u64,
    key: String,
}

/// Ask the daemon for `key` (a file of `size` bytes): the pipe its bytes arrive on, once the
/// daemon has said yes. `Err` with rclone's message when it says no.
pub async fn begin(
    d: &Daemon,
    remote: &str,
    key: &str,
    length: Length,
) -> Result<(File, DaemonDownload), StorageError> {
    begin_at(d.socket(), remote, key, length).await
}

async fn begin_at(
    sock: &std::path::Path,
    remote: &str,
    key: &str,
    length: Length,
) -> Result<(File, DaemonDownload), StorageError> {
    let request = format!("GET {} HTTP/1.0\r\nHost: rcd\r\n\r\n", path(remote, key));
    let sock = sock.to_path_buf();
    let k = key.to_string();
    let opened = tokio::task::spawn_blocking(move || open(&sock, &request, length, &k))
        .await
        .map_err(|source| StorageError::Task {
            what: "rclone rcd read",
            source,
        })??;
    let (body, side, size) = opened;
    let (reader, writer) = crate::proc::pipe().map_err(|source| io_err(key, source))?;
    let mut writer = File::from(writer);
    crate::proc::widen_pipe(&writer);
    let copier = std::thread::Builder::new()
        .name("rcd-download".into())
        .spawn(move || {
            let mut body = body;
            // Ends early if the reader goes (a failed restore): the pipe breaks.
            io::copy(&mut (&mut body).take(size), &mut writer).and_then(|n| {
                writer.flush()?;
                Ok(n)
            })
        })
        .map_err(|source| io_err(key, source))?;
    Ok((
        File::from(reader),
        DaemonDownload {
            copier: Some(copier),
            side,
            size,
            key: key.to_string(),
        },
    ))
}

fn io_err(key: &str, source: io::Error) -> StorageError {
    StorageError::Io {
        op: "cat",
        key: key.to_string(),
        source,
    }
}

/// Connect, ask, and read the answer's head: the body's reader when it is the object's bytes.
fn open(
    sock: &std::path::Path,
    request: &str,
    length: Length,
    key: &str,
) -> Result<(BufReader<UnixStream>, UnixStream, u64), StorageError> {
    let fail = |source| io_err(key, source);
    let mut s = UnixStream::connect(sock).map_err(fail)?;
    s.set_read_timeout(Some(HEAD_TIMEOUT)).map_err(fail)?;
    s.write_all(request.as_bytes()).map_err(fail)?;
    let side = s.try_clone().map_err(fail)?;
    let mut r = BufReader::new(s);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        (&mut r)
            .take(16 * 1024)
            .read_until(b'\n', &mut head)
            .map_err(fail)?;
        if head.len() == before || head.len() >= 16 * 1024 {
            return Err(fail(io::Error::other(
                "the daemon's answer has no end of head",
            )));
        }
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        let mut body = Vec::new();
        let _ = r.take(rcd::MAX_REPLY).read_to_end(&mut body);
        let mut raw = head;
        raw.extend_from_slice(&body);
        let message = match rcd::parse_reply(&raw) {
            Err(rcd::RcFail::Failed { message, .. }) => message,
            _ => format!("HTTP status {status}"),
        };
        return Err(StorageError::Rc {
            op: "cat",
            key: key.to_string(),
            status,
            message,
        });
    }
    let announced = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<u64>().ok())?
    });
    let size = match (length, announced) {
        (Length::Stat(size), Some(a)) if a == size => size,
        (Length::Record(_), Some(a)) => a,
        (Length::Stat(size), _) => {
            return Err(fail(io::Error::other(format!(
                "the daemon offers {announced:?} bytes where the object has {size}"
            ))))
        }
        (Length::Record(_), None) => {
            return Err(fail(io::Error::other(
                "the daemon's answer does not say how long it is",
            )))
        }
    };
    r.get_ref()
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .map_err(fail)?;
    Ok((r, side, size))
}

impl DaemonDownload {
    /// Every byte arrived (the reader may have stopped early: then this is the shortfall).
    pub(super) async fn finish(mut self) -> Result<(), StorageError> {
        let Some(copier) = self.copier.take() else {
            return Ok(());
        };
        let key = self.key.clone();
        let size = self.size;
        let copied = tokio::task::spawn_blocking(move || copier.join())
            .await
            .map_err(|source| StorageError::Task {
                what: "rclone rcd read",
                source,
            })?;
        match copied {
            Ok(Ok(n)) if n == size => Ok(()),
            Ok(Ok(n)) => Err(io_err(
                &key,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the daemon's answer ended after {n} of {size} bytes"),
                ),
            )),
            Ok(Err(e)) => Err(io_err(&key, e)),
            Err(_) => Err(io_err(
                &key,
                io::Error::other("the copying thread panicked"),
            )),
        }
    }
}

impl Drop for DaemonDownload {
    /// Stop the copy (a restore cut short): the connection goes, the thread's next read fails.
    fn drop(&mut self) {
        if self.copier.is_some() {
            let _ = self.side.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-answer server on a fresh socket: it reads the request and writes `answer`.
    fn server(answer: &'static [u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("rc.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = c.read(&mut req);
            let _ = c.write_all(answer);
        });
        (dir, sock)
    }

    async fn read_all(sock: &std::path::Path, size: u64) -> Result<Vec<u8>, StorageError> {
        read_as(sock, Length::Stat(size)).await
    }

    async fn read_as(sock: &std::path::Path, length: Length) -> Result<Vec<u8>, StorageError> {
        let (mut reader, dl) = begin_at(sock, "t:b", "j/a.sql", length).await?;
        let bytes = tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            reader.read_to_end(&mut v).map(|_| v)
        })
        .await
        .unwrap()
        .unwrap();
        dl.finish().await.map(|()| bytes)
    }

    #[tokio::test]
    async fn a_whole_answer_is_the_objects_bytes() {
        let (_d, sock) = server(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(read_all(&sock, 5).await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_short_answer_fails_the_download() {
        let (_d, sock) = server(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nhello");
        let e = read_all(&sock, 10).await.unwrap_err().to_string();
        assert!(e.contains("ended after 5 of 10 bytes"), "{e}");
    }

    #[tokio::test]
    async fn another_length_or_an_error_is_refused_before_any_byte() {
        let (_d, sock) = server(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nhell");
        let e = read_all(&sock, 5).await.unwrap_err().to_string();
        assert!(
            e.contains("offers Some(4) bytes where the object has 5"),
            "{e}"
        );
        let (_d, sock) = server(
            b"HTTP/1.0 500 Internal Server Error\r\n\r\n{\"error\":\"failed to find object\"}",
        );
        match read_all(&sock, 5).await {
            Err(StorageError::Rc {
                status: 500,
                message,
                ..
            }) => assert_eq!(message, "failed to find object"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn with_the_records_size_the_answer_says_how_long_the_object_is() {
        // The object was replaced: its bytes come through whole, for the integrity check to judge.
        let (_d, sock) = server(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nhell");
        assert_eq!(read_as(&sock, Length::Record(5)).await.unwrap(), b"hell");
        // Still every announced byte, or the download fails.
        let (_d, sock) = server(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nhell");
        let e = read_as(&sock, Length::Record(4)).await.unwrap_err();
        assert!(e.to_string().contains("ended after 4 of 9 bytes"), "{e}");
        // No length, no stream.
        let (_d, sock) = server(b"HTTP/1.0 200 OK\r\n\r\nhell");
        let e = read_as(&sock, Length::Record(4)).await.unwrap_err();
        assert!(e.to_string().contains("does not say how long"), "{e}");
        let (_d, sock) = server(b"HTTP/1.0 404 Not Found\r\n\r\n{\"error\":\"object not found\"}");
        assert!(matches!(
            read_as(&sock, Length::Record(4)).await,
            Err(StorageError::Rc { status: 404, .. })
        ));
    }

    #[test]
    fn the_path_carries_remote_and_key_encoded() {
        assert_eq!(
            path("t:bucket/x y", "job/a-1_2.sql.zst"),
            "/%5Bt%3Abucket/x%20y%5D/job/a-1_2.sql.zst"
        );
        assert!(suits("s3:b", MAX));
        assert!(!suits("s3:b", MAX + 1));
        assert!(!suits("s3:b]x", 1));
    }
}
