//! The pump: the relay (compress, encrypt, hash, tee) reads the producer's bytes into every upload
//! while the producer and the required uploads are watched at once. Whichever fails first stops
//! the others now (SIGKILL to the dump's group; rclone, which never sees EOF, is aborted by the
//! caller): a dump whose child still holds the pipe, or an idle dump behind a dead upload, must
//! not keep the run alive.

use super::ctx::Ctx;
use super::error::RunError;
use super::judge::{Observed, RelayFailure};
use super::producer::Source;
use super::relay::{self, Tee, TeeOut};
use super::uploads::Uploads;
use crate::cancel::Cancel;
use crate::plan::JobPlan;
use std::fs::File;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The bytes' way: the file the producer writes, and the uploads' write ends.
pub struct Flow {
    pub file: File,
    pub outs: Vec<TeeOut<File>>,
    /// Sees the dump's bytes as they pass (a pitr base backup's label).
    pub tap: Option<relay::Tap>,
}

/// Relay the flow's file into its outs until the relay and the producer have both ended.
pub async fn pump(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    flow: Flow,
    source: &mut Source,
    uploads: &mut Uploads<'_>,
    raw_estimate: Option<u64>,
    cancel: &Cancel,
) -> Result<Observed<Tee<File>>, RunError> {
    let progress = ctx.env.progress.then(|| Arc::new(AtomicU64::new(0)));
    let expected = raw_estimate.map(super::progress::Expected::About);
    let bar = progress
        .clone()
        .map(|p| super::progress::Progress::expecting(&plan.job, p, expected));
    let codec = plan.codec;
    let recipients = plan.encrypt.as_ref().map(|e| e.recipients.clone());
    let relay_cancel = cancel.clone();
    let Flow { file, outs, tap } = flow;
    let mut relay_task = tokio::task::spawn_blocking(move || {
        let tee = Tee { outs };
        relay::relay_files(
            file,
            tee,
            codec,
            recipients.as_deref(),
            progress,
            &relay_cancel,
            tap,
        )
    });
    let mut relayed = None;
    let mut produced = None;
    let mut upload_died = None;
    let mut relay_failed_first = false;
    {
        let mut stopped = false;
        let watch = uploads.required_exit();
        tokio::pin!(watch);
        while relayed.is_none() || produced.is_none() {
            tokio::select! {
                r = &mut relay_task, if relayed.is_none() => {
                    if !matches!(r, Ok(Ok(_))) && !stopped {
                        relay_failed_first = true;
                        stopped = true;
                        ctx.group.kill();
                    }
                    relayed = Some(r);
                }
                s = source.producer.wait(), if produced.is_none() => {
                    if s.is_err() && !stopped {
                        stopped = true;
                        ctx.group.kill();
                    }
                    produced = Some(s);
                }
                how = &mut watch, if upload_died.is_none() && !stopped => {
                    upload_died = Some(how);
                    stopped = true;
                    ctx.group.kill();
                }
            }
        }
    }
    if let Some(b) = bar {
        b.stop();
    }
    let (Some(relayed), Some(produced)) = (relayed, produced) else {
        return Err(RunError::Internal(
            "the relay or the dump was not waited for",
        ));
    };
    let relayed = match relayed {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(RelayFailure::Io(e)),
        Err(e) => Err(RelayFailure::Task(e)),
    };
    // A broken relay often means a dead upload broke its pipe: name that upload.
    if relayed.is_err() && upload_died.is_none() {
        upload_died = uploads.dead_required().await;
    }
    Ok(Observed {
        relayed,
        produced,
        upload_died,
        relay_failed_first,
    })
}
