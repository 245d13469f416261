//! Property tests: whatever text the loader is given — random bytes, random YAML-ish documents
//! built from real manifest keys, or a valid manifest with random damage — it returns `Ok` or
//! `Err` with located diagnostics, and never panics.

use dbstash::manifest::{load_str, LoadError};
use proptest::prelude::*;
use std::path::Path;

fn env(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".into()),
        "PORT" => Some("5432".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn read_file(p: &Path) -> std::io::Result<String> {
    if p.ends_with("present") {
        Ok("postgresql://u:pw@db/shop\n".into())
    } else if let Ok(rel) = p.strip_prefix("/fuzz") {
        // examples/full.yaml, loaded as /fuzz/dbstash.yaml, reads its sample files beside it.
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(rel),
        )
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ))
    }
}

/// Load `text`; on error every diagnostic must be located (line and column from 1) and one line.
fn check(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/fuzz/dbstash.yaml");
    match load_str(file, text, &env, &read_file) {
        Ok(m) => {
            for w in &m.warnings {
                prop_assert!(w.line >= 1 && w.col >= 1, "{w}");
            }
            // A manifest that loads must also plan.
            let _ = dbstash::plan::build_all(&m, &[]);
        }
        Err(e) => {
            let diags = e.diagnostics();
            prop_assert!(!diags.is_empty(), "an error without diagnostics");
            let invalid = matches!(e, LoadError::Invalid { .. });
            prop_assert!(invalid, "load_str never fails to read");
            prop_assert!(
                diags.iter().any(|d| d.is_error()),
                "invalid, yet only warnings: {diags:?}"
            );
            for d in &diags {
                prop_assert!(d.line >= 1 && d.col >= 1, "unlocated: {d}");
                prop_assert!(!d.message.contains('\n'), "multi-line: {d}");
                prop_assert_eq!(d.file.as_path(), file);
            }
        }
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "version",
    "settings",
    "defaults",
    "templates",
    "remotes",
    "notifiers",
    "jobs",
    "timezone",
    "max_parallel",
    "temp_dir",
    "health",
    "listen",
    "log",
    "level",
    "format",
    "rclone",
    "config_file",
    "extra_args",
    "shutdown_grace",
    "template",
    "engine",
    "uri",
    "uri_file",
    "host",
    "port",
    "user",
    "password",
    "password_file",
    "database",
    "exclude",
    "globals",
    "auth_source",
    "remote",
    "name",
    "optional",
    "path",
    "schedule",
    "mode",
    "compress",
    "compress_level",
    "timeout",
    "retention",
    "max_files",
    "max_days",
    "keep_daily",
    "notify",
    "run_on_start",
    "hooks",
    "pre",
    "post",
    "dump_args",
    "restore_args",
    "admin_user",
    "stale_after",
    "verify",
    "restore_to",
    "encrypt",
    "allow_empty",
    "expected_size",
    "type",
    "url",
    "url_file",
    "on",
    "message",
    "from",
    "to",
    "smtp",
    "security",
    "username",
    "headers",
    "secret",
    "app",
    "nas",
    "ops",
    "pg",
];

const WORDS: &[&str] = &[
    "1",
    "2",
    "0",
    "-1",
    "70000",
    "postgres",
    "postgis",
    "mysql",
    "mariadb",
    "mongo",
    "redis",
    "sqlite",
    "stream",
    "tar",
    "zstd",
    "gzip",
    "native",
    "none",
    "plain",
    "custom",
    "snapshot",
    "slack",
    "email",
    "webhook",
    "failure",
    "always",
    "nas",
    "ops",
    "pg",
    "app",
    "\"0 2 * * *\"",
    "\"*/5 * * * * *\"",
    "\"@daily\"",
    "\"@nope\"",
    "UTC",
    "Europe/Berlin",
    "Mars/Base",
    "1h",
    "30s",
    "soon",
    "2GiB",
    "\"{db}-{date}\"",
    "\"{nope}\"",
    "\"a/../b\"",
    "\"${SET}\"",
    "\"${UNSET}\"",
    "${PORT}",
    "\"${EMPTY:-x}\"",
    "\"${bad\"",
    "\"$${lit}\"",
    "\"postgresql://u:p@h:5432/db?sslmode=require\"",
    "\"u:p@tcp(h:3306)/db\"",
    "\"a)/@tcp(h\"",
    "\"u:p@tcp(h:3306/db\"",
    "\"u@unix(/run/mysqld.sock)/db\"",
    "\"postgresql://[::1/db\"",
    "\"mongodb+srv://u:p@c/db\"",
    "\"rediss://:p@h/1\"",
    "\"sqlite:///x.db\"",
    "\"s3:bucket\"",
    "present",
    "absent",
    "\"https://x.example/hook\"",
    "\"{{job}} {{nope}}\"",
    "true",
    "false",
    "null",
    "~",
    "\"\"",
    "[]",
    "{}",
];

/// Tokens that are valid YAML only in some places: a few of them keep the parser's error paths busy.
const HOSTILE: &[&str] = &[
    "*", "&a", "*a", "!!str", "%", "`", "- x", "? k", "'", "\"", "#", ": :",
];

/// A random YAML-ish value rendered as text: block maps and lists, flow maps and lists, scalars.
#[derive(Debug, Clone)]
enum Yamlish {
    Scalar(String),
    Map(Vec<(String, Yamlish)>),
    List(Vec<Yamlish>),
    FlowMap(Vec<(String, Yamlish)>),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => proptest::sample::select(KEYS).prop_map(String::from),
        2 => "[a-z_]{1,8}",
        1 => "[ -~]{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => proptest::sample::select(WORDS).prop_map(String::from),
        2 => "[a-zA-Z0-9 ._/-]{0,12}",
        2 => any::<i64>().prop_map(|i| i.to_string()),
        1 => proptest::sample::select(HOSTILE).prop_map(String::from),
        1 => "[ -~]{0,8}",
    ]
}

