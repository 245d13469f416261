//! Semantic layer: schema-valid JSON → the validated `model::Manifest`, collecting every error
//! with its location. Jobs are merged key by key from defaults < template < job.
//!
//! Each section has its own stage (`settings`, `remotes`, `notifier`), and a job is resolved by
//! `job::job` in named sub-stages, one module each. Every stage reports all it finds and goes on:
//! one bad entry must not hide the others' errors. Engine facts (ports, modes, formats, which keys
//! apply to which engine) come from `crate::engine::caps`.

mod connection;
mod databases;
mod encrypt;
mod format;
mod job;
mod layers;
mod naming;
mod notifier;
mod parallel;
mod pitr;
mod remotes;
mod retention;
mod schedule;
mod settings;
mod targets;
mod verify;

use super::schema::unknown_key_message;
use super::tree::Locations;
use crate::domain::diag::{Diagnostic, Location};
use crate::domain::units::parse_duration;
use crate::model::*;
use crate::secret::Secret;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
pub const DEFAULT_NAME: &str = "{db}-{date}-{time}";
pub const DEFAULT_PATH: &str = "{job}";

/// What every stage reads (the file, its locations, the document as written) and where it
/// reports (`diags`).
pub struct Ctx<'a> {
    pub file: &'a Path,
    pub base_dir: PathBuf,
    pub locs: &'a Locations,
    /// The document as written, before the schema layer dropped bad values.
    pub raw: &'a Value,
    /// Errors the earlier layers (YAML, `${VAR}`, schema) already reported.
    pub prior_errors: usize,
    pub diags: Vec<Diagnostic>,
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

impl Ctx<'_> {
    /// Was `name` declared under `section` (`remotes`, `notifiers`, `templates`), valid or not?
    fn declared(&self, section: &str, name: &str) -> bool {
        self.raw
            .get(section)
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(name))
    }
    fn any_error(&self) -> bool {
        self.prior_errors > 0 || self.diags.iter().any(Diagnostic::is_error)
    }
    fn loc(&self, ptr: &str) -> Location {
        self.locs.value(ptr)
    }
    fn error(&mut self, ptr: &str, msg: impl Into<String>) {
        let l = self.loc(ptr);
        self.diags.push(Diagnostic::error(self.file, l, msg));
    }
    fn error_key(&mut self, ptr: &str, msg: impl Into<String>) {
        let l = self.locs.key(ptr);
        self.diags.push(Diagnostic::error(self.file, l, msg));
    }
    fn warn(&mut self, ptr: &str, msg: impl Into<String>) {
        let l = self.locs.key(ptr);
        self.diags.push(Diagnostic::warning(self.file, l, msg));
    }
    fn path(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        if pb.is_absolute() {
            pb
        } else {
            self.base_dir.join(pb)
        }
    }
    /// The value of `inline` or the contents of `file` (trailing newline trimmed), as a secret.
    fn secret(
        &mut self,
        inline: Option<&String>,
        file: Option<&String>,
        ptr: &str,
        key: &str,
    ) -> Option<Secret> {
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.error_key(
                    &format!("{ptr}/{key}_file"),
                    format!("set either `{key}` or `{key}_file`, not both"),
                );
                None
            }
            (Some(v), None) => Some(Secret::new(v.clone())),
            (None, Some(f)) => {
                let path = self.path(f);
                match (self.read_file)(&path) {
                    Ok(s) => Some(Secret::new(s.trim_end_matches(['\n', '\r']).to_string())),
                    Err(e) => {
                        self.error(
                            &format!("{ptr}/{key}_file"),
                            format!("cannot read {key}_file `{}`: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }
    fn duration(&mut self, v: Option<&String>, ptr: &str) -> Option<Duration> {
        let s = v?;
        match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(ptr, e);
                None
            }
        }
    }
}

/// "unknown remote `nass`, did you mean `nas`?" over the names declared under `section`.
fn suggest(ctx: &Ctx, section: &str, kind: &str, name: &str) -> String {
    let names: Vec<&str> = ctx
        .raw
        .get(section)
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let hint = unknown_key_message(name, &names);
    match hint.split_once(", did you mean ") {
        Some((_, s)) => format!("unknown {kind} `{name}`, did you mean {s}"),
        None if names.is_empty() => format!("unknown {kind} `{name}` (none are declared)"),
        None => format!("unknown {kind} `{name}` (declared: {})", names.join(", ")),
    }
}

/// One section entry as its typed shape; `None` when the schema layer already reported it.
fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

fn entries<'v>(doc: &'v Value, section: &str) -> Vec<(&'v String, &'v Value)> {
    doc.get(section)
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// The sections a job may take values from or refer to, resolved before the jobs.
struct Sections<'a> {
    doc: &'a Value,
    defaults: &'a Map<String, Value>,
    settings: &'a Settings,
    remotes: &'a BTreeMap<String, Remote>,
    notifiers: &'a BTreeMap<String, Notifier>,
}

pub fn resolve(doc: &Value, ctx: &mut Ctx) -> Option<Manifest> {
    // Section by section and entry by entry, so one bad entry does not hide the others' errors.
    let settings = settings::settings(doc, ctx);
    let remotes = remotes::remotes(doc, ctx);
    let notifiers = notifier::notifiers(doc, ctx);
    let empty = Map::new();
    let defaults = doc
        .get("defaults")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    layers::check_nesting(doc, defaults, ctx);
    let sections = Sections {
        doc,
        defaults,
        settings: &settings,
        remotes: &remotes,
        notifiers: &notifiers,
    };
    let jobs = jobs(&sections, ctx);
    super::collide::check(&jobs, &remotes, ctx);
    let declares_jobs = ctx
        .raw
        .get("jobs")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    if !declares_jobs && !ctx.any_error() {
        ctx.warn("", "the manifest declares no jobs");
    }
    Some(Manifest {
        file: ctx.file.to_path_buf(),
        hash: String::new(),
        settings,
        remotes,
        notifiers,
        jobs,
        warnings: Vec::new(),
    })
}

/// Every job that resolves without errors, until the merged jobs outgrow the manifest's budget.
fn jobs(sections: &Sections, ctx: &mut Ctx) -> BTreeMap<String, Job> {
    let mut jobs = BTreeMap::new();
    let mut merged = layers::MergeBudget::new(sections.defaults);
    for (jname, jv) in entries(sections.doc, "jobs") {
        if !merged.admit(sections.doc, jv) {
            layers::over_budget(jname, ctx);
            break;
        }
        if let Some(job) = job::job(jname, jv, sections, ctx) {
            jobs.insert(jname.clone(), job);
        }
    }
    jobs
}

/// serde's reason without the value it quotes (`invalid value: integer `5000000000`, expected u32`).
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    match text.split_once("expected ") {
        Some((_, exp)) => format!("a value does not fit (expected {exp})"),
        None => "a value does not fit its key".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::serde_reason;

    #[test]
    fn serde_reason_does_not_quote_the_value() {
        let e = serde_json::from_value::<u32>(serde_json::json!(5_000_000_000u64)).unwrap_err();
        let r = serde_reason(&e);
        assert_eq!(r, "a value does not fit (expected u32)");
        assert!(!r.contains("5000000000"));
    }
}
