//! The JSON Schema, generated from `types::ManifestDoc`, and the schema layer of validation.
//!
//! Unknown keys are found by our own walk over the schema (so each gets the nearest valid key as a
//! suggestion); every other schema violation comes from the `jsonschema` crate, all at once.

use super::tree::Locations;
use super::types::ManifestDoc;
use serde_json::Value;

/// A schema problem at a JSON pointer; `on_key` points the location at the key instead of the value.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaIssue {
    pub ptr: String,
    pub on_key: bool,
    pub message: String,
    /// Drop the value at `ptr` before the semantic layer runs (false when the value is a
    /// container that is merely missing a key: the semantic layer skips it on its own).
    pub remove: bool,
}

pub fn schema() -> Value {
    // Draft-07: what yaml-language-server and most editors support best, and ~20x cheaper for the
    // jsonschema crate to compile than 2020-12 (5 ms / 10 MB instead of 120 ms / 55 MB at start-up).
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ManifestDoc>();
    let mut schema = serde_json::to_value(&schema).unwrap_or(Value::Null);
    add_markdown_descriptions(&mut schema);
    schema
}

/// Editors (yaml-language-server, VS Code) show `description` as plain text and escape its
/// markdown, so hover text read "\`1h\`"; `markdownDescription` is rendered as markdown.
fn add_markdown_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get("description") {
                if d.contains('`') {
                    let d = d.clone();
                    map.insert("markdownDescription".into(), Value::String(d));
                }
            }
            map.values_mut().for_each(add_markdown_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(add_markdown_descriptions),
        _ => {}
    }
}

/// Pretty JSON with a trailing newline: the exact bytes of `schema/dbstash.schema.json`.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Built per load, not kept (compiling takes ~5 ms). Formats are not checked: schemars' `format`s
/// here (`uint32`, …) are annotations whose ranges the schema already states, and the format
/// checkers' regex tables would cost a long-running supervisor ~10 MB.
fn validator() -> Option<jsonschema::Validator> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(false)
        .build(&schema())
        .ok()
}

pub fn check(doc: &Value, _locs: &Locations) -> Vec<SchemaIssue> {
    let root = schema();
    let mut issues = Vec::new();
    walk_keys(doc, &root, &root, "", &mut issues);
    if let Some(v) = validator() {
        // Unknown keys are already reported (with a suggestion); validate the document without
        // them, so a typo inside `retention:` does not also fail the whole `retention` value.
        let mut stripped = doc.clone();
        for issue in &issues {
            super::tree::remove(&mut stripped, &issue.ptr);
        }
        for e in v.iter_errors(&stripped) {
            issues.extend(describe(&e, 0));
        }
    }
    issues
}

fn deref<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        // Draft-07 wraps a `$ref` that has siblings (a description, a default) in `allOf`.
        if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = only;
            continue;
        }
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let ptr = r.trim_start_matches('#');
                match root.pointer(ptr) {
                    Some(t) => s = t,
                    None => return s,
                }
            }
            None => return s,
        }
    }
    s
}

/// Pick the branch of an `anyOf`/`oneOf` that describes values of this JSON shape.
fn branch_for<'a>(value: &Value, schema: &'a Value, root: &'a Value) -> &'a Value {
    let s = deref(schema, root);
    let Some(options) = s
        .get("anyOf")
        .or_else(|| s.get("oneOf"))
        .and_then(Value::as_array)
    else {
        return s;
    };
    for opt in options {
        let o = branch_for(value, opt, root);
        let fits = match value {
            Value::Object(_) => {
                o.get("properties").is_some() || o.get("additionalProperties").is_some()
            }
            Value::Array(_) => o.get("items").is_some(),
            _ => false,
        };
        if fits {
            return o;
        }
    }
    s
}

