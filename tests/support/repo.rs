//! The repository itself as test input: files under the checkout, the dbstash binary run from its
//! root (assert_cmd), external checkers from PyPI, and YAML read with dbstash's own parser.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn dbstash() -> Command {
    let mut c = Command::cargo_bin("dbstash").expect("the dbstash binary");
    c.current_dir(root());
    c.env_remove("DBSTASH_CONFIG");
    c
}

/// A checker on PATH (or in ~/.local/bin, where `pip install --user` puts it).
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            // pyenv shims exist for tools of other Python versions: ask the tool itself.
            let ok = std::process::Command::new(&p)
                .arg("--help")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Some(p);
            }
        }
    }
    None
}

/// The checker, or None after a note (a panic under CI / DBSTASH_REQUIRE_SERVERS).
pub fn checker(name: &str, package: &str) -> Option<PathBuf> {
    let found = tool(name);
    if found.is_none() {
        if super::strict() {
            panic!("{name} is not installed (pip install {package}); CI requires it");
        }
        eprintln!("note: {name} not found (pip install {package}): check skipped");
    }
    found
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// YAML (one document) → JSON, with dbstash's own parser.
pub fn yaml_json(text: &str) -> Value {
    let node = dbstash::manifest::yaml::parse(text).unwrap_or_else(|e| {
        panic!(
            "YAML error at {}:{}: {}\n{text}",
            e.loc.line, e.loc.col, e.message
        )
    });
    dbstash::manifest::tree::to_json(&node).0
}

/// A YAML stream → its documents (split at `---` lines).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            if cur
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            {
                docs.push(yaml_json(&cur));
            }
            cur.clear();
        } else {
            cur.push_str(line);
        }
    }
    if cur
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        docs.push(yaml_json(&cur));
    }
    docs
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn kubernetes_validate(files: &[PathBuf]) {
    let Some(kv) = checker("kubernetes-validate", "kubernetes-validate") else {
        return;
    };
    let out = std::process::Command::new(kv)
        .arg("--strict")
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    assert!(
        text.contains("passed"),
        "kubernetes-validate checked nothing:\n{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
}
