//! A job's values, merged key by key from defaults < template < job, with each key's source
//! pointer kept so errors point where the value was written.

use super::{serde_reason, suggest, Ctx, Sections};
use crate::manifest::limits::{human, MAX_MERGED_BYTES};
use crate::manifest::tree::escape;
use crate::manifest::types::JobDoc;
use crate::model::*;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Job keys whose mapping values merge key by key across layers (the rest are replaced whole).
const NESTED: &[&str] = &["retention", "hooks", "verify", "encrypt"];

/// Every job gets its own copy of `defaults` and of its template: a long default (a hook script,
/// say) and thousands of one-line jobs must not multiply into gigabytes.
pub(super) struct MergeBudget<'a> {
    defaults: usize,
    templates: HashMap<&'a str, usize>,
    used: usize,
}

impl<'a> MergeBudget<'a> {
    pub(super) fn new(defaults: &Map<String, Value>) -> Self {
        MergeBudget {
            defaults: defaults.iter().map(|(k, v)| k.len() + json_size(v)).sum(),
            templates: HashMap::new(),
            used: 0,
        }
    }

    /// Count one job's merged size; false once all jobs together pass the cap.
    pub(super) fn admit(&mut self, doc: &Value, job: &'a Value) -> bool {
        let template = match job.get("template").and_then(Value::as_str) {
            Some(t) => *self.templates.entry(t).or_insert_with(|| {
                doc.get("templates")
                    .and_then(|ts| ts.get(t))
                    .map_or(0, json_size)
            }),
            None => 0,
        };
        self.used += self.defaults + template + json_size(job);
        self.used <= MAX_MERGED_BYTES
    }
}

/// Roughly the bytes a value holds: its strings and keys, a word for anything else.
fn json_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(json_size).sum(),
        Value::Object(m) => m.iter().map(|(k, v)| k.len() + json_size(v)).sum(),
        _ => 8,
    }
}

/// The merged job: values, and for each key path (`retention/max_files`) the pointer it came from.
pub(super) struct Merged {
    value: Map<String, Value>,
    source: HashMap<String, String>,
    pub(super) origins: BTreeMap<String, Origin>,
}

impl Merged {
    pub(super) fn ptr(&self, rel: &str, fallback: &str) -> String {
        self.source
            .get(rel)
            .cloned()
            .unwrap_or_else(|| fallback.to_string())
    }
}

fn merge(layers: &[(Origin, String, &Map<String, Value>)]) -> Merged {
    let mut m = Merged {
        value: Map::new(),
        source: HashMap::new(),
        origins: BTreeMap::new(),
    };
    for (origin, base, layer) in layers {
        for (k, v) in layer.iter() {
            let kptr = format!("{base}/{}", escape(k));
            if v.is_null() {
                // `key: null` unsets an inherited value.
                m.value.remove(k);
                m.origins.remove(k);
                continue;
            }
            match (NESTED.contains(&k.as_str()), v, m.value.get_mut(k)) {
                (true, Value::Object(inner), Some(Value::Object(existing))) => {
                    for (ik, iv) in inner {
                        existing.insert(ik.clone(), iv.clone());
                        m.source
                            .insert(format!("{k}/{ik}"), format!("{kptr}/{}", escape(ik)));
                    }
                }
                _ => {
                    m.value.insert(k.clone(), v.clone());
                    if let Value::Object(inner) = v {
                        for ik in inner.keys() {
                            m.source
                                .insert(format!("{k}/{ik}"), format!("{kptr}/{}", escape(ik)));
                        }
                    }
                }
            }
            m.source.insert(k.clone(), kptr);
            m.origins.insert(k.clone(), origin.clone());
        }
    }
    m
}

/// The key (`retention/max_days`) of a merged job whose value does not fit its type, so the error
/// points at the value instead of the job.
fn misfit(job: &Map<String, Value>) -> Option<String> {
    let fits = |m: Map<String, Value>| serde_json::from_value::<JobDoc>(Value::Object(m)).is_ok();
    for (k, v) in job {
        if fits(Map::from_iter([(k.clone(), v.clone())])) {
            continue;
        }
        for ik in v.as_object().into_iter().flat_map(Map::keys) {
            let mut without = v.as_object().cloned().unwrap_or_default();
            without.remove(ik);
            if fits(Map::from_iter([(k.clone(), Value::Object(without))])) {
                return Some(format!("{k}/{ik}"));
            }
        }
        return Some(k.clone());
    }
    None
}

/// `template` belongs on jobs only: in `defaults` every job would get it, and a template using
/// another would make the layers a chain.
pub(super) fn check_nesting(doc: &Value, defaults: &Map<String, Value>, ctx: &mut Ctx) {
    if defaults.contains_key("template") {
        ctx.error_key(
            "/defaults/template",
            "`template` cannot be set in `defaults`",
        );
    }
    for (tname, t) in super::entries(doc, "templates") {
        if t.get("template").is_some() {
            ctx.error_key(
                &format!("/templates/{}/template", escape(tname)),
                "a template cannot use another template",
            );
        }
    }
}

/// Reported at the first job past the budget; the jobs after it are not resolved.
pub(super) fn over_budget(jname: &str, ctx: &mut Ctx) {
    ctx.error_key(
        &format!("/jobs/{}", escape(jname)),
        format!(
            "`defaults` and templates copied into every job make the jobs larger than {} together, the limit for the expanded manifest",
            human(MAX_MERGED_BYTES as u64)
        ),
    );
}

