//! `dbstash run` (the supervisor) and `dbstash run --once`.

use super::{CliError, ExitCode, LoadOptions};
use crate::error::exit;
use crate::run::{self, RunEnv, Status};
use std::io::IsTerminal;
use std::path::Path;

pub fn run(config: &Path, once: bool, jobs: &[String]) -> Result<ExitCode, CliError> {
    if !once {
        return Ok(crate::supervisor::run(config, super::runtime()?));
    }
    run_once(config, jobs, false)
}

/// Every selected job once, in parallel up to `max_parallel`; 0 only if all succeeded.
pub(crate) fn run_once(
    config: &Path,
    jobs: &[String],
    interactive: bool,
) -> Result<ExitCode, CliError> {
    let opts = LoadOptions {
        warnings: true,
        logging: true,
    };
    let (m, plans) = super::load_plans(config, jobs, opts)?;
    let runtime = super::runtime()?;
    Ok(runtime.block_on(async move {
        let (mut env, stop) = RunEnv::new(m.settings.temp_dir.clone());
        env.progress = interactive && std::io::stderr().is_terminal();
        // No notifiers, no HTTP client: building one loads the system's CA store (~30 ms CPU).
        let notifier = if m.notifiers.is_empty() {
            None
        } else {
            crate::notify::Dispatcher::new(m.notifiers.clone()).ok()
        };
        if let Some(d) = &notifier {
            env.on_start = Some(run::notice::start_hook(d, &plans));
        }
        // SIGTERM/SIGINT: let running backups finish within shutdown_grace, then stop them.
        let grace = m.settings.shutdown_grace;
        let mut signal = crate::signals::Stop::install();
        tokio::spawn(async move {
            signal.recv().await;
            tracing::warn!(
                event = "shutdown",
                grace_seconds = grace.as_secs(),
                "stopping: running backups get the shutdown grace"
            );
            tokio::time::sleep(grace).await;
            let _ = stop.send(true);
        });
        let outcomes = run::run_many(plans.clone(), env, m.settings.max_parallel).await;
        let mut ok = true;
        for o in &outcomes {
            if let (Some(d), Some(p)) = (&notifier, plans.iter().find(|p| p.job == o.job)) {
                run::notice::finished(d, &p.notify, o).await;
            }
            match o.status {
                Status::Success => {
                    if let Some(p) = plans.iter().find(|p| p.job == o.job && p.pitr.is_some()) {
                        // The WAL that only the base backups retention removed needed.
                        crate::pitr::retention::after_backup(p).await;
                    }
                }
                Status::Skipped => {
                    crate::logging::print_error(o.error.as_deref().unwrap_or("skipped"));
                    ok = false;
                }
                _ => {
                    crate::logging::print_error(&format!(
                        "job {} failed: {}",
                        o.job,
                        o.error.as_deref().unwrap_or("unknown error")
                    ));
                    ok = false;
                }
            }
        }
        if ok {
            exit::OK
        } else {
            exit::FAILED
        }
    }))
}
