//! `pitr:` — continuous WAL/binlog archiving. Only engines whose log dbstash can stream take it,
//! and only with the one shape a base backup (postgres) or a positioned dump (mysql/mariadb) has.

use super::format::How;
use super::job::JobScope;
use super::Ctx;
use crate::manifest::types::JobDoc;
use crate::model::*;
use std::time::Duration;

/// `/healthz` reports a stream down for longer than this when `max_lag` is not set.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(300);

/// PostgreSQL's limit on a replication slot name (NAMEDATALEN - 1).
const MAX_SLOT_LEN: usize = 63;

pub(super) fn pitr(
    s: &JobScope,
    d: &JobDoc,
    how: &How,
    several: bool,
    ctx: &mut Ctx,
) -> Option<Pitr> {
    let doc = d.pitr.as_ref()?;
    let max_lag = ctx.duration(doc.max_lag.as_ref(), &s.p("pitr/max_lag"));
    if doc.enabled != Some(true) {
        return None;
    }
    match s.engine {
        Engine::Postgres | Engine::Postgis => {}
        Engine::Mysql | Engine::Mariadb => return binlog_pitr(s, d, how, several, ctx, max_lag),
        e => {
            ctx.error(
                &s.p("pitr/enabled"),
                format!(
                    "`pitr` needs a server log to stream: postgres, mysql or mariadb, not {}",
                    e.as_str()
                ),
            );
            return None;
        }
    }
    if how.mode != Mode::Stream {
        ctx.error(
            &s.p("mode"),
            "a `pitr` job's backups are base backups of the whole server, streamed as one tar: drop `mode`",
        );
    }
    if several {
        ctx.error(
            &s.p("pitr/enabled"),
            "a `pitr` job archives the whole server: it takes one base backup, not one per database (drop `database: \"*\"`/lists and `globals`)",
        );
    }
    let slot = match &doc.slot {
        Some(name) => {
            if !is_slot_name(name) {
                ctx.error(
                    &s.p("pitr/slot"),
                    format!("`{name}` is not a replication slot name: 1 to {MAX_SLOT_LEN} lower-case letters, digits or `_`"),
                );
            }
            name.clone()
        }
        None => default_slot(s.name),
    };
    Some(Pitr {
        slot,
        max_lag: max_lag.unwrap_or(DEFAULT_MAX_LAG),
    })
}

/// mysql/mariadb: the binlog is the server's, the dumps are of one database (the one a restore
/// replays the binlog for); no slot.
fn binlog_pitr(
    s: &JobScope,
    d: &JobDoc,
    how: &How,
    several: bool,
    ctx: &mut Ctx,
    max_lag: Option<Duration>,
) -> Option<Pitr> {
    if how.mode != Mode::Stream {
        ctx.error(
            &s.p("mode"),
            "a mysql/mariadb `pitr` job's dumps are read as they stream (for their binlog position): drop `mode`",
        );
    }
    if several {
        ctx.error(
            &s.p("pitr/enabled"),
            "a mysql/mariadb `pitr` job replays the binlog into one database: name one `database` (no `\"*\"`, lists or `globals`)",
        );
    }
    if d.pitr.as_ref().is_some_and(|p| p.slot.is_some()) {
        ctx.error(
            &s.p("pitr/slot"),
            "`slot` is PostgreSQL's (a replication slot); a mysql/mariadb stream reads the binlog from the server's files: drop it",
        );
    }
    Some(Pitr {
        slot: String::new(),
        max_lag: max_lag.unwrap_or(DEFAULT_MAX_LAG),
    })
}

/// `dbstash_JOB`, lower-cased, with every character a slot name cannot hold as `_`.
pub fn default_slot(job: &str) -> String {
    let mut slot: String = format!("dbstash_{job}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    slot.truncate(MAX_SLOT_LEN);
    slot
}

/// What PostgreSQL accepts as a replication slot name.
fn is_slot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SLOT_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_slot_is_a_valid_slot_name() {
        assert_eq!(default_slot("App-1.prod"), "dbstash_app_1_prod");
        assert!(is_slot_name(&default_slot(&"x".repeat(100))));
    }

    #[test]
    fn slot_names_are_checked() {
        assert!(is_slot_name("dbstash_app"));
        assert!(!is_slot_name("Bad"));
        assert!(!is_slot_name(""));
        assert!(!is_slot_name(&"a".repeat(64)));
    }
}
