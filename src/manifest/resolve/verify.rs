//! `verify:` (restore drills) and `encrypt:`, resolved together: a drill of an encrypted job
//! needs the identity that decrypts it.

use super::encrypt::recipients;
use super::format::How;
use super::job::JobScope;
use super::Ctx;
use crate::domain::schedule::Schedule;
use crate::engine::uri::parse_uri;
use crate::manifest::types::JobDoc;
use crate::model::*;
use crate::secret::Secret;

pub(super) fn verify_and_encrypt(
    s: &JobScope,
    d: &JobDoc,
    how: &How,
    ctx: &mut Ctx,
) -> (Option<Verify>, Option<Encrypt>) {
    let verify = d.verify.as_ref().map(|v| Verify {
        schedule: v.schedule.as_ref().and_then(|sch| {
            Schedule::parse(sch)
                .map_err(|e| ctx.error(&s.p("verify/schedule"), e))
                .ok()
        }),
        restore_to: v.restore_to.as_ref().map(|u| {
            if let Err(e) = parse_uri(s.engine, u) {
                ctx.error(&s.p("verify/restore_to"), e.to_string());
            }
            Secret::new(u.clone())
        }),
        identity_file: v.identity_file.as_ref().map(|f| ctx.path(f)),
        no_owner: v.no_owner.unwrap_or(false),
    });
    let encrypt = d
        .encrypt
        .as_ref()
        .and_then(|e| recipients(ctx, e, &s.p("encrypt")));
    if let Some(v) = &verify {
        check_drill(s, v, encrypt.is_some(), how, ctx);
    }
    (verify, encrypt)
}

/// Keys of `verify` that cannot work with the rest of the job.
fn check_drill(s: &JobScope, v: &Verify, encrypted: bool, how: &How, ctx: &mut Ctx) {
    if v.schedule.is_some() && encrypted && v.identity_file.is_none() {
        ctx.error_key(
            &s.p("verify/schedule"),
            "a drill of an encrypted job needs `verify.identity_file` (the age identity that decrypts it)",
        );
    }
    if v.no_owner && !s.caps.no_owner {
        ctx.warn(
            &s.p("verify/no_owner"),
            "`no_owner` is used only by postgres and postgis jobs",
        );
    } else if v.no_owner && how.mode == Mode::Stream && how.format == DumpFormat::Plain {
        ctx.warn(
            &s.p("verify/no_owner"),
            "a plain SQL backup sets its owners in its own statements, so a drill cannot leave them out: use `format: custom` (or `compress: native`, or mode tar/directory)",
        );
    }
    if v.identity_file.is_some() && !encrypted {
        ctx.warn(
            &s.p("verify/identity_file"),
            "`identity_file` is used only when the job has `encrypt`",
        );
    }
}
