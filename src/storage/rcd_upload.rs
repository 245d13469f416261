//! A backup's data streamed through the shared `rclone rcd` (`operations/uploadfile`) instead of
//! a `rclone rcat` process of its own: one rclone start fewer per backup (~40–80 ms of CPU, and on
//! a quiet machine most of what a tiny backup costs over a shell pipe).
//!
//! The request is HTTP/1.1 on the daemon's private socket, its body chunked multipart (one part,
//! the object), which rclone hands to the same `Rcat` that `rclone rcat` runs. The relay writes
//! into a pipe, as it does for `rcat`; a thread frames what it reads into chunks.
//!
//! The same guarantees as an `rcat` process:
//! - **rclone sees the end of the object only on commit.** The body is closed properly (the
//!   multipart's closing boundary, the last chunk) only when the pipe ends *after* `commit` asked
//!   for it. Ended any other way (abort, a dropped upload, a broken pipe), the body gets a
//!   malformed chunk instead: rclone's read fails while the request is still live, so rclone
//!   aborts its multipart upload itself and stores nothing (a closed connection would cancel the
//!   request first, and with it the abort of the multipart upload: measured with rclone 1.75).
//! - **A failure on rclone's side ends the upload early**: its answer, or the connection's end,
//!   stops the frame writer, whose pipe then breaks under the relay, and `exited` resolves.
//! - **Bounded**: the answer is awaited at most `rcd::CALL_TIMEOUT`; an abort waits at most
//!   `ABORT_GRACE` for rclone to clean up.
//! - The boundary is random per upload, so a dump's bytes cannot end the part early.
//!
//! Used only where it behaves like `rcat`: streams expected to stay small (a large one keeps its
//! own process, whose reads cost less CPU than the daemon's HTTP and multipart parsing: measured
//! ~10 % of rclone's CPU per byte), no `--bwlimit` (a per-process limit that the daemon would share
//! between every stream), and names rclone's form parsing takes as they are.

use super::rcd::{self, Daemon, RcFail};
use super::StorageError;
use crate::plan::RcloneConf;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Streams expected to be larger than this keep their own `rclone rcat`.
pub const MAX_DAEMON_STREAM: u64 = 64 << 20;
/// How long an abort waits for rclone to cancel its multipart upload and answer.
const ABORT_GRACE: Duration = Duration::from_secs(3);
/// The largest read from the pipe, framed as one chunk.
const FRAME: usize = 256 << 10;
/// A chunk-size line that is not hexadecimal: rclone's chunked reader fails on it.
const POISON: &[u8] = b"zz\r\n";

/// Whether `rcat` of `key` with these settings may go through the daemon (see the module notes).
pub fn suits(conf: &RcloneConf, key: &str, expected: Option<u64>) -> bool {
    expected.is_none_or(|e| e <= MAX_DAEMON_STREAM)
        && !conf.extra_args.iter().any(|a| a.starts_with("--bwlimit"))
        && plain_name(file_name(key))
}

/// rclone takes the part's file name through Go's form parsing (quoted string, base name): plain
/// printable ASCII without quotes or backslashes comes through unchanged. dbstash's own names
/// always are; anything else keeps `rcat`.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

fn file_name(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, f)| f)
}

fn folder(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(d, _)| d)
}

/// dbstash's stream defaults (`rclone_args::STREAM_UPLOAD_DEFAULTS`) for this one call, unless the
/// user's `extra_args` set them (the daemon has those on its command line, and they win, as they
/// do for `rcat`). The connect timeout is the daemon's own already.
fn stream_config(extra: &[String]) -> serde_json::Value {
    let set = |flag: &str| {
        extra
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut c = serde_json::Map::new();
    if !set("--low-level-retries") {
        c.insert("LowLevelRetries".into(), 2.into());
    }
    if !set("--timeout") {
        c.insert("Timeout".into(), "30s".into());
    }
    serde_json::Value::Object(c)
}

/// The request line and headers, and the part's own header (the first chunk of the body).
fn request(remote: &str, key: &str, extra: &[String], boundary: &str) -> Vec<u8> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("fs", remote)
        .append_pair("remote", folder(key))
        .append_pair("_config", &stream_config(extra).to_string())
        .finish();
    let mut r = format!(
        "POST /operations/uploadfile?{query} HTTP/1.1\r\nHost: rcd\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let part = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        file_name(key)
    );
    chunk(&mut r, part.as_bytes());
    r
}

