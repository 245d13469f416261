//! One long-lived `rclone rcd` per dbstash process (per rclone setup: binary, config file and
//! extra arguments), for the small calls to rclone remotes: listings, records, intent markers,
//! deletes, stats. Each rclone start costs ~40–80 ms of CPU (the Go runtime and the config); a
//! backup made five of them, four one after another. The data streams keep their own `rclone
//! rcat`/`cat` processes, so that each stays killable on its own.
//!
//! - Started lazily, on the first small call against an rclone remote, and shared by every job and
//!   run of the process (a supervisor's too).
//! - Reached on a unix socket in a private (0700) folder under `settings.temp_dir`, with
//!   `--rc-no-auth`: only this user can open the folder. No credential is on its command line:
//!   it inherits dbstash's environment (`RCLONE_CONFIG_*`) and gets the same `--config` and
//!   `extra_args` a per-call rclone gets, so every remote reaches it exactly as before.
//! - Its own process group, `PR_SET_PDEATHSIG` (it dies with dbstash, even on SIGKILL), killed by
//!   `shutdown` when dbstash exits.
//! - If it cannot start, or stops answering, the caller falls back to one rclone process per call
//!   (logged once); an optimisation never fails a backup. `DBSTASH_RCLONE_RCD=0` turns it off.

use crate::plan::RcloneConf;
use crate::proc::stale::{self, RunFolder, RunFolderError};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the daemon gets to open its socket before dbstash gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// One rc call (its own bound; rclone's `--contimeout` and single low-level try apply inside).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest answer read from the daemon (a listing of a huge folder is a few MB).
pub(super) const MAX_REPLY: u64 = 256 * 1024 * 1024;

/// The daemon's flags before the user's `extra_args`: the per-call defaults of small calls
/// (bounded connect time, one low-level try: dbstash bounds each call itself).
/// `--fs-cache-expire-duration=0`: no remote is kept built between calls, so each call reads the
/// config file as it is now (rclone reloads a changed file), as a per-call rclone would; a
/// rotated or revoked credential takes effect at the next call.
const DAEMON_DEFAULTS: [&str; 3] = [
    "--contimeout=10s",
    "--low-level-retries=1",
    "--fs-cache-expire-duration=0",
];

/// Why an rc call did not give an answer.
#[derive(Debug)]
pub enum RcFail {
    /// The daemon is not reachable or answered nonsense: use a per-call process instead.
    Down(io::Error),
    /// rclone ran the operation and it failed: its HTTP status (404: not found) and message.
    Failed {
        status: u16,
        message: String,
    },
    TimedOut,
}

/// A running daemon.
pub struct Daemon {
    dir: PathBuf,
    /// Owns `dir`: removed when the daemon is dropped, swept if dbstash dies.
    _folder: RunFolder,
    sock: PathBuf,
    pid: i32,
    child: Mutex<Option<std::process::Child>>,
    lost: AtomicBool,
    seq: AtomicU64,
}

type Key = (String, Option<PathBuf>, Vec<String>);

fn key_of(conf: &RcloneConf) -> Key {
    (
        conf.binary.clone(),
        conf.config_file.clone(),
        conf.extra_args.clone(),
    )
}

/// One slot per rclone setup: started once (concurrent first calls share the start).
#[derive(Default)]
struct Slot {
    cell: tokio::sync::OnceCell<Option<Arc<Daemon>>>,
}

fn slots() -> &'static Mutex<HashMap<Key, Arc<Slot>>> {
    static S: OnceLock<Mutex<HashMap<Key, Arc<Slot>>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

fn temp_root() -> &'static Mutex<Option<PathBuf>> {
    static T: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(None))
}

/// Where later daemons put their private folder (`settings.temp_dir`; the system's temp folder
/// until this is called).
pub fn set_temp_dir(dir: &Path) {
    if let Ok(mut t) = temp_root().lock() {
        *t = Some(dir.to_path_buf());
    }
}

/// `DBSTASH_RCLONE_RCD=0` (or `off`/`false`) turns the daemon off: one rclone per call.
pub fn enabled() -> bool {
    !matches!(
        std::env::var("DBSTASH_RCLONE_RCD").ok().as_deref(),
        Some("0" | "off" | "false" | "no")
    )
}

/// The daemon for `conf`, started if need be; `None` when it is off, cannot start, or was lost.
pub async fn get(conf: &RcloneConf) -> Option<Arc<Daemon>> {
    if !enabled() {
        return None;
    }
    let key = key_of(conf);
    let slot = {
        let mut s = slots().lock().ok()?;
        s.entry(key).or_default().clone()
    };
    let d = slot
        .cell
        .get_or_init(|| async {
            match start(conf).await {
                Ok(d) => Some(Arc::new(d)),
                Err(e) => {
                    tracing::info!(
                        event = "rclone_rcd_unavailable",
                        error = %e,
                        "rclone rcd could not start ({e}); using one rclone process per call"
                    );
                    None
                }
            }
        })
        .await
        .clone()?;
    (!d.lost.load(Ordering::Relaxed)).then_some(d)
}

