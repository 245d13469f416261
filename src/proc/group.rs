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

    /// Is any process of this run's groups still alive? A zombie is not: a killed child stays one
    /// until the future that owns it is polled again, which `terminate` (waiting here) prevents —
    /// counting it made every stop and timeout wait the whole grace period.
    pub fn alive(&self) -> bool {
        let pgids = self.pgids.lock().map(|g| g.clone()).unwrap_or_default();
        let live: Vec<i32> = pgids
            .into_iter()
            .filter(|p| killpg(Pid::from_raw(*p), None).is_ok())
            .collect();
        if live.is_empty() {
            return false;
        }
        match running_groups() {
            Some(running) => live.iter().any(|p| running.contains(p)),
            // No /proc to tell zombies apart: every group that answers counts.
            None => true,
        }
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

/// The process groups that have a member which is not a zombie, from /proc (None without it).
fn running_groups() -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue; // exited meanwhile
        };
        // "pid (comm) STATE PPID PGRP ..." — comm may hold spaces and ')': split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let pgrp = f.nth(1).and_then(|g| g.parse::<i32>().ok());
        if let (Some(st), Some(g)) = (state, pgrp) {
            if st != "Z" && st != "X" {
                out.push(g);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn an_exited_unreaped_child_is_not_alive() {
        let group = ProcGroup::new();
        // The child is held, never waited for: after it exits it stays a zombie.
        let _child = group
            .spawn(Command::new("true").kill_on_drop(true))
            .expect("spawn true");
        let start = Instant::now();
        while group.alive() && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!group.alive(), "a zombie counted as a live process");
    }

    #[tokio::test]
    async fn terminate_returns_once_the_group_died() {
        let group = ProcGroup::new();
        let _child = group
            .spawn(Command::new("sleep").arg("30"))
            .expect("spawn sleep");
        assert!(group.alive());
        let start = Instant::now();
        group.terminate(Duration::from_secs(5)).await;
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "terminate waited {:?} for a child that died of SIGTERM at once",
            start.elapsed()
        );
        assert!(!group.alive());
    }
}