/// One chunk of a chunked body.
fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The end of the object: the closing boundary, then the last (empty) chunk.
fn closing(boundary: &str) -> Vec<u8> {
    let mut end = Vec::new();
    chunk(&mut end, format!("\r\n--{boundary}--\r\n").as_bytes());
    end.extend_from_slice(b"0\r\n\r\n");
    end
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Data flows; the pipe's end would be a broken stream.
    Streaming,
    /// `commit` asked for the proper end at the pipe's end.
    Committing,
    /// The body has ended (closed, poisoned, or the connection failed): nothing more is written.
    Ended,
}

struct Conn {
    stream: UnixStream,
    phase: Phase,
}

fn lock(c: &Mutex<Conn>) -> MutexGuard<'_, Conn> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

type Answer = Result<(), RcFail>;

/// A running upload through the daemon.
pub struct DaemonUpload {
    conn: Arc<Mutex<Conn>>,
    /// A second handle on the connection, for an abort's own read and the final shutdown.
    side: UnixStream,
    answer: oneshot::Receiver<Answer>,
    /// The answer, once `exited` has taken it (the upload ended before `commit`).
    early: Option<Answer>,
    key: String,
    /// Committed or aborted: the drop has nothing to end.
    settled: bool,
}

/// Start uploading `key` to `remote` through `d`; the pipe's write end for the relay. `Err` when
/// the daemon cannot be reached (the caller marks it lost and starts `rcat`).
pub fn begin(
    d: &Daemon,
    conf: &RcloneConf,
    remote: &str,
    key: &str,
) -> io::Result<(DaemonUpload, File)> {
    let boundary = format!("dbstash-{}", uuid::Uuid::new_v4().simple());
    let mut stream = UnixStream::connect(d.socket())?;
    stream.write_all(&request(remote, key, &conf.extra_args, &boundary))?;
    // Close-on-exec: a dump started meanwhile must not hold the write end (the end of the pipe is
    // the end of the object).
    let (reader, writer) = crate::proc::pipe()?;
    let writer = File::from(writer);
    crate::proc::widen_pipe(&writer);
    let side = stream.try_clone()?;
    let answer_from = stream.try_clone()?;
    let conn = Arc::new(Mutex::new(Conn {
        stream,
        phase: Phase::Streaming,
    }));
    let (tx, rx) = oneshot::channel();
    let feeder = Feeder {
        pipe: File::from(reader),
        conn: conn.clone(),
        answer_from,
        end: closing(&boundary),
    };
    std::thread::Builder::new()
        .name("rcd-upload".into())
        .spawn(move || {
            if let Some(answer) = feeder.run() {
                let _ = tx.send(answer);
            }
        })?;
    Ok((
        DaemonUpload {
            conn,
            side,
            answer: rx,
            early: None,
            key: key.to_string(),
            settled: false,
        },
        writer,
    ))
}

/// The thread that frames the pipe's bytes into the request body.
struct Feeder {
    pipe: File,
    conn: Arc<Mutex<Conn>>,
    answer_from: UnixStream,
    end: Vec<u8>,
}