/// Stop every daemon (dbstash is exiting). Later calls fall back to per-call processes.
pub fn shutdown() {
    let Ok(mut s) = slots().lock() else { return };
    for (_, slot) in s.drain() {
        if let Some(Some(d)) = slot.cell.get() {
            d.stop();
        }
    }
}

/// Stop the daemon of `conf`'s rclone setup, if it runs (the next call starts a new one).
pub fn stop_for(conf: &RcloneConf) {
    let slot = slots()
        .lock()
        .ok()
        .and_then(|mut s| s.remove(&key_of(conf)));
    if let Some(Some(d)) = slot.as_ref().and_then(|s| s.cell.get()) {
        d.stop();
    }
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot make its folder in {}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: RunFolderError,
    },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: io::Error,
    },
    #[error("it exited ({status}): {tail}")]
    Exited { status: String, tail: String },
    #[error("its socket did not open within {}s", START_TIMEOUT.as_secs())]
    Slow,
}

/// The daemon's command line (no secrets: those stay in the environment and config file).
pub fn argv(conf: &RcloneConf, sock: &Path) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(f) = &conf.config_file {
        a.push(format!("--config={}", f.display()));
    }
    a.push("rcd".into());
    a.push(format!("--rc-addr=unix://{}", sock.display()));
    a.push("--rc-no-auth".into());
    // Serves `GET /[remote]/key` (small downloads, `rcd_download`) on the same private socket.
    a.push("--rc-serve".into());
    a.extend(DAEMON_DEFAULTS.iter().map(|s| s.to_string()));
    a.extend(conf.extra_args.iter().cloned());
    a
}

/// The daemon's private 0700 folder `<temp_dir>/rclone/<id>`, owned like a run's folder (a
/// locked owner file naming this process): a dbstash killed with SIGKILL leaves it behind, and
/// the next run's, restore's or supervisor's sweep removes it.
fn private_dir() -> Result<RunFolder, StartError> {
    let base = temp_root()
        .lock()
        .ok()
        .and_then(|t| t.clone())
        .unwrap_or_else(std::env::temp_dir);
    let base = std::path::absolute(&base).unwrap_or(base);
    let id = uuid::Uuid::new_v4().simple().to_string();
    RunFolder::create_in(&base, stale::RCLONE, &id[..12]).map_err(|source| StartError::Folder {
        dir: base.join(stale::RCLONE),
        source,
    })
}

async fn start(conf: &RcloneConf) -> Result<Daemon, StartError> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = private_dir()?;
    let dir = folder.path().to_path_buf();
    let sock = dir.join("rc.sock");
    let log = dir.join("rcd.log");
    let mut cmd = std::process::Command::new(&conf.binary);
    cmd.args(argv(conf, &sock))
        .stdin(std::process::Stdio::null());
    let spawned = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
    {
        Ok(f) => {
            cmd.stdout(std::process::Stdio::null()).stderr(f);
            spawn_detached(cmd).await
        }
        Err(e) => Err(e),
    };
    let child = match spawned {
        Ok(c) => c,
        Err(source) => {
            drop(folder);
            return Err(StartError::Spawn {
                binary: conf.binary.clone(),
                source,
            });
        }
    };
    let pid = i32::try_from(child.id()).unwrap_or(0);
    crate::proc::registry::add(pid);
    let d = Daemon {
        dir,
        _folder: folder,
        sock,
        pid,
        child: Mutex::new(Some(child)),
        lost: AtomicBool::new(false),
        seq: AtomicU64::new(0),
    };
    // Dropped (a cancelled first call) or failed: `d` is stopped by its Drop.
    d.wait_ready().await?;
    Ok(d)
}

