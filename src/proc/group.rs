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

/// A `pre_exec` hook that makes the child die (SIGKILL) when the thread that forked it ends, and
/// that ends the child at once if dbstash died before the signal was armed. It makes only
/// async-signal-safe calls (prctl, getppid, _exit), as code between fork and exec must.
pub fn die_with_parent() -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
    let parent = std::process::id() as i32;
    move || {
        // SAFETY: prctl, getppid and _exit are async-signal-safe.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        Ok(())
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
        // SAFETY: the hook makes only async-signal-safe calls (see `die_with_parent`).
        unsafe {
            cmd.pre_exec(die_with_parent());
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

    /// Is any process of this run's groups still running? Zombies do not count: a killed child
    /// stays a zombie until its `Child` is waited for, which the run does only after the
    /// grace wait — `killpg(pgid, 0)` succeeds for a zombie, so a group that died at once
    /// would look alive for the whole grace period.
    pub fn alive(&self) -> bool {
        let pgids = self.pgids.lock().map(|g| g.clone()).unwrap_or_default();
        if pgids.is_empty() {
            return false;
        }
        match running_groups() {
            Some(running) => pgids.iter().any(|p| running.contains(p)),
            // No /proc: a signal probe (zombies count as alive: the wait runs to its end).
            None => pgids
                .iter()
                .any(|p| killpg(Pid::from_raw(*p), None).is_ok()),
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

/// The process groups that have at least one process that is not a zombie, from /proc;
/// `None` when /proc cannot be read.
fn running_groups() -> Option<std::collections::HashSet<i32>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let groups = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| live_pgid(&stat))
        .collect();
    Some(groups)
}

/// The process group of a `/proc/PID/stat` line, unless the process is a zombie (or dead).
/// The fields after the command name (which may hold spaces and parentheses) are
/// `state ppid pgrp ...`.
fn live_pgid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_and_zombies_do_not_count() {
        assert_eq!(live_pgid("12 (sleep) S 1 12 12 0 -1"), Some(12));
        assert_eq!(live_pgid("13 (a (b) c) R 1 40 40 0 -1"), Some(40));
        assert_eq!(live_pgid("14 (pg_dump) Z 1 40 40 0 -1"), None);
        assert_eq!(live_pgid("garbage"), None);
    }

    #[tokio::test]
    async fn a_killed_group_is_not_alive_while_its_leader_is_a_zombie() {
        let group = ProcGroup::new();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = group.spawn(&mut cmd).expect("spawn sleep");
        assert!(group.alive());
        let started = std::time::Instant::now();
        // not waited for: the killed `sleep` stays a zombie during the grace wait
        group.terminate(Duration::from_secs(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the grace wait ran {:?} for a dead group",
            started.elapsed()
        );
        assert!(!group.alive());
        let _ = child.wait().await;
    }
}
