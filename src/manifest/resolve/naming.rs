//! A job's name, and the folder (`path`) and object name (`name`) templates of its backups.

use super::job::JobScope;
use super::{Ctx, DEFAULT_NAME, DEFAULT_PATH};
use crate::domain::naming;
use crate::manifest::types::JobDoc;

/// Job names become folder names, metric labels and CLI arguments: keep them plain.
pub(super) fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with('.')
}

pub(super) fn check_job_name(name: &str, jptr: &str, ctx: &mut Ctx) {
    if !valid_job_name(name) {
        ctx.error_key(
            jptr,
            format!("invalid job name `{name}`: use letters, digits, `-`, `_` and `.`"),
        );
    }
}

/// `(path, name)` templates. `many`: the job writes several backups per run (several databases,
/// or `globals`), which must differ by name.
pub(super) fn naming(s: &JobScope, d: &JobDoc, many: bool, ctx: &mut Ctx) -> (String, String) {
    let path = d.path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
    if let Err(e) = naming::check_template(&path, true) {
        ctx.error(&s.p("path"), format!("path: {e}"));
    }
    let name_template = d.name.clone().unwrap_or_else(|| DEFAULT_NAME.into());
    if let Err(e) = naming::check_template(&name_template, false) {
        ctx.error(&s.p("name"), format!("name: {e}"));
    } else if !naming::is_unique_per_run(&name_template) {
        ctx.warn(
            &s.p("name"),
            "name has no {time}, {ts} or {uuid}: two runs on the same day get numbered suffixes",
        );
    }
    if many {
        // One folder per job keeps list/prune/restore simple: they look in one place.
        if path.contains("{db}") {
            ctx.error(
                &s.p("path"),
                "with several databases (or `globals`) the backups share the job's folder: keep `{db}` out of `path` and in `name`",
            );
        } else if !name_template.contains("{db}") {
            ctx.error(
                &s.p("name"),
                "with several databases (or `globals`) each database gets its own backup: put `{db}` in `name`",
            );
        }
    }
    (path, name_template)
}

#[cfg(test)]
mod tests {
    use super::valid_job_name;

    #[test]
    fn job_names_are_plain() {
        for ok in ["pg", "app-db_2.prod", &"a".repeat(100)] {
            assert!(valid_job_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a b", "a/b", "é", &"a".repeat(101)] {
            assert!(!valid_job_name(bad), "{bad}");
        }
    }
}
