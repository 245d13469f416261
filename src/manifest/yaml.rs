//! YAML text → a tree whose every node knows its line and column.
//!
//! We build our own small tree from `saphyr-parser` events (the YAML organisation's parser) instead of
//! deserialising straight into types: every later layer — interpolation, schema, semantic checks —
//! needs the location of any value, including values merged in from `defaults` or a template.

use super::limits::{human, MAX_EXPANDED_BYTES};
use crate::domain::diag::Location;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `plain` remembers an unquoted scalar, so `${PORT}` can become a number after interpolation.
    Str {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub loc: Location,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub loc: Location,
    pub message: String,
}

/// Aliases may expand a document; this bounds it (billion-laughs). Nodes bound a document of many
/// small values; `MAX_EXPANDED_BYTES` one of a few long strings aliased many times.
const MAX_NODES: usize = 200_000;

/// What a finished node costs once expanded: nodes, and bytes of its keys and scalars.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes += other.nodes;
        self.bytes += other.bytes;
    }
}

fn loc(span: &Span) -> Location {
    Location {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

/// Resolve an unquoted scalar by the YAML 1.2 core schema.
pub fn resolve_plain(s: &str) -> Kind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Kind::Int(i);
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Int(i);
        }
    }
    let looks_float = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if looks_float {
        if let Ok(f) = s.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    Kind::Str {
        value: s.to_string(),
        plain: true,
    }
}

enum Frame {
    Seq {
        loc: Location,
        anchor: usize,
        size: Size,
        items: Vec<Node>,
    },
    Map {
        loc: Location,
        anchor: usize,
        size: Size,
        entries: Vec<(Key, Node)>,
        pending: Option<Pending>,
        merge: Option<Merge>,
    },
}

/// What a mapping does with the next finished node, the value of the key just read.
enum Pending {
    Value(Key),
    /// The key repeats an earlier one: its value is dropped (the first one wins).
    Duplicate,
    /// A plain `<<`: its value is merged into the mapping when the mapping ends.
    Merge,
}

/// A `<<` merge key of a mapping being built (YAML 1.1 merge, as compose files use it).
struct Merge {
    key: Location,
    /// How many entries preceded the `<<`: merged keys take its place in the mapping.
    at: usize,
    value: Option<Node>,
}

/// Parse one YAML document. An empty document is `Null`. A duplicate key is an error.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let (node, mut dups) = parse_all(text)?;
    if dups.is_empty() {
        Ok(node)
    } else {
        Err(dups.remove(0))
    }
}

/// Parse one YAML document, reporting duplicate keys (the first value wins) and bad `<<` merge
/// values without stopping, so a manifest's other problems are reported in the same pass. Syntax
/// errors stop the parse.
pub fn parse_all(text: &str) -> Result<(Node, Vec<SyntaxError>), SyntaxError> {
    let mut b = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            loc: Location {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let here = loc(&span);
        if let Some(done) = b.event(event, here)? {
            b.attach(done, here)?;
        }
    }
    let root = b.root.unwrap_or(Node {
        loc: Location { line: 1, col: 1 },
        kind: Kind::Null,
    });
    Ok((root, b.errors))
}

/// A node just finished: itself, its anchor, its expanded size, and what it adds to the
/// document's total (a container's children were added as they finished).
struct Finished {
    node: Node,
    anchor: usize,
    size: Size,
    adds: Size,
}

/// The tree under construction from parser events.
#[derive(Default)]
struct Builder {
    /// Duplicate keys and bad merges: reported together, the tree still built.
    errors: Vec<SyntaxError>,
    /// The containers open around the current event, innermost last.
    stack: Vec<Frame>,
    /// Each anchored node with its expanded size, so an alias is priced before it is copied.
    anchors: HashMap<usize, (Node, Size)>,
    root: Option<Node>,
    total: Size,
    docs: usize,
}

