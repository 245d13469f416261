//! Claiming an object's name before anything is written under it: two runs (two jobs sharing a
//! folder and a name pattern, or two deployments sharing a bucket) never write the same object,
//! so a record always describes its own bytes.
//!
//! On every remote of the backup the run writes its intent marker for the name
//! (`.NAME.RUNID.dbstash-intent`: one per run, so markers never overwrite each other), then lists
//! the folder. The name is the run's if the listing shows no object, record or other run's marker
//! for it; a local folder then also creates the object exclusively (`Storage::reserve`, O_EXCL),
//! which keeps out anything else that writes there. Two runs racing for a name cannot both win:
//! each writes before it lists, so whichever lists second sees the other's marker (a local folder
//! is exact; S3 lists what was written before, as the other rclone backends meant for backups do).
//! When both see each other, both step back: a name taken by a finished backup moves on to the
//! next `-N`; a name another run contends for moves to one carrying the run's id, which no other
//! run can produce. rclone has no create-if-absent across its backends, hence a claim that the
//! other run sees rather than an atomic create.
//!
//! The marker stays until the object is complete (its record written) or deleted: it is the
//! positive evidence `catalog::leftovers` needs to tell a crashed run's object from a foreign file.

use super::ctx::Ctx;
use super::ledger::{ObjectKind, Partial};
pub use super::markers::Claims;
use super::markers::Held;
use crate::catalog::leftovers::{self, Intent, LiveRun};
use crate::catalog::record::{self, Previous};
use crate::model::Mode;
use crate::plan::{JobPlan, ObjectName};
use crate::storage::{join_key, Entry, Reservation, Storage, StorageError};
use std::collections::HashSet;

/// Names tried before giving up (each costs a marker write and a listing per remote).
const ATTEMPTS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("cannot write to remote `{remote}`: {source}")]
    Marker {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot list remote `{remote}`: {source}")]
    List {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot create the backup on remote `{remote}`: {source}")]
    Reserve {
        remote: String,
        #[source]
        source: StorageError,
    },
    #[error("found no free name for `{wanted}` in {ATTEMPTS} attempts")]
    Exhausted { wanted: String },
}

/// A name this run owns on every remote still in the backup.
pub struct Claimed {
    pub obj: ObjectName,
    /// Per remote of the plan: its folder as listed after the claim (None: remote dropped).
    pub listings: Vec<Option<Previous>>,
    /// Remotes in the backup.
    pub live: Vec<usize>,
    /// Optional remotes that failed, with why.
    pub dropped: Vec<String>,
}

/// Why a candidate name was not won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lost {
    /// A backup (or any file) has it.
    Taken,
    /// Another run has a marker for it.
    Contended,
}

/// Claim `wanted` (or the first free name after it) on every remote of `plan`.
pub async fn claim(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    wanted: &ObjectName,
    read_record: bool,
) -> Result<Claimed, ClaimError> {
    let mut state = State::new(plan);
    let mut avoid: HashSet<String> = HashSet::new();
    let mut base = wanted.clone();
    let mut candidate = wanted.clone();
    for _ in 0..ATTEMPTS {
        state.mark(plan, ctx, &candidate).await?;
        let listings = state
            .list(plan, ctx, &candidate.folder, read_record)
            .await?;
        let seen = Seen::new(listings.iter().flatten().map(|p| &p.entries), ctx.run_id);
        let lost = match seen.judge(&candidate.file) {
            Some(l) => Some(l),
            None => state.reserve(plan, ctx, &candidate).await?,
        };
        let Some(lost) = lost else {
            return Ok(Claimed {
                obj: candidate,
                listings,
                live: state.live,
                dropped: state.dropped,
            });
        };
        release(ctx, &candidate.key()).await;
        tracing::info!(job = %plan.job, run_id = ctx.run_id, event = "name_taken", object = %candidate.key(), contended = lost == Lost::Contended);
        avoid.insert(candidate.file.clone());
        avoid.extend(seen.taken);
        if lost == Lost::Contended && base == *wanted {
            base = with_run_id(wanted, &plan.extension, ctx.run_id);
        }
        candidate = next_free(&base, &plan.extension, &avoid);
    }
    Err(ClaimError::Exhausted {
        wanted: wanted.key(),
    })
}

