//! Compose conventions in the manifest — `<<: *anchor` merge keys and top-level `x-…` keys — and
//! the one way durations and sizes are written, through the real binary (`validate`, `plan`).

use crate::support::Test;
use serde_json::Value;

/// The manifest's problems as `LINE:COL: message` lines (the path prefix dropped), in order.
fn problems(t: &Test) -> Vec<String> {
    let out = t
        .run(&["validate"]) /* stderr differs between runs of this line */
        .ignore_stderr()
        .failure(2);
    let prefix = format!("{}:", t.path("dbstash.yaml").display());
    out.stderr()
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .collect()
}

/// `plan --format json`, each job by name.
fn plan(t: &Test) -> Value {
    let out = t
        .run(&["plan", "--format", "json"])
        /* stdout differs between runs of this line */
        .ignore_stdout()
        .success();
    let doc: Value = serde_json::from_str(&out.stdout()).expect("plan JSON");
    let jobs = doc["jobs"].as_array().expect("jobs").iter();
    Value::Object(
        jobs.map(|j| (j["job"].as_str().expect("name").to_string(), j.clone()))
            .collect(),
    )
}

#[test]
fn a_merge_key_merges_an_anchor_into_jobs_notifiers_and_remotes() {
    let t = Test::new().manifest(
        "version: 1
x-remote: &remote
  path: {dir}/backups
x-slack: &slack
  type: slack
  url: \"https://hooks.example.com/services/x\"
x-job: &job
  engine: postgres
  schedule: \"0 2 * * 0\"
  timeout: 1h30m
  retention: { max_files: 7 }
remotes:
  nas: { <<: *remote }
notifiers:
  ops:
    <<: *slack
jobs:
  app:
    <<: *job
    database: shop
    remote: nas
    notify: [ops]
  billing:
    <<: *job
    database: billing
    remote: nas
    timeout: 45m
",
    );
    let out = t
        .run(&["validate"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert!(out.stdout().contains("valid (2 jobs)"), "{}", out.stdout());
    let plan = plan(&t);
    let app = &plan["app"];
    assert_eq!(app["engine"], "postgres");
    assert_eq!(app["schedule"], "0 2 * * 0");
    assert_eq!(app["timeout"], "1h 30m");
    assert_eq!(app["retention"]["max_files"], 7);
    assert_eq!(app["notify"], serde_json::json!(["ops"]));
    let root = t.path("backups").display().to_string();
    assert_eq!(app["remotes"][0]["root"], root.as_str());
    // A key the job writes itself wins, even written after the `<<`.
    assert_eq!(plan["billing"]["timeout"], "45m");
    assert_eq!(plan["billing"]["database"], "billing");
    assert_eq!(plan["billing"]["retention"]["max_files"], 7);
}

#[test]
fn a_merge_list_prefers_explicit_keys_then_earlier_mappings() {
    let t = Test::new().manifest(
        "version: 1
x-a: &a
  engine: postgres
  schedule: \"0 2 * * 0\"
  timeout: 1h
x-b: &b
  engine: mysql
  schedule: \"0 3 * * 0\"
  timeout: 2h
  stale_after: 36h
  compress: zstd
remotes:
  nas: { path: {dir}/backups }
jobs:
  app:
    compress: gzip
    <<: [*a, *b]
    database: shop
    remote: nas
",
    );
    let app = &plan(&t)["app"];
    assert_eq!(app["engine"], "postgres", "the earlier mapping wins");
    assert_eq!(app["schedule"], "0 2 * * 0");
    assert_eq!(app["timeout"], "1h");
    assert_eq!(
        app["stale_after"], "1d 12h",
        "only the later mapping has it"
    );
    assert_eq!(app["extension"], ".sql.gz", "the job's own `compress` wins");
}

#[test]
fn an_error_in_a_merged_value_is_located_at_the_anchor() {
    let t = Test::new().manifest(
        "version: 1
x-job: &job
  engine: postgres
  schedule: \"0 2 * * 0\"
  timout: 1h
  stale_after: banana
x-remote: &remote
  path: /tmp/dbstash-test-backups
  colour: blue
remotes:
  nas: { <<: *remote }
jobs:
  app:
    <<: *job
    database: shop
    remote: nas
    retenton: { max_files: 3 }
  other:
    <<: *job
    database: other
    remote: nas
",
    );
    // Two jobs merge the same faulty anchor: each problem is reported once, at the anchor.
    // The list of a remote's keys is not what this test is about.
    let p: Vec<String> = problems(&t)
        .into_iter()
        .map(|l| {
            l.split(" (expected one of")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        p,
        [
            "5:3: unknown key `timout`, did you mean `timeout`?",
            "6:16: invalid duration `banana` (use e.g. `30s`, `15m`, `1h30m`, `2d`)",
            "9:3: unknown key `colour`",
            "17:5: unknown key `retenton`, did you mean `retention`?",
        ]
    );
}

#[test]
fn a_merge_of_a_non_mapping_is_a_located_error() {
    let t = Test::new().manifest(
        "version: 1
x-engine: &engine postgres
remotes:
  nas: { path: /tmp/dbstash-test-backups }
jobs:
  app:
    <<: *engine
    engine: postgres
    database: shop
    remote: nas
    schedule: \"0 2 * * 0\"
",
    );
    assert_eq!(
        problems(&t),
        ["7:9: a merge key `<<` takes a mapping or a list of mappings (like `<<: *defaults` or `<<: [*a, *b]`), not a string"]
    );
}

#[test]
fn top_level_x_keys_are_ignored_but_not_inside_a_job() {
    let t = Test::new().manifest(
        "version: 1
x-anything: [1, 2.5, 1e999, { unknown: \"${DBSTASH_TEST_SURELY_UNSET}\" }]
x-number: 5
x-unused: { engine: nosuchdb, timeout: banana }
x-job: &job { engine: postgres, schedule: \"0 2 * * 0\" }
remotes:
  nas: { path: /tmp/dbstash-test-backups }
jobs:
  app:
    <<: *job
    database: shop
    remote: nas
",
    );
    t.run(&["validate"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success();
    assert_eq!(plan(&t)["app"]["engine"], "postgres");

    let t = Test::new().manifest(
        "version: 1
remotes:
  nas: { path: /tmp/dbstash-test-backups }
jobs:
  app:
    engine: postgres
    database: shop
    remote: nas
    schedule: \"0 2 * * 0\"
    x-note: hello
",
    );
    let p = problems(&t);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("10:5: unknown key `x-note`"), "{p:?}");
}

#[test]
fn every_spelling_of_a_duration_is_accepted_everywhere_with_the_same_value() {
    let spellings = ["1d12h", "36h", "1 day 12 hours", "2160m", "129600s"];
    let mut yaml = String::from(
        "version: 1
settings:
  shutdown_grace: 1 day
remotes:
  nas: { path: /tmp/dbstash-test-backups }
notifiers:
  ops: { type: slack, url: \"https://hooks.example.com/services/x\", timeout: 2 hours 30 minutes }
jobs:
",
    );
    for (i, s) in spellings.iter().enumerate() {
        yaml.push_str(&format!(
            "  j{i}: {{ engine: postgres, database: shop, remote: nas, schedule: \"0 2 * * 0\", timeout: {s}, stale_after: {s}, notify: [ops] }}\n"
        ));
    }
    yaml.push_str(
        "  short: { engine: postgres, database: shop, remote: nas, schedule: \"0 2 * * 0\", timeout: 1h30m, stale_after: 90s }\n",
    );
    let t = Test::new().manifest(&yaml);
    let plan = plan(&t);
    for i in 0..spellings.len() {
        assert_eq!(
            plan[format!("j{i}")]["timeout"],
            "1d 12h",
            "{}",
            spellings[i]
        );
        assert_eq!(plan[format!("j{i}")]["stale_after"], "1d 12h");
    }
    assert_eq!(plan["short"]["timeout"], "1h 30m");
    assert_eq!(plan["short"]["stale_after"], "1m 30s");
}

#[test]
fn bad_durations_and_sizes_are_located_errors() {
    let t = Test::new().manifest(
        "version: 1
settings:
  shutdown_grace: \"0x10\"
remotes:
  nas: { path: /tmp/dbstash-test-backups }
jobs:
  app:
    engine: postgres
    database: shop
    remote: nas
    schedule: \"0 2 * * 0\"
    timeout: banana
    stale_after: -1h
    expected_size: 5 parsecs
  fine:
    engine: postgres
    database: shop
    remote: nas
    schedule: \"0 2 * * 0\"
    timeout: 1 day
    stale_after: 2 hours 30 minutes
    expected_size: 1.5 GiB
",
    );
    assert_eq!(
        problems(&t),
        [
            "3:19: invalid duration `0x10` (use e.g. `30s`, `15m`, `1h30m`, `2d`)",
            "12:14: invalid duration `banana` (use e.g. `30s`, `15m`, `1h30m`, `2d`)",
            "13:18: duration `-1h` must not be negative",
            "14:20: unknown size unit `parsecs` in `5 parsecs`",
        ]
    );
}

#[test]
fn sizes_take_decimal_and_binary_units_with_or_without_a_space() {
    let sizes = [
        ("200GiB", 200u64 << 30),
        ("5MB", 5_000_000),
        ("1.5 GiB", 3 << 29),
        ("512 kB", 512_000),
        ("1PiB", 1 << 50),
    ];
    let mut yaml = String::from(
        "version: 1
remotes:
  nas: { path: /tmp/dbstash-test-backups }
jobs:
",
    );
    for (i, (s, _)) in sizes.iter().enumerate() {
        yaml.push_str(&format!(
            "  j{i}: {{ engine: postgres, database: shop, remote: nas, schedule: \"0 2 * * 0\", expected_size: {s} }}\n"
        ));
    }
    let t = Test::new().manifest(&yaml);
    let plan = plan(&t);
    for (i, (s, bytes)) in sizes.iter().enumerate() {
        assert_eq!(plan[format!("j{i}")]["expected_size"], *bytes, "{s}");
    }
}
