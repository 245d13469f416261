//! Build script: records the git commit for `dbstash --version` as `DBSTASH_GIT_COMMIT`.
//!
//! Order: the `DBSTASH_GIT_COMMIT` environment variable (container builds pass it as a build arg,
//! since `.git` is not in the build context), then `git rev-parse --short HEAD`, then `unknown`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=DBSTASH_GIT_COMMIT");
    let from_env = std::env::var("DBSTASH_GIT_COMMIT")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    let commit = from_env.or_else(|| {
        // Rebuild when HEAD moves: HEAD itself (branch switches) and the branch it points to (commits).
        // Only files that exist are watched: a missing one would make cargo rerun this every build.
        let watch = |p: String| {
            if PathBuf::from(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        };
        if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
            watch(head);
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = git(&["rev-parse", "--git-path", &branch]) {
                watch(p);
            }
        }
        if let Some(p) = git(&["rev-parse", "--git-path", "packed-refs"]) {
            watch(p);
        }
        git(&["rev-parse", "--short=7", "HEAD"])
    });
    println!(
        "cargo:rustc-env=DBSTASH_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_string())
    );
}