/// The claim of `obj`, won with `state`'s remotes (see `claim_ahead`).
pub(super) fn claimed(obj: ObjectName, listings: Vec<Option<Previous>>, state: State) -> Claimed {
    Claimed {
        obj,
        listings,
        live: state.live,
        dropped: state.dropped,
    }
}

/// The remotes still in the backup as the claim goes on.
pub(super) struct State {
    pub(super) live: Vec<usize>,
    dropped: Vec<String>,
}

impl State {
    /// Every remote of `plan`, none dropped yet.
    pub(super) fn new(plan: &JobPlan) -> Self {
        State {
            live: (0..plan.remotes.len()).collect(),
            dropped: Vec::new(),
        }
    }

    /// A failure on remote `i`: an optional remote leaves the backup, a required one fails it.
    fn drop_or_fail(
        &mut self,
        plan: &JobPlan,
        i: usize,
        what: &str,
        e: StorageError,
        fail: impl FnOnce(String, StorageError) -> ClaimError,
    ) -> Result<(), ClaimError> {
        let r = &plan.remotes[i];
        if !r.optional {
            return Err(fail(r.name.clone(), e));
        }
        tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %r.name, error = %e);
        self.dropped.push(format!("{}: {what}: {e}", r.name));
        self.live.retain(|&j| j != i);
        Ok(())
    }

    /// Write this run's marker for `obj` on every live remote.
    pub(super) async fn mark(
        &mut self,
        plan: &JobPlan,
        ctx: &Ctx<'_>,
        obj: &ObjectName,
    ) -> Result<(), ClaimError> {
        let intent = Intent::new(
            &plan.job,
            ctx.run_id,
            &obj.file,
            plan.mode == Mode::Directory,
            ctx.started,
        );
        let body = serde_json::to_vec_pretty(&intent).unwrap_or_default();
        let marker = join_key(&obj.folder, &leftovers::intent_name(&obj.file, ctx.run_id));
        let writes = self.live.iter().map(|&i| {
            let (marker, body) = (&marker, &body);
            async move { (i, ctx.stores[i].write_small(marker, body).await) }
        });
        for (i, r) in futures_join(writes).await {
            match r {
                Ok(()) => ctx.claims.push(Held {
                    idx: i,
                    key: obj.key(),
                    marker: marker.clone(),
                    _live: LiveRun::new(ctx.run_id),
                }),
                Err(e) => self.drop_or_fail(plan, i, "cannot write", e, |remote, source| {
                    ClaimError::Marker { remote, source }
                })?,
            }
        }
        Ok(())
    }

    /// List `folder` on every live remote (after the markers: see the module's notes).
    pub(super) async fn list(
        &mut self,
        plan: &JobPlan,
        ctx: &Ctx<'_>,
        folder: &str,
        read_record: bool,
    ) -> Result<Vec<Option<Previous>>, ClaimError> {
        let lists = self.live.iter().map(|&i| async move {
            let r = record::newest_backup(&ctx.stores[i], folder, &plan.job, read_record).await;
            (i, r)
        });
        let mut out: Vec<Option<Previous>> = (0..plan.remotes.len()).map(|_| None).collect();
        for (i, r) in futures_join(lists).await {
            match r {
                Ok(p) => out[i] = Some(p),
                Err(e) => self.drop_or_fail(plan, i, "cannot list", e, |remote, source| {
                    ClaimError::List { remote, source }
                })?,
            }
        }
        Ok(out)
    }

    /// Create the object exclusively where the storage can; `Some(Taken)` if any remote has it.
    pub(super) async fn reserve(
        &mut self,
        plan: &JobPlan,
        ctx: &Ctx<'_>,
        obj: &ObjectName,
    ) -> Result<Option<Lost>, ClaimError> {
        let key = obj.key();
        let folder = plan.mode == Mode::Directory;
        for i in self.live.clone() {
            match ctx.stores[i].reserve(&key, folder).await {
                Ok(Reservation::Made) => note_partial(ctx, i, &key, folder),
                Ok(Reservation::Unsupported) => {}
                Ok(Reservation::Taken) => {
                    undo_reservations(ctx, &key).await;
                    return Ok(Some(Lost::Taken));
                }
                Err(e) => {
                    self.drop_or_fail(plan, i, "cannot create", e, |remote, source| {
                        ClaimError::Reserve { remote, source }
                    })?;
                }
            }
        }
        Ok(None)
    }
}

