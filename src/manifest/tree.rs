//! The located YAML tree as JSON, plus a map from JSON pointer to source location.

use super::yaml::{Kind, Node};
use crate::domain::diag::Location;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Keys whose values are secrets or may carry one: always kept as strings (a numeric password is
/// still a password) so no later message prints them as "123 is not a string".
const STRING_KEYS: &[&str] = &[
    "password", "uri", "url", "secret", "user", "username", "database", "host",
];

#[derive(Debug, Default, Clone)]
pub struct Locations {
    values: HashMap<String, Location>,
    keys: HashMap<String, Location>,
    /// Numbers too large for a float (`1e400`): JSON has no infinity, so they are null in the
    /// document and must be reported, not read as "unset".
    out_of_range: Vec<String>,
}

impl Locations {
    /// Location of the value at `ptr`, falling back to its nearest located ancestor.
    pub fn value(&self, ptr: &str) -> Location {
        let mut p = ptr.to_string();
        loop {
            if let Some(l) = self.values.get(&p) {
                return *l;
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => return Location { line: 1, col: 1 },
            }
        }
    }

    /// Location of the key that names the value at `ptr` (the value's own location if none).
    pub fn key(&self, ptr: &str) -> Location {
        self.keys
            .get(ptr)
            .copied()
            .unwrap_or_else(|| self.value(ptr))
    }

    pub fn has(&self, ptr: &str) -> bool {
        self.values.contains_key(ptr)
    }

    /// Pointers of the numbers that overflowed (outside top-level `x-` keys, which are ignored).
    pub fn out_of_range(&self) -> impl Iterator<Item = &str> {
        self.out_of_range
            .iter()
            .map(String::as_str)
            .filter(|p| !ignored(p))
    }
}

pub const OUT_OF_RANGE: &str = "number out of range (no setting takes a number this large)";

/// Top-level `x-…` keys are a place for anchors; their values are never read.
fn ignored(ptr: &str) -> bool {
    ptr.starts_with("/x-")
}

/// Every setting that takes a number takes a whole one. A float the schema let through (JSON
/// Schema counts `1000.0` as an integer) would otherwise fail later, far from where it was
/// written: each one with its pointer and message.
pub fn float_issues(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect_floats(doc, String::new(), &mut out);
    out
}

fn collect_floats(v: &Value, ptr: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Number(n) if n.is_f64() && !ignored(&ptr) => out.push((
            ptr,
            format!(
                "expected a whole number written with digits only (like `1000`), not the float {n}"
            ),
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_floats(item, format!("{ptr}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                collect_floats(item, format!("{ptr}/{}", escape(k)), out);
            }
        }
        _ => {}
    }
}

pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

pub fn to_json(node: &Node) -> (Value, Locations) {
    let mut locs = Locations::default();
    let v = convert(node, String::new(), None, &mut locs);
    (v, locs)
}

fn convert(node: &Node, ptr: String, key: Option<&str>, locs: &mut Locations) -> Value {
    locs.values.insert(ptr.clone(), node.loc);
    let force_string = key.is_some_and(|k| STRING_KEYS.contains(&k));
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) if force_string => Value::String(b.to_string()),
        Kind::Int(i) if force_string => Value::String(i.to_string()),
        Kind::Float(f) if force_string => Value::String(f.to_string()),
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::Number((*i).into()),
        Kind::Float(f) => Number::from_f64(*f).map_or_else(
            || {
                locs.out_of_range.push(ptr.clone());
                Value::Null
            },
            Value::Number,
        ),
        Kind::Str { value, .. } => Value::String(value.clone()),
        Kind::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| convert(n, format!("{ptr}/{i}"), None, locs))
                .collect(),
        ),
        Kind::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let child = format!("{ptr}/{}", escape(&k.name));
                locs.keys.insert(child.clone(), k.loc);
                let value = convert(v, child, Some(&k.name), locs);
                m.insert(k.name.clone(), value);
            }
            Value::Object(m)
        }
    }
}

/// Remove the value at a JSON pointer (no-op when absent or at the root). A bad item of a list
/// takes the whole list with it: dropping or nulling one item would shift or break the others,
/// and their locations with them.
pub fn remove(doc: &mut Value, ptr: &str) {
    let mut ptr = ptr;
    while let Some((parent, _)) = ptr.rsplit_once('/') {
        if matches!(doc.pointer(parent), Some(Value::Array(_))) {
            ptr = parent;
        } else {
            break;
        }
    }
    let Some((parent, last)) = ptr.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
        m.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::parse;

    #[test]
    fn overflowing_numbers_are_recorded_not_silently_null() {
        let n = parse("a: {max_days: 1e400}\nb: [-1e400]\nx-anchors: 1e999\nc: 5\n").unwrap();
        let (_, locs) = to_json(&n);
        let ptrs: Vec<&str> = locs.out_of_range().collect();
        assert_eq!(ptrs, ["/a/max_days", "/b/0"]);
        assert_eq!(locs.value("/a/max_days"), Location { line: 1, col: 15 });
    }

    #[test]
    fn floats_are_found_outside_x_keys() {
        let n = parse("r: {max_days: 1e3, max_files: 5}\nx-y: 2.5\nl: [1.0]\n").unwrap();
        let (doc, _) = to_json(&n);
        let found: Vec<String> = float_issues(&doc).into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, ["/r/max_days", "/l/0"]);
        assert!(float_issues(&doc)[0].1.contains("not the float 1000.0"));
    }
}
