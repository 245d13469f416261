//! What operators see: JSON logs that `jq` reads whole (warnings included, lists as arrays),
//! NO_COLOR, `--log-format`, engine aliases, a schema that describes and checks every key, and
//! an `examples/full.yaml` that really shows every key.

use crate::support;

use crate::support::Test;
use serde_json::Value;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

fn sqlite_db(t: &Test) {
    let c = rusqlite::Connection::open(t.path("app.db")).expect("sqlite");
    c.execute_batch("create table if not exists t(x); insert into t values (1),(2);")
        .expect("fixture");
}

/// Every stderr line as a JSON object with a string `message`; panics naming the first that is not.
fn json_lines(stderr: &str) -> Vec<Value> {
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "no log lines at all");
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}\n---\n{stderr}"));
            assert!(v.is_object(), "not an object: {l}");
            assert!(
                v["message"].as_str().is_some_and(|m| !m.is_empty()),
                "no message: {l}"
            );
            v
        })
        .collect()
}

/// A job without `schedule` (a warning) and JSON logs.
const WARNED: &str = "version: 1\nsettings: { temp_dir: '{dir}/tmp', log: { format: json } }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/app.db', remote: l }\n";

#[test]
fn json_logs_are_one_object_per_line_warnings_included() {
    let t = Test::new().manifest(WARNED);
    sqlite_db(&t);
    for args in [&["run", "--once"][..], &["backup", "a"][..]] {
        let r = t
            .run(args) /* stderr differs between runs of this line */
            .ignore_stderr()
            .success();
        let lines = json_lines(&r.stderr());
        let warning = lines
            .iter()
            .find(|v| v["event"] == "manifest_warning")
            .unwrap_or_else(|| panic!("no warning line for {args:?}: {}", r.stderr()));
        assert_eq!(warning["level"], "WARN");
        assert!(
            warning["message"]
                .as_str()
                .is_some_and(|m| m.contains("schedule")),
            "{warning}"
        );
        assert_eq!(warning["line"], 5, "{warning}");
        assert!(
            warning["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("dbstash.yaml")),
            "{warning}"
        );
        // Events logged without a message text get their event name as the message.
        assert!(
            lines
                .iter()
                .any(|v| v["event"] == "backup_started" && v["message"] == "backup_started"),
            "{}",
            r.stderr()
        );
        assert!(lines.iter().any(|v| v["event"] == "backup_succeeded"));
    }
}

#[test]
fn json_logs_stay_json_when_a_job_fails() {
    let t = Test::new().manifest(&format!(
        "{WARNED}  b: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, hooks: {{ pre: 'exit 3' }} }}\n"
    ));
    sqlite_db(&t);
    let r = t
        .run(&["run", "--once"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    let lines = json_lines(&r.stderr());
    assert!(
        lines.iter().any(|v| v["level"] == "ERROR"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("job b failed: "))),
        "{}",
        r.stderr()
    );
    // Text logs keep the closing line people read.
    let t = Test::new()
        .manifest(&format!(
            "{WARNED}  b: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, hooks: {{ pre: 'exit 3' }} }}\n"
        ))
        .env("DBSTASH_LOG_FORMAT", "text");
    sqlite_db(&t);
    let r = t
        .run(&["run", "--once"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        r.stderr().contains("dbstash: job b failed: "),
        "{}",
        r.stderr()
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reload_manifest(jobs: &[(&str, &str)]) -> String {
    let mut m = String::from("version: 1\nsettings: { temp_dir: '{dir}/tmp', log: { format: json } }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n");
    for (name, schedule) in jobs {
        m.push_str(&format!(
            "  {name}: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, schedule: '{schedule}' }}\n"
        ));
    }
    m
}

#[test]
fn reload_log_lists_are_json_arrays() {
    let t = Test::new().manifest(&reload_manifest(&[("a", "0 0 1 1 *"), ("b", "0 0 1 1 *")]));
    sqlite_db(&t);
    let _sup = Killed(t.spawn_logged(&["run"]));
    assert!(
        support::wait_until(Duration::from_secs(15), || t
            .log()
            .contains("supervisor_started")),
        "the supervisor never started: {}",
        t.log()
    );
    // Replace the manifest the way editors do: a: new schedule, b: gone, c: new.
    let next = reload_manifest(&[("a", "0 0 2 1 *"), ("c", "0 0 1 1 *")])
        .replace("{dir}", &t.dir.path().display().to_string());
    let tmp = t.path(".dbstash.yaml.tmp");
    std::fs::write(&tmp, next).expect("write");
    std::fs::rename(&tmp, t.path("dbstash.yaml")).expect("rename");
    assert!(
        support::wait_until(Duration::from_secs(45), || t
            .log()
            .contains("config_reloaded")),
        "no reload logged: {}",
        t.log()
    );
    let lines = json_lines(&t.log());
    let reload = lines
        .iter()
        .find(|v| v["event"] == "config_reloaded")
        .expect("reload line");
    assert_eq!(reload["changed"], serde_json::json!(["a"]), "{reload}");
    assert_eq!(reload["removed"], serde_json::json!(["b"]), "{reload}");
    assert_eq!(reload["added"], serde_json::json!(["c"]), "{reload}");
}

#[test]
fn a_supervisor_waiting_for_a_valid_manifest_logs_json_when_asked() {
    let t = Test::new().manifest(&WARNED.replace("engine: sqlite", "engine: sqlite3"));
    let _sup = Killed(t.spawn_logged(&["--log-format", "json", "run"]));
    assert!(
        support::wait_until(Duration::from_secs(15), || t
            .log()
            .contains("waiting for a valid manifest")),
        "{}",
        t.log()
    );
    let lines = json_lines(&t.log());
    let error = lines
        .iter()
        .find(|v| v["event"] == "manifest_error")
        .expect("the manifest error as a log line");
    assert_eq!(error["level"], "ERROR");
    assert_eq!(
        (error["line"].as_u64(), error["col"].as_u64()),
        (Some(5), Some(16))
    );
    assert!(error["message"]
        .as_str()
        .is_some_and(|m| m.contains("invalid value `sqlite3`")));
}

#[test]
fn no_color_keeps_text_logs_plain_on_a_terminal() {
    if !support::require(
        support::have("script"),
        "script (util-linux) for a terminal",
    ) {
        return;
    }
    let t = Test::new().manifest(&WARNED.replace("format: json", "format: text"));
    sqlite_db(&t);
    let bin = env!("CARGO_BIN_EXE_dbstash");
    let manifest = t.path("dbstash.yaml");
    // `script` gives dbstash a terminal for stdout and stderr and copies what it shows to stdout.
    let on_terminal = |no_color: Option<&str>| -> String {
        let mut c = std::process::Command::new("script");
        c.args(["-qec"])
            .arg(format!("{bin} -c {} run --once", manifest.display()))
            .arg("/dev/null")
            .env_remove("DBSTASH_LOG_FORMAT")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().expect("run script");
        let shown = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{shown}");
        assert!(shown.contains("backup complete"), "{shown}");
        shown
    };
    // Without NO_COLOR a terminal gets colours: the terminal is real.
    assert!(on_terminal(None).contains("\u{1b}["));
    let plain = on_terminal(Some("1"));
    assert!(
        !plain.contains('\u{1b}'),
        "escapes with NO_COLOR=1: {plain:?}"
    );
}

#[test]
fn log_format_flag_and_env_override_the_manifest() {
    let t = Test::new().manifest(&WARNED.replace("format: json", "format: text"));
    sqlite_db(&t);
    let flag = t
        .run(&["--log-format", "json", "run", "--once"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(json_lines(&flag.stderr())
        .iter()
        .any(|v| v["event"] == "manifest_warning"));
    // As a global flag it may also follow the subcommand.
    let after = t
        .run(&["backup", "a", "--log-format", "json"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    json_lines(&after.stderr());
    let env = Test::new()
        .manifest(&WARNED.replace("format: json", "format: text"))
        .env("DBSTASH_LOG_FORMAT", "json");
    sqlite_db(&env);
    let r = env
        .run(&["run", "--once"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(json_lines(&r.stderr())
        .iter()
        .any(|v| v["event"] == "backup_succeeded"));
    // And the other way round: text over a manifest that says json.
    let t = Test::new()
        .manifest(WARNED)
        .env("DBSTASH_LOG_FORMAT", "text");
    sqlite_db(&t);
    let r = t
        .run(&["run", "--once"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let err = r.stderr();
    assert!(err.contains("warning: job `a` has no schedule"), "{err}");
    assert!(err.contains("backup complete"), "{err}");
    assert!(
        err.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "{err}"
    );
    // A bad value is a clear usage error.
    let bad = t
        .run(&["--log-format", "xml", "validate"])
        .stderr_is("error: invalid value 'xml' for '--log-format <FORMAT>'\n  [possible values: json, text]\n\nFor more information, try '--help'.\n")
        .failure(2);
    assert!(bad.stderr().contains("--log-format"), "{}", bad.stderr());
}

/// The offline plan of `WARNED`'s job `a`: the object names carry today's date and time.
fn offline_plan_of_a(run: support::Run) -> support::Run {
    run.stdout_matches(r"\Ajob a\n  engine       sqlite  \(job\)\n  database     app\n")
        .stdout_contains("  dump         sqlite online backup of {dir}/app.db (in-process)\n")
        .stdout_matches(r"\n  object       a/app-[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{6}\.sqlite3  \(name \{db\}-\{date\}-\{time\}\.sqlite3, path \{job\}\)\n")
        .stdout_matches(r"\n  schedule     none: runs only with `dbstash backup`\n  timeout      6h  \(built-in\)\n  retention    unlimited \(keep everything\)  \(built-in\)\n  would delete \(offline: remote not listed\)\n\n\z")
}

#[test]
fn report_commands_keep_text_warnings_unless_asked() {
    let t = Test::new().manifest(WARNED);
    let plan = offline_plan_of_a(t.run(&["plan", "--offline"]))
        .stderr_is("{dir}/dbstash.yaml:5:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`\n")
        .success();
    assert!(
        plan.stderr()
            .lines()
            .any(|l| l.ends_with("dbstash.yaml:5:3: warning: job `a` has no schedule: it runs only with `dbstash backup a`")),
        "{}",
        plan.stderr()
    );
    let asked = t.run(&["--log-format", "json", "plan", "--offline"]);
    // the one JSON warning line carries a timestamp
    let asked = offline_plan_of_a(asked)
        .stderr_matches(r#"\A\{"timestamp":"[^"]+","level":"WARN","message":"job `a` has no schedule: it runs only with `dbstash backup a`","event":"manifest_warning","file":"[^"]+/dbstash\.yaml","line":5,"col":3,"target":"dbstash::manifest"\}\n\z"#)
        .success();
    assert!(json_lines(&asked.stderr())
        .iter()
        .any(|v| v["event"] == "manifest_warning"));
}

// --- engine aliases --------------------------------------------------------------------------------

const ALIASES: &str = "version: 1\nremotes: { l: { path: '{dir}/out' } }\ndefaults: { remote: l, schedule: '0 2 * * *' }\njobs:\n  a: { engine: pg, host: db.internal, user: u, database: shop }\n  b: { engine: postgresql, host: db.internal, user: u, database: shop }\n  c: { engine: mongodb, uri: 'mongodb://db.internal/events' }\n";

#[test]
fn engine_aliases_validate_and_plan_as_their_engines() {
    let t = Test::new().manifest(ALIASES);
    t.run(&["validate"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    let plan = t
        .run(&["plan", "--offline", "--format", "json"])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    let v: Value = serde_json::from_str(&plan).expect("plan json");
    let engines: Vec<(&str, &str)> = v["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["job"].as_str().unwrap_or_default(),
                j["engine"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        engines,
        [("a", "postgres"), ("b", "postgres"), ("c", "mongo")]
    );
    assert!(v["jobs"][0]["dump"]["program"] == "pg_dump", "{plan}");
}

#[test]
fn an_unknown_engine_is_one_located_error_with_a_suggestion() {
    let t = Test::new().manifest(&ALIASES.replace("engine: pg,", "engine: pgx,"));
    let r = t
        .run(&["validate"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2);
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].ends_with(
            "dbstash.yaml:5:16: invalid value `pgx`, did you mean `pg`? (expected one of: postgres, pg, postgresql, postgis, mysql, mariadb, mongo, mongodb, redis, sqlite)"
        ),
        "{err}"
    );
    assert!(!err.contains("has no `engine`"), "{err}");
}

// --- the schema --------------------------------------------------------------------------------------

fn schema() -> Value {
    dbstash::manifest::schema::schema()
}

/// Every schema object that is a property, with the path of names that leads to it.
fn properties(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (k, p) in props {
                    out.push((format!("{path}/{k}"), p.clone()));
                }
            }
            for (k, child) in map {
                properties(child, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                properties(child, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_property_has_a_description_without_escapes() {
    let mut props = Vec::new();
    properties(&schema(), "", &mut props);
    assert!(props.len() > 80, "{}", props.len());
    let undocumented: Vec<&str> = props
        .iter()
        .filter(|(_, p)| {
            p["description"]
                .as_str()
                .is_none_or(|d| d.trim().len() <= 3)
        })
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(undocumented.is_empty(), "no description: {undocumented:#?}");
    // Hover text: markdown where there is markup (editors escape `description`), no `\``.
    let text = serde_json::to_string(&schema()).expect("json");
    assert!(!text.contains("\\\\`"), "escaped backticks in the schema");
    for (path, p) in &props {
        let d = p["description"].as_str().unwrap_or_default();
        if d.contains('`') {
            assert_eq!(p["markdownDescription"].as_str(), Some(d), "{path}");
        }
    }
}

/// The schema of one key, as an editor would use it (draft 7, `$ref`s resolved).
fn validate_value(doc: Value) -> bool {
    let s = schema();
    let v = jsonschema::validator_for(&s).expect("the schema compiles");
    v.is_valid(&doc)
}

fn job_with(key: &str, value: &str) -> Value {
    serde_json::json!({ "version": 1, "jobs": { "a": { key: value } } })
}

#[test]
fn editors_flag_bad_durations_and_cron_lines_as_validate_does() {
    let s = schema();
    let job = &s["definitions"]["JobDoc"]["properties"];
    for key in ["timeout", "stale_after", "schedule"] {
        assert!(job[key]["pattern"].is_string(), "{key} has no pattern");
    }
    assert!(s["definitions"]["VerifyDoc"]["properties"]["schedule"]["pattern"].is_string());
    assert!(s["definitions"]["NotifierDoc"]["properties"]["timeout"]["pattern"].is_string());
    assert!(s["definitions"]["SettingsDoc"]["properties"]["shutdown_grace"]["pattern"].is_string());

    // Every duration and schedule in the examples and the docs passes, in every duration key.
    let durations = [
        "30s",
        "1h30m",
        "1h",
        "10m",
        "8h",
        "2d",
        "500ms",
        "90s",
        "1h 30m",
        "1d12h",
        "36h",
        "1 day",
        "2 hours 30 minutes",
        "1w",
        "${TIMEOUT}",
        "${TIMEOUT:-1h}",
    ];
    for d in durations {
        for key in ["timeout", "stale_after"] {
            assert!(validate_value(job_with(key, d)), "{key}: {d} rejected");
        }
        let notifier = serde_json::json!({ "version": 1, "notifiers": { "n": { "type": "slack", "timeout": d } } });
        assert!(validate_value(notifier), "notifier timeout {d} rejected");
        let settings = serde_json::json!({ "version": 1, "settings": { "shutdown_grace": d } });
        assert!(validate_value(settings), "shutdown_grace {d} rejected");
    }
    let schedules = [
        "0 2 * * *",
        "*/15 * * * *",
        "0 */6 * * *",
        "0 5 * * 0",
        "*/10 * * * * *",
        "@daily",
        "@hourly",
        "@weekly",
        "@monthly",
        "0 9-17 * * MON-FRI",
        "${SCHEDULE}",
    ];
    for c in schedules {
        assert!(
            validate_value(job_with("schedule", c)),
            "schedule {c} rejected"
        );
        let verify =
            serde_json::json!({ "version": 1, "jobs": { "a": { "verify": { "schedule": c } } } });
        assert!(validate_value(verify), "verify.schedule {c} rejected");
    }
    // What `validate` rejects, editors flag too.
    // (Fractions, ISO 8601 and clock times are not durations of the manifest: one syntax,
    // whole numbers with units, largest first.)
    for d in [
        "banana", "30x", "-5s", "5", "1.5h", "PT1H30M", "01:30:00", "30m1h",
    ] {
        assert!(
            !validate_value(job_with("timeout", d)),
            "timeout {d} accepted"
        );
    }
    for c in [
        "61 * * * *",
        "* 24 * * *",
        "0 0 32 * *",
        "@often",
        "* * *",
        "banana",
    ] {
        assert!(
            !validate_value(job_with("schedule", c)),
            "schedule {c} accepted"
        );
    }
    // ... and `validate` still says what is wrong, once, in its own words.
    let t = Test::new().manifest(
        "version: 1\nremotes: { l: { path: out } }\njobs:\n  a: { engine: sqlite, database: a.db, remote: l, schedule: '61 * * * *', timeout: banana }\n",
    );
    let err = t
        .run(&["validate"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(2)
        .stderr();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("minute 61 is out of range (0-59)"), "{err}");
    assert!(err.contains("invalid duration `banana`"), "{err}");
}

// --- examples/full.yaml ------------------------------------------------------------------------------

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deref<'a>(mut s: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = root.pointer(r.trim_start_matches('#')).unwrap_or(s);
        } else if let Some([one]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = one;
        } else {
            break;
        }
    }
    s
}

/// Paths of every key the schema defines: `jobs/*/retention/keep_last`, `jobs/*/remote/[]/name`.
fn key_paths(s: &Value, root: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    if depth > 12 {
        return;
    }
    let s = deref(s, root);
    for alt in ["anyOf", "oneOf"] {
        for branch in s.get(alt).and_then(Value::as_array).into_iter().flatten() {
            key_paths(branch, root, path, depth + 1, out);
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let child = format!("{path}/{k}");
            out.push(child.clone());
            key_paths(p, root, &child, depth + 1, out);
        }
    }
    if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
        key_paths(extra, root, &format!("{path}/*"), depth + 1, out);
    }
    if let Some(items) = s.get("items") {
        key_paths(items, root, &format!("{path}/[]"), depth + 1, out);
    }
}

/// Whether `doc` shows the key path: `*` is any entry of a map, `[]` any item of a list. Keys
/// that take one value or a list (`remote: x` / `remote: [x, {...}]`) count in either form.
fn shows(doc: &Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    match (*first, doc) {
        ("*", Value::Object(m)) => m.values().any(|v| shows(v, rest)),
        ("[]", Value::Array(items)) => items.iter().any(|v| shows(v, rest)),
        ("[]", other) => shows(other, rest),
        (_, Value::Array(items)) => items.iter().any(|v| shows(v, path)),
        (key, Value::Object(m)) => m.get(key).is_some_and(|v| shows(v, rest)),
        _ => false,
    }
}

#[test]
fn the_full_example_shows_every_key_and_validates() {
    let s = schema();
    let mut paths = Vec::new();
    key_paths(&s, &s, "", 0, &mut paths);
    // `defaults`, templates and jobs share one shape: a job key may be shown in any of them.
    let mut job_keys: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            p.strip_prefix("/jobs/*")
                .or_else(|| p.strip_prefix("/templates/*"))
                .or_else(|| p.strip_prefix("/defaults"))
                .filter(|rest| !rest.is_empty())
                .map(String::from)
        })
        .collect();
    job_keys.sort();
    job_keys.dedup();
    let others: Vec<&String> = paths
        .iter()
        .filter(|p| {
            !p.starts_with("/jobs/*/")
                && !p.starts_with("/templates/*/")
                && !p.starts_with("/defaults/")
        })
        .collect();
    assert!(job_keys.iter().any(|k| k == "/retention/keep_yearly"));
    assert!(others.iter().any(|k| *k == "/notifiers/*/smtp/ca_file"));

    let text = std::fs::read_to_string(root().join("examples/full.yaml")).expect("full.yaml");
    let node = dbstash::manifest::yaml::parse(&text).expect("YAML");
    let doc = dbstash::manifest::tree::to_json(&node).0;
    let mut missing = Vec::new();
    for p in &others {
        let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        if !shows(&doc, &segs) {
            missing.push(p.to_string());
        }
    }
    for k in &job_keys {
        let segs: Vec<&str> = k.trim_start_matches('/').split('/').collect();
        let holders = [
            doc.pointer("/defaults").cloned(),
            doc.pointer("/templates")
                .and_then(Value::as_object)
                .map(|m| Value::Array(m.values().cloned().collect())),
            doc.pointer("/jobs")
                .and_then(Value::as_object)
                .map(|m| Value::Array(m.values().cloned().collect())),
        ];
        let shown = holders.iter().flatten().any(|h| match h {
            Value::Array(items) => items.iter().any(|j| shows(j, &segs)),
            one => shows(one, &segs),
        });
        if !shown {
            missing.push(format!("/jobs/*{k}"));
        }
    }
    assert!(
        missing.is_empty(),
        "examples/full.yaml claims every key but lacks: {missing:#?}"
    );

    // It validates as it is, from any folder (its files are relative to it), with no environment.
    let out = assert_cmd::Command::cargo_bin("dbstash")
        .expect("binary")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .arg("-c")
        .arg(root().join("examples/full.yaml"))
        .arg("validate")
        .output()
        .expect("validate");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn restore_and_prune_errors_are_json_lines_too() {
    // Commands that log (restore, prune) print their own closing errors as log lines: under JSON
    // logs a failing restore or prune leaves nothing on stderr that jq cannot read.
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp', log: { format: json } }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '@daily' }\n",
    );
    sqlite_db(&t);
    std::fs::write(t.path("out"), "a file where the remote's folder should be").unwrap();
    for args in [&["restore", "a", "--yes"][..], &["prune"]] {
        let r = t.run(args);
        assert_ne!(r.code(), 0, "{args:?}: {}", r.stderr());
        let lines = json_lines(&r.stderr());
        assert!(
            lines.iter().any(|l| l["level"] == "ERROR"),
            "{args:?}: {}",
            r.stderr()
        );
    }
}
