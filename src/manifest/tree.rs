//! The located YAML tree as JSON, plus a map from JSON pointer to source location.

use super::diag::Location;
use super::yaml::{Kind, Node};
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
        Kind::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
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
