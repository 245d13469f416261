//! A job's connection: the URI (or `uri_file`) first, then `host`/`port`/`user`/`password`
//! override its parts, then the engine's defaults fill what is left.

use super::job::JobScope;
use super::Ctx;
use crate::engine::uri::parse_uri;
use crate::manifest::types::JobDoc;
use crate::model::Connection;

pub(super) struct Conn {
    pub conn: Connection,
    /// The URI could not be read or parsed (reported once): what it would have supplied (the
    /// database name) is then not reported missing as well.
    pub uri_failed: bool,
}

pub(super) fn connect(s: &JobScope, d: &JobDoc, ctx: &mut Ctx) -> Conn {
    let uri = ctx.secret(d.uri.as_ref(), d.uri_file.as_ref(), &s.jptr, "uri");
    let uri_ptr = if d.uri.is_some() {
        s.p("uri")
    } else {
        s.p("uri_file")
    };
    let mut uri_failed = uri.is_none() && (d.uri.is_some() || d.uri_file.is_some());
    let mut conn = match &uri {
        Some(u) => parse_uri(s.engine, u.expose()).unwrap_or_else(|e| {
            ctx.error(&uri_ptr, e.to_string());
            uri_failed = true;
            Connection::default()
        }),
        None => Connection::default(),
    };
    if let Some(h) = &d.host {
        conn.host = Some(h.clone());
    }
    if let Some(port) = d.port {
        conn.port = Some(port as u16);
    }
    if let Some(u) = &d.user {
        conn.user = Some(u.clone());
    }
    if let Some(pw) = ctx.secret(
        d.password.as_ref(),
        d.password_file.as_ref(),
        &s.jptr,
        "password",
    ) {
        let key = if d.password.is_some() {
            s.p("password")
        } else {
            s.p("password_file")
        };
        password_warnings(ctx, s, conn.password.is_some(), &key);
        conn.password = Some(pw);
    }
    Conn { conn, uri_failed }
}

/// A password that is silently overridden or never used is a mistake waiting to be found at
/// restore time: say so now.
fn password_warnings(ctx: &mut Ctx, s: &JobScope, uri_has_one: bool, key: &str) {
    if !s.caps.passwords {
        ctx.warn(
            key,
            format!(
                "{} has no passwords: `password` is not used",
                s.engine.as_str()
            ),
        );
    } else if uri_has_one {
        ctx.warn(
            key,
            "the `uri` has a password too: this `password` replaces it (keep one of the two)",
        );
    }
}

/// The engine's defaults (port, host), a file database's path made absolute, and the database
/// name where the engine needs one. `many`: the job dumps several databases, so none is named.
pub(super) fn complete(s: &JobScope, c: &mut Conn, many: bool, ctx: &mut Ctx) {
    let conn = &mut c.conn;
    if s.caps.file_database {
        match conn.database.clone() {
            Some(path) => conn.database = Some(ctx.path(&path).to_string_lossy().into_owned()),
            None if c.uri_failed || many => {}
            None => ctx.error_key(&s.jptr, format!("job `{}` ({}) needs the database file: `uri: sqlite:///path` or `database: /path`", s.name, s.engine.as_str())),
        }
        return;
    }
    if conn.port.is_none() {
        conn.port = s.caps.default_port;
    }
    if conn.host.is_none() && !conn.params.contains_key("socket") {
        conn.host = Some("127.0.0.1".into());
    }
    if s.caps.needs_database_name && conn.database.is_none() && !c.uri_failed && !many {
        ctx.error_key(
            &s.jptr,
            format!(
                "job `{}` needs a database name (`database:` or the URI's path)",
                s.name
            ),
        );
    }
}

/// `auth_source`, or the URI's `authSource`; warned about where the engine has no such thing.
pub(super) fn auth_source(
    s: &JobScope,
    d: &JobDoc,
    conn: &Connection,
    ctx: &mut Ctx,
) -> Option<String> {
    if d.auth_source.is_some() && !s.caps.auth_source {
        ctx.warn(
            &s.p("auth_source"),
            "`auth_source` applies only to mongo jobs",
        );
    }
    d.auth_source
        .clone()
        .or_else(|| conn.params.get("authSource").cloned())
}
