//! Object names and folders from templates: `{job}` `{db}` `{engine}` `{date}` `{time}` `{ts}` `{uuid}`.
//! Values are sanitised so a rendered name never holds `..` or a `/` that came from a value.

use jiff::Zoned;

pub const TOKENS: &[&str] = &["job", "db", "engine", "date", "time", "ts", "uuid"];

/// Check a template's tokens. Folder templates (`path`) may contain `/` between parts; names may not.
pub fn check_template(t: &str, is_path: bool) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{t}`"))?
            + open;
        let token = &rest[open + 1..close];
        if !TOKENS.contains(&token) {
            return Err(format!(
                "unknown token `{{{token}}}` (known: {})",
                TOKENS
                    .iter()
                    .map(|t| format!("{{{t}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("stray `}}` in `{t}`"));
    }
    if !is_path && t.contains('/') {
        return Err("a name cannot contain `/` (put folders in `path`)".into());
    }
    if !is_path && t.trim().is_empty() {
        return Err("the name template is empty".into());
    }
    if t.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err("`.` and `..` are not allowed as folder names".into());
    }
    if is_path && t.starts_with('/') {
        return Err("the path is relative to the remote; drop the leading `/`".into());
    }
    Ok(())
}

/// Does every run get its own name (so runs on the same day do not collide)?
pub fn is_unique_per_run(t: &str) -> bool {
    t.contains("{time}") || t.contains("{ts}") || t.contains("{uuid}")
}

/// Make a value safe inside one path segment.
pub fn sanitize(value: &str) -> String {
    let mut s: String = value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.+=@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("..") {
        s = s.replace("..", "_");
    }
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// What tokens expand to for one run.
#[derive(Debug, Clone)]
pub struct NameVars {
    pub job: String,
    pub db: String,
    pub engine: String,
    pub at: Zoned,
    pub uuid: String,
}

impl NameVars {
    pub fn new(job: &str, db: &str, engine: &str, at: Zoned) -> Self {
        let uuid = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        NameVars {
            job: job.into(),
            db: db.into(),
            engine: engine.into(),
            at,
            uuid,
        }
    }
}

pub fn render(t: &str, v: &NameVars) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        let value = match &rest[open + 1..close] {
            "job" => sanitize(&v.job),
            "db" => sanitize(&v.db),
            "engine" => sanitize(&v.engine),
            "date" => v.at.strftime("%Y-%m-%d").to_string(),
            "time" => v.at.strftime("%H%M%S").to_string(),
            "ts" => v.at.timestamp().as_second().to_string(),
            "uuid" => v.uuid.clone(),
            other => format!("{{{other}}}"),
        };
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Render a folder template: each `/`-separated part rendered separately, empty parts dropped.
pub fn render_path(t: &str, v: &NameVars) -> String {
    t.split('/')
        .map(|seg| render(seg, v))
        .filter(|s| !s.is_empty() && s != "." && s != "..")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> NameVars {
        let at: Zoned = "2026-02-07T02:00:00[UTC]".parse().unwrap();
        NameVars {
            job: "app".into(),
            db: "../etc/pass wd".into(),
            engine: "postgres".into(),
            at,
            uuid: "a1b2c3d4".into(),
        }
    }

    #[test]
    fn renders_every_token() {
        let v = vars();
        assert_eq!(
            render("{job}-{engine}-{date}-{time}-{ts}-{uuid}", &v),
            "app-postgres-2026-02-07-020000-1770429600-a1b2c3d4"
        );
    }

    #[test]
    fn values_cannot_escape_their_segment() {
        let v = vars();
        let name = render("{db}-{date}", &v);
        assert!(!name.contains('/') && !name.contains(".."), "{name}");
        assert_eq!(render_path("pg/{db}", &v), "pg/__etc_pass_wd");
    }

    #[test]
    fn checks_tokens() {
        assert!(check_template("{db}-{date}", false).is_ok());
        assert!(check_template("{database}", false)
            .unwrap_err()
            .contains("unknown token `{database}`"));
        assert!(check_template("a/b", false).is_err());
        assert!(check_template("pg/{db}", true).is_ok());
        assert!(check_template("../x", true).is_err());
        assert!(check_template("/abs", true).is_err());
        assert!(check_template("{db", false).is_err());
    }
}
