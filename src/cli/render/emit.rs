//! A small YAML emitter: a readable multi-document stream from `serde_json` values (no YAML
//! serialisation dependency).

use super::*;

/// One document: a block mapping at column 0.
pub fn emit_document(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(m, 0, out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

pub(super) fn pad(n: usize) -> String {
    " ".repeat(n)
}

pub(super) fn emit_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&pad(indent));
        out.push_str(&key(k));
        out.push(':');
        emit_value_after_key(v, indent, out);
    }
}

/// After `key:` (or `-`): a scalar on the same line, or a nested block on the next lines.
pub(super) fn emit_value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(a, indent + 2, out);
        }
        Value::String(s) if literal_block_ok(s) => {
            out.push_str(" |");
            out.push_str(&block_header(s));
            out.push('\n');
            let body = s.strip_suffix('\n').unwrap_or(s);
            for line in body.split('\n') {
                if !line.is_empty() {
                    out.push_str(&pad(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

pub(super) fn emit_seq(a: &[Value], indent: usize, out: &mut String) {
    for item in a {
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first entry shares the line with `- `; the rest line up under it.
                let mut inner = String::new();
                emit_map(m, indent + 2, &mut inner);
                out.push_str(&pad(indent));
                out.push_str("- ");
                out.push_str(&inner[indent + 2..]);
            }
            other => {
                out.push_str(&pad(indent));
                out.push('-');
                emit_value_after_key(other, indent, out);
            }
        }
    }
}

/// A multi-line string that a literal block scalar can carry byte for byte.
pub(super) fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with('\n')
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || !needs_escape(c))
        && !s.contains(" \n")
        && !s.ends_with(' ')
}

/// `|` header: indentation indicator when the text starts with a space, chomping for the ending.
pub(super) fn block_header(s: &str) -> String {
    let mut h = String::new();
    if s.starts_with(' ') || s.starts_with('\t') {
        h.push('2');
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => h.push('-'),
        1 => {}
        _ => h.push('+'),
    }
    h
}

pub(super) fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
}

pub(super) fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        quoted(k)
    }
}

pub(super) fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Strings that read back as the same string in YAML 1.1 and 1.2 without quotes.
pub(super) fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/') {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':' | '@' | '+' | '=')
    }) {
        return false;
    }
    if s.ends_with(':') || s.contains("::") {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
    )
}

/// A double-quoted scalar: JSON's escapes are YAML's, plus the few characters JSON leaves bare.
pub(super) fn quoted(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    json.chars()
        .map(|c| {
            if needs_escape(c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}
