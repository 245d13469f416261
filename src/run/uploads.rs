//! The uploads of one backup object, one per live remote, owned together: started together,
//! aborted with one call, committed together. Every upload is in the run's ledger from its start
//! until its record is written (or it is deleted), so a run cut short deletes what it left.

use super::commit::{remove_backup, Committed};
use super::ctx::Ctx;
use super::error::{RunError, Tails};
use super::ledger::{Ledger, ObjectKind};
use super::relay::TeeOut;
use crate::catalog::record;
use crate::plan::JobPlan;
use crate::secret::{redact, Secret};
use crate::storage::{AnyStorage, PendingSmall, Storage, Upload};
use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// A running upload to one remote.
struct Up {
    idx: usize,
    name: String,
    optional: bool,
    upload: Upload,
    /// The record's uploader, started with the upload so its start-up is off the critical path.
    record: PendingSmall,
}

pub struct Uploads<'a> {
    stores: &'a [AnyStorage],
    ledger: &'a Ledger,
    key: String,
    ups: Vec<Up>,
}

impl<'a> Uploads<'a> {
    /// Start an upload of `key` to each of the `live` remotes. An optional remote that cannot
    /// start is dropped (noted in `dropped`); a required one aborts those already started.
    pub async fn start(
        plan: &JobPlan,
        ctx: &Ctx<'a>,
        key: &str,
        estimate: Option<u64>,
        live: &[usize],
        dropped: &mut Vec<String>,
    ) -> Result<Uploads<'a>, RunError> {
        let mut uploads = Uploads {
            stores: ctx.stores,
            ledger: ctx.partial,
            key: key.to_string(),
            ups: Vec::new(),
        };
        for &i in live {
            let r = &plan.remotes[i];
            let store = &ctx.stores[i];
            match store.begin_upload(key, ctx.upload_group, estimate).await {
                Ok(upload) => {
                    ctx.partial.note(i, key, ObjectKind::File);
                    let record = store
                        .prepare_small(&record::record_key(key), ctx.upload_group)
                        .await;
                    uploads.ups.push(Up {
                        idx: i,
                        name: r.name.clone(),
                        optional: r.optional,
                        upload,
                        record,
                    });
                }
                Err(e) if r.optional => {
                    tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %r.name, error = %e);
                    dropped.push(format!("{}: cannot start upload: {e}", r.name));
                }
                Err(source) => {
                    uploads.abort().await;
                    return Err(RunError::UploadStart {
                        remote: r.name.clone(),
                        source,
                    });
                }
            }
        }
        Ok(uploads)
    }

    /// The write ends for the relay's tee, one per upload.
    pub fn writers(&mut self) -> std::io::Result<Vec<TeeOut<File>>> {
        self.ups
            .iter_mut()
            .map(|u| {
                Ok(TeeOut {
                    name: u.name.clone(),
                    optional: u.optional,
                    writer: u.upload.take_writer()?,
                    failed: None,
                })
            })
            .collect()
    }

    /// Kill every upload before it sees EOF and delete what reached the storage. Returns what
    /// the upload tools said (`remote: tail`), for the end of the run's error.
    pub async fn abort(self) -> Tails {
        let mut tails = Vec::new();
        for u in self.ups {
            let t = u.upload.abort(&self.stores[u.idx], &self.key).await;
            if !t.is_empty() {
                tails.push(format!("{}: {t}", u.name));
            }
        }
        Tails(tails)
    }

    /// Resolves with (remote, how) when a required upload exits on its own (crashed, killed,
    /// gave up). Cancel-safe: built once and polled across the pump's iterations.
    pub async fn required_exit(&mut self) -> (String, String) {
        type Fut<'f> = Pin<Box<dyn Future<Output = (String, String)> + Send + 'f>>;
        let mut futs: Vec<Fut<'_>> = self
            .ups
            .iter_mut()
            .filter(|u| !u.optional)
            .map(|u| {
                let name = u.name.clone();
                let up = &mut u.upload;
                Box::pin(async move { (name, up.exited().await) }) as Fut<'_>
            })
            .collect();
        std::future::poll_fn(move |cx| {
            for f in futs.iter_mut() {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    return Poll::Ready(v);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// After the relay broke: a required upload that exited within a moment is the culprit.
    pub async fn dead_required(&mut self) -> Option<(String, String)> {
        for u in self.ups.iter_mut().filter(|u| !u.optional) {
            if let Ok(how) =
                tokio::time::timeout(Duration::from_millis(300), u.upload.exited()).await
            {
                return Some((u.name.clone(), how));
            }
        }
        None
    }

    /// Drop the optional remotes whose pipe broke mid-stream (`failed`: remote → why), deleting
    /// their partial objects.
    pub async fn drop_failed(
        &mut self,
        job: &str,
        failed: &BTreeMap<String, String>,
        dropped: &mut Vec<String>,
    ) {
        let (gone, keep): (Vec<Up>, Vec<Up>) = std::mem::take(&mut self.ups)
            .into_iter()
            .partition(|u| failed.contains_key(&u.name));
        self.ups = keep;
        for u in gone {
            let why = &failed[&u.name];
            let tail = u.upload.abort(&self.stores[u.idx], &self.key).await;
            self.ledger.forget(u.idx, &self.key);
            tracing::warn!(job, event = "remote_dropped", remote = %u.name, error = %why, tail = %tail);
            dropped.push(format!("{}: {why} {tail}", u.name).trim_end().to_string());
        }
    }

    /// Make every upload durable. An optional one that fails is dropped; a required one failing
    /// aborts the rest and removes the backups already committed.
    pub async fn commit(
        self,
        plan: &JobPlan,
        ctx: &Ctx<'_>,
        refs: &[&Secret],
        dropped: &mut Vec<String>,
    ) -> Result<Vec<Committed>, RunError> {
        let key = self.key;
        let mut committed = Vec::new();
        let mut ups = self.ups.into_iter();
        let mut error = None;
        for u in ups.by_ref() {
            match u.upload.commit().await {
                Ok(()) => committed.push(Committed {
                    idx: u.idx,
                    name: u.name,
                    record: u.record,
                }),
                Err(e) => {
                    let message = redact(&e.to_string(), refs);
                    remove_backup(plan, ctx, u.idx, &key).await;
                    if u.optional {
                        tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %u.name, error = %message);
                        dropped.push(format!("{}: {message}", u.name));
                    } else {
                        error = Some(RunError::Commit {
                            remote: u.name,
                            message,
                        });
                        break;
                    }
                }
            }
        }
        let Some(error) = error else {
            return Ok(committed);
        };
        for u in ups {
            let _ = u.upload.abort(&self.stores[u.idx], &key).await;
            self.ledger.forget(u.idx, &key);
        }
        for c in &committed {
            remove_backup(plan, ctx, c.idx, &key).await;
        }
        Err(error)
    }
}
