//! `${VAR}` and `${VAR:-default}` in every string value; `$${` is a literal `${`.

use super::limits::{human, MAX_EXPANDED_BYTES};
use super::yaml::{resolve_plain, Kind, Node};
use crate::domain::diag::Location;

#[derive(Debug, Clone, PartialEq)]
pub struct InterpError {
    pub loc: Location,
    pub message: String,
}

/// Expand one string. `lookup` is the environment (a parameter so tests need not touch the process env).
/// One piece of a string as `${…}` interpolation reads it. The one scanner of that syntax:
/// expansion here, and the renderer's look at which variables a manifest uses.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text (an escaped `$${` comes as the text `${`, a lone `$` as `$`).
    Text(&'a str),
    /// `${expr}`: `name`, and the default after `:-` if any.
    Var {
        expr: &'a str,
        name: &'a str,
        default: Option<&'a str>,
    },
    /// A `${` with no closing `}`: the scan ends here.
    Unterminated,
}

/// The pieces of `s`, in order.
pub fn pieces(s: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        if r.is_empty() {
            rest = None;
            return None;
        }
        let Some(pos) = r.find('$') else {
            rest = None;
            return Some(Piece::Text(r));
        };
        if pos > 0 {
            rest = Some(&r[pos..]);
            return Some(Piece::Text(&r[..pos]));
        }
        if let Some(tail) = r.strip_prefix("$${") {
            rest = Some(tail);
            return Some(Piece::Text("${"));
        }
        let Some(tail) = r.strip_prefix("${") else {
            rest = Some(&r[1..]);
            return Some(Piece::Text("$"));
        };
        let Some(end) = tail.find('}') else {
            rest = None;
            return Some(Piece::Unterminated);
        };
        let expr = &tail[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        rest = Some(&tail[end + 1..]);
        Some(Piece::Var {
            expr,
            name,
            default,
        })
    })
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    for piece in pieces(input) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Unterminated => return Err("unterminated `${` in string".to_string()),
            Piece::Var {
                expr,
                name,
                default,
            } => {
                if !valid_name(name) {
                    return Err(format!("invalid variable name `{name}` in `${{{expr}}}`"));
                }
                match (lookup(name), default) {
                    (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
                    (_, Some(d)) => out.push_str(d),
                    (None, None) => {
                        return Err(format!(
                            "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                        ))
                    }
                    (Some(v), None) => out.push_str(&v),
                }
            }
        }
    }
    Ok(out)
}

/// Keys whose values are secrets: an error there never quotes any part of the value.
const SECRET_KEYS: &[&str] = &["password", "uri", "url", "secret", "restore_to"];

/// Bytes that variables may add to the manifest, all strings together: one variable used in every
/// string of a long manifest must not multiply into gigabytes.
struct Budget {
    added: usize,
    spent: bool,
}

/// Expand every string in the tree in place, collecting every error (not just the first).
pub fn expand_tree(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<InterpError>,
) {
    let mut budget = Budget {
        added: 0,
        spent: false,
    };
    expand_node(node, lookup, errors, false, &mut budget);
}

fn expand_node(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<InterpError>,
    secret: bool,
    budget: &mut Budget,
) {
    match &mut node.kind {
        Kind::Str { value, plain } => {
            if !value.contains('$') || budget.spent {
                return;
            }
            match expand(value, lookup) {
                Ok(v) if over_budget(budget, v.len().saturating_sub(value.len())) => {
                    errors.push(InterpError {
                        loc: node.loc,
                        message: format!(
                            "`${{...}}` values make the manifest larger than {}, the limit for its expanded size",
                            human(MAX_EXPANDED_BYTES as u64)
                        ),
                    });
                }
                Ok(v) => {
                    // An unquoted `${PORT}` becomes a number, as if the value had been written there.
                    node.kind = if *plain {
                        resolve_plain(&v)
                    } else {
                        Kind::Str {
                            value: v,
                            plain: false,
                        }
                    };
                }
                Err(message) => {
                    let message = if secret && message.starts_with("invalid variable name") {
                        "invalid `${...}` in a secret value: a variable name is letters, digits and `_` (write `$${` for a literal `${`)".to_string()
                    } else {
                        message
                    };
                    errors.push(InterpError {
                        loc: node.loc,
                        message,
                    })
                }
            }
        }
        Kind::Seq(items) => items
            .iter_mut()
            .for_each(|n| expand_node(n, lookup, errors, secret, budget)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, n)| {
            let secret = secret || SECRET_KEYS.contains(&k.name.as_str());
            expand_node(n, lookup, errors, secret, budget)
        }),
        _ => {}
    }
}

/// Spend `more` bytes; true (once, and for good) when that passes the cap.
fn over_budget(budget: &mut Budget, more: usize) -> bool {
    budget.added += more;
    budget.spent = budget.added > MAX_EXPANDED_BYTES;
    budget.spent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_and_default() {
        assert_eq!(expand("h=${HOST}", &env).unwrap(), "h=db.local");
        assert_eq!(expand("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
    }

    #[test]
    fn pieces_split_text_variables_and_escapes() {
        use Piece::*;
        let got: Vec<Piece> = pieces("a$${b} $x${V:-d}${W}${").collect();
        assert_eq!(
            got,
            vec![
                Text("a"),
                Text("${"),
                Text("b} "),
                Text("$"),
                Text("x"),
                Var {
                    expr: "V:-d",
                    name: "V",
                    default: Some("d")
                },
                Var {
                    expr: "W",
                    name: "W",
                    default: None
                },
                Unterminated,
            ]
        );
    }

    #[test]
    fn escape_and_lone_dollar() {
        assert_eq!(
            expand("$${HOST} costs $5", &env).unwrap(),
            "${HOST} costs $5"
        );
    }

    #[test]
    fn unset_is_an_error() {
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.contains("`NOPE` is not set"), "{e}");
        assert!(expand("${bad-name}", &env).is_err());
        assert!(expand("${HOST", &env).is_err());
    }

    #[test]
    fn a_long_variable_in_many_strings_is_capped() {
        let big = "v".repeat(100_000);
        let lookup = |name: &str| (name == "BIG").then(|| big.clone());
        let mut text = String::from("x:\n");
        for _ in 0..100 {
            text.push_str("  - \"${BIG}\"\n");
        }
        let mut n = crate::manifest::yaml::parse(&text).unwrap();
        let mut errors = Vec::new();
        expand_tree(&mut n, &lookup, &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("larger than 4 MiB"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[0].loc.line, 43, "the string that passed the cap");
    }

    #[test]
    fn errors_in_secrets_quote_nothing_of_the_value() {
        let mut n =
            crate::manifest::yaml::parse("a:\n  password: \"hunter2${x-y}\"\n  host: \"${x-y}\"\n")
                .unwrap();
        let mut errors = Vec::new();
        expand_tree(&mut n, &env, &mut errors);
        assert_eq!(errors.len(), 2);
        assert!(!errors[0].message.contains("x-y"), "{}", errors[0].message);
        assert!(!errors[0].message.contains("hunter2"));
        assert!(errors[1].message.contains("x-y"), "{}", errors[1].message);
    }
}
