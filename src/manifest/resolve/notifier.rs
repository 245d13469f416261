//! `notifiers:`: webhooks, healthchecks pings and email, with their message templates.

use super::{entries, typed, Ctx};
use crate::manifest::schema::unknown_key_message;
use crate::manifest::tree::escape;
use crate::manifest::types::{self, NotifierDoc};
use crate::model::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Every notifier that is well formed; the others are reported.
pub(super) fn notifiers(doc: &Value, ctx: &mut Ctx) -> BTreeMap<String, Notifier> {
    let mut notifiers = BTreeMap::new();
    for (name, nv) in entries(doc, "notifiers") {
        let Some(n) = typed::<NotifierDoc>(nv) else {
            continue;
        };
        if let Some(n) = notifier(name, &n, ctx) {
            notifiers.insert(name.clone(), n);
        }
    }
    notifiers
}

fn notifier(name: &str, n: &NotifierDoc, ctx: &mut Ctx) -> Option<Notifier> {
    use types::NotifierKind as K;
    let ptr = format!("/notifiers/{}", escape(name));
    let url = ctx.secret(n.url.as_ref(), n.url_file.as_ref(), &ptr, "url");
    let secret = ctx.secret(n.secret.as_ref(), n.secret_file.as_ref(), &ptr, "secret");
    let needs_url = !matches!(n.kind, K::Email);
    if needs_url && url.is_none() && n.url_file.is_none() {
        ctx.error_key(&ptr, format!("notifier `{name}` needs `url` or `url_file`"));
    }
    if let Some(u) = &url {
        if needs_url && !(u.expose().starts_with("http://") || u.expose().starts_with("https://")) {
            ctx.error(
                &format!("{ptr}/url"),
                format!("notifier `{name}`: the URL must start with http:// or https://"),
            );
        }
    }
    let smtp = if n.kind == K::Email {
        email(name, n, &ptr, ctx)
    } else {
        not_email(n, &ptr, ctx);
        None
    };
    if n.kind != K::Webhook
        && (n.headers.is_some() || n.secret.is_some() || n.secret_file.is_some())
    {
        ctx.error_key(
            &ptr,
            format!("`headers` and `secret` apply only to webhook notifiers (`{name}` is not one)"),
        );
    }
    if let Some(m) = &n.message {
        if let Err(e) = crate::notify::template::check(m) {
            ctx.error(&format!("{ptr}/message"), template_error(&e));
        }
    }
    let on: BTreeSet<NotifyOn> = match &n.on {
        Some(o) => o.to_vec().into_iter().collect(),
        None if n.kind == K::Healthchecks => {
            [NotifyOn::Start, NotifyOn::Success, NotifyOn::Failure].into()
        }
        None => [NotifyOn::Failure].into(),
    };
    let timeout = ctx
        .duration(n.timeout.as_ref(), &format!("{ptr}/timeout"))
        .unwrap_or(Duration::from_secs(10));
    Some(Notifier {
        name: name.to_string(),
        kind: n.kind,
        url,
        on,
        message: n.message.clone(),
        timeout,
        from: n.from.clone(),
        to: n.to.clone().unwrap_or_default(),
        smtp,
        headers: n.headers.clone().unwrap_or_default(),
        secret,
    })
}

/// An email notifier's sender, recipients and SMTP server.
fn email(name: &str, n: &NotifierDoc, ptr: &str, ctx: &mut Ctx) -> Option<Smtp> {
    if n.from.is_none() {
        ctx.error_key(ptr, format!("email notifier `{name}` needs `from`"));
    }
    if n.to.as_ref().is_none_or(Vec::is_empty) {
        ctx.error_key(
            ptr,
            format!("email notifier `{name}` needs at least one address in `to`"),
        );
    }
    let Some(s) = &n.smtp else {
        ctx.error_key(
            ptr,
            format!("email notifier `{name}` needs `smtp: {{ host: ... }}`"),
        );
        return None;
    };
    let security = s.security.unwrap_or_default();
    let sptr = format!("{ptr}/smtp");
    Some(Smtp {
        host: s.host.clone(),
        port: s.port.map(|p| p as u16).unwrap_or(match security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }),
        security,
        username: s.username.clone(),
        password: ctx.secret(
            s.password.as_ref(),
            s.password_file.as_ref(),
            &sptr,
            "password",
        ),
        ca_file: s.ca_file.as_deref().map(|p| ctx.path(p)),
    })
}

/// Email keys on another kind of notifier are a mistake, not something to ignore.
fn not_email(n: &NotifierDoc, ptr: &str, ctx: &mut Ctx) {
    for (key, set) in [
        ("from", n.from.is_some()),
        ("to", n.to.is_some()),
        ("smtp", n.smtp.is_some()),
    ] {
        if set {
            ctx.error_key(
                &format!("{ptr}/{key}"),
                format!("`{key}` applies only to email notifiers"),
            );
        }
    }
}

/// A handlebars error as one short line: "unknown variable `jobb`" rather than the engine's report.
fn template_error(raw: &str) -> String {
    const STRICT: &str = "strict mode Some(\"";
    if let Some(at) = raw.find(STRICT) {
        let rest = &raw[at + STRICT.len()..];
        if let Some(end) = rest.find('"') {
            let known = crate::notify::template::sample_context();
            let names: Vec<&str> = known
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let var = &rest[..end];
            return match unknown_key_message(var, &names).split_once(", did you mean ") {
                Some((_, s)) => {
                    format!("message template: unknown variable `{var}`, did you mean {s}")
                }
                None => format!(
                    "message template: unknown variable `{var}` (known: {})",
                    names.join(", ")
                ),
            };
        }
    }
    const HELPER: &str = "Helper not found ";
    if let Some(at) = raw.find(HELPER) {
        let helper = raw[at + HELPER.len()..].lines().next().unwrap_or("").trim();
        return format!("message template: unknown helper `{helper}`");
    }
    // Keep the first line and drop the parser's list of expected tokens.
    let first = raw.lines().next().unwrap_or(raw).trim();
    let first = first
        .split_once(": expected ")
        .map_or(first, |(head, _)| head);
    let first = first
        .strip_prefix("Failed to parse template Template error: ")
        .unwrap_or(first);
    let place = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|l| {
            l.rsplit_once(':')
                .and_then(|(a, col)| Some((a.rsplit_once(':')?.1, col)))
        })
        .map(|(line, col)| format!(" at line {line}, column {col} of the message"))
        .unwrap_or_default();
    format!("message template: {first}{place}")
}

#[cfg(test)]
mod tests {
    use super::template_error;

    fn check(m: &str) -> String {
        template_error(&crate::notify::template::check(m).unwrap_err())
    }

    #[test]
    fn template_errors_are_one_short_line() {
        let unknown = check("{{jobb}}");
        assert!(
            unknown.starts_with("message template: unknown variable `jobb`, did you mean `job`"),
            "{unknown}"
        );
        assert_eq!(
            check("{{nohelper x}}"),
            "message template: unknown helper `nohelper`"
        );
        let syntax = check("{{#if}}");
        assert!(syntax.starts_with("message template: "), "{syntax}");
        assert!(
            !syntax.contains('\n') && !syntax.contains("expected "),
            "{syntax}"
        );
    }
}
