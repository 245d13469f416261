//! Pre/post hooks: `sh -c` in the run's process group, output to the log, no database secret in
//! their environment.

use crate::proc::{ProcGroup, StderrTail};
use crate::secret::Secret;
use std::process::Stdio;
use std::time::Duration;

pub struct HookEnv<'a> {
    pub job: &'a str,
    pub run_id: &'a str,
    pub status: &'a str,
    pub file: &'a str,
    pub size: u64,
    pub error: &'a str,
}

/// A hook that failed; `which` is "pre" or "post", `output` its redacted stdout and stderr.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{which} hook: cannot start sh: {source}")]
    Start {
        which: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{which} hook: {source}")]
    Wait {
        which: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{which} hook timed out after {}s", limit.as_secs())]
    TimedOut {
        which: &'static str,
        limit: Duration,
    },
    #[error("{which} hook failed ({how}): {output}")]
    Failed {
        which: &'static str,
        how: crate::proc::status::ExitReason,
        output: String,
    },
}

/// Run `script`; a failure carries the exit status and output tail.
pub async fn run(
    script: &str,
    which: &'static str,
    env: &HookEnv<'_>,
    secrets: &[&Secret],
    group: &ProcGroup,
    limit: Duration,
) -> Result<(), HookError> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(script);
    // Variables whose values carry one of this job's secrets (e.g. the one `${VAR}` filled a
    // password from) are not passed on.
    let redactor = crate::secret::Redactor::new(secrets);
    for (k, v) in std::env::vars_os() {
        if redactor.appears_in(&v.to_string_lossy()) {
            cmd.env_remove(k);
        }
    }
    cmd.env("DBSTASH_JOB", env.job)
        .env("DBSTASH_RUN_ID", env.run_id)
        .env("DBSTASH_STATUS", env.status)
        .env("DBSTASH_FILE", env.file)
        .env("DBSTASH_SIZE", env.size.to_string())
        .env("DBSTASH_ERROR", env.error)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = group
        .spawn(&mut cmd)
        .map_err(|source| HookError::Start { which, source })?;
    let mut out = child.stdout.take().map_or_else(StderrTail::empty, |o| {
        StderrTail::spawn_redacted(o, which, secrets.iter().map(|s| (*s).clone()).collect())
    });
    let mut err = child.stderr.take().map_or_else(StderrTail::empty, |e| {
        StderrTail::spawn_redacted(e, which, secrets.iter().map(|s| (*s).clone()).collect())
    });
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(HookError::Wait { which, source }),
        Err(_) => {
            let _ = child.start_kill();
            return Err(HookError::TimedOut { which, limit });
        }
    };
    let text = [out.finish().await, err.finish().await]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let text = redactor.redact(&text);
    if !text.is_empty() {
        tracing::info!(
            job = env.job,
            run_id = env.run_id,
            event = "hook_output",
            hook = which,
            "{text}"
        );
    }
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            which,
            how: crate::proc::status::ExitReason::of(status),
            output: text,
        })
    }
}