/// Spawn from a thread that lives as long as the process: the parent-death signal fires when
/// the *thread* that forked exits, and a tokio worker may not outlive the daemon's users.
async fn spawn_detached(mut cmd: std::process::Command) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit, umask) run between fork and
    // exec; the hooks run in the order they were added.
    unsafe {
        cmd.pre_exec(crate::proc::group::die_with_parent());
        cmd.pre_exec(|| {
            // The local copies of records it writes in its private folder are 0600.
            libc::umask(0o077);
            Ok(())
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("rclone-rcd".into())
        .spawn(move || {
            let _ = tx.send(cmd.spawn());
            // Park forever: this thread is the daemon's parent as far as PDEATHSIG goes.
            loop {
                std::thread::park();
            }
        })?;
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("the spawning thread ended")))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Daemon {
    /// The daemon's process id (tests look for it).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The daemon's socket (`rcd_upload` opens its own connections).
    pub(super) fn socket(&self) -> &Path {
        &self.sock
    }

    /// The private folder (local copies of small objects go through it), as rc's `fs` string;
    /// `None` if it is not UTF-8 (the caller then uses a per-call process).
    pub fn dir(&self) -> Option<&str> {
        self.dir.to_str()
    }

    fn stop(&self) {
        if let Ok(mut c) = self.child.lock() {
            if let Some(mut child) = c.take() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(self.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.kill();
                let _ = child.wait();
                crate::proc::registry::remove(self.pid);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn wait_ready(&self) -> Result<(), StartError> {
        let started = std::time::Instant::now();
        loop {
            if tokio::net::UnixStream::connect(&self.sock).await.is_ok() {
                return Ok(());
            }
            let exited = self
                .child
                .lock()
                .ok()
                .and_then(|mut c| c.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if let Some(status) = exited {
                let tail = std::fs::read_to_string(self.dir.join("rcd.log")).unwrap_or_default();
                return Err(StartError::Exited {
                    status: crate::proc::describe_status(status),
                    tail: crate::proc::tail::brief(&tail),
                });
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(StartError::Slow);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Mark the daemon lost (it stopped answering): later calls use per-call processes. Logged
    /// once.
    pub fn lose(&self, why: &io::Error) {
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                event = "rclone_rcd_lost",
                error = %why,
                "rclone rcd stopped answering ({why}); using one rclone process per call"
            );
            self.stop();
        }
    }

    /// A fresh private path for a local copy of a small object.
    pub fn scratch(&self) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("obj-{n}"))
    }

    /// POST `method` with `params`; the JSON answer, or why there is none.
    pub async fn call(
        &self,
        method: &str,
        params: &serde_json::Value,
    ) -> Result<serde_json::Value, RcFail> {
        match tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, params)).await {
            Ok(r) => r,
            Err(_) => Err(RcFail::TimedOut),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        params: &serde_json::Value,
    ) -> Result<serde_json::Value, RcFail> {
        let body = serde_json::to_vec(params).map_err(|e| RcFail::Down(io::Error::other(e)))?;
        let mut s = tokio::net::UnixStream::connect(&self.sock)
            .await
            .map_err(RcFail::Down)?;
        // HTTP/1.0: the answer is never chunked and ends when the daemon closes the connection.
        let head = format!(
            "POST /{method} HTTP/1.0\r\nHost: rcd\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(&body);
        s.write_all(&req).await.map_err(RcFail::Down)?;
        let mut raw = Vec::new();
        (&mut s)
            .take(MAX_REPLY)
            .read_to_end(&mut raw)
            .await
            .map_err(RcFail::Down)?;
        parse_reply(&raw)
    }
}

/// The status and JSON body of an HTTP answer (HTTP/1.1 answers may come chunked).
pub(super) fn parse_reply(raw: &[u8]) -> Result<serde_json::Value, RcFail> {
    let bad = |what: &str| RcFail::Down(io::Error::other(format!("bad answer from rcd: {what}")));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("header not UTF-8"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("broken chunked body"))?
    } else {
        body.to_vec()
    };
    let body: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| bad("body not JSON"))?;
    if status == 200 {
        return Ok(body);
    }
    let message = body
        .get("error")
        .and_then(|m| m.as_str())
        .map_or_else(|| body.to_string(), str::to_string);
    Err(RcFail::Failed { status, message })
}

/// A chunked body's bytes; `None` if it is cut short or malformed.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_into_answers_and_rclone_errors() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"list\":[]}";
        assert_eq!(parse_reply(ok).unwrap(), serde_json::json!({"list": []}));
        let nf = b"HTTP/1.0 404 Not Found\r\n\r\n{\"error\":\"object not found\",\"status\":404}";
        match parse_reply(nf) {
            Err(RcFail::Failed { status, message }) => {
                assert_eq!((status, message.as_str()), (404, "object not found"))
            }
            other => panic!("{other:?}"),
        }
        let chunked = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\n{\"err\r\n10\r\nor\": \"no space\"}\r\n0\r\n\r\n";
        match parse_reply(chunked) {
            Err(RcFail::Failed { status, message }) => {
                assert_eq!((status, message.as_str()), (500, "no space"))
            }
            other => panic!("{other:?}"),
        }
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":";
        assert!(matches!(parse_reply(cut), Err(RcFail::Down(_))));
        assert!(matches!(parse_reply(b"HTTP/1.0 200"), Err(RcFail::Down(_))));
        assert!(matches!(
            parse_reply(b"HTTP/1.0 200 OK\r\n\r\nnot json"),
            Err(RcFail::Down(_))
        ));
    }

    #[test]
    fn the_daemon_command_line_holds_no_credentials_and_ends_with_the_users_flags() {
        let conf = RcloneConf {
            binary: "rclone".into(),
            config_file: Some("/etc/r.conf".into()),
            extra_args: vec!["--s3-no-check-bucket".into()],
        };
        assert_eq!(
            argv(&conf, Path::new("/t/d/rc.sock")).join(" "),
            "--config=/etc/r.conf rcd --rc-addr=unix:///t/d/rc.sock --rc-no-auth --rc-serve \
             --contimeout=10s --low-level-retries=1 --fs-cache-expire-duration=0 \
             --s3-no-check-bucket"
        );
    }
}
