//! Starting the dump: its private folder and 0600 option files, the tool's version for the
//! record, a streaming dump (stdout piped for the relay), or a folder dump run to completion (tar
//! and directory modes). SQLite's in-process snapshot is in `run::sqlite`.

use super::ctx::Ctx;
use super::error::{ExitReason, ProducerError, RunError};
use super::folder;
use crate::domain::command::CommandSpec;
use crate::engine::pg_wrapper;
use crate::plan::JobPlan;
use crate::proc::{self, ProcGroup, StderrTail};
use crate::secret::{redact, Secret};
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

pub use crate::proc::write_private_files;

/// The first line of `<tool> --version`, at most once per run and tool: a job of many databases
/// asks once, not once per database (through Debian's Perl wrapper each ask cost ~0.1 s of CPU).
/// Concurrent databases of one run wait for the same answer.
/// The version is asked of the binary `dump` runs (see engine::pg_wrapper::direct_as).
pub async fn tool_version(
    spec: &CommandSpec,
    dump: Option<&CommandSpec>,
    run_id: &str,
) -> Option<String> {
    let cell = {
        let mut all = VERSIONS.lock().ok()?;
        let key = (run_id.to_string(), spec.program.clone(), spec.args.clone());
        all.entry(key).or_default().clone()
    };
    cell.get_or_init(|| probe_version(spec, dump)).await.clone()
}

/// Forget a finished run's tool versions (the next run asks again: tools get upgraded).
pub fn forget_tool_versions(run_id: &str) {
    if let Ok(mut all) = VERSIONS.lock() {
        all.retain(|(run, _, _), _| run != run_id);
    }
}

type VersionCell = std::sync::Arc<tokio::sync::OnceCell<Option<String>>>;
/// (run id, program, arguments).
type VersionKey = (String, String, Vec<String>);
/// Each run's tool versions, asked for or being asked.
static VERSIONS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<VersionKey, VersionCell>>,
> = std::sync::LazyLock::new(Default::default);

async fn probe_version(spec: &CommandSpec, dump: Option<&CommandSpec>) -> Option<String> {
    let spec = match dump {
        Some(d) => pg_wrapper::direct_as(spec, d),
        None => std::borrow::Cow::Borrowed(spec),
    };
    let mut cmd = proc::command(&spec, None);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    // Through a ProcGroup like every child: registered, so a PID-1 reaper never steals its status.
    let group = ProcGroup::new();
    let child = group.spawn(&mut cmd).ok()?;
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// Run the dump tool to completion writing its folder (tar mode's first half).
pub async fn dump_to_folder(
    plan: &JobPlan,
    spec: &CommandSpec,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
) -> Result<PathBuf, RunError> {
    let refs: Vec<&Secret> = ctx.secrets.iter().collect();
    let out = unit_dir.join("dump");
    let mut child = spawn_dump(spec, ctx, unit_dir, Stdio::null())?;
    let mut tail = child.stderr.take().map_or_else(StderrTail::empty, |e| {
        StderrTail::spawn_redacted(e, "dump", ctx.secrets.to_vec())
    });
    let status = child.wait().await;
    let tail = redact(&tail.finish().await, &refs);
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return Err(RunError::Tool {
                program: spec.program.clone(),
                how: ProducerError::Exited(ExitReason::of(s)),
                tail,
            })
        }
        Err(source) => {
            return Err(RunError::Wait {
                program: spec.program.clone(),
                source,
            })
        }
    }
    let size = folder::folder_size(&out);
    if size < plan.min_raw_bytes.max(1) && !plan.allow_empty {
        return Err(RunError::FolderTooSmall {
            program: spec.program.clone(),
            size,
            tail,
        });
    }
    Ok(out)
}

/// Start a dump tool in the run's process group, in its unit folder, stderr piped. Its own files
/// are created 0600 (the run folder's 0700 already keeps others out).
fn spawn_dump(
    spec: &CommandSpec,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
    stdout: Stdio,
) -> Result<tokio::process::Child, RunError> {
    let mut cmd = proc::command(&pg_wrapper::direct(spec), Some(unit_dir));
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    proc::private_umask(&mut cmd);
    ctx.group.spawn(&mut cmd).map_err(|source| RunError::Start {
        program: spec.program.clone(),
        source,
    })
}

/// Start a streaming dump: its stdout (a pipe the relay will read), the child, its stderr tail.
pub fn start_dump(
    spec: &CommandSpec,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
) -> Result<(File, tokio::process::Child, StderrTail), RunError> {
    write_private_files(unit_dir, spec).map_err(RunError::OptionFile)?;
    let mut child = spawn_dump(spec, ctx, unit_dir, Stdio::piped())?;
    let tail = child.stderr.take().map_or_else(StderrTail::empty, |e| {
        StderrTail::spawn_redacted(e, "dump", ctx.secrets.to_vec())
    });
    let out = child.stdout.take().ok_or(RunError::NoStdout)?;
    let fd = out.into_owned_fd().map_err(RunError::Stdout)?;
    crate::proc::widen_pipe(&fd);
    Ok((File::from(fd), child, tail))
}