fn walk_keys(value: &Value, schema: &Value, root: &Value, ptr: &str, out: &mut Vec<SchemaIssue>) {
    let s = branch_for(value, schema, root);
    match value {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties");
            for (k, v) in map {
                let child = format!("{ptr}/{}", super::tree::escape(k));
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    walk_keys(v, p, root, &child, out);
                } else if let Some(extra) = additional.filter(|a| a.is_object()) {
                    walk_keys(v, extra, root, &child, out);
                } else if additional == Some(&Value::Bool(false)) {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    out.push(SchemaIssue {
                        ptr: child,
                        on_key: true,
                        message: unknown_key_message(k, &known),
                        remove: true,
                    });
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk_keys(v, item_schema, root, &format!("{ptr}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

/// "unknown key `shedule`, did you mean `schedule`?" — the suggestion only when it is close.
pub fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .min();
    match best {
        Some((d, k)) if d <= 2.max(key.len() / 3) => {
            format!("unknown key `{key}`, did you mean `{k}`?")
        }
        _ if !known.is_empty() => format!(
            "unknown key `{key}` (expected one of: {})",
            known.join(", ")
        ),
        _ => format!("unknown key `{key}`"),
    }
}

/// "invalid value `pgx`, did you mean `pg`? (expected one of: …)" — the suggestion only when close.
fn invalid_value_message(got: Option<&str>, options: &[String]) -> String {
    let all = options.join(", ");
    let Some(got) = got else {
        return format!("invalid value (expected one of: {all})");
    };
    let best = options
        .iter()
        .map(|o| (strsim::damerau_levenshtein(got, o), o))
        .min();
    match best {
        Some((d, o)) if d <= 2.max(got.len() / 3) => {
            format!("invalid value `{got}`, did you mean `{o}`? (expected one of: {all})")
        }
        _ => format!("invalid value `{got}` (expected one of: {all})"),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn expected_type(k: &jsonschema::error::TypeKind) -> String {
    use jsonschema::error::TypeKind;
    let one = |t: &jsonschema::JsonType| -> String {
        match t.to_string().as_str() {
            "object" => "a mapping".into(),
            "array" => "a list".into(),
            "integer" => "a whole number".into(),
            "number" => "a number".into(),
            "string" => "a string".into(),
            "boolean" => "true or false".into(),
            other => other.to_string(),
        }
    };
    match k {
        TypeKind::Single(t) => one(t),
        TypeKind::Multiple(set) => {
            let names: Vec<String> = set
                .iter()
                .filter(|t| t.to_string() != "null")
                .map(|t| one(&t))
                .collect();
            names.join(" or ")
        }
    }
}

fn is_type_error_at(e: &jsonschema::ValidationError, here: &str) -> bool {
    matches!(
        e.kind(),
        jsonschema::error::ValidationErrorKind::Type { .. }
    ) && e.instance_path().as_str() == here
}

/// The literal values a failed branch accepts when it failed only because the value is not one
/// of them (`enum`/`const`, possibly nested in `anyOf`/`oneOf`); `None` when it failed otherwise.
fn literals(errors: &[jsonschema::ValidationError], here: &str) -> Option<Vec<String>> {
    use jsonschema::error::ValidationErrorKind as K;
    let mut out = Vec::new();
    for e in errors {
        if e.instance_path().as_str() != here {
            return None;
        }
        match e.kind() {
            K::Enum { options } => out.extend(
                options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.as_str().map(String::from)),
            ),
            K::Constant { expected_value } => {
                out.extend(expected_value.as_str().map(String::from));
            }
            K::AnyOf { context } | K::OneOfNotValid { context } => {
                for branch in context {
                    if branch.iter().any(|b| is_type_error_at(b, here)) {
                        continue;
                    }
                    out.extend(literals(branch, here)?);
                }
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// An `anyOf`/`oneOf` failure: report what the branch that fits the value's shape says, so
/// `compress: lzma` reads "invalid value" and `retention: 7` reads "expected a mapping".
fn explain_branches(
    e: &jsonschema::ValidationError,
    context: &[Vec<jsonschema::ValidationError<'static>>],
    depth: usize,
) -> Vec<SchemaIssue> {
    use jsonschema::error::ValidationErrorKind as K;
    let here = e.instance_path().as_str();
    let found = type_name(e.instance());
    let issue = |message: String| SchemaIssue {
        ptr: here.to_string(),
        on_key: false,
        message,
        remove: true,
    };
    let fitting: Vec<&Vec<jsonschema::ValidationError<'static>>> = context
        .iter()
        .filter(|branch| !branch.iter().any(|b| is_type_error_at(b, here)))
        .collect();
    if fitting.is_empty() {
        let mut expected: Vec<String> = Vec::new();
        for b in context.iter().flatten() {
            if let K::Type { kind } = b.kind() {
                let t = expected_type(kind);
                if !t.is_empty() && t != "null" && !expected.contains(&t) {
                    expected.push(t);
                }
            }
        }
        return vec![issue(format!(
            "expected {}, found {found}",
            join_or(&expected)
        ))];
    }
    let lits: Option<Vec<String>> = fitting
        .iter()
        .map(|b| literals(b, here))
        .collect::<Option<Vec<_>>>()
        .map(|v| v.into_iter().flatten().collect());
    if let Some(options) = lits {
        return vec![issue(invalid_value_message(
            e.instance().as_str(),
            &options,
        ))];
    }
    if depth < 8 {
        if let Some(branch) = fitting.first() {
            let inner: Vec<SchemaIssue> =
                branch.iter().flat_map(|b| describe(b, depth + 1)).collect();
            if !inner.is_empty() {
                return inner;
            }
        }
    }
    vec![issue(format!("{found} is not allowed here"))]
}

/// Turn a jsonschema error into our messages, never quoting the offending value (it may be a
/// secret) except where it must be one of a few fixed words.
fn describe(e: &jsonschema::ValidationError, depth: usize) -> Vec<SchemaIssue> {
    use jsonschema::error::ValidationErrorKind as K;
    let ptr = e.instance_path().as_str().to_string();
    let found = type_name(e.instance());
    if ptr == "/version" && !matches!(e.kind(), K::AdditionalProperties { .. }) {
        let got = match &**e.instance() {
            Value::Number(n) => format!("`version: {n}`"),
            _ => format!("{found} for `version`"),
        };
        return vec![SchemaIssue {
            ptr,
            on_key: false,
            message: format!(
                "unsupported manifest version: found {got}, this dbstash reads `version: 1`"
            ),
            remove: true,
        }];
    }
    let message = match e.kind() {
        K::AdditionalProperties { .. } => return Vec::new(),
        // Duration and cron patterns are there for editors; the semantic layer reports the same
        // values with a message that says what is wrong ("minute 61 is out of range").
        K::Pattern { .. } => return Vec::new(),
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            return explain_branches(e, context, depth)
        }
        K::Type { kind } => format!("expected {}, found {found}", expected_type(kind)),
        K::Required { property } => {
            return vec![SchemaIssue {
                ptr,
                on_key: true,
                message: format!(
                    "missing required key `{}`",
                    property.as_str().unwrap_or("?")
                ),
                remove: false,
            }]
        }
        K::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|o| o.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            invalid_value_message(e.instance().as_str(), &opts)
        }
        K::Constant { expected_value } => format!("expected `{expected_value}`"),
        K::Minimum { limit } => format!("must be at least {limit}"),
        K::Maximum { limit } => format!("must be at most {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be more than {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        K::MinItems { limit } => format!("needs at least {limit} item(s)"),
        K::MaxItems { limit } => format!("takes at most {limit} item(s)"),
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::UniqueItems => "items must be unique".into(),
        K::OneOfMultipleValid { .. } => "the value is ambiguous here".into(),
        _ => format!("{found} is not valid here"),
    };
    vec![SchemaIssue {
        ptr,
        on_key: false,
        message,
        remove: true,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys() {
        assert_eq!(
            unknown_key_message("shedule", &["schedule", "engine"]),
            "unknown key `shedule`, did you mean `schedule`?"
        );
        assert!(unknown_key_message("zzzzzzzz", &["schedule"]).contains("expected one of"));
    }

    #[test]
    fn unknown_keys_are_found_in_every_section() {
        let doc = serde_json::json!({
            "version": 1, "bogus0": 1,
            "settings": { "bogus1": 1, "log": { "bogus2": 1 } },
            "defaults": { "bogus3": 1, "retention": { "bogus4": 1 } },
            "templates": { "t": { "bogus5": 1, "hooks": { "bogus6": 1 } } },
            "remotes": { "r": { "bogus7": 1 } },
            "notifiers": { "n": { "type": "email", "bogus8": 1, "smtp": { "host": "h", "bogus9": 1 } } },
            "jobs": { "j": { "bogus10": 1, "remote": [{ "name": "r", "bogus11": 1 }], "verify": { "bogus12": 1 } } },
        });
        let root = schema();
        let mut issues = Vec::new();
        walk_keys(&doc, &root, &root, "", &mut issues);
        let mut found: Vec<&str> = issues
            .iter()
            .map(|i| i.ptr.rsplit('/').next().unwrap_or(""))
            .collect();
        found.sort_by_key(|k| k.trim_start_matches("bogus").parse::<u32>().unwrap_or(99));
        let want: Vec<String> = (0..=12).map(|i| format!("bogus{i}")).collect();
        assert_eq!(found, want);
        assert!(issues.iter().all(|i| i.on_key && i.remove));
    }

    #[test]
    fn schema_compiles() {
        assert!(validator().is_some());
    }
}
