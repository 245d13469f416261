//! What the manifest text carries: literal secrets (refused), secret `${VAR:-default}` defaults
//! (left out of the ConfigMap) and the `${VAR}` names the CronJobs read from the Secret.

use super::*;

pub(super) struct Scan {
    /// Literal secrets that would end up in the ConfigMap: where, and what to do instead.
    pub(super) literal_secrets: Vec<(crate::domain::diag::Location, String)>,
    /// Secret `${VAR:-default}` defaults, left out of the ConfigMap.
    pub(super) rewrites: Vec<Rewrite>,
    /// `${VAR}` names the text references (these come from the Secret).
    pub(super) variables: BTreeSet<String>,
    pub(super) warnings: Vec<String>,
}

/// The text is not YAML (placed `LINE:COL: message`; the caller adds the file).
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: {}", .0.loc.line, .0.loc.col, .0.message)]
pub(super) struct ScanError(yaml::SyntaxError);

pub(super) fn scan_text(text: &str) -> Result<Scan, ScanError> {
    let root = yaml::parse(text).map_err(ScanError)?;
    let mut scan = Scan {
        literal_secrets: Vec::new(),
        rewrites: Vec::new(),
        variables: BTreeSet::new(),
        warnings: Vec::new(),
    };
    walk(&root, "", &mut scan);
    Ok(scan)
}

pub(super) const SECRET_VALUE_HINT: &str =
    "the ConfigMap would carry it: use `${VAR}` (set from the Secret) or the `_file` key with a path under /run/secrets";

pub(super) fn walk(node: &Node, path: &str, scan: &mut Scan) {
    match &node.kind {
        Kind::Map(entries) => {
            let own_type = node.get("type").and_then(Node::as_str);
            for (k, v) in entries {
                let child = if path.is_empty() {
                    k.name.clone()
                } else {
                    format!("{path}.{}", k.name)
                };
                check_entry(&k.name, &child, v, own_type, scan);
                walk(v, &child, scan);
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), scan);
            }
        }
        Kind::Str { value, .. } => collect_variables(value, &mut scan.variables),
        _ => {}
    }
}

