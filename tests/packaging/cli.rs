//! CLI polish: shell completions, the man page, `--version`.

use crate::support::repo::*;

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = dbstash()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in [
            "dbstash",
            "validate",
            "render",
            "kubernetes",
            "completions",
            "config",
        ] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = dbstash()
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_from_the_clap_definitions() {
    let out = dbstash().arg("man").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(".TH dbstash 1"), "{text}");
    for word in [
        "validate",
        "render",
        "health",
        "completions",
        "DBSTASH_CONFIG",
    ] {
        assert!(text.contains(word), "man page lacks {word}");
    }
}

#[test]
fn version_shows_the_git_commit() {
    let out = dbstash().arg("--version").output().expect("run");
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let expected_prefix = format!("dbstash {} (", env!("CARGO_PKG_VERSION"));
    let commit = v
        .strip_prefix(&expected_prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("`{v}` is not `dbstash X.Y.Z (commit)`"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(root())
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        assert_ne!(commit, "unknown", "built inside a git checkout");
        let exists = std::process::Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(root())
            .status()
            .is_ok_and(|s| s.success());
        assert!(exists, "{commit} is not a commit of this repository");
    }
}
