//! The manifest: YAML text → located tree → `${VAR}` expansion → schema layer → semantic layer →
//! `model::Manifest`. Every layer reports all its problems, each as `PATH:LINE:COL: message`.

pub mod collide;
pub mod interp;
pub mod limits;
pub mod resolve;
pub mod schema;
#[cfg(test)]
pub mod testing;
pub mod tree;
pub mod types;
pub mod yaml;

use crate::domain::diag::{self, Diagnostic, Location};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub use crate::model::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read the manifest: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(.diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl LoadError {
    /// Every diagnostic (errors and warnings); a read error becomes one at 1:1.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            LoadError::Read { path, source } => vec![Diagnostic::error(
                Path::new(path),
                Location { line: 1, col: 1 },
                format!("cannot read the manifest: {source}"),
            )],
            LoadError::Invalid { diagnostics } => diagnostics.clone(),
        }
    }
}

/// `-c`/`DBSTASH_CONFIG` if given, else `./dbstash.yaml`, else `/config/dbstash.yaml`.
pub fn find(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let local = PathBuf::from("dbstash.yaml");
    if local.exists() {
        return local;
    }
    let container = PathBuf::from("/config/dbstash.yaml");
    if container.exists() {
        return container;
    }
    local
}

pub fn load(path: &Path) -> Result<Manifest, LoadError> {
    let text = limits::read_manifest(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_str(
        path,
        &text,
        &|k| std::env::var(k).ok(),
        &limits::read_secret_file,
    )
}

/// Load from text. `env` and `read_file` are parameters so tests control the outside world.
pub fn load_str(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Manifest, LoadError> {
    let invalid = |diagnostics: Vec<Diagnostic>| LoadError::Invalid {
        diagnostics: diag::tidy(diagnostics),
    };
    let (mut root, syntax_errors) = yaml::parse_all(text)
        .map_err(|e| invalid(vec![Diagnostic::error(file, e.loc, e.message)]))?;
    if !matches!(root.kind, yaml::Kind::Map(_)) {
        return Err(invalid(vec![Diagnostic::error(
            file,
            root.loc,
            "the manifest must be a mapping with `version: 1` and `jobs:`",
        )]));
    }
    yaml::drop_extension_keys(&mut root);
    let mut interp_errors = Vec::new();
    interp::expand_tree(&mut root, env, &mut interp_errors);
    let mut interp_locs: Vec<(usize, usize)> = interp_errors
        .iter()
        .map(|e| (e.loc.line, e.loc.col))
        .collect();
    let mut diags: Vec<Diagnostic> = syntax_errors
        .into_iter()
        .map(|e| Diagnostic::error(file, e.loc, e.message))
        .chain(
            interp_errors
                .into_iter()
                .map(|e| Diagnostic::error(file, e.loc, e.message)),
        )
        .collect();

    let (mut doc, locs) = tree::to_json(&root);
    // `1e400` is null in JSON: reported here, where it was written, and never read as "unset".
    for ptr in locs.out_of_range() {
        let loc = locs.value(ptr);
        diags.push(Diagnostic::error(file, loc, tree::OUT_OF_RANGE));
        interp_locs.push((loc.line, loc.col));
        tree::remove(&mut doc, ptr);
    }
    // What the author declared, before bad values are dropped: a reference to a remote, notifier
    // or template that exists but is itself invalid gets no second, misleading "unknown" error.
    let raw = doc.clone();
    for issue in schema::check(&doc, &locs) {
        let loc = if issue.on_key {
            locs.key(&issue.ptr)
        } else {
            locs.value(&issue.ptr)
        };
        if !interp_locs.contains(&(loc.line, loc.col)) {
            diags.push(Diagnostic::error(file, loc, issue.message));
        }
        // Drop the bad value so the semantic layer can still report everything else at once.
        if issue.remove {
            tree::remove(&mut doc, &issue.ptr);
        }
    }
    for (ptr, message) in tree::float_issues(&doc) {
        diags.push(Diagnostic::error(file, locs.value(&ptr), message));
        tree::remove(&mut doc, &ptr);
    }
    let base_dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut ctx = resolve::Ctx {
        file,
        base_dir,
        locs: &locs,
        raw: &raw,
        prior_errors: diags.len(),
        diags: Vec::new(),
        read_file,
    };
    let manifest = resolve::resolve(&doc, &mut ctx);
    // A value whose `${VAR}` failed still holds the raw text: its other complaints
    // ("invalid schedule `${SCHEDULE}`") would only repeat the real problem.
    diags.extend(
        ctx.diags
            .into_iter()
            .filter(|d| !interp_locs.contains(&(d.line, d.col))),
    );
    let diags = diag::tidy(diags);
    match manifest {
        Some(mut m) if !diags.iter().any(Diagnostic::is_error) => {
            m.hash = hex::encode(Sha256::digest(text.as_bytes()));
            m.warnings = diags;
            Ok(m)
        }
        _ => Err(invalid(diags)),
    }
}