impl Builder {
    /// One parser event: opens a container, or finishes a node (a scalar, an alias's copy, or
    /// a container that ends).
    fn event(&mut self, event: Event<'_>, here: Location) -> Result<Option<Finished>, SyntaxError> {
        Ok(match event {
            Event::DocumentStart(_) => {
                self.docs += 1;
                if self.docs > 1 {
                    return Err(SyntaxError {
                        loc: here,
                        message: "the manifest must be a single YAML document".into(),
                    });
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => {
                let size = Size {
                    nodes: 1,
                    bytes: value.len(),
                };
                let kind = match (style, tag) {
                    (ScalarStyle::Plain, None) => resolve_plain(&value),
                    _ => Kind::Str {
                        value: value.into_owned(),
                        plain: false,
                    },
                };
                Some(Finished {
                    node: Node { loc: here, kind },
                    anchor,
                    size,
                    adds: size,
                })
            }
            Event::Alias(id) => Some(self.alias(id, here)?),
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq {
                    loc: here,
                    anchor,
                    size: Size { nodes: 1, bytes: 0 },
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map {
                    loc: here,
                    anchor,
                    size: Size { nodes: 1, bytes: 0 },
                    entries: Vec::new(),
                    pending: None,
                    merge: None,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            _ => None,
        })
    }

    /// A copy of the anchored node, priced before the copy: the copy itself is what could
    /// exhaust memory.
    fn alias(&self, id: usize, here: Location) -> Result<Finished, SyntaxError> {
        let (node, size) = self.anchors.get(&id).ok_or_else(|| SyntaxError {
            loc: here,
            message: "unknown alias".into(),
        })?;
        check_size(self.total, *size, here)?;
        Ok(Finished {
            node: Node {
                loc: here,
                ..node.clone()
            },
            anchor: 0,
            size: *size,
            adds: *size,
        })
    }

    /// The innermost container ends: a sequence as it is, a mapping with its `<<` merged.
    fn close(&mut self) -> Option<Finished> {
        let (loc, anchor, size, kind) = match self.stack.pop()? {
            Frame::Seq {
                loc,
                anchor,
                size,
                items,
            } => (loc, anchor, size, Kind::Seq(items)),
            Frame::Map {
                loc,
                anchor,
                size,
                entries,
                merge,
                ..
            } => (
                loc,
                anchor,
                size,
                Kind::Map(apply_merge(entries, merge, &mut self.errors)),
            ),
        };
        Some(Finished {
            node: Node { loc, kind },
            anchor,
            size,
            adds: Size { nodes: 1, bytes: 0 },
        })
    }

    /// Count a finished node, remember its anchor, and put it in its container (or make it
    /// the root).
    fn attach(&mut self, done: Finished, here: Location) -> Result<(), SyntaxError> {
        let Finished {
            node,
            anchor,
            size,
            adds,
        } = done;
        check_size(self.total, adds, here)?;
        self.total.add(adds);
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        if let Some(Frame::Seq { size: s, .. } | Frame::Map { size: s, .. }) = self.stack.last_mut()
        {
            s.add(size);
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending,
                merge,
                ..
            }) => match pending.take() {
                None => *pending = Some(map_key(node, entries, merge, &mut self.errors)?),
                Some(Pending::Duplicate) => {}
                Some(Pending::Value(key)) => entries.push((key, node)),
                Some(Pending::Merge) => {
                    if let Some(m) = merge {
                        m.value = Some(node);
                    }
                }
            },
        }
        Ok(())
    }
}

/// A mapping's key was read: what to do with the value that follows (keep it under the key,
/// drop it as a duplicate's, or merge it for `<<`).
fn map_key(
    node: Node,
    entries: &[(Key, Node)],
    merge: &mut Option<Merge>,
    errors: &mut Vec<SyntaxError>,
) -> Result<Pending, SyntaxError> {
    if is_merge_key(&node) {
        return Ok(match merge {
            Some(first) => {
                errors.push(SyntaxError {
                    loc: node.loc,
                    message: format!(
                        "duplicate key `<<` (first defined at line {})",
                        first.key.line
                    ),
                });
                Pending::Duplicate
            }
            None => {
                *merge = Some(Merge {
                    key: node.loc,
                    at: entries.len(),
                    value: None,
                });
                Pending::Merge
            }
        });
    }
    let name = match &node.kind {
        Kind::Str { value, .. } => value.clone(),
        Kind::Null => "null".into(),
        Kind::Bool(b) => b.to_string(),
        Kind::Int(i) => i.to_string(),
        Kind::Float(f) => f.to_string(),
        Kind::Seq(_) | Kind::Map(_) => {
            return Err(SyntaxError {
                loc: node.loc,
                message: "a mapping key must be a plain value".into(),
            })
        }
    };
    let first = entries
        .iter()
        .find(|(k, _)| k.name == name)
        .map(|(k, _)| k.loc);
    if let Some(first) = first {
        errors.push(SyntaxError {
            loc: node.loc,
            message: format!(
                "duplicate key `{name}` (first defined at line {})",
                first.line
            ),
        });
        return Ok(Pending::Duplicate);
    }
    Ok(Pending::Value(Key {
        name,
        loc: node.loc,
    }))
}

/// A plain (unquoted, untagged) `<<` key is a merge key; a quoted `"<<"` is an ordinary key.
fn is_merge_key(node: &Node) -> bool {
    matches!(&node.kind, Kind::Str { value, plain: true } if value == "<<")
}

/// Merge a mapping's `<<` value into its entries, by YAML 1.1 rules: the value is a mapping or a
/// list of mappings; a key written in the mapping itself wins over a merged one, and an earlier
/// mapping of the list wins over a later one. Merged keys and values keep their own locations
/// (where the anchor wrote them), so an error in a shared snippet points at the snippet.
fn apply_merge(
    mut entries: Vec<(Key, Node)>,
    merge: Option<Merge>,
    errors: &mut Vec<SyntaxError>,
) -> Vec<(Key, Node)> {
    let Some(Merge { key, at, value }) = merge else {
        return entries;
    };
    let sources = match value.map(|v| (v.loc, v.kind)) {
        Some((_, Kind::Map(m))) => vec![m],
        Some((loc, Kind::Seq(items))) if items.is_empty() => {
            errors.push(not_a_mapping(loc, &Kind::Seq(items)));
            Vec::new()
        }
        Some((_, Kind::Seq(items))) => {
            let mut maps = Vec::with_capacity(items.len());
            for item in items {
                match item.kind {
                    Kind::Map(m) => maps.push(m),
                    other => errors.push(not_a_mapping(item.loc, &other)),
                }
            }
            maps
        }
        Some((loc, other)) => {
            errors.push(not_a_mapping(loc, &other));
            Vec::new()
        }
        None => {
            errors.push(not_a_mapping(key, &Kind::Null));
            Vec::new()
        }
    };
    let mut merged: Vec<(Key, Node)> = Vec::new();
    for source in sources {
        for (k, v) in source {
            let present = entries.iter().chain(&merged).any(|(e, _)| e.name == k.name);
            if !present {
                merged.push((k, v));
            }
        }
    }
    let at = at.min(entries.len());
    entries.splice(at..at, merged);
    entries
}

fn not_a_mapping(loc: Location, kind: &Kind) -> SyntaxError {
    let what = match kind {
        Kind::Null => "nothing",
        Kind::Bool(_) => "a boolean",
        Kind::Int(_) | Kind::Float(_) => "a number",
        Kind::Str { .. } => "a string",
        Kind::Seq(items) if items.is_empty() => "an empty list",
        Kind::Seq(_) => "a list",
        Kind::Map(_) => "a mapping",
    };
    SyntaxError {
        loc,
        message: format!(
            "a merge key `<<` takes a mapping or a list of mappings (like `<<: *defaults` or `<<: [*a, *b]`), not {what}"
        ),
    }
}

/// Would adding `more` to `total` pass a cap? Reported where the expansion happens.
fn check_size(total: Size, more: Size, here: Location) -> Result<(), SyntaxError> {
    let message = if total.nodes + more.nodes > MAX_NODES {
        format!("the manifest is too large: more than {MAX_NODES} values once aliases are expanded")
    } else if total.bytes + more.bytes > MAX_EXPANDED_BYTES {
        format!(
            "the manifest is too large: more than {} once aliases are expanded",
            human(MAX_EXPANDED_BYTES as u64)
        )
    } else {
        return Ok(());
    };
    Err(SyntaxError { loc: here, message })
}

/// Drop the top-level `x-…` keys: by the compose convention they hold shared snippets for anchors,
/// and their aliases were copied while parsing, so no later layer reads (or rejects) them. Only the
/// top level: an `x-` key inside a job is still an unknown key, a typo would otherwise pass.
pub fn drop_extension_keys(root: &mut Node) {
    if let Kind::Map(entries) = &mut root.kind {
        entries.retain(|(k, _)| !k.name.starts_with("x-"));
    }
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based() {
        let n = parse("a: 1\nb:\n  c: x\n").unwrap();
        let b = n.get("b").unwrap();
        let c = b.get("c").unwrap();
        assert_eq!(c.loc, Location { line: 3, col: 6 });
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(1));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.loc.line, 2);
        assert!(e.message.contains("duplicate key `a`"));
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let n = parse("a: '5432'\nb: 5432\n").unwrap();
        assert!(matches!(n.get("a").unwrap().kind, Kind::Str { .. }));
        assert_eq!(n.get("b").unwrap().kind, Kind::Int(5432));
    }