fn yamlish() -> impl Strategy<Value = Yamlish> {
    let leaf = scalar().prop_map(Yamlish::Scalar);
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..6).prop_map(Yamlish::Map),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Yamlish::List),
            prop::collection::vec((key(), inner), 0..4).prop_map(Yamlish::FlowMap),
        ]
    })
}

fn inline(v: &Yamlish) -> String {
    match v {
        Yamlish::Scalar(s) => s.clone(),
        Yamlish::Map(entries) | Yamlish::FlowMap(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Yamlish::List(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn render(v: &Yamlish, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Yamlish::Map(entries) if !entries.is_empty() => {
            for (k, val) in entries {
                match val {
                    Yamlish::Map(e) if !e.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        render(val, indent + 2, out);
                    }
                    Yamlish::List(i) if !i.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        render(val, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", inline(val))),
                }
            }
        }
        Yamlish::List(items) if !items.is_empty() => {
            for item in items {
                match item {
                    Yamlish::Map(e) if !e.is_empty() => {
                        let mut sub = String::new();
                        render(item, indent + 2, &mut sub);
                        // `- ` takes the place of the first line's indentation
                        let sub = sub.trim_start().to_string();
                        out.push_str(&format!("{pad}- {sub}"));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", inline(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other))),
    }
}

/// A top level that looks like a manifest: `version` and some real sections with random content.
fn manifestish() -> impl Strategy<Value = String> {
    let sections = prop::collection::vec(
        (
            proptest::sample::select(
                &[
                    "settings",
                    "defaults",
                    "templates",
                    "remotes",
                    "notifiers",
                    "jobs",
                    "version",
                ][..],
            ),
            yamlish(),
        ),
        0..6,
    );
    (any::<bool>(), sections).prop_map(|(with_version, sections)| {
        let mut entries: Vec<(String, Yamlish)> = Vec::new();
        if with_version {
            entries.push(("version".into(), Yamlish::Scalar("1".into())));
        }
        entries.extend(sections.into_iter().map(|(k, v)| (k.to_string(), v)));
        let mut out = String::new();
        render(&Yamlish::Map(entries), 0, &mut out);
        out
    })
}

const VALID: &str = include_str!("../examples/full.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_yamlish_never_panics(v in yamlish()) {
        let mut text = String::new();
        render(&v, 0, &mut text);
        check(&text)?;
    }

    #[test]
    fn manifest_shaped_documents_never_panic(text in manifestish()) {
        check(&text)?;
    }

    #[test]
    fn a_damaged_valid_manifest_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, "[ -~\n\t]{0,4}"), 1..6)
    ) {
        let mut text = VALID.to_string();
        for (at, cut, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let mut end = (i + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(i..end, &insert);
        }
        check(&text)?;
    }
}

#[test]
fn the_valid_manifest_loads() {
    // The damage test starts from a manifest that loads: otherwise it would test nothing.
    let m = load_str(
        Path::new("/fuzz/dbstash.yaml"),
        VALID,
        &|_: &str| None,
        &read_file,
    )
    .expect("examples/full.yaml loads");
    assert_eq!(m.jobs.len(), 9);
}

#[test]
fn hostile_shapes_are_rejected_cleanly() {
    let deep_flow = format!(
        "version: 1\njobs: {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deep_map = format!(
        "version: 1\njobs: {}1{}\n",
        "{a: ".repeat(3000),
        "}".repeat(3000)
    );
    let laughs = "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    for text in [
        deep_flow.as_str(),
        deep_map.as_str(),
        laughs,
        "",
        "---\n...\n",
        "version: 1\n---\nversion: 1\n",
        "? [a, b]\n: c\n",
        "version: 1\njobs: { *x: 1 }\n",
        "\u{feff}version: 1\n",
        "version: 1\njobs:\n  a: &j { engine: sqlite, database: a.db, remote: r }\n  b: *j\nremotes: { r: { path: /x } }\n",
    ] {
        let r = load_str(Path::new("/fuzz/m.yaml"), text, &env, &read_file);
        if let Err(e) = r {
            for d in e.diagnostics() {
                assert!(d.line >= 1 && d.col >= 1, "{d}");
            }
        }
    }
}

#[test]
fn the_generator_mostly_writes_yaml_that_parses() {
    // Otherwise the manifest-shaped cases would only exercise the YAML parser's error path.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = manifestish();
    let (mut parsed, mut semantic, total) = (0, 0, 300);
    for _ in 0..total {
        let text = strategy.new_tree(&mut runner).expect("generate").current();
        if dbstash::manifest::yaml::parse_all(&text).is_ok() {
            parsed += 1;
        }
        match load_str(Path::new("/fuzz/m.yaml"), &text, &env, &read_file) {
            Ok(_) => semantic += 1,
            Err(e) => {
                if e.diagnostics()
                    .iter()
                    .any(|d| !d.message.starts_with("YAML syntax error"))
                {
                    semantic += 1;
                }
            }
        }
    }
    assert!(parsed * 2 > total, "only {parsed} of {total} parse");
    assert!(
        semantic * 2 > total,
        "only {semantic} of {total} get past YAML"
    );
}