/// Run futures concurrently (few: one per remote), results in their order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = futs.map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, res) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                    *res = Some(v);
                    *slot = None;
                }
            }
        }
        if pending.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Record that `key` may be on remote `i` without a record (deleted if the run is cut short).
pub(super) fn note_partial(ctx: &Ctx<'_>, i: usize, key: &str, folder: bool) {
    ctx.partial.note(i, key, ObjectKind::of(folder));
}

/// Delete the placeholders this run reserved for `key` (another remote had the name).
async fn undo_reservations(ctx: &Ctx<'_>, key: &str) {
    let mine: Vec<(usize, bool)> = ctx
        .partial
        .take_key(key)
        .into_iter()
        .map(|p| (p.remote, p.kind == ObjectKind::Folder))
        .collect();
    for (i, folder) in mine {
        let store = &ctx.stores[i];
        let r = if folder {
            store.delete_dir(key).await
        } else {
            store.delete(key).await
        };
        if let Err(e) = r {
            tracing::warn!(event = "cleanup_failed", key, error = %e);
        }
    }
}

/// Withdraw this run's markers for `key` (the name went to someone else).
async fn release(ctx: &Ctx<'_>, key: &str) {
    for h in ctx.claims.take_for(key) {
        if let Err(e) = ctx.stores[h.idx].delete(&h.marker).await {
            tracing::warn!(event = "cleanup_failed", key = %h.marker, error = %e);
        }
    }
}

/// What listings show of names: taken by a file (an object or a record's object), or marked by
/// another run.
pub(super) struct Seen {
    taken: HashSet<String>,
    contended: HashSet<String>,
}

impl Seen {
    pub(super) fn new<'a>(listings: impl Iterator<Item = &'a Vec<Entry>>, run_id: &str) -> Self {
        let mut s = Seen {
            taken: HashSet::new(),
            contended: HashSet::new(),
        };
        for e in listings.flatten() {
            if let Some((object, run)) = leftovers::parse_intent_name(&e.name) {
                if run != run_id {
                    s.contended.insert(object.to_string());
                }
                continue;
            }
            if let Some(object) = e.name.strip_suffix(record::SUFFIX) {
                s.taken.insert(object.to_string());
            }
            s.taken.insert(e.name.clone());
        }
        s
    }

    pub(super) fn judge(&self, name: &str) -> Option<Lost> {
        if self.contended.contains(name) {
            Some(Lost::Contended)
        } else if self.taken.contains(name) {
            Some(Lost::Taken)
        } else {
            None
        }
    }
}

/// `NAME.EXT`, else `NAME-2.EXT`, `NAME-3.EXT`, … : the first not in `avoid`.
fn next_free(base: &ObjectName, ext: &str, avoid: &HashSet<String>) -> ObjectName {
    if !avoid.contains(&base.file) {
        return base.clone();
    }
    let stem = base.file.strip_suffix(ext).unwrap_or(&base.file);
    (2..)
        .map(|i| ObjectName {
            folder: base.folder.clone(),
            file: format!("{stem}-{i}{ext}"),
        })
        .find(|o| !avoid.contains(&o.file))
        .unwrap_or_else(|| base.clone())
}