pub(super) fn check_entry(
    key: &str,
    path: &str,
    v: &Node,
    map_type: Option<&str>,
    scan: &mut Scan,
) {
    let value = match &v.kind {
        Kind::Str { value, .. } => Some(value.clone()),
        Kind::Int(i) => Some(i.to_string()),
        Kind::Float(f) => Some(f.to_string()),
        Kind::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let Some(value) = value else { return };
    let offline = expand_offline(&value);
    let has_default = value.contains(":-");
    if let Some(kind) = literal_secret(key, &offline, map_type) {
        // A secret that only a `${VAR:-default}` default supplies: the ConfigMap gets the reference
        // without the default, and the Secret must carry the variable.
        let defaults = secret_defaults(&value);
        if has_default
            && !defaults.is_empty()
            && literal_secret(key, &expand_offline(&strip_defaults(&value)), map_type).is_none()
        {
            scan.rewrites.push(Rewrite {
                loc: v.loc,
                path: path.to_string(),
                defaults,
            });
            return;
        }
        let message = match kind {
            Literal::Value => {
                let how = if has_default {
                    "a `${VAR:-default}` default is written in the text"
                } else {
                    "it is written in the text"
                };
                format!("`{path}` holds a literal secret ({how}); {SECRET_VALUE_HINT}")
            }
            Literal::UriPassword => format!(
                "`{path}` has a literal password in it{}; {SECRET_VALUE_HINT}",
                if has_default {
                    " (from a `${VAR:-default}` default)"
                } else {
                    ""
                }
            ),
            Literal::WebhookUrl => format!(
                "`{path}` is a webhook URL, which is itself a credential; {SECRET_VALUE_HINT}"
            ),
        };
        scan.literal_secrets.push((v.loc, message));
        return;
    }
    if key.ends_with("_file") {
        let ok = offline.starts_with(&format!("{SECRETS_DIR}/"))
            || offline == format!("{CONFIG_DIR}/rclone.conf")
            || key == "ca_file"
            || offline.is_empty();
        if !ok {
            scan.warnings.push(format!(
                "`{path}` reads `{offline}`, which the CronJob does not mount: use a path under \
                 {SECRETS_DIR} (a key of the Secret `{SECRET}`)"
            ));
        } else if let Some(rest) = offline.strip_prefix(&format!("{SECRETS_DIR}/")) {
            if rest.contains('/') {
                scan.warnings.push(format!(
                    "`{path}` reads `{offline}`: Secret keys are flat files, so only \
                     {SECRETS_DIR}/KEY paths exist"
                ));
            }
        }
    }
}

/// What kind of literal secret a value (as the cluster sees it with no variable set) holds.
pub(super) enum Literal {
    Value,
    UriPassword,
    WebhookUrl,
}

pub(super) fn literal_secret(key: &str, offline: &str, map_type: Option<&str>) -> Option<Literal> {
    match key {
        "password" | "secret" if !offline.is_empty() => Some(Literal::Value),
        "uri" | "url" | "restore_to" if uri_password(offline).is_some_and(|p| !p.is_empty()) => {
            Some(Literal::UriPassword)
        }
        "url" if matches!(map_type, Some("slack" | "discord")) && !offline.is_empty() => {
            Some(Literal::WebhookUrl)
        }
        _ => None,
    }
}

/// A `${VAR:-default}` whose default is a secret: left out of the ConfigMap's copy of the text.
pub(super) struct Rewrite {
    pub(super) loc: crate::domain::diag::Location,
    pub(super) path: String,
    /// `(source text "${NAME:-default}", NAME)` in the order they appear in the value.
    pub(super) defaults: Vec<(String, String)>,
}

/// Every `${NAME:-default}` with a non-empty default in `s` (`$${` is a literal).
pub(super) fn secret_defaults(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in interp::pieces(s) {
        match piece {
            interp::Piece::Var {
                expr,
                name,
                default: Some(d),
            } if !d.is_empty() => out.push((format!("${{{expr}}}"), name.to_string())),
            interp::Piece::Unterminated => break,
            _ => {}
        }
    }
    out
}

/// `s` with every secret default taken out: `${NAME:-default}` becomes `${NAME}`.
pub(super) fn strip_defaults(s: &str) -> String {
    let mut out = s.to_string();
    for (full, name) in secret_defaults(s) {
        out = out.replacen(&full, &format!("${{{name}}}"), 1);
    }
    out
}

/// The ConfigMap's copy of the manifest: `text` with the secret defaults of `rewrites` taken out.
/// A default that cannot be found as written (escapes in a quoted scalar) is returned as an error
/// for its place.
pub(super) fn without_secret_defaults(
    text: &str,
    rewrites: &[Rewrite],
) -> Result<String, Vec<(crate::domain::diag::Location, String)>> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |loc: &crate::domain::diag::Location| -> usize {
        let start = line_starts
            .get(loc.line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        let line = &text[start..];
        start
            + line
                .char_indices()
                .nth(loc.col.saturating_sub(1))
                .map(|(i, _)| i)
                .unwrap_or(line.len())
    };
    let mut cuts: Vec<(usize, usize, String)> = Vec::new();
    let mut errors = Vec::new();
    for r in rewrites {
        let mut cursor = offset(&r.loc);
        for (full, name) in &r.defaults {
            match text[cursor..].find(full.as_str()) {
                Some(i) => {
                    let at = cursor + i;
                    cuts.push((at, at + full.len(), format!("${{{name}}}")));
                    cursor = at + full.len();
                }
                None => {
                    errors.push((
                        r.loc,
                        format!(
                            "`{}` has a secret `${{{name}:-…}}` default that cannot be taken out of the \
                             ConfigMap as written; {SECRET_VALUE_HINT}",
                            r.path
                        ),
                    ));
                    break;
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    cuts.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut out = text.to_string();
    for (from, to, with) in cuts {
        out.replace_range(from..to, &with);
    }
    Ok(out)
}

/// The password part of a URI's user info (`scheme://user:PASS@host`, Go's `user:PASS@tcp(...)`).
pub(super) fn uri_password(s: &str) -> Option<&str> {
    let rest = s.find("://").map(|i| &s[i + 3..]).unwrap_or(s);
    let before_query = rest.split('?').next().unwrap_or(rest);
    let at = before_query.rfind('@')?;
    let userinfo = &before_query[..at];
    userinfo.split_once(':').map(|(_, p)| p)
}

/// Names referenced as a bare `${NAME}` (no default) anywhere in the text.
pub(super) fn variables_without_default(text: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            let tail = &rest[pos + 2..];
            let Some(end) = tail.find('}') else { break };
            let expr = &tail[..end];
            if !expr.contains(":-") {
                all.insert(expr.to_string());
            }
            rest = &tail[end + 1..];
        }
    }
    all
}

/// `${NAME}` / `${NAME:-default}` references in one string (`$${` is a literal).
pub(super) fn collect_variables(s: &str, out: &mut BTreeSet<String>) {
    for piece in interp::pieces(s) {
        if let interp::Piece::Var { name, .. } = piece {
            if interp::valid_name(name) {
                out.insert(name.to_string());
            }
        }
    }
}
