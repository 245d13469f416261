//! Child processes: process groups, parent-death signal, stderr draining.
//!
//! Every child of a run is spawned into the run's process group (the first child leads it), with
//! `PR_SET_PDEATHSIG = SIGKILL` so that if dbstash dies — even by SIGKILL — its dumps and uploads die
//! too and no orphaned upload goes on to finish a truncated object. Timeouts and shutdown signal the
//! whole group: SIGTERM, a grace period, then SIGKILL.

pub mod group;
pub mod registry;
pub mod stale;
pub mod status;
pub mod tail;

pub use group::ProcGroup;
pub use tail::StderrTail;

use crate::domain::command::CommandSpec;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A tokio `Command` from a `CommandSpec`: argv with `{run_dir}` filled in, env values exposed
/// only here, on this child. stdin is closed unless the caller says otherwise.
pub fn command(spec: &CommandSpec, run_dir: Option<&Path>) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(&spec.program);
    match run_dir {
        Some(d) => c.args(spec.args_in(d)),
        None => c.args(&spec.args),
    };
    for (k, v) in &spec.env {
        c.env(k, v.expose());
    }
    c.stdin(std::process::Stdio::null());
    c
}

/// The spec's option files (credentials the tool reads from a file, never from argv), each
/// created new and 0600 in the run's private folder.
pub fn write_private_files(dir: &Path, spec: &CommandSpec) -> std::io::Result<()> {
    use std::io::Write;
    for f in &spec.files {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(&f.name))?;
        file.write_all(f.contents.expose().as_bytes())?;
    }
    Ok(())
}

/// This machine's host name, as records, intent markers and notifications show it.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Files the child creates are private (0600, folders 0700) whatever dbstash's umask: dump tools
/// such as `pg_dump --format=directory` create their files with the process umask.
pub fn private_umask(cmd: &mut tokio::process::Command) {
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat` field 22): with the
/// pid it names one process, not whichever later reuses the pid. `None` when it is not running.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or ')': count from the
    // last ')'. What follows is field 3 (state) onwards; starttime is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None; // a zombie has finished running
    }
    fields.nth(18)?.parse().ok()
}

/// "exit 3" / "signal 9" for messages.
pub fn describe_status(s: std::process::ExitStatus) -> String {
    status::ExitReason::of(s).to_string()
}

/// A pipe between dbstash's own threads (or a thread and one child it is handed to), both ends
/// close-on-exec: a child started meanwhile by another part of the run (a sibling database's dump,
/// a WAL stream) must not inherit an end, or the reader would not see end-of-file until that
/// child exits. (`nix::unistd::pipe` makes inheritable descriptors.) A child that gets an end as
/// its stdin or stdout still gets it: dup2 clears the flag on the copy.
pub fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// Give a pipe a 1 MiB buffer (Linux default 64 KiB): a fast dump and a fast upload then trade
/// bytes in far fewer wake-ups. Best effort: the kernel may refuse (pipe-max-size), which only
/// costs speed.
pub fn widen_pipe(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a descriptor we own; failure is reported by the return value only.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_are_not_inherited_by_children() {
        let (r, w) = pipe().unwrap();
        for fd in [&r, &w] {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
        }
    }

    #[test]
    fn start_time_counts_fields_after_the_command_name() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(
            parse_start_time("42 (x) Z 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0"),
            None
        );
        assert_eq!(parse_start_time("garbage"), None);
        assert!(start_time(std::process::id()).is_some());
    }
}