impl Feeder {
    /// Frame until the pipe ends or the connection fails; then rclone's answer. `None` when an
    /// abort or a drop ended the body (that side reads the answer, or nobody does).
    fn run(mut self) -> Option<Answer> {
        let mut buf = vec![0u8; FRAME];
        let mut framed = Vec::with_capacity(FRAME + 16);
        loop {
            if self.rclone_spoke() {
                // rclone answered (it answers only once the body ends: so it failed) or went
                // away, even while the dump is idle.
                lock(&self.conn).phase = Phase::Ended;
                break;
            }
            let (n, broken) = match self.pipe.read(&mut buf) {
                Ok(n) => (n, false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => (0, true),
            };
            let mut c = lock(&self.conn);
            if c.phase == Phase::Ended {
                return None;
            }
            if n == 0 {
                // Only a commit closes the object; any other end of the pipe is a broken stream.
                let tail: &[u8] = match (c.phase, broken) {
                    (Phase::Committing, false) => &self.end,
                    _ => POISON,
                };
                c.phase = Phase::Ended;
                let _ = c.stream.write_all(tail);
                break;
            }
            framed.clear();
            chunk(&mut framed, &buf[..n]);
            if c.stream.write_all(&framed).is_err() {
                // rclone answered early or went away: its answer says which.
                c.phase = Phase::Ended;
                break;
            }
        }
        // The relay's next write fails: the run stops its dump.
        drop(self.pipe);
        Some(read_answer(&mut self.answer_from, rcd::CALL_TIMEOUT))
    }
}

impl Feeder {
    /// Wait until the pipe has bytes (or has ended) or the connection has something to say;
    /// whether it is the connection.
    fn rclone_spoke(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds = [
            PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN),
            // Readable (an answer, or end-of-file when the peer is gone); hang-ups and errors
            // are reported whatever is asked.
            PollFd::new(self.answer_from.as_fd(), PollFlags::POLLIN),
        ];
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => return fds[1].any().unwrap_or(true),
                Err(nix::errno::Errno::EINTR) => continue,
                // Cannot wait: read the pipe as before (a dead connection fails the next write).
                Err(_) => return false,
            }
        }
    }
}

/// rclone's answer on `s`, read until it closes the connection (the request asked it to).
fn read_answer(s: &mut UnixStream, within: Duration) -> Answer {
    s.set_read_timeout(Some(within)).map_err(RcFail::Down)?;
    let mut raw = Vec::new();
    match s.take(rcd::MAX_REPLY).read_to_end(&mut raw) {
        Ok(_) => rcd::parse_reply(&raw).map(drop),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(RcFail::TimedOut)
        }
        Err(e) => Err(RcFail::Down(e)),
    }
}

impl DaemonUpload {
    /// Ask for the proper end of the body at the pipe's end: called before the last writer goes.
    pub(super) fn will_commit(&self) {
        let mut c = lock(&self.conn);
        if c.phase == Phase::Streaming {
            c.phase = Phase::Committing;
        }
    }

    /// rclone's answer to the whole upload.
    pub(super) async fn commit(mut self) -> Result<(), StorageError> {
        self.settled = true;
        let answer = match self.early.take() {
            Some(a) => a,
            None => self.await_answer(rcd::CALL_TIMEOUT + ABORT_GRACE).await,
        };
        answer.map_err(|e| self.error(e))
    }

    async fn await_answer(&mut self, within: Duration) -> Answer {
        match tokio::time::timeout(within, &mut self.answer).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => Err(RcFail::Down(io::Error::other(
                "the upload ended without an answer",
            ))),
            Err(_) => Err(RcFail::TimedOut),
        }
    }

    fn error(&self, e: RcFail) -> StorageError {
        let key = self.key.clone();
        match e {
            RcFail::Failed { status, message } => StorageError::Rc {
                op: "rcat",
                key,
                status,
                message,
            },
            RcFail::TimedOut => StorageError::TimedOut { op: "rcat", key },
            RcFail::Down(source) => StorageError::Input {
                op: "rcat",
                key,
                source,
            },
        }
    }

    /// Resolves when the upload ends before `commit` (rclone answered or went away). Cancel-safe.
    pub(super) async fn exited(&mut self) -> String {
        if self.early.is_none() {
            let a = match (&mut self.answer).await {
                Ok(a) => a,
                Err(_) => Err(RcFail::Down(io::Error::other("the upload's writer ended"))),
            };
            self.early = Some(a);
        }
        match &self.early {
            Some(Err(RcFail::Failed { message, .. })) => message.clone(),
            Some(Err(RcFail::Down(e))) => e.to_string(),
            Some(Err(RcFail::TimedOut)) => "timed out".into(),
            Some(Ok(())) | None => "ended".into(),
        }
    }

    /// End the body as broken (rclone then stores nothing and cancels its multipart upload), wait
    /// briefly for it to say so, and close the connection. Returns what rclone said when the
    /// upload had failed on its own first (empty when dbstash ended it).
    pub(super) async fn abort(mut self) -> String {
        self.settled = true;
        let conn = self.conn.clone();
        let side = self.side.try_clone();
        let poisoned = tokio::task::spawn_blocking(move || poison(&conn, ABORT_GRACE))
            .await
            .unwrap_or(Poisoned::Busy);
        let said = match (poisoned, side) {
            // rclone's answer is to our malformed chunk: nothing worth repeating.
            (Poisoned::Now, Ok(mut s)) => {
                let _ = tokio::task::spawn_blocking(move || read_answer(&mut s, ABORT_GRACE)).await;
                String::new()
            }
            (Poisoned::Before, _) => match self.early.take() {
                Some(a) => said(a),
                None => said(self.await_answer(ABORT_GRACE).await),
            },
            _ => String::new(),
        };
        let _ = self.side.shutdown(Shutdown::Both);
        said
    }
}