    #[test]
    fn an_alias_bomb_of_long_strings_is_refused_before_it_is_copied() {
        // 3,000 aliases of a 100 KB string would be 300 MB; the cap stops at the 42nd.
        let mut text = format!("x-big: &big \"{}\"\nx-list:\n", "x".repeat(100_000));
        for _ in 0..3_000 {
            text.push_str("  - *big\n");
        }
        let e = parse(&text).unwrap_err();
        assert!(
            e.message
                .contains("more than 4 MiB once aliases are expanded"),
            "{}",
            e.message
        );
        assert_eq!(e.loc.col, 5, "located at the alias: {:?}", e.loc);
        assert!(e.loc.line > 40 && e.loc.line < 50, "{:?}", e.loc);
    }

    #[test]
    fn nested_aliases_are_priced_by_their_expanded_size() {
        let mut text =
            String::from("a0: &a0 [\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]\n");
        for i in 1..30 {
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
        }
        let e = parse(&text).unwrap_err();
        assert!(
            e.message.contains("once aliases are expanded"),
            "{}",
            e.message
        );
        // A few aliases of small values are fine.
        let n = parse("x: &a {k: 1}\ny: [*a, *a, *a]\n").unwrap();
        assert!(matches!(n.get("y").unwrap().kind, Kind::Seq(ref v) if v.len() == 3));
    }

