use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io;
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The process group(s) of one run. Normally one group; if its leader is already gone when a later
/// child starts (e.g. a post-hook after the dump), that child leads a new group, tracked here too.
#[derive(Debug, Default)]
pub struct ProcGroup {
    pgids: Mutex<Vec<i32>>,
    children: Mutex<Vec<i32>>,
}

impl Drop for ProcGroup {
    fn drop(&mut self) {
        if let Ok(c) = self.children.lock() {
            c.iter().for_each(|p| super::registry::remove(*p));
        }
    }
}

impl ProcGroup {
    pub fn new() -> Self {
        ProcGroup::default()
    }

    fn current(&self) -> Option<i32> {
        self.pgids.lock().ok().and_then(|g| g.last().copied())
    }

    /// Spawn `cmd` into this group. Must be called from a long-lived thread (a tokio worker):
    /// the parent-death signal fires when the *thread* that forked exits.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        cmd.kill_on_drop(true);
        let parent = std::process::id() as i32;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        if let Some(pgid) = self.current() {
            cmd.process_group(pgid);
            match cmd.spawn() {
                Ok(child) => {
                    self.track(&child);
                    return Ok(child);
                }
                // The group is gone (its members exited): lead a new one below.
                Err(e)
                    if e.raw_os_error() == Some(libc::EPERM)
                        || e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        cmd.process_group(0);
        let child = cmd.spawn()?;
        if let Some(pid) = child.id() {
            if let Ok(mut g) = self.pgids.lock() {
                g.push(pid as i32);
            }
        }
        self.track(&child);
        Ok(child)
    }

    fn track(&self, child: &Child) {
        if let Some(pid) = child.id() {
            super::registry::add(pid as i32);
            if let Ok(mut c) = self.children.lock() {
                c.push(pid as i32);
            }
        }
    }

    /// Send `sig` to every group of this run (groups already gone are ignored).
    pub fn signal(&self, sig: Signal) {
        let pgids = self.pgids.lock().map(|g| g.clone()).unwrap_or_default();
        for pgid in pgids {
            let _ = killpg(Pid::from_raw(pgid), sig);
        }
    }

    /// Is any process of this run's groups still alive?
    pub fn alive(&self) -> bool {
        let pgids = self.pgids.lock().map(|g| g.clone()).unwrap_or_default();
        pgids
            .iter()
            .any(|p| killpg(Pid::from_raw(*p), None).is_ok())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL whatever is left.
    pub async fn terminate(&self, grace: Duration) {
        self.signal(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline && self.alive() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.signal(Signal::SIGKILL);
    }

    pub fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }
}
