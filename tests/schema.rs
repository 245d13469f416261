//! The JSON Schema: generated from the manifest types, checked in, and in agreement with the
//! examples.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_schema_matches_the_types() {
    let out = Command::cargo_bin("dbstash")
        .expect("binary")
        .env_clear()
        .arg("schema")
        .output()
        .expect("run dbstash schema");
    assert_eq!(out.status.code(), Some(0));
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let file = root().join("schema/dbstash.schema.json");
    let checked_in = std::fs::read_to_string(&file).expect("schema/dbstash.schema.json");
    assert!(
        generated == checked_in,
        "schema/dbstash.schema.json is out of date with the manifest types; regenerate it with\n\n    \
         cargo run -q -- schema > schema/dbstash.schema.json\n"
    );
    // The library and the command print the same bytes.
    assert_eq!(generated, dbstash::manifest::schema::schema_text());
}

#[test]
fn schema_is_usable_by_editors() {
    let s = dbstash::manifest::schema::schema();
    assert!(
        s["$schema"].as_str().is_some_and(|u| u.starts_with("http")),
        "{}",
        s["$schema"]
    );
    assert_eq!(s["title"], "dbstash manifest");
    assert_eq!(s["type"], "object");
    assert_eq!(s["additionalProperties"], false);
    let props = s["properties"].as_object().expect("properties");
    for key in [
        "version",
        "settings",
        "defaults",
        "templates",
        "remotes",
        "notifiers",
        "jobs",
    ] {
        assert!(props.contains_key(key), "top-level `{key}` missing");
    }
    // Every example points yaml-language-server at the checked-in schema.
    for example in examples() {
        let text = std::fs::read_to_string(&example).expect("example");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/dbstash.schema.json\n"),
            "{} lacks the yaml-language-server line",
            example.display()
        );
    }
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Manifests are `*.yaml`; other files (a `docker-compose.yml`) are not dbstash's.
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_validates() {
    let files = examples();
    assert!(
        files.iter().any(|f| f.ends_with("full.yaml"))
            && files.iter().any(|f| f.ends_with("quickstart.yaml")),
        "{files:?}"
    );
    for file in files {
        // No environment: every `${VAR}` in an example has a default.
        let out = Command::cargo_bin("dbstash")
            .expect("binary")
            .env_clear()
            .current_dir(root())
            .arg("-c")
            .arg(&file)
            .arg("validate")
            .output()
            .expect("run validate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} does not validate:\n{stderr}",
            file.display()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(": valid ("), "{stdout}");
    }
}

/// The YAML of an example as plain JSON (strings stay strings, `${...}` unexpanded).
fn yaml_as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read");
    let node = dbstash::manifest::yaml::parse(&text).expect("YAML");
    dbstash::manifest::tree::to_json(&node).0
}

#[test]
fn the_schema_alone_accepts_the_full_example() {
    let schema = dbstash::manifest::schema::schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let doc = yaml_as_json(&root().join("examples/full.yaml"));
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // ... and it is not a schema that accepts anything.
    let mut typo = doc.clone();
    typo["jobs"]["app"]["shedule"] = Value::String("0 1 * * *".into());
    assert!(!validator.is_valid(&typo), "an unknown job key passes");
    let mut bad_enum = doc.clone();
    bad_enum["jobs"]["app"]["compress"] = Value::String("lzma".into());
    assert!(
        !validator.is_valid(&bad_enum),
        "an unknown compress value passes"
    );
    let mut bad_version = doc;
    bad_version["version"] = Value::from(2);
    assert!(!validator.is_valid(&bad_version), "version 2 passes");
}

#[test]
fn the_full_example_loads_through_the_library() {
    let path = root().join("examples/full.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let m = dbstash::manifest::load_str(&path, &text, &|_: &str| None, &|p: &Path| {
        std::fs::read_to_string(p)
    })
    .expect("examples/full.yaml loads");
    let mut names: Vec<&str> = m.jobs.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "app",
            "cache",
            "events",
            "files",
            "geo",
            "ledger",
            "legacy",
            "shop-mysql",
            "warehouse"
        ]
    );
    let w = &m.jobs["warehouse"];
    assert_eq!(w.databases, dbstash::model::Databases::All);
    assert!(w.globals && w.encrypt.is_some() && w.remotes.len() == 2 && w.remotes[1].optional);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    // The template's keys are inherited, the job's own override them.
    let app = &m.jobs["app"];
    assert_eq!(app.retention.max_files, 20);
    assert_eq!(app.schedule.as_ref().map(|s| s.expr()), Some("0 */6 * * *"));
    assert_eq!(
        app.compress,
        dbstash::model::Compress::Zstd,
        "from the template"
    );
}
