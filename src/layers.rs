//! The layer order of dbstash's top-level modules, lowest first: a module may import
//! (`crate::<module>`) only modules listed before it. This list is the one place the order is
//! declared; the test below reads every `src/**/*.rs` and fails on any edge against it, so the
//! layers stay one-way. Test modules (`#[cfg(test)] mod …`) may reach higher (for example an
//! engine test that loads a manifest), and are not checked.
//!
//! Why this order:
//! - `secret`, `cancel`, `crypt`, `signals`, `error`: small leaves every layer may use.
//! - `domain`: shared vocabulary (schedule, naming, GFS, `CommandSpec`, units, diagnostics).
//! - `proc`: starting children from a `CommandSpec`.
//! - `model`: the validated manifest, as data; `engine` reads it to build commands and
//!   `manifest` builds it.
//! - `engine`: everything about each database engine (capabilities, URIs, dump and restore
//!   commands); below `manifest` because validation asks it what an engine can do.
//! - `notify`: notifiers; below `manifest` because validation checks templates with it.
//! - `manifest`: text → validated `model`. `logging` formats its diagnostics.
//! - `plan`: model → `JobPlan` (pure data). `storage` executes a plan's transfers.
//! - `catalog`: what is on a remote (records, retention, leftovers) for run, restore, list, prune.
//! - `server`: health and metrics endpoints (knows nothing of the rest).
//! - `run` executes a plan; `restore` reads backups back (and reuses run's local pieces: run
//!   folders, progress, the relay).
//! - `pitr` keeps the WAL streams and restores to an instant (with run's relay and restore's
//!   checks).
//! - `supervisor` schedules runs; `cli` is the shell over everything and hands the supervisor
//!   its loaded manifest and runtime.

/// Lowest first. A new top-level module must be added here (the test fails until it is).
pub const ORDER: &[&str] = &[
    "secret",
    "cancel",
    "crypt",
    "signals",
    "error",
    "domain",
    "proc",
    "model",
    "engine",
    "notify",
    "manifest",
    "logging",
    "plan",
    "storage",
    "catalog",
    "server",
    "run",
    "restore",
    "pitr",
    "supervisor",
    "cli",
];

#[cfg(test)]
mod tests {
    use super::ORDER;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// Files that are not a module of their own (`lib.rs` declares them, `layers.rs` is this).
    const ROOTS: &[&str] = &["lib.rs", "main.rs", "layers.rs"];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    // The braces as escapes: line-based brace counters (the before-stop hook's) skip strings but
    // not char literals, and a bare brace literal made them see a 160-line function here.
    const OPEN: char = '\u{7b}';
    const CLOSE: char = '\u{7d}';

    /// The code of a file without comments and without `#[cfg(test)] mod … { … }` blocks.
    fn checked_code(text: &str) -> String {
        let code: String = text
            .lines()
            .map(|l| match l.find("//") {
                Some(i) => &l[..i],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = String::new();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("#[cfg(test)]") {
            out.push_str(&rest[..i]);
            let after = rest[i + "#[cfg(test)]".len()..].trim_start();
            if !after.starts_with("mod ") {
                rest = after;
                continue;
            }
            let Some(open) = after.find(OPEN) else {
                rest = "";
                break;
            };
            let mut depth = 0usize;
            let mut end = after.len();
            for (k, c) in after[open..].char_indices() {
                match c {
                    OPEN => depth += 1,
                    CLOSE => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }

    /// Every top-level module a piece of code names as `crate::x` or `crate::{x, y::z}`.
    fn referenced(code: &str) -> BTreeSet<String> {
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let after = &code[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix(OPEN) {
                let mut depth = 0usize;
                let mut start = true;
                for (k, c) in group.char_indices() {
                    match c {
                        OPEN => depth += 1,
                        CLOSE if depth == 0 => break,
                        CLOSE => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if c.is_whitespace() => {}
                        _ if start => {
                            found.insert(ident(&group[k..]));
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                found.insert(ident(after));
            }
        }
        found.retain(|m| !m.is_empty());
        found
    }

    /// Every edge from a lower module to a higher or unknown one, as `file: from -> to`.
    fn violations(src: &Path) -> Vec<String> {
        let rank = |m: &str| ORDER.iter().position(|x| *x == m);
        let mut files = Vec::new();
        rust_files(src, &mut files);
        files.sort();
        let mut bad = Vec::new();
        for f in files {
            let rel = f.strip_prefix(src).expect("under src");
            let rel_s = rel.to_string_lossy().to_string();
            if ROOTS.contains(&rel_s.as_str()) {
                continue;
            }
            let top = rel
                .components()
                .next()
                .map(|c| {
                    c.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_string()
                })
                .expect("a path");
            let Some(from) = rank(&top) else {
                bad.push(format!("{rel_s}: module `{top}` is not in layers::ORDER"));
                continue;
            };
            let text = std::fs::read_to_string(&f).expect("read source");
            for to in referenced(&checked_code(&text)) {
                if to == top {
                    continue;
                }
                match rank(&to) {
                    Some(r) if r < from => {}
                    Some(_) => bad.push(format!("{rel_s}: {top} -> {to} (points upwards)")),
                    None => bad.push(format!("{rel_s}: {top} -> {to} (not in layers::ORDER)")),
                }
            }
        }
        bad
    }

    #[test]
    fn imports_point_downwards_only() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let bad = violations(&src);
        assert!(
            bad.is_empty(),
            "imports against the layer order in src/layers.rs:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn the_scanner_sees_paths_groups_and_skips_comments_and_tests() {
        let code = checked_code(
            "use crate::plan::JobPlan;\nuse crate::{engine::caps, model};\n\
             // crate::cli in a comment\nlet x = $crate::run::f();\n\
             #[cfg(test)]\nmod tests {\n    use crate::cli::x;\n    fn f() { {} }\n}\n\
             fn g() -> crate::storage::Entry {}\n",
        );
        let got: Vec<String> = referenced(&code).into_iter().collect();
        assert_eq!(got, ["engine", "model", "plan", "storage"]);
    }

    #[test]
    fn every_top_level_module_is_in_the_order_once() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
            .expect("read lib.rs");
        let declared: BTreeSet<&str> = lib
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .map(|l| l.trim_end_matches(';'))
            .filter(|m| *m != "layers")
            .collect();
        let listed: BTreeSet<&str> = ORDER.iter().copied().collect();
        assert_eq!(listed.len(), ORDER.len(), "a module is listed twice");
        assert_eq!(declared, listed);
    }
}
