//! Child processes: process groups, parent-death signal, stderr draining.
//!
//! Every child of a run is spawned into the run's process group (the first child leads it), with
//! `PR_SET_PDEATHSIG = SIGKILL` so that if dbstash dies — even by SIGKILL — its dumps and uploads die
//! too and no orphaned upload goes on to finish a truncated object. Timeouts and shutdown signal the
//! whole group: SIGTERM, a grace period, then SIGKILL.

pub mod group;
pub mod registry;
pub mod tail;

pub use group::ProcGroup;
pub use tail::StderrTail;

use crate::plan::command::CommandSpec;
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

/// "exit 3" / "signal 9" for messages.
pub fn describe_status(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".into(),
    }
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
