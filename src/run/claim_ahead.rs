//! A several-database job's names, claimed ahead of its backups in batches: the intent markers of
//! a batch of databases are written, then the folder is listed once on each remote for all of
//! them, instead of once per database. A job's databases share one folder, so 400 databases made
//! 400 listings of a folder growing to 800 entries (objects and records); now about a dozen.
//!
//! The claim's rule is unchanged (`claim`'s notes): every name is judged on a listing taken after
//! its own marker was written on every remote still in its backup, so a run that wrote its marker
//! before that listing is seen, and one that writes it after sees ours. Names this run already won
//! are avoided as well (its own markers are not a competitor's). A database whose name is not won
//! here, or whose batch could not be written or listed, gets no claim from here and claims its
//! name itself, the ordinary way (with its retries and its errors).
//!
//! Batches start at the job's `parallel` (the first backups wait for no more than their own
//! claims) and double up to `MAX_BATCH`, so the claims stay ahead of the backups.

use super::claim::{self, Claimed, Seen, State};
use super::ctx::Ctx;
use crate::catalog::record::Previous;
use crate::model::Mode;
use crate::plan::{JobPlan, ObjectName};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// The largest batch: markers written at once (one rc request each) before the shared listing.
const MAX_BATCH: usize = 32;

/// Where a backup's claim made ahead arrives (`None`: it claims its name itself).
pub type Ahead = oneshot::Receiver<Option<Claimed>>;

/// What the claimer sends each backup.
pub type Sender = oneshot::Sender<Option<Claimed>>;

/// One receiver per unit (each taken by its backup) and the senders for `claim_all`; `None` when
/// there is nothing to share (one backup).
pub fn channels(units: &[JobPlan]) -> Option<(Vec<Ahead>, Vec<Sender>)> {
    if units.len() < 2 || !units.iter().all(|u| u.per_database) {
        return None;
    }
    let (txs, rxs): (Vec<_>, Vec<_>) = units.iter().map(|_| oneshot::channel()).unzip();
    Some((rxs, txs))
}

/// Whether a backup of `plan` reads the previous backup's record (see `unit::name`).
pub fn reads_record(plan: &JobPlan, ctx: &Ctx<'_>) -> bool {
    (plan.mode != Mode::Stream || ctx.env.progress) && plan.expected_size.is_none()
}

/// Claim the names of `units` in order, batch by batch, sending each to its backup.
pub async fn claim_all(units: &[JobPlan], ctx: &Ctx<'_>, first_batch: usize, txs: Vec<Sender>) {
    let mut won: HashSet<(String, String)> = HashSet::new();
    let mut txs = txs.into_iter();
    let mut at = 0;
    let mut size = first_batch.max(1);
    while at < units.len() {
        let batch = &units[at..(at + size).min(units.len())];
        let Some(claims) = claim_batch(batch, ctx, &mut won).await else {
            // A listing failed: every backup left claims its own name (and reports the error).
            return;
        };
        for c in claims {
            if let Some(tx) = txs.next() {
                // A backup that is gone (the run was cut short) leaves its markers to clean_up.
                let _ = tx.send(c);
            }
        }
        at += batch.len();
        size = (size * 2).min(MAX_BATCH);
    }
}

/// Mark every name of `batch`, list each folder once per remote, judge each name on that listing.
/// `None` if a listing failed.
async fn claim_batch(
    batch: &[JobPlan],
    ctx: &Ctx<'_>,
    won: &mut HashSet<(String, String)>,
) -> Option<Vec<Option<Claimed>>> {
    let wanted: Vec<ObjectName> = batch
        .iter()
        .map(|u| u.object_for(&u.name_vars(ctx.started)))
        .collect();
    let marks = batch.iter().zip(&wanted).map(|(u, w)| async move {
        let mut state = State::new(u);
        state.mark(u, ctx, w).await.ok().map(|()| state)
    });
    let states = futures_util::future::join_all(marks).await;
    // After every marker of the batch: one listing per folder and remote, shared.
    let mut listed: HashMap<&str, Vec<Option<Previous>>> = HashMap::new();
    for (u, w) in batch.iter().zip(&wanted) {
        if !listed.contains_key(w.folder.as_str()) {
            let mut all = State::new(u);
            let read_record = reads_record(u, ctx);
            let l = all.list(u, ctx, &w.folder, read_record).await.ok()?;
            listed.insert(&w.folder, l);
        }
    }
    let mut out = Vec::with_capacity(batch.len());
    for ((u, w), state) in batch.iter().zip(&wanted).zip(states) {
        let key = (w.folder.clone(), w.file.clone());
        let listings = listed.get(w.folder.as_str())?;
        let claimed = match state {
            Some(state) if !won.contains(&key) => judge(u, ctx, w, state, listings).await,
            _ => None,
        };
        if claimed.is_some() {
            won.insert(key);
        }
        out.push(claimed);
    }
    Some(out)
}

/// `w` is this backup's if no remote it is on lists it as taken or contended (and a local folder
/// creates it exclusively).
async fn judge(
    u: &JobPlan,
    ctx: &Ctx<'_>,
    w: &ObjectName,
    mut state: State,
    listings: &[Option<Previous>],
) -> Option<Claimed> {
    if listings
        .iter()
        .enumerate()
        .any(|(i, l)| state.live.contains(&i) && l.is_none())
    {
        return None;
    }
    let mine = || {
        state
            .live
            .iter()
            .filter_map(|&i| listings[i].as_ref())
            .map(|p| &p.entries)
    };
    if Seen::new(mine(), ctx.run_id).judge(&w.file).is_some() {
        return None;
    }
    if state.reserve(u, ctx, w).await.ok()?.is_some() {
        return None;
    }
    // The backup needs the previous backup and the size bound; the entries are for retention,
    // which a several-database job applies once after all of them (commit::retain).
    let listings = listings
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.as_ref()
                .filter(|_| state.live.contains(&i))
                .map(|p| Previous {
                    entries: Vec::new(),
                    backup: p.backup.clone(),
                    largest: p.largest,
                })
        })
        .collect();
    tracing::debug!(job = %u.job, run_id = ctx.run_id, event = "name_claimed_ahead", object = %w.key());
    Some(claim::claimed(w.clone(), listings, state))
}
