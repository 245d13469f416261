//! Which databases a job dumps: one (named in `database` or the URI), a list, or every one on
//! the server (`"*"`), with `exclude` patterns and postgres' `globals`.

use super::job::JobScope;
use super::Ctx;
use crate::manifest::types::{JobDoc, OneOrMany};
use crate::model::connection::Connection;
use crate::model::*;

pub(super) struct Selection {
    pub databases: Databases,
    pub exclude: Vec<String>,
    pub globals: bool,
}

/// The selection; a single `database:` is written into `conn` (overriding the URI's), and a
/// job with several databases names none there.
pub(super) fn databases(
    s: &JobScope,
    d: &JobDoc,
    conn: &mut Connection,
    ctx: &mut Ctx,
) -> Selection {
    let databases = match &d.database {
        Some(OneOrMany::One(db)) if db == "*" => Databases::All,
        Some(OneOrMany::Many(list)) => {
            check_list(s, list, ctx);
            Databases::List(list.clone())
        }
        Some(OneOrMany::One(db)) => {
            conn.database = Some(db.clone());
            Databases::One
        }
        None => Databases::One,
    };
    if databases.is_many() {
        conn.database = None;
        if !s.caps.multi_database {
            ctx.error(
                &s.p("database"),
                format!("several databases per job are for postgres, mysql/mariadb and mongo; {} has no databases to list", s.engine.as_str()),
            );
        }
    }
    let exclude = d.exclude.clone().unwrap_or_default();
    if d.exclude.is_some() && !databases.is_many() {
        ctx.error_key(
            &s.p("exclude"),
            "`exclude` applies only with `database: \"*\"` or a list of databases",
        );
    }
    for (i, pat) in exclude.iter().enumerate() {
        if pat.is_empty() {
            ctx.error(&format!("{}/{i}", s.p("exclude")), "empty exclude pattern");
        }
    }
    let globals = d.globals.unwrap_or(false);
    if globals && !s.caps.globals {
        ctx.error(
            &s.p("globals"),
            "`globals: true` (pg_dumpall --globals-only) is for postgres jobs",
        );
    }
    Selection {
        databases,
        exclude,
        globals,
    }
}

/// A list names each database once, and never `*` (that is `database: "*"`).
fn check_list(s: &JobScope, list: &[String], ctx: &mut Ctx) {
    if list.is_empty() {
        ctx.error(&s.p("database"), "the database list is empty");
    }
    for (i, db) in list.iter().enumerate() {
        if db.is_empty() || db == "*" || list[..i].contains(db) {
            ctx.error(
                &format!("{}/{i}", s.p("database")),
                format!("`{db}` in the database list must be a name, once (use `database: \"*\"` for every database)"),
            );
        }
    }
}