fn said(a: Answer) -> String {
    match a {
        Ok(()) => String::new(),
        Err(RcFail::Failed { message, .. }) => message,
        Err(RcFail::Down(e)) => e.to_string(),
        Err(RcFail::TimedOut) => "timed out".into(),
    }
}

enum Poisoned {
    /// This call ended the body.
    Now,
    /// It had ended already (rclone answered or went away, or the feeder ended it).
    Before,
    /// The feeder held the connection (a write stuck on a rclone that does not read) too long.
    Busy,
}

/// End the body with a malformed chunk unless it has ended; waits at most `within` for a frame
/// being written.
fn poison(conn: &Mutex<Conn>, within: Duration) -> Poisoned {
    let started = Instant::now();
    loop {
        let got = match conn.try_lock() {
            Ok(c) => Some(c),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        if let Some(mut c) = got {
            if c.phase == Phase::Ended {
                return Poisoned::Before;
            }
            c.phase = Phase::Ended;
            let _ = c.stream.write_all(POISON);
            return Poisoned::Now;
        }
        if started.elapsed() > within {
            return Poisoned::Busy;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for DaemonUpload {
    /// Dropped unsettled (the run was cut short): end the body as broken, without waiting.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        match self.conn.try_lock() {
            Ok(mut c) if c.phase != Phase::Ended => {
                c.phase = Phase::Ended;
                // Never block in a drop: a full socket drops the poison, and the close below
                // ends the request anyway.
                let _ = c.stream.set_nonblocking(true);
                if c.stream.write_all(POISON).is_err() {
                    let _ = self.side.shutdown(Shutdown::Both);
                }
            }
            Ok(_) => {}
            Err(_) => {
                let _ = self.side.shutdown(Shutdown::Both);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &[&str]) -> RcloneConf {
        RcloneConf {
            binary: "rclone".into(),
            config_file: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn small_or_unknown_streams_with_plain_names_go_through_the_daemon() {
        let c = conf(&[]);
        assert!(suits(&c, "job/db-2026-12-07-120000.sql.zst", None));
        assert!(suits(&c, "a.sql", Some(MAX_DAEMON_STREAM)));
        assert!(!suits(&c, "a.sql", Some(MAX_DAEMON_STREAM + 1)));
        assert!(!suits(&conf(&["--bwlimit", "1M"]), "a.sql", None));
        assert!(!suits(&conf(&["--bwlimit=1M"]), "a.sql", None));
        assert!(!suits(&c, "job/a \"b\".sql", None));
        assert!(!suits(&c, "job/é.sql", None));
        assert!(!suits(&c, "job/", None));
    }

    #[test]
    fn the_users_flags_win_over_the_stream_defaults() {
        assert_eq!(
            stream_config(&[]),
            serde_json::json!({"LowLevelRetries": 2, "Timeout": "30s"})
        );
        assert_eq!(
            stream_config(&[
                "--timeout=5m".into(),
                "--low-level-retries".into(),
                "9".into()
            ]),
            serde_json::json!({})
        );
    }

    #[test]
    fn the_request_names_the_folder_and_frames_the_part_header() {
        let r = String::from_utf8(request("s3:bucket/x y", "job/a.sql", &[], "B")).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(
                "POST /operations/uploadfile?fs=s3%3Abucket%2Fx+y&remote=job&_config="
            ),
            "{head}"
        );
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        let part = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.sql\"\r\nContent-Type: application/octet-stream\r\n\r\n";
        assert_eq!(body, format!("{:x}\r\n{part}\r\n", part.len()));
        assert_eq!(closing("B"), b"9\r\n\r\n--B--\r\n\r\n0\r\n\r\n".to_vec());
    }
}
