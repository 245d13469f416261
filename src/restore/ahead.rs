//! A PostgreSQL restore whose download starts as soon as the backup is picked, ahead of its tool:
//! the `rclone cat` start and the first bytes overlap the checks and the target's creation
//! instead of following them (see [`super::gate`]). For a custom-format backup the roles check
//! reads the archive's head from that same stream, so the archive is fetched once, not twice.
//!
//! Nothing changes in what is checked or in what order the target is touched: the roles verdict
//! comes before the confirmation, the confirmation before the creation, the creation before the
//! tool, and the tool still sees end-of-file only after the pump's verdict (`pipeline::Tool`).

use super::gate;
use super::pipeline::{self, Source, ToolDone};
use super::pump::PumpError;
use super::roles::{self, Hint};
use super::target::{self, Target};
use super::{confirm, unless_stopped, Consent, RestoreError};
use crate::domain::command::CommandSpec;
use crate::engine::mysql::DbCharset;
use crate::proc::ProcGroup;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

/// What happens between the download's start and the tool's.
pub(super) struct Prep<'a> {
    pub target: &'a Target,
    pub base: &'a Path,
    /// The target server's roles, when the backup's roles are to be checked against them (a
    /// custom-format backup): the check reads the stream's head.
    pub roles: Option<&'a BTreeSet<String>>,
    pub hint: Hint<'a>,
    /// The question to confirm before the target is touched, if any.
    pub confirm: Option<(Consent, String)>,
    /// Create the target first (with the source's character set, if any).
    pub create: Option<Option<&'a DbCharset>>,
}

/// Restore `src` into `spec`. `created` is set as soon as the target was created (the caller
/// drops it again if the restore then fails, whenever that is).
pub(super) async fn restore(
    src: &Source<'_>,
    spec: &CommandSpec,
    p: Prep<'_>,
    created: &AtomicBool,
) -> Result<ToolDone, RestoreError> {
    let (gate, opener, listing) = match p.roles {
        Some(_) => {
            let (listing, file, pipe) = roles::start_listing(p.base)?;
            let (g, o) = gate::with_head(file, pipe);
            (g, o, Some(listing))
        }
        None => {
            let (g, o) = gate::closed();
            (g, o, None)
        }
    };
    let download = ProcGroup::new();
    let transfer = pipeline::transfer(src, &download, gate);
    tokio::pin!(transfer);
    // Set if the transfer ends before the tool starts: it can then only have failed (the gate
    // holds it until then).
    let mut ended = None;

    // 1. The roles verdict: read-only work.
    let verdict = async {
        match (listing, p.roles) {
            (Some(l), Some(have)) => {
                let needed = l.roles(p.base).await?;
                let missing = roles::missing(&needed, have);
                roles::refuse_missing(p.target, &src.backup.id, missing, p.hint)
            }
            _ => Ok(()),
        }
    };
    let mut ready = beside(unless_stopped(verdict), &mut transfer, &mut ended).await;
    // 2. Confirm, create, PostGIS: the target is touched only from here on, and not at all once
    //    the download failed.
    if ready.is_ok() && ended.is_none() {
        ready = beside(prepare(&p, created), &mut transfer, &mut ended).await;
    }
    if let Err(e) = ready {
        // Refused: the gate fails the pump's next write. The transfer is let end by itself first:
        // a download that failed on its own (a truncated or damaged object, whose head the
        // listing could not read) explains the failure better than the listing does.
        drop(opener);
        let ended = match ended {
            Some(r) => r,
            None => transfer.await,
        };
        download.kill();
        return Err(match ended {
            Err(t) if !refused_by_us(&t) => t,
            _ => e,
        });
    }
    if let Some(r) = ended {
        // The download failed while the target was being prepared.
        return Err(r.err().unwrap_or_else(|| RestoreError::Io {
            what: "restore stream".into(),
            source: std::io::Error::other("ended before its tool started"),
        }));
    }

    // 3. The tool: the gate replays what it kept and lets the rest through.
    let (tool, writer) = match pipeline::Tool::start(spec, p.base) {
        Ok(t) => t,
        Err(e) => {
            drop(opener);
            download.kill();
            let _ = transfer.await;
            return Err(e);
        }
    };
    // A pump that is gone already failed: the transfer says why.
    opener.open(writer);
    let result = unless_stopped(&mut transfer).await;
    let done = tool.finish(result, &p.target.secrets()).await;
    download.kill();
    done
}

/// `work`, with the transfer polled beside it (so that the download starts at once and goes as
/// far as the gate); the transfer's result goes to `ended` if it ends first. `work` itself is
/// never cut short: it may be creating the target.
async fn beside<T, R>(
    work: impl Future<Output = T>,
    transfer: &mut Pin<&mut impl Future<Output = R>>,
    ended: &mut Option<R>,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            r = transfer.as_mut(), if ended.is_none() => *ended = Some(r),
            w = &mut work => return w,
        }
    }
}

/// The transfer's failure when the gate refused it (or the listing stopped reading).
fn refused_by_us(e: &RestoreError) -> bool {
    matches!(
        e,
        RestoreError::Integrity {
            source: PumpError::Sink(_),
            ..
        }
    )
}

async fn prepare(p: &Prep<'_>, created: &AtomicBool) -> Result<(), RestoreError> {
    if let Some((consent, question)) = &p.confirm {
        confirm(*consent, question)?;
    }
    if let Some(charset) = p.create {
        target::create(p.target, p.base, charset).await?;
        created.store(true, Ordering::SeqCst);
    }
    unless_stopped(target::postgis(p.target, p.base)).await
}