/// Did the job, its template or the defaults write `key` in the manifest as given (the schema
/// layer drops values it rejected, so the merged layers no longer show them)?
pub(super) fn written(ctx: &Ctx, jptr: &str, key: &str) -> bool {
    let raw = |ptr: &str| ctx.raw.pointer(ptr);
    let template = raw(&format!("{jptr}/template"))
        .and_then(Value::as_str)
        .map(|t| format!("/templates/{}", escape(t)));
    ["/defaults".to_string(), jptr.to_string()]
        .into_iter()
        .chain(template)
        .any(|layer| raw(&format!("{layer}/{}", escape(key))).is_some())
}

/// The job's layers merged and read as a `JobDoc`; `None` (reported) when a value does not fit.
pub(super) fn merge_job(
    name: &str,
    jptr: &str,
    jv: &Value,
    sections: &Sections,
    ctx: &mut Ctx,
) -> Option<(Merged, JobDoc)> {
    let empty = Map::new();
    let own = jv.as_object().unwrap_or(&empty);
    let mut layers: Vec<(Origin, String, &Map<String, Value>)> =
        vec![(Origin::Defaults, "/defaults".into(), sections.defaults)];
    if let Some(t) = own.get("template").and_then(Value::as_str) {
        let tmap = sections
            .doc
            .get("templates")
            .and_then(|ts| ts.get(t))
            .and_then(Value::as_object);
        match tmap {
            Some(tm) => layers.push((
                Origin::Template(t.to_string()),
                format!("/templates/{}", escape(t)),
                tm,
            )),
            None if ctx.declared("templates", t) => {}
            None => {
                let msg = suggest(ctx, "templates", "template", t);
                ctx.error(&format!("{jptr}/template"), msg);
            }
        }
    }
    layers.push((Origin::Job, jptr.to_string(), own));
    let merged = merge(&layers);
    match serde_json::from_value(Value::Object(merged.value.clone())) {
        Ok(d) => Some((merged, d)),
        // Values the schema layer rejected were already reported; anything else (a number too
        // big for its field) is reported here, at the value, without quoting it.
        Err(_) if ctx.prior_errors > 0 => None,
        Err(e) => {
            match misfit(&merged.value) {
                Some(rel) => ctx.error(&merged.ptr(&rel, jptr), serde_reason(&e)),
                None => ctx.error_key(jptr, format!("job `{name}`: {}", serde_reason(&e))),
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn later_layers_win_and_nested_keys_merge() {
        let defaults =
            obj(json!({"engine": "postgres", "retention": {"max_files": 3, "max_days": 7}}));
        let template = obj(json!({"retention": {"max_days": 30}, "hooks": {"pre": "a"}}));
        let job = obj(json!({"engine": "mysql", "hooks": {"post": "b"}}));
        let m = merge(&[
            (Origin::Defaults, "/defaults".into(), &defaults),
            (
                Origin::Template("t".into()),
                "/templates/t".into(),
                &template,
            ),
            (Origin::Job, "/jobs/j".into(), &job),
        ]);
        assert_eq!(m.value["engine"], json!("mysql"));
        assert_eq!(
            m.value["retention"],
            json!({"max_files": 3, "max_days": 30})
        );
        assert_eq!(m.value["hooks"], json!({"pre": "a", "post": "b"}));
        assert_eq!(
            m.ptr("retention/max_files", "/x"),
            "/defaults/retention/max_files"
        );
        assert_eq!(
            m.ptr("retention/max_days", "/x"),
            "/templates/t/retention/max_days"
        );
        assert_eq!(m.ptr("hooks/post", "/x"), "/jobs/j/hooks/post");
        assert_eq!(m.ptr("schedule", "/x"), "/x");
        assert_eq!(m.origins["engine"], Origin::Job);
        assert_eq!(m.origins["retention"], Origin::Template("t".into()));
    }

    #[test]
    fn null_unsets_an_inherited_key() {
        let defaults = obj(json!({"schedule": "@daily", "timeout": "1h"}));
        let job = obj(json!({"schedule": null}));
        let m = merge(&[
            (Origin::Defaults, "/defaults".into(), &defaults),
            (Origin::Job, "/jobs/j".into(), &job),
        ]);
        assert!(!m.value.contains_key("schedule"));
        assert!(!m.origins.contains_key("schedule"));
        assert_eq!(m.value["timeout"], json!("1h"));
    }

    #[test]
    fn misfit_names_the_value_that_does_not_fit() {
        let job = obj(json!({"engine": "postgres", "retention": {"max_files": 5000000000u64}}));
        assert_eq!(misfit(&job).as_deref(), Some("retention/max_files"));
        let fine = obj(json!({"engine": "postgres"}));
        assert_eq!(misfit(&fine), None);
    }

    #[test]
    fn budget_counts_defaults_and_templates_per_job() {
        let doc = json!({"templates": {"t": {"hooks": {"pre": "x".repeat(100)}}}});
        let defaults = obj(json!({"schedule": "@daily"}));
        let job = json!({"template": "t"});
        let mut b = MergeBudget::new(&defaults);
        assert!(b.admit(&doc, &job));
        let one = b.used;
        assert!(one > 100 + "schedule@daily".len());
        assert!(b.admit(&doc, &job));
        assert_eq!(b.used, 2 * one);
    }
}