    #[test]
    fn aliases_expand() {
        let n = parse("x: &a {k: 1}\ny: *a\n").unwrap();
        assert_eq!(n.get("y").unwrap().get("k").unwrap().kind, Kind::Int(1));
    }

    fn keys(n: &Node) -> Vec<&str> {
        match &n.kind {
            Kind::Map(e) => e.iter().map(|(k, _)| k.name.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_merge_key_merges_a_mapping_and_explicit_keys_win() {
        let n = parse("a: &a {x: 1, y: 2}\nb:\n  y: 3\n  <<: *a\n  z: 4\n").unwrap();
        let b = n.get("b").unwrap();
        assert_eq!(
            keys(b),
            ["y", "x", "z"],
            "merged keys take the place of `<<`"
        );
        assert_eq!(b.get("y").unwrap().kind, Kind::Int(3));
        assert_eq!(b.get("x").unwrap().kind, Kind::Int(1));
        // The merged value is located where the anchor wrote it.
        assert_eq!(b.get("x").unwrap().loc, Location { line: 1, col: 11 });
    }

    #[test]
    fn a_merge_list_prefers_earlier_mappings() {
        let text = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: {<<: [*a, *b], z: 3}\n";
        let c = parse(text).unwrap();
        let c = c.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().kind, Kind::Int(1));
        assert_eq!(c.get("y").unwrap().kind, Kind::Int(2));
        assert_eq!(c.get("y").unwrap().loc.line, 2);
        assert_eq!(keys(c), ["x", "y", "z"]);
    }

    #[test]
    fn a_quoted_merge_key_is_an_ordinary_key() {
        let n = parse("a: &a {x: 1}\nb: {\"<<\": *a}\n").unwrap();
        assert_eq!(keys(n.get("b").unwrap()), ["<<"]);
    }

    #[test]
    fn a_merge_of_a_non_mapping_is_a_located_error() {
        for (text, line, col, what) in [
            ("a: &s hello\nb:\n  <<: *s\n", 3, 7, "not a string"),
            ("b:\n  <<: [{x: 1}, 5]\n", 2, 16, "not a number"),
            ("b:\n  <<: []\n", 2, 7, "not an empty list"),
            ("b:\n  <<:\n  x: 1\n", 2, 5, "not nothing"),
        ] {
            let (_, errors) = parse_all(text).unwrap();
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!(
                (errors[0].loc.line, errors[0].loc.col),
                (line, col),
                "{text}"
            );
            assert!(errors[0].message.contains(what), "{}", errors[0].message);
            assert!(errors[0].message.contains("merge key `<<`"));
        }
        let e = parse("b: {<<: {x: 1}, <<: {y: 2}}\n").unwrap_err();
        assert!(e.message.contains("duplicate key `<<`"), "{}", e.message);
    }

    #[test]
    fn merged_keys_count_toward_the_expansion_cap() {
        // Each merge copies a 100 KB value: the cap stops the copies, located at a `<<`'s alias.
        let mut text = format!("x-big: &big {{v: \"{}\"}}\nl:\n", "x".repeat(100_000));
        for _ in 0..100 {
            text.push_str("  - <<: *big\n");
        }
        let e = parse(&text).unwrap_err();
        assert!(
            e.message.contains("once aliases are expanded"),
            "{}",
            e.message
        );
        assert_eq!(e.loc.col, 9, "{:?}", e.loc);
    }

    #[test]
    fn only_top_level_extension_keys_are_dropped() {
        let mut n = parse("x-a: &a {k: 1}\nb: {<<: *a, x-c: 2}\n").unwrap();
        drop_extension_keys(&mut n);
        assert_eq!(keys(&n), ["b"]);
        assert_eq!(keys(n.get("b").unwrap()), ["k", "x-c"]);
    }
}
