//! Run outcomes → notification events.

use super::{RunOutcome, Status};
use crate::notify::event::{Event, EventKind};
use crate::notify::Dispatcher;
use crate::plan::JobPlan;
use std::collections::HashMap;
use std::sync::Arc;

pub fn event(o: &RunOutcome, kind: EventKind) -> Event {
    Event {
        kind,
        job: o.job.clone(),
        engine: o.engine.clone(),
        database: o.database.clone(),
        run_id: o.run_id.clone(),
        remote: o.remote.clone(),
        object: o.object.clone(),
        size: o.size,
        sha256: o.sha256.clone(),
        duration: (kind != EventKind::Start).then_some(o.duration),
        error: o.error.clone(),
        started: Some(o.started),
        finished: (kind != EventKind::Start).then_some(o.finished),
        host: crate::proc::hostname(),
        warnings: o.warnings.clone(),
    }
}

/// Tell notifiers a run started (`on: start`, healthchecks `/start`); fire and forget.
pub fn start_hook(d: &Dispatcher, plans: &[JobPlan]) -> super::OnStart {
    let d = d.clone();
    let notify: HashMap<String, Vec<String>> = plans
        .iter()
        .map(|p| (p.job.clone(), p.notify.clone()))
        .collect();
    Arc::new(move |o: &RunOutcome| {
        let names = notify.get(&o.job).cloned().unwrap_or_default();
        if names.is_empty() {
            return;
        }
        let d = d.clone();
        let ev = event(o, EventKind::Start);
        tokio::spawn(async move {
            d.send(&names, &ev).await;
        });
    })
}

/// Tell notifiers how a run ended. A failed notification never fails the run.
pub async fn finished(
    d: &Dispatcher,
    names: &[String],
    o: &RunOutcome,
) -> Vec<crate::notify::Delivery> {
    let kind = match o.status {
        Status::Success => EventKind::Success,
        Status::Failure => EventKind::Failure,
        _ => return Vec::new(),
    };
    if names.is_empty() {
        return Vec::new();
    }
    d.send(names, &event(o, kind)).await
}
