//! Restoring a `tar`-mode backup: the verified stream is unpacked into a private folder, and only
//! when size and sha256 matched the record does the restore tool read that folder
//! (`pg_restore --format=directory`, `mongorestore --dir`).

use super::pipeline::{self, Source, ToolDone};
use super::run_dir::{self, RunDir};
use super::target::Target;
use super::RestoreError;
use crate::engine;
use crate::manifest::model::{DumpFormat, Engine, Job};
use crate::proc::{self, ProcGroup};
use crate::secret::{redact, Secret};
use std::fs::File;
use std::path::Path;
use std::process::Stdio;

fn io(what: &str) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        what: what.to_string(),
        source,
    }
}

/// Does the unpacked mongodump folder hold gzipped files (`compress: native`)?
fn has_gz(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            has_gz(&p)
        } else {
            p.extension().is_some_and(|x| x == "gz")
        }
    })
}

pub async fn restore_tar(
    job: &Job,
    target: &Target,
    src: &Source<'_>,
    base: &Path,
    secrets: &[Secret],
) -> Result<ToolDone, RestoreError> {
    let refs: Vec<&Secret> = secrets.iter().collect();
    let work = RunDir::create(base)?;
    let out = work.path().join("dump");
    std::fs::create_dir(&out).map_err(io("create the unpack folder"))?;
    let (r, w) = nix::unistd::pipe().map_err(|e| io("pipe")(e.into()))?;
    let dest = out.clone();
    let unpack = tokio::task::spawn_blocking(move || {
        let mut a = tar::Archive::new(File::from(r));
        a.set_preserve_permissions(false);
        a.set_overwrite(false);
        // `unpack` refuses absolute paths and `..` components.
        a.unpack(&dest)
    });
    let group = ProcGroup::new();
    let pumped = pipeline::transfer(src, &group, File::from(w)).await;
    let unpacked = unpack
        .await
        .map_err(|e| io("unpack task")(std::io::Error::other(e.to_string())))?;
    let pumped = pumped?;
    unpacked.map_err(io("unpack the tar stream"))?;

    let t = &target.job;
    let mut spec = match job.engine {
        Engine::Mongo => {
            let mut s = engine::mongo::restore(t, job.connection.database.as_deref(), has_gz(&out));
            s.args.retain(|a| a != "--archive");
            s.arg(format!("--dir={}", out.display()));
            s
        }
        _ => {
            let mut s = engine::postgres::restore(t, DumpFormat::Custom);
            s.arg("--format=directory");
            s
        }
    };
    if job.engine != Engine::Mongo {
        spec.arg(out.display().to_string());
    }
    let run_dir::Started {
        dir: _dir,
        group,
        mut child,
        mut tail,
    } = run_dir::start(&spec, base, Stdio::null(), "restore")?;
    drop(child.stdin.take());
    let status = child.wait().await;
    let stderr = redact(&tail.finish().await, &refs);
    group.kill();
    match status {
        Ok(s) if s.success() => Ok(ToolDone { pumped, stderr }),
        Ok(s) => Err(RestoreError::Tool {
            program: spec.program.clone(),
            status: proc::describe_status(s),
            tail: if stderr.is_empty() {
                "(no output on stderr)".into()
            } else {
                stderr
            },
        }),
        Err(e) => Err(io("wait for the restore tool")(e)),
    }
}
