//! As PID 1 in a container, adopt and reap orphaned zombies — but never our own children, whose
//! exit status tokio is waiting for (they are registered in `proc::registry`).

use std::time::Duration;

pub fn spawn_if_pid1() {
    if std::process::id() != 1 {
        return;
    }
    tracing::info!(
        event = "pid1",
        "running as PID 1: reaping orphaned processes"
    );
    tokio::spawn(async {
        let mut sigchld =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
        loop {
            match sigchld.as_mut() {
                Some(s) => {
                    let _ = tokio::time::timeout(Duration::from_secs(5), s.recv()).await;
                }
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
            reap_orphans();
        }
    });
}

/// Zombies whose parent is us and that we did not spawn.
fn reap_orphans() {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) S ppid ..." — comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let ppid = f.next().and_then(|p| p.parse::<i32>().ok());
        if state == Some("Z") && ppid == Some(me) && !crate::proc::registry::contains(pid) {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            tracing::debug!(event = "reaped", pid);
        }
    }
}
