//! When a job runs: its time zone, cron schedule and timeout.

use super::job::JobScope;
use super::{Ctx, DEFAULT_TIMEOUT};
use crate::domain::schedule::Schedule;
use crate::manifest::types::JobDoc;
use crate::model::*;
use std::time::Duration;

pub(super) struct When {
    pub timezone: Zone,
    pub schedule: Option<Schedule>,
    pub timeout: Duration,
}

pub(super) fn when(s: &JobScope, d: &JobDoc, ctx: &mut Ctx) -> When {
    let timezone = match &d.timezone {
        Some(tz) => Zone::get(tz).unwrap_or_else(|e| {
            ctx.error(&s.p("timezone"), e);
            s.sections.settings.timezone.clone()
        }),
        None => s.sections.settings.timezone.clone(),
    };
    let schedule = schedule(s, d, &timezone, ctx);
    let timeout = timeout(s, d, schedule.as_ref(), &timezone, ctx);
    When {
        timezone,
        schedule,
        timeout,
    }
}

fn schedule(s: &JobScope, d: &JobDoc, timezone: &Zone, ctx: &mut Ctx) -> Option<Schedule> {
    let Some(expr) = &d.schedule else {
        ctx.warn(
            &s.jptr,
            format!(
                "job `{}` has no schedule: it runs only with `dbstash backup {}`",
                s.name, s.name
            ),
        );
        return None;
    };
    Schedule::parse(expr)
        .and_then(|sch| {
            // `0 0 31 4 *` parses but never runs: say so now, not by silence.
            match sch.next_after(jiff::Timestamp::now(), &timezone.tz) {
                Some(_) => Ok(sch),
                None => Err(format!(
                    "schedule `{}` never runs (no such date)",
                    sch.expr()
                )),
            }
        })
        .map_err(|e| ctx.error(&s.p("schedule"), e))
        .ok()
}

fn timeout(
    s: &JobScope,
    d: &JobDoc,
    schedule: Option<&Schedule>,
    timezone: &Zone,
    ctx: &mut Ctx,
) -> Duration {
    let timeout = ctx
        .duration(d.timeout.as_ref(), &s.p("timeout"))
        .unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        ctx.error(&s.p("timeout"), "timeout must be longer than 0s");
    }
    // Only an explicit timeout is compared with the schedule (the comparison costs a few cron walks).
    if let (Some(sch), Some(_)) = (schedule, &d.timeout) {
        if let Some(gap) = sch.min_interval(jiff::Timestamp::now(), &timezone.tz) {
            if timeout > gap {
                ctx.warn(&s.p("timeout"), format!("timeout {} is longer than the {}s between runs: overlapping ticks will be skipped", d.timeout.clone().unwrap_or_default(), gap.as_secs()));
            }
        }
    }
    timeout
}