/// `NAME-RUNID.EXT`: a name no other run can produce.
fn with_run_id(obj: &ObjectName, ext: &str, run_id: &str) -> ObjectName {
    let stem = obj.file.strip_suffix(ext).unwrap_or(&obj.file);
    ObjectName {
        folder: obj.folder.clone(),
        file: format!("{stem}-{run_id}{ext}"),
    }
}

/// After a run: delete what it left without a record (objects of a cut-short run, placeholders),
/// then its markers — except beside an object that could not be deleted, which the marker must
/// keep identifying for the next prune. Returns what was partial. Deletions run concurrently (a
/// remote call each): this is on the path of every failed run.
pub async fn clean_up(ctx: &Ctx<'_>, job: &str) -> Vec<Partial> {
    let partial = ctx.partial.take_all();
    let deletions = partial.iter().map(|p| async move {
        let store = &ctx.stores[p.remote];
        let object = async {
            match p.kind {
                ObjectKind::Folder => store.delete_dir(&p.key).await,
                ObjectKind::File => store.delete(&p.key).await,
            }
        };
        let rkey = record::record_key(&p.key);
        let (rec, obj) = tokio::join!(store.delete(&rkey), object);
        (p.remote, p.key.as_str(), [rec, obj])
    });
    let mut stuck: HashSet<(usize, &str)> = HashSet::new();
    for (i, key, results) in futures_join(deletions).await {
        for err in results.into_iter().filter_map(Result::err) {
            tracing::warn!(job, run_id = ctx.run_id, event = "cleanup_failed", key = %key, error = %err);
            stuck.insert((i, key));
        }
    }
    let markers = ctx
        .claims
        .take_all()
        .into_iter()
        .filter(|h| !stuck.contains(&(h.idx, h.key.as_str())))
        .map(|h| async move { (ctx.stores[h.idx].delete(&h.marker).await, h) });
    for (r, h) in futures_join(markers).await {
        if let Err(e) = r {
            tracing::warn!(job, run_id = ctx.run_id, event = "cleanup_failed", key = %h.marker, error = %e);
        }
    }
    partial
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(file: &str) -> ObjectName {
        ObjectName {
            folder: "f".into(),
            file: file.into(),
        }
    }

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            size: 1,
            modified: None,
        }
    }

    #[test]
    fn next_free_skips_every_avoided_name() {
        let avoid: HashSet<String> = ["a.sql", "a-2.sql"].iter().map(|s| s.to_string()).collect();
        assert_eq!(next_free(&obj("b.sql"), ".sql", &avoid).file, "b.sql");
        assert_eq!(next_free(&obj("a.sql"), ".sql", &avoid).file, "a-3.sql");
        assert_eq!(
            with_run_id(&obj("a.sql"), ".sql", "0123456789ab").file,
            "a-0123456789ab.sql"
        );
    }

    #[test]
    fn listings_tell_taken_from_contended_and_ignore_our_own_marker() {
        let mine = leftovers::intent_name("x.sql", "aaaaaaaaaaaa");
        let theirs = leftovers::intent_name("y.sql", "bbbbbbbbbbbb");
        let listing = vec![
            entry(&mine),
            entry(&theirs),
            entry("z.sql.dbstash.json"),
            entry("w.sql"),
        ];
        let seen = Seen::new([&listing].into_iter(), "aaaaaaaaaaaa");
        assert_eq!(seen.judge("x.sql"), None);
        assert_eq!(seen.judge("y.sql"), Some(Lost::Contended));
        assert_eq!(seen.judge("z.sql"), Some(Lost::Taken));
        assert_eq!(seen.judge("w.sql"), Some(Lost::Taken));
    }
}
