//! YAML text → a tree whose every node knows its line and column.
//!
//! We build our own small tree from `saphyr-parser` events (the YAML organisation's parser) instead of
//! deserialising straight into types: every later layer — interpolation, schema, semantic checks —
//! needs the location of any value, including values merged in from `defaults` or a template.

use super::diag::Location;
use super::limits::{human, MAX_EXPANDED_BYTES};
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
        /// The key waiting for its value; `true` when it repeats an earlier key (value dropped).
        pending: Option<(Key, bool)>,
    },
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

/// Parse one YAML document, reporting duplicate keys without stopping (the first value wins), so
/// a manifest's other problems are reported in the same pass. Syntax errors stop the parse.
pub fn parse_all(text: &str) -> Result<(Node, Vec<SyntaxError>), SyntaxError> {
    let mut dups: Vec<SyntaxError> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node with its expanded size, so an alias is priced before it is copied.
    let mut anchors: HashMap<usize, (Node, Size)> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut total = Size::default();
    let mut docs = 0usize;

    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            loc: Location {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let here = loc(&span);
        // The node, its anchor, its expanded size, and what it adds to the document's total (a
        // container's children were added as they finished).
        let finished: Option<(Node, usize, Size, Size)> = match event {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
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
                Some((Node { loc: here, kind }, anchor, size, size))
            }
            Event::Alias(id) => {
                let (node, size) = anchors.get(&id).ok_or_else(|| SyntaxError {
                    loc: here,
                    message: "unknown alias".into(),
                })?;
                // Priced before the copy: the copy itself is what could exhaust memory.
                check_size(total, *size, here)?;
                Some((
                    Node {
                        loc: here,
                        ..node.clone()
                    },
                    0,
                    *size,
                    *size,
                ))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    loc: here,
                    anchor,
                    size: Size { nodes: 1, bytes: 0 },
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    loc: here,
                    anchor,
                    size: Size { nodes: 1, bytes: 0 },
                    entries: Vec::new(),
                    pending: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    loc,
                    anchor,
                    size,
                    items,
                }) => Some((
                    Node {
                        loc,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                    size,
                    Size { nodes: 1, bytes: 0 },
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    loc,
                    anchor,
                    size,
                    entries,
                    ..
                }) => Some((
                    Node {
                        loc,
                        kind: Kind::Map(entries),
                    },
                    anchor,
                    size,
                    Size { nodes: 1, bytes: 0 },
                )),
                _ => None,
            },
            _ => None,
        };
        let Some((node, anchor, size, adds)) = finished else {
            continue;
        };
        check_size(total, adds, here)?;
        total.add(adds);
        if anchor != 0 {
            anchors.insert(anchor, (node.clone(), size));
        }
        if let Some(Frame::Seq { size: s, .. } | Frame::Map { size: s, .. }) = stack.last_mut() {
            s.add(size);
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, pending, ..
            }) => match pending.take() {
                None => {
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
                        dups.push(SyntaxError {
                            loc: node.loc,
                            message: format!(
                                "duplicate key `{name}` (first defined at line {})",
                                first.line
                            ),
                        });
                    }
                    *pending = Some((
                        Key {
                            name,
                            loc: node.loc,
                        },
                        first.is_some(),
                    ));
                }
                Some((_, true)) => {}
                Some((key, false)) => entries.push((key, node)),
            },
        }
    }
    let root = root.unwrap_or(Node {
        loc: Location { line: 1, col: 1 },
        kind: Kind::Null,
    });
    Ok((root, dups))
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
}
