//! Loading the manifest where the Secret is not: placeholders for the variables and `*_file`
//! files that only exist in the cluster.

use super::*;

/// Load the manifest. Rendering usually happens away from the cluster, where the Secret's files
/// and variables do not exist: when the plain load fails, retry with placeholders for unset
/// variables and missing `*_file` files (their values are read in the cluster, never rendered).
pub(super) fn load_for_render(config: &Path, text: &str) -> Option<(Manifest, Vec<String>)> {
    let real = match crate::manifest::load(config) {
        Ok(m) => m,
        Err(_) => {
            let placeholders = Placeholders::scan(text);
            // Variables written with a default somewhere keep it; the others get a placeholder.
            let without_default = variables_without_default(text);
            let missing_vars = std::cell::RefCell::new(BTreeSet::new());
            let missing_files = std::cell::RefCell::new(BTreeSet::new());
            let env = |k: &str| {
                std::env::var(k).ok().or_else(|| {
                    if !without_default.contains(k) {
                        return None;
                    }
                    missing_vars.borrow_mut().insert(k.to_string());
                    Some(placeholders.for_variable(k))
                })
            };
            let read = |p: &Path| match crate::manifest::limits::read_secret_file(p) {
                Ok(s) => Ok(s),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing_files.borrow_mut().insert(p.display().to_string());
                    Ok(placeholders.for_path(p))
                }
                Err(e) => Err(e),
            };
            match crate::manifest::load_str(config, text, &env, &read) {
                Ok(m) => {
                    for w in &m.warnings {
                        eprintln!("{w}");
                    }
                    let mut notes = Vec::new();
                    let vars = missing_vars.into_inner();
                    if !vars.is_empty() {
                        notes.push(format!(
                            "not set here, read from the Secret `{SECRET}` in the cluster: {}",
                            vars.into_iter().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    let files = missing_files.into_inner();
                    if !files.is_empty() {
                        notes.push(format!(
                            "not present here, mounted from the Secret `{SECRET}` in the cluster: {}",
                            files.into_iter().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    return Some((m, notes));
                }
                Err(e) => {
                    // The problems that remain with every variable and file filled in are the
                    // manifest's own (the plain load only said which variables are unset here).
                    for d in e.diagnostics() {
                        eprintln!("{d}");
                    }
                    let vars = missing_vars.into_inner();
                    if !vars.is_empty() {
                        eprintln!(
                            "note: to check the rest offline, placeholder values stood in for: {}",
                            vars.into_iter().collect::<Vec<_>>().join(", ")
                        );
                    }
                    return None;
                }
            }
        }
    };
    for w in &real.warnings {
        eprintln!("{w}");
    }
    Some((real, Vec::new()))
}

/// Placeholder values for secret files that do not exist where `render` runs and for variables
/// that are not set there: a URI of the right engine for `uri`/`restore_to` (and their `_file`
/// twins), a URL for notifier `url`s, any word for the rest.
pub(super) struct Placeholders {
    pub(super) by_path: BTreeMap<String, String>,
    pub(super) by_variable: BTreeMap<String, String>,
}

pub(super) const URL_PLACEHOLDER: &str = "https://placeholder.invalid/placeholder";

impl Placeholders {
    fn scan(text: &str) -> Self {
        let mut by_path = BTreeMap::new();
        let mut by_variable = BTreeMap::new();
        let Ok(root) = yaml::parse(text) else {
            return Placeholders {
                by_path,
                by_variable,
            };
        };
        let raw_str = |n: Option<&Node>| n.and_then(Node::as_str).map(str::to_string);
        let default_engine = raw_str(root.get("defaults").and_then(|d| d.get("engine")));
        if let Some(Node {
            kind: Kind::Map(jobs),
            ..
        }) = root.get("jobs")
        {
            for (_, job) in jobs {
                let template_engine = raw_str(job.get("template")).and_then(|t| {
                    raw_str(
                        root.get("templates")
                            .and_then(|ts| ts.get(&t))
                            .and_then(|t| t.get("engine")),
                    )
                });
                let engine = raw_str(job.get("engine"))
                    .or(template_engine)
                    .or_else(|| default_engine.clone())
                    .unwrap_or_default();
                // An unknown engine gets a file path: `validate` reports the engine itself.
                let uri = crate::engine::uri::placeholder(
                    crate::model::Engine::from_name(&engine)
                        .unwrap_or(crate::model::Engine::Sqlite),
                );
                let mut files = Vec::new();
                collect_files(job, &["uri_file", "restore_to_file"], &mut files);
                for f in files {
                    by_path.insert(expand_offline(&f), uri.to_string());
                }
                let mut values = Vec::new();
                collect_files(job, &["uri", "restore_to"], &mut values);
                for v in values {
                    if let Some(name) = whole_variable(&v) {
                        by_variable.insert(name, uri.to_string());
                    }
                }
            }
        }
        // Notifier URLs must parse as URLs.
        let mut urls = Vec::new();
        collect_files(&root, &["url_file"], &mut urls);
        for f in urls {
            by_path.insert(expand_offline(&f), URL_PLACEHOLDER.into());
        }
        let mut urls = Vec::new();
        collect_files(&root, &["url"], &mut urls);
        for v in urls {
            if let Some(name) = whole_variable(&v) {
                by_variable.insert(name, URL_PLACEHOLDER.into());
            }
        }
        Placeholders {
            by_path,
            by_variable,
        }
    }

    fn for_variable(&self, name: &str) -> String {
        self.by_variable
            .get(name)
            .cloned()
            .unwrap_or_else(|| "placeholder".to_string())
    }

    fn for_path(&self, p: &Path) -> String {
        let key = p.display().to_string();
        if let Some(v) = self.by_path.get(&key) {
            return v.clone();
        }
        // Relative `*_file` paths are resolved against the manifest's folder before reading.
        self.by_path
            .iter()
            .find(|(k, _)| !k.starts_with('/') && key.ends_with(&format!("/{k}")))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "placeholder".to_string())
    }
}

pub(super) fn collect_files(node: &Node, keys: &[&str], out: &mut Vec<String>) {
    match &node.kind {
        Kind::Map(entries) => {
            for (k, v) in entries {
                if keys.contains(&k.name.as_str()) {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_string());
                    }
                }
                collect_files(v, keys, out);
            }
        }
        Kind::Seq(items) => items.iter().for_each(|i| collect_files(i, keys, out)),
        _ => {}
    }
}

/// `NAME` when `s` is exactly `${NAME}` (no default, nothing around it).
pub(super) fn whole_variable(s: &str) -> Option<String> {
    let name = s.strip_prefix("${")?.strip_suffix('}')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

/// A string as the cluster would see it with no variable set: defaults used, references empty.
pub(super) fn expand_offline(s: &str) -> String {
    crate::manifest::interp::expand(s, &|_| Some(String::new())).unwrap_or_else(|_| s.to_string())
}
