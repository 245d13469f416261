//! The example manifests, compose file and Kubernetes manifests under `examples/`.

use crate::support::repo::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
