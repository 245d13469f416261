//! A job's references to the manifest's sections: the remotes its backups go to and the
//! notifiers that hear about its runs.

use super::job::JobScope;
use super::{suggest, Ctx};
use crate::manifest::types::{JobDoc, OneOrMany, RemoteRef};
use crate::model::*;

/// `remote:`: one name or a list, each declared once; at least one must be required.
pub(super) fn remotes(s: &JobScope, d: &JobDoc, ctx: &mut Ctx) -> Vec<RemoteTarget> {
    let mut targets = Vec::new();
    let Some(r) = &d.remote else {
        ctx.error_key(&s.jptr, format!("job `{}` has no `remote`", s.name));
        return targets;
    };
    for (i, item) in r.to_vec().iter().enumerate() {
        let (rname, optional) = match item {
            RemoteRef::Name(n) => (n.clone(), false),
            RemoteRef::Entry(e) => (e.name.clone(), e.optional),
        };
        if targets.iter().any(|t: &RemoteTarget| t.name == rname) {
            ctx.error(
                &format!("{}/{i}", s.p("remote")),
                format!("remote `{rname}` is listed twice"),
            );
        }
        if !s.sections.remotes.contains_key(&rname) && !ctx.declared("remotes", &rname) {
            let rp = if matches!(r, OneOrMany::Many(_)) {
                format!("{}/{i}", s.p("remote"))
            } else {
                s.p("remote")
            };
            let msg = suggest(ctx, "remotes", "remote", &rname);
            ctx.error(&rp, msg);
        }
        targets.push(RemoteTarget {
            name: rname,
            optional,
        });
    }
    if !targets.is_empty() && targets.iter().all(|t| t.optional) {
        ctx.error(
            &s.p("remote"),
            "every remote is `optional: true`: at least one must be required, or a run could succeed with no backup anywhere",
        );
    }
    targets
}

/// `notify:`: names of declared notifiers.
pub(super) fn notify(s: &JobScope, d: &JobDoc, ctx: &mut Ctx) -> Vec<String> {
    let notify = d.notify.clone().unwrap_or_default();
    for (i, n) in notify.iter().enumerate() {
        if !s.sections.notifiers.contains_key(n) && !ctx.declared("notifiers", n) {
            let msg = suggest(ctx, "notifiers", "notifier", n);
            ctx.error(&format!("{}/{i}", s.p("notify")), msg);
        }
    }
    notify
}
