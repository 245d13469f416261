//! One job: its layers merged, then each group of keys resolved by its own stage. Every stage
//! reports what it finds and goes on, so one run of `validate` shows all of a job's problems.

use super::layers::{self, merge_job, Merged};
use super::{
    connection, databases, format, naming, parallel, pitr, retention, schedule, targets, verify,
};
use super::{Ctx, Sections};
use crate::domain::units::parse_size;
use crate::engine::{caps, Caps};
use crate::manifest::tree::escape;
use crate::model::*;
use serde_json::Value;

/// What every stage of one job reads: its name, where each merged key was written, its engine's
/// capabilities and the sections it refers to.
pub(super) struct JobScope<'a> {
    pub name: &'a str,
    /// `/jobs/NAME`: where a problem with no key of its own is reported.
    pub jptr: String,
    pub merged: &'a Merged,
    pub engine: Engine,
    pub caps: Caps,
    pub sections: &'a Sections<'a>,
}

impl JobScope<'_> {
    /// The pointer of a merged key (`retention/max_days`) where it was written, else the job.
    pub fn p(&self, rel: &str) -> String {
        self.merged.ptr(rel, &self.jptr)
    }
}

pub(super) fn job(name: &str, jv: &Value, sections: &Sections, ctx: &mut Ctx) -> Option<Job> {
    let jptr = format!("/jobs/{}", escape(name));
    naming::check_job_name(name, &jptr, ctx);
    let (merged, d) = merge_job(name, &jptr, jv, sections, ctx)?;
    let before = ctx.diags.iter().filter(|d| d.is_error()).count();

    let Some(engine) = d.engine else {
        // An `engine` that was written but rejected (`engine: pgx`) was already reported.
        if layers::written(ctx, &jptr, "engine") {
            return None;
        }
        ctx.error_key(
            &jptr,
            format!(
                "job `{name}` has no `engine` (set it on the job, its template or in defaults)"
            ),
        );
        return None;
    };
    let s = JobScope {
        name,
        jptr,
        merged: &merged,
        engine,
        caps: caps(engine),
        sections,
    };

    // Connection: the URI first, then discrete keys override its parts.
    let mut conn = connection::connect(&s, &d, ctx);
    let dbs = databases::databases(&s, &d, &mut conn.conn, ctx);
    connection::complete(&s, &mut conn, dbs.databases.is_many(), ctx);
    let auth_source = connection::auth_source(&s, &d, &conn.conn, ctx);

    // Where it goes, under which name, and who hears about it.
    let remotes = targets::remotes(&s, &d, ctx);
    let several = dbs.databases.is_many() || dbs.globals;
    let (path, name_template) = naming::naming(&s, &d, several, ctx);
    let parallel = parallel::parallel(&s, &d, several, ctx);
    let notify = targets::notify(&s, &d, ctx);

    // When, and how.
    let when = schedule::when(&s, &d, ctx);
    let how = format::how(&s, &d, ctx);
    let retention = retention::retention(&d.retention.clone().unwrap_or_default());
    if d.admin_user.is_some() && !s.caps.admin_user {
        ctx.warn(
            &s.p("admin_user"),
            "`admin_user` is used only by postgis jobs",
        );
    }
    let stale_after = ctx.duration(d.stale_after.as_ref(), &s.p("stale_after"));
    let (verify, encrypt) = verify::verify_and_encrypt(&s, &d, &how, ctx);
    let pitr = pitr::pitr(&s, &d, &how, dbs.databases.is_many() || dbs.globals, ctx);
    let expected_size = d.expected_size.as_ref().and_then(|v| {
        parse_size(v)
            .map_err(|e| ctx.error(&s.p("expected_size"), e))
            .ok()
    });

    let mut origins = merged.origins.clone();
    origins.remove("template");
    if ctx.diags.iter().filter(|d| d.is_error()).count() > before {
        return None;
    }
    Some(Job {
        name: name.to_string(),
        engine,
        connection: conn.conn,
        auth_source,
        remotes,
        path,
        schedule: when.schedule,
        timezone: when.timezone,
        mode: how.mode,
        name_template,
        compress: how.compress,
        compress_level: d.compress_level,
        format: how.format,
        timeout: when.timeout,
        retention,
        notify,
        run_on_start: d.run_on_start.unwrap_or(false),
        hooks: Hooks {
            pre: d.hooks.as_ref().and_then(|h| h.pre.clone()),
            post: d.hooks.as_ref().and_then(|h| h.post.clone()),
        },
        dump_args: how.dump_args,
        restore_args: d.restore_args.clone().unwrap_or_default(),
        admin_user: d.admin_user.clone(),
        stale_after,
        verify,
        allow_empty: d.allow_empty.unwrap_or(false),
        expected_size,
        databases: dbs.databases,
        exclude: dbs.exclude,
        globals: dbs.globals,
        parallel,
        encrypt,
        pitr,
        origins,
    })
}
