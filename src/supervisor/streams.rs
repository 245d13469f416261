//! The WAL stream task of a `pitr` job, with its down/recovered notifications going to the job's
//! notifiers through the dispatcher of the manifest in use.

use super::state::Shared;
use crate::notify::event::{Event, EventKind};
use crate::pitr::stream::{self, OnChange};
use crate::plan::JobPlan;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub(super) fn start(shared: Arc<Shared>, plan: Arc<JobPlan>, temp_dir: PathBuf) -> JoinHandle<()> {
    let (job, engine, remote) = (
        plan.job.clone(),
        plan.engine.as_str().to_string(),
        plan.remote.name.clone(),
    );
    let names = plan.notify.clone();
    let on_change: OnChange = Arc::new(move |up, error| {
        let Some(d) = shared.dispatcher() else {
            return;
        };
        let kind = if up {
            EventKind::StreamRecovered
        } else {
            EventKind::StreamFailure
        };
        let ev = Event::stream(kind, &job, &engine, &remote, error);
        let (names, shared) = (names.clone(), shared.clone());
        tokio::spawn(async move {
            for del in d.send(&names, &ev).await {
                shared.metrics.count_notification(&del.notifier, del.ok);
            }
        });
    });
    tokio::spawn(stream::run(plan, temp_dir, Some(on_change)))
}
