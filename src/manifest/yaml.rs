//! YAML text → a tree whose every node knows its line and column.
//!
//! We build our own small tree from `saphyr-parser` events (the YAML organisation's parser) instead of
//! deserialising straight into types: every later layer — interpolation, schema, semantic checks —
//! needs the location of any value, including values merged in from `defaults` or a template.

use super::diag::Location;
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

/// Aliases may expand a document; this bounds it (billion-laughs).
const MAX_NODES: usize = 200_000;

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
        items: Vec<Node>,
    },
    Map {
        loc: Location,
        anchor: usize,
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
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut count = 0usize;
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
        let finished: Option<(Node, usize)> = match event {
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
                let kind = match (style, tag) {
                    (ScalarStyle::Plain, None) => resolve_plain(&value),
                    _ => Kind::Str {
                        value: value.into_owned(),
                        plain: false,
                    },
                };
                Some((Node { loc: here, kind }, anchor))
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    loc: here,
                    message: "unknown alias".into(),
                })?;
                count += count_nodes(&node);
                Some((Node { loc: here, ..node }, 0))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    loc: here,
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    loc: here,
                    anchor,
                    entries: Vec::new(),
                    pending: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { loc, anchor, items }) => Some((
                    Node {
                        loc,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    loc,
                    anchor,
                    entries,
                    ..
                }) => Some((
                    Node {
                        loc,
                        kind: Kind::Map(entries),
                    },
                    anchor,
                )),
                _ => None,
            },
            _ => None,
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        count += 1;
        if count > MAX_NODES {
            return Err(SyntaxError {
                loc: here,
                message: format!("document too large (more than {MAX_NODES} nodes after aliases)"),
            });
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
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

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|(_, v)| count_nodes(v)).sum::<usize>(),
        _ => 1,
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
    fn aliases_expand() {
        let n = parse("x: &a {k: 1}\ny: *a\n").unwrap();
        assert_eq!(n.get("y").unwrap().get("k").unwrap().kind, Kind::Int(1));
    }
}
