//! How many of a several-database job's databases are backed up at once (`parallel:`).
//!
//! Independent of `settings.max_parallel`, which bounds whole runs (each with its lock, hooks and
//! notifications): a job's `parallel` is about the load one server takes, so it is set where the
//! server is — on the job. At most `max_parallel × parallel` dumps run at the same time.

use super::job::JobScope;
use super::Ctx;
use crate::manifest::types::JobDoc;

/// The job's `parallel` (default 1: one database after another). The schema bounds it to 1..=64.
pub(super) fn parallel(s: &JobScope, d: &JobDoc, several: bool, ctx: &mut Ctx) -> usize {
    let n = d.parallel.unwrap_or(1).max(1) as usize;
    // Written on the job itself for a job with one backup: a mistake worth a word. From
    // `defaults` or a template it is a fleet-wide setting that single-database jobs ignore.
    if n > 1 && !several && s.p("parallel") == format!("{}/parallel", s.jptr) {
        ctx.warn(
            &s.p("parallel"),
            "`parallel` has no effect here: the job backs up one database",
        );
    }
    n
}
