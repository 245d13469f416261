//! Malformed manifests through the real binary: `dbstash -c FILE validate` must exit 2 and print
//! each problem as exactly one `FILE:LINE:COL: message` line — every problem, and nothing else.

use assert_cmd::Command;
use std::path::Path;

/// A valid manifest most cases extend. Lines: 1 version … 9 `app:`, 10-13 its keys; what a case
/// appends starts at line 14 (job keys of `app` at column 5, or a new job at column 3).
macro_rules! base {
    () => {
        "version: 1
remotes:
  nas: { path: /tmp/dbstash-test-backups }
notifiers:
  ops: { type: slack, url: \"https://hooks.example.com/services/x\" }
templates:
  pg: { engine: postgres, schedule: \"0 2 * * *\" }
jobs:
  app:
    engine: postgres
    database: shop
    remote: nas
    schedule: \"0 2 * * *\"
"
    };
}

struct Case {
    name: &'static str,
    yaml: &'static str,
    /// Every error expected, as (line, column, message). `{dir}` stands for the manifest's folder.
    errors: &'static [(usize, usize, &'static str)],
}

const CASES: &[Case] = &[
    // ---- YAML layer ----
    Case {
        name: "yaml syntax error: unterminated quote",
        yaml: "version: 1\njobs:\n  app: { engine: \"postgres }\n",
        errors: &[(
            3,
            18,
            "YAML syntax error: while scanning a quoted scalar, found unexpected end of stream",
        )],
    },
    Case {
        name: "yaml syntax error: tab indentation",
        yaml: "version: 1\njobs:\n\tapp: {}\n",
        errors: &[(
            3,
            2,
            "YAML syntax error: tabs disallowed within this context (block indentation)",
        )],
    },
    Case {
        name: "root is a list, not a mapping",
        yaml: "- version: 1\n- jobs: {}\n",
        errors: &[(
            1,
            1,
            "the manifest must be a mapping with `version: 1` and `jobs:`",
        )],
    },
    Case {
        name: "root is a scalar",
        yaml: "just some text\n",
        errors: &[(
            1,
            1,
            "the manifest must be a mapping with `version: 1` and `jobs:`",
        )],
    },
    Case {
        name: "duplicate top-level key",
        yaml: concat!(base!(), "version: 1\n"),
        errors: &[(14, 1, "duplicate key `version` (first defined at line 1)")],
    },
    Case {
        name: "duplicate job name",
        yaml: concat!(base!(), "  app:\n    engine: mysql\n"),
        errors: &[(14, 3, "duplicate key `app` (first defined at line 9)")],
    },
    // ---- unknown keys, with the nearest valid key ----
    Case {
        name: "unknown top-level key",
        yaml: concat!(base!(), "setings: {}\n"),
        errors: &[(14, 1, "unknown key `setings`, did you mean `settings`?")],
    },
    Case {
        name: "unknown settings key",
        yaml: concat!(base!(), "settings:\n  max_paralel: 3\n"),
        errors: &[(15, 3, "unknown key `max_paralel`, did you mean `max_parallel`?")],
    },
    Case {
        name: "unknown job key",
        yaml: concat!(base!(), "    shedule: \"0 3 * * *\"\n"),
        errors: &[(14, 5, "unknown key `shedule`, did you mean `schedule`?")],
    },
    Case {
        name: "unknown retention key (and only that: the retention map is not rejected as well)",
        yaml: concat!(base!(), "    retention: { max_file: 3 }\n"),
        errors: &[(14, 18, "unknown key `max_file`, did you mean `max_files`?")],
    },
    Case {
        name: "unknown notifier key with a suggestion",
        yaml: "version: 1
notifiers:
  ops: { type: slack, url: \"https://hooks.example.com/x\", mesage: \"{{job}}\" }
jobs: {}
",
        errors: &[(3, 59, "unknown key `mesage`, did you mean `message`?")],
    },
    Case {
        name: "unknown smtp key, and the smtp block's missing host",
        yaml: "version: 1
notifiers:
  dba:
    type: email
    from: dbstash@example.com
    to: [dba@example.com]
    smtp: { port: 25, pasword: hunter2 }
jobs: {}
",
        errors: &[
            (7, 5, "missing required key `host`"),
            (7, 23, "unknown key `pasword`, did you mean `password`?"),
        ],
    },
    // ---- types and values ----
    Case {
        name: "port is not a number",
        yaml: concat!(base!(), "    port: abc\n"),
        errors: &[(14, 11, "expected a whole number, found a string")],
    },
    Case {
        name: "port out of range",
        yaml: concat!(base!(), "    port: 70000\n"),
        errors: &[(14, 11, "must be at most 65535")],
    },
    Case {
        name: "retention is not a mapping",
        yaml: concat!(base!(), "    retention: 7\n"),
        errors: &[(14, 16, "expected a mapping, found a number")],
    },
    Case {
        name: "hook is a list instead of a command",
        yaml: concat!(base!(), "    hooks: { pre: [echo, hi] }\n"),
        errors: &[(14, 19, "expected a string, found a list")],
    },
    Case {
        name: "compress is not one of the choices",
        yaml: concat!(base!(), "    compress: lzma\n"),
        errors: &[(
            14,
            15,
            "invalid value `lzma` (expected one of: none, gzip, zstd, native)",
        )],
    },
    Case {
        name: "notifier `on` is not an event",
        yaml: concat!(base!(), "  b:\n    engine: sqlite\n    database: b.db\n    remote: nas\n    notify: [5]\n"),
        errors: &[(18, 14, "expected a string, found a number")],
    },
    Case {
        name: "version is not 1",
        yaml: concat!("version: 2\n", "jobs: {}\n"),
        errors: &[(
            1,
            10,
            "unsupported manifest version: found `version: 2`, this dbstash reads `version: 1`",
        )],
    },
    Case {
        name: "version missing",
        yaml: "jobs: {}\n",
        errors: &[(1, 1, "missing required key `version`")],
    },
    // ---- schedules and zones ----
    Case {
        name: "cron with 4 fields",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n    remote: nas\n    schedule: \"0 2 * *\"\n"),
        errors: &[(18, 15, "invalid schedule `0 2 * *`: expected 5 fields (min hour day month weekday), 6 with seconds first, or @hourly/@daily/@weekly/@monthly")],
    },
    Case {
        name: "cron field out of range",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n    remote: nas\n    schedule: \"0 25 * * *\"\n"),
        errors: &[(18, 15, "invalid schedule `0 25 * * *`: hour 25 is out of range (0-23)")],
    },
    Case {
        name: "cron that never runs",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n    remote: nas\n    schedule: \"0 0 31 4 *\"\n"),
        errors: &[(18, 15, "schedule `0 0 31 4 *` never runs (no such date)")],
    },
    Case {
        name: "cron unknown shorthand",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n    remote: nas\n    schedule: \"@sometimes\"\n"),
        errors: &[(18, 15, "invalid schedule `@sometimes`: unknown shorthand (use @hourly, @daily, @weekly, @monthly or @yearly)")],
    },
    Case {
        name: "unknown time zone in settings",
        yaml: concat!(base!(), "settings: { timezone: Mars/Olympus_Mons }\n"),
        errors: &[(14, 23, "unknown time zone `Mars/Olympus_Mons` (use an IANA name such as `Europe/Berlin` or `UTC`)")],
    },
    Case {
        name: "unknown time zone on a job",
        yaml: concat!(base!(), "    timezone: Europe/Berlinn\n"),
        errors: &[(14, 15, "unknown time zone `Europe/Berlinn` (use an IANA name such as `Europe/Berlin` or `UTC`)")],
    },
    // ---- references ----
    Case {
        name: "unknown remote, with a suggestion",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n    remote: nass\n"),
        errors: &[(17, 13, "unknown remote `nass`, did you mean `nas`?")],
    },
    Case {
        name: "unknown notifier, with a suggestion",
        yaml: concat!(base!(), "    notify: [ops, opz]\n"),
        errors: &[(14, 19, "unknown notifier `opz`, did you mean `ops`?")],
    },
    Case {
        name: "unknown notifier, nothing close",
        yaml: concat!(base!(), "    notify: [pagerduty]\n"),
        errors: &[(14, 14, "unknown notifier `pagerduty` (declared: ops)")],
    },
    Case {
        name: "unknown template, with a suggestion",
        yaml: concat!(base!(), "  b:\n    template: pgg\n    database: b\n    remote: nas\n"),
        errors: &[(15, 15, "unknown template `pgg`, did you mean `pg`?"), (14, 3, "job `b` has no `engine` (set it on the job, its template or in defaults)")],
    },
    // ---- ${VAR} ----
    Case {
        name: "unset variable (and no second complaint about the raw text)",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n    remote: nas\n    port: ${DBSTASH_TEST_UNSET_PORT}\n"),
        errors: &[(18, 11, "environment variable `DBSTASH_TEST_UNSET_PORT` is not set (use `${DBSTASH_TEST_UNSET_PORT:-default}` for a default)")],
    },
    Case {
        name: "bad ${ syntax: invalid name",
        yaml: concat!(base!(), "    host: \"${DB-HOST}\"\n"),
        errors: &[(14, 11, "invalid variable name `DB-HOST` in `${DB-HOST}`")],
    },
    Case {
        name: "bad ${ syntax: unterminated",
        yaml: concat!(base!(), "    host: \"${DB_HOST\"\n"),
        errors: &[(14, 11, "unterminated `${` in string")],
    },
    Case {
        name: "bad ${ in a secret quotes nothing of the secret",
        yaml: concat!(base!(), "    password: \"hunter2-${not valid}\"\n"),
        errors: &[(14, 15, "invalid `${...}` in a secret value: a variable name is letters, digits and `_` (write `$${` for a literal `${`)")],
    },
    // ---- *_file ----
    Case {
        name: "uri_file that does not exist",
        yaml: "version: 1
remotes: { nas: { path: /tmp/dbstash-test-backups } }
jobs:
  app:
    engine: postgres
    uri_file: secrets/missing-uri
    remote: nas
",
        errors: &[(6, 15, "cannot read uri_file `{dir}/secrets/missing-uri`: No such file or directory (os error 2)")],
    },
    Case {
        name: "password_file that is a folder",
        yaml: concat!(base!(), "    password_file: secrets\n"),
        errors: &[(14, 20, "cannot read password_file `{dir}/secrets`: Is a directory (os error 21)")],
    },
    Case {
        name: "both uri and uri_file",
        yaml: concat!(base!(), "    uri: postgresql://app@db/shop\n    uri_file: secrets/uri\n"),
        errors: &[(15, 5, "set either `uri` or `uri_file`, not both")],
    },
    // ---- units and names ----
    Case {
        name: "settings with a broken health block still check their other keys",
        yaml: concat!(base!(), "settings:\n  health: {}\n  timezone: Mars/Olympus_Mons\n"),
        errors: &[
            (15, 3, "missing required key `listen`"),
            (16, 13, "unknown time zone `Mars/Olympus_Mons` (use an IANA name such as `Europe/Berlin` or `UTC`)"),
        ],
    },
    Case {
        name: "bad duration",
        yaml: concat!(base!(), "    timeout: soon\n"),
        errors: &[(14, 14, "invalid duration `soon` (use e.g. `30s`, `15m`, `1h30m`, `2d`)")],
    },
    Case {
        name: "bad duration in settings",
        yaml: concat!(base!(), "settings: { shutdown_grace: 30x }\n"),
        errors: &[(14, 29, "invalid duration `30x` (use e.g. `30s`, `15m`, `1h30m`, `2d`)")],
    },
    Case {
        name: "bad size",
        yaml: concat!(base!(), "    expected_size: 5 parsecs\n"),
        errors: &[(14, 20, "unknown size unit `parsecs` in `5 parsecs`")],
    },
    Case {
        name: "bad name template token",
        yaml: concat!(base!(), "    name: \"{db}-{datee}\"\n"),
        errors: &[(14, 11, "name: unknown token `{datee}` (known: {job} {db} {engine} {date} {time} {ts} {uuid})")],
    },
    Case {
        name: "slash in name",
        yaml: concat!(base!(), "    name: \"daily/{db}-{time}\"\n"),
        errors: &[(14, 11, "name: a name cannot contain `/` (put folders in `path`)")],
    },
    Case {
        name: "dot-dot in path",
        yaml: concat!(base!(), "    path: \"pg/../../etc\"\n"),
        errors: &[(14, 11, "path: `.` and `..` are not allowed as folder names")],
    },
    Case {
        name: "invalid job name",
        yaml: concat!(base!(), "  \"nightly backup\":\n    template: pg\n    database: b\n    remote: nas\n"),
        errors: &[(14, 3, "invalid job name `nightly backup`: use letters, digits, `-`, `_` and `.`")],
    },
    // ---- engine rules ----
    Case {
        name: "compress native on mysql, redis and sqlite",
        yaml: concat!(base!(), "  m:\n    engine: mysql\n    database: m\n    remote: nas\n    compress: native\n  r:\n    engine: redis\n    remote: nas\n    compress: native\n  s:\n    engine: sqlite\n    database: s.db\n    remote: nas\n    compress: native\n"),
        errors: &[
            (18, 15, "`compress: native` is not available for mysql (its dump tool has no compression); use gzip or zstd"),
            (22, 15, "`compress: native` is not available for redis (its dump tool has no compression); use gzip or zstd"),
            (27, 15, "`compress: native` is not available for sqlite (its dump tool has no compression); use gzip or zstd"),
        ],
    },
    Case {
        name: "format not valid for the engine",
        yaml: concat!(base!(), "    format: snapshot\n  m:\n    engine: mysql\n    database: m\n    remote: nas\n    format: custom\n"),
        errors: &[
            (14, 13, "`format` for postgres is not valid: postgres takes plain|custom, sqlite takes snapshot|sql"),
            (19, 13, "`format` for mysql is not valid: postgres takes plain|custom, sqlite takes snapshot|sql"),
        ],
    },
    Case {
        name: "native compression contradicts format plain",
        yaml: concat!(base!(), "    compress: native\n    format: plain\n"),
        errors: &[(14, 15, "`compress: native` for postgres means the custom format; drop `format: plain` or use gzip/zstd")],
    },
    Case {
        name: "dump_args that write to disk",
        yaml: concat!(base!(), "    dump_args: [\"--verbose\", \"-f\", \"out.sql\"]\n  p2:\n    template: pg\n    database: p\n    remote: nas\n    dump_args: [\"--file=x.sql\"]\n  p3:\n    template: pg\n    database: p\n    remote: nas\n    dump_args: [\"-Fd\"]\n  mg:\n    engine: mongo\n    remote: nas\n    dump_args: [\"--out=/tmp/x\"]\n  my:\n    engine: mysql\n    database: m\n    remote: nas\n    dump_args: [\"--tab=/tmp\"]\n"),
        errors: &[
            (14, 30, "dump argument `-f` makes the dump tool write to disk; stream mode needs its output on stdout"),
            (19, 17, "dump argument `--file=x.sql` makes the dump tool write to disk; stream mode needs its output on stdout"),
            (24, 17, "dump argument `-Fd` makes the dump tool write to disk; stream mode needs its output on stdout"),
            (28, 17, "dump argument `--out=/tmp/x` makes the dump tool write to disk; stream mode needs its output on stdout"),
            (33, 17, "dump argument `--tab=/tmp` makes the dump tool write to disk; stream mode needs its output on stdout"),
        ],
    },
    Case {
        name: "job without engine",
        yaml: concat!(base!(), "  b:\n    database: b\n    remote: nas\n"),
        errors: &[(14, 3, "job `b` has no `engine` (set it on the job, its template or in defaults)")],
    },
    Case {
        name: "job without remote",
        yaml: concat!(base!(), "  b:\n    template: pg\n    database: b\n"),
        errors: &[(14, 3, "job `b` has no `remote`")],
    },
    Case {
        name: "postgres and mysql jobs without a database",
        yaml: concat!(base!(), "  b:\n    template: pg\n    remote: nas\n  m:\n    engine: mysql\n    host: db\n    remote: nas\n"),
        errors: &[
            (14, 3, "job `b` needs a database name (`database:` or the URI's path)"),
            (17, 3, "job `m` needs a database name (`database:` or the URI's path)"),
        ],
    },
    Case {
        name: "uri of the wrong engine (and no second complaint about the database)",
        yaml: concat!(base!(), "  b:\n    template: pg\n    uri: \"mysql://root:hunter2@db/shop\"\n    remote: nas\n"),
        errors: &[(16, 10, "the connection URI scheme `mysql` does not fit engine postgres (expected postgresql:// or postgres://)")],
    },
    // ---- remotes ----
    Case {
        name: "remote with both rclone and path, and one with neither",
        yaml: "version: 1
remotes:
  both: { rclone: \"s3:bucket\", path: /srv/backups }
  neither: {}
jobs:
  a: { engine: sqlite, database: a.db, remote: both }
  b: { engine: sqlite, database: b.db, remote: neither }
",
        // the jobs refer to declared (if broken) remotes: no "unknown remote" on top
        errors: &[
            (3, 3, "remote `both` sets both `rclone` and `path`; choose one"),
            (4, 3, "remote `neither` needs `rclone: NAME:path` or `path: /folder`"),
        ],
    },
    Case {
        name: "rclone remote without a colon",
        yaml: "version: 1
remotes:
  s3: { rclone: \"my-bucket/backups\" }
jobs: {}
",
        errors: &[(3, 17, "rclone remote `my-bucket/backups` must look like `NAME:path` (a remote from rclone.conf)")],
    },
    // ---- notifiers ----
    Case {
        name: "email notifier without smtp and to",
        yaml: "version: 1
notifiers:
  dba: { type: email, from: dbstash@example.com }
jobs: {}
",
        errors: &[
            (3, 3, "email notifier `dba` needs `smtp: { host: ... }`"),
            (3, 3, "email notifier `dba` needs at least one address in `to`"),
        ],
    },
    Case {
        name: "slack notifier without url",
        yaml: "version: 1
notifiers:
  ops: { type: slack, on: failure }
jobs: {}
",
        errors: &[(3, 3, "notifier `ops` needs `url` or `url_file`")],
    },
    Case {
        name: "notifier of an unknown type",
        yaml: "version: 1
notifiers:
  ops: { type: pagerduty, url: \"https://x.example\" }
jobs: {}
",
        errors: &[(3, 16, "invalid value `pagerduty` (expected one of: slack, discord, email, webhook, healthchecks)")],
    },
    Case {
        name: "message template with an unknown variable",
        yaml: "version: 1
notifiers:
  ops: { type: slack, url: \"https://x.example\", message: \"{{jobb}} failed\" }
jobs: {}
",
        errors: &[(3, 58, "message template: unknown variable `jobb`, did you mean `job`?")],
    },
    Case {
        name: "message template with broken syntax is one line",
        yaml: "version: 1
notifiers:
  ops: { type: slack, url: \"https://x.example\", message: \"{{#if job}}x{{/each}}\" }
jobs: {}
",
        errors: &[(3, 58, "message template: helper \"if\" was opened, but \"each\" is closing at line 1, column 13 of the message")],
    },
    // ---- templates ----
    Case {
        name: "template inside a template",
        yaml: "version: 1
templates:
  base: { engine: postgres }
  pg: { template: base, schedule: \"@daily\" }
jobs: {}
",
        errors: &[(4, 9, "a template cannot use another template")],
    },
    Case {
        name: "template in defaults",
        yaml: concat!(base!(), "defaults: { template: pg }\n"),
        errors: &[(14, 13, "`template` cannot be set in `defaults`")],
    },
    // ---- modes, several databases, encryption ----
    Case {
        name: "mode: directory with dbstash's compression",
        yaml: concat!(base!(), "    mode: directory\n    compress: gzip\n"),
        errors: &[(15, 15, "a `directory` backup is uploaded file by file: use `compress: native` (the dump tool compresses each file) or `none`, or `mode: tar`")],
    },
    Case {
        name: "database: \"*\" with {db} in the path",
        yaml: concat!(base!(), "  all:\n    template: pg\n    remote: nas\n    database: \"*\"\n    path: \"pg/{db}\"\n"),
        errors: &[(18, 11, "with several databases (or `globals`) the backups share the job's folder: keep `{db}` out of `path` and in `name`")],
    },
    Case {
        name: "encrypt with a malformed recipient",
        yaml: concat!(base!(), "    encrypt: { age_recipients: [age1xyz] }\n"),
        errors: &[(14, 33, "not an age recipient (`age1...`): invalid Bech32 encoding")],
    },
    Case {
        name: "encrypt without recipients",
        yaml: concat!(base!(), "    encrypt: {}\n"),
        errors: &[(14, 5, "`encrypt` needs at least one age recipient (`age_recipients` or `age_recipients_file`)")],
    },
    Case {
        name: "globals on a mysql job",
        yaml: concat!(base!(), "  my:\n    engine: mysql\n    remote: nas\n    database: shop\n    globals: true\n"),
        errors: &[(18, 14, "`globals: true` (pg_dumpall --globals-only) is for postgres jobs")],
    },
    Case {
        name: "keep_daily must be a whole number",
        yaml: concat!(base!(), "    retention: { max_files: 3, keep_daily: seven }\n"),
        errors: &[(14, 44, "expected a whole number, found a string")],
    },
    Case {
        name: "a pitr slot that PostgreSQL would refuse",
        yaml: concat!(base!(), "    pitr: { enabled: true, slot: Bad-Slot }\n"),
        errors: &[(
            14,
            34,
            "`Bad-Slot` is not a replication slot name: 1 to 63 lower-case letters, digits or `_`",
        )],
    },
];

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Write `yaml` as `m.yaml` in a fresh folder (with a `secrets/` folder beside it) and run
/// `dbstash -c m.yaml validate ARGS` with an empty environment.
fn validate(yaml: &str, args: &[&str]) -> (tempfile::TempDir, String, Output) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("secrets")).expect("secrets dir");
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, yaml).expect("write manifest");
    let out = Command::cargo_bin("dbstash")
        .expect("binary")
        .env_clear()
        .arg("-c")
        .arg(&file)
        .arg("validate")
        .args(args)
        .output()
        .expect("run dbstash");
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let path = file.display().to_string();
    (dir, path, output)
}

fn error_lines<'a>(stderr: &'a str, path: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|l| l.starts_with(path) && !l.contains(": warning: "))
        .collect()
}

#[test]
fn malformed_manifests_report_every_error_at_its_place() {
    assert!(CASES.len() >= 35, "the table must hold at least 35 cases");
    let mut failures = Vec::new();
    for case in CASES {
        let (dir, path, out) = validate(case.yaml, &[]);
        let dir_s = dir.path().display().to_string();
        let mut problems = Vec::new();
        if out.code != 2 {
            problems.push(format!("exit code {} (expected 2)", out.code));
        }
        if !out.stdout.is_empty() {
            problems.push(format!("unexpected stdout: {:?}", out.stdout));
        }
        let got = error_lines(&out.stderr, &path);
        for (line, col, msg) in case.errors {
            let want = format!("{path}:{line}:{col}: {}", msg.replace("{dir}", &dir_s));
            if !got.contains(&want.as_str()) {
                problems.push(format!("missing line: {want}"));
            }
        }
        if got.len() != case.errors.len() {
            problems.push(format!(
                "{} error lines, expected {}",
                got.len(),
                case.errors.len()
            ));
        }
        for l in out.stderr.lines() {
            if !l.starts_with(&path) {
                problems.push(format!(
                    "a line that is not `FILE:LINE:COL: message`: {l:?}"
                ));
            }
        }
        if out.stderr.contains("panicked") || out.stderr.contains("RUST_BACKTRACE") {
            problems.push("a panic reached the user".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case `{}`:\n  {}\n  stderr was:\n{}",
                case.name,
                problems.join("\n  "),
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A manifest with many independent problems reports each of them in one run.
const MANY: &str = "version: 1
setings: {}
remotes:
  nas: { path: /tmp/dbstash-test-backups }
notifiers:
  ops: { type: slack }
jobs:
  app:
    engine: postgres
    database: shop
    remote: nass
    schedule: \"0 2 * *\"
    timezone: Nowhere/Land
    compress: lzma
    timeout: soon
    notify: [opz]
  cache:
    engine: redis
    remote: nas
    compress: native
    name: \"{db}/{tim}\"
";

#[test]
fn every_error_is_reported_at_once() {
    let (_dir, path, out) = validate(MANY, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let lines = error_lines(&out.stderr, &path);
    let expected = [
        "2:1: unknown key `setings`, did you mean `settings`?",
        "6:3: notifier `ops` needs `url` or `url_file`",
        "11:13: unknown remote `nass`, did you mean `nas`?",
        "12:15: invalid schedule `0 2 * *`",
        "13:15: unknown time zone `Nowhere/Land`",
        "14:15: invalid value `lzma`",
        "15:14: invalid duration `soon`",
        "20:15: `compress: native` is not available for redis",
        "21:11: name: unknown token `{tim}`",
    ];
    for e in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{path}:{e}"))),
            "missing `{e}` in:\n{}",
            out.stderr
        );
    }
    // `notify: [opz]` names a notifier that exists only as `ops`, which is itself invalid:
    // it is still an unknown name, so it is reported too.
    assert!(lines
        .iter()
        .any(|l| l.starts_with(&format!("{path}:16:14: unknown notifier `opz`"))));
    assert_eq!(lines.len(), expected.len() + 1, "{}", out.stderr);
    // sorted by position
    let positions: Vec<(usize, usize)> = lines
        .iter()
        .map(|l| {
            let rest = &l[path.len() + 1..];
            let mut it = rest.splitn(3, ':');
            let line = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let col = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            (line, col)
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
}

#[test]
fn github_format_prints_annotations() {
    let (_dir, path, out) = validate(MANY, &["--format", "github"]);
    assert_eq!(out.code, 2);
    let lines: Vec<&str> = out.stdout.lines().collect();
    // ten errors and one warning (`cache` has no schedule)
    assert_eq!(lines.len(), 11, "{}", out.stdout);
    let file = path.replace(':', "%3A").replace(',', "%2C");
    assert_eq!(
        lines[0],
        format!(
            "::error file={file},line=2,col=1::unknown key `setings`, did you mean `settings`?"
        )
    );
    let errors = lines
        .iter()
        .filter(|l| l.starts_with(&format!("::error file={file},line=")))
        .count();
    assert_eq!(errors, 10, "{}", out.stdout);
    let warning = format!("::warning file={file},line=17,col=3::job `cache` has no schedule: it runs only with `dbstash backup cache`");
    assert!(lines.contains(&warning.as_str()), "{}", out.stdout);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn json_format_lists_diagnostics() {
    let (_dir, path, out) = validate(MANY, &["--format", "json"]);
    assert_eq!(out.code, 2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json on stdout");
    assert_eq!(v["file"], path.as_str());
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 10);
    assert_eq!(v["warnings"], 1);
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 11);
    assert_eq!(
        diags[0],
        serde_json::json!({
            "file": path,
            "line": 2,
            "col": 1,
            "severity": "error",
            "message": "unknown key `setings`, did you mean `settings`?",
        })
    );
    for d in diags {
        assert!(d["line"].as_u64().unwrap_or(0) >= 1);
        assert!(d["col"].as_u64().unwrap_or(0) >= 1);
    }
}

/// Valid but with a warning: a job without a schedule.
const WARNS: &str = "version: 1
remotes: { nas: { path: /tmp/dbstash-test-backups } }
jobs:
  adhoc: { engine: sqlite, database: a.db, remote: nas }
";

#[test]
fn warnings_pass_unless_denied() {
    let (_dir, path, out) = validate(WARNS, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{path}: valid (1 job)\n"));
    assert_eq!(
        out.stderr,
        format!("{path}:4:3: warning: job `adhoc` has no schedule: it runs only with `dbstash backup adhoc`\n")
    );

    let (_dir, path, out) = validate(WARNS, &["--deny-warnings"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(out
        .stderr
        .contains(&format!("{path}:4:3: warning: job `adhoc` has no schedule")));
    assert!(
        out.stderr.contains("1 warning and --deny-warnings"),
        "{}",
        out.stderr
    );

    let (_dir, _path, out) = validate(WARNS, &["--deny-warnings", "--format", "json"]);
    assert_eq!(out.code, 2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["diagnostics"][0]["severity"], "warning");

    let (_dir, _path, out) = validate(WARNS, &["--format", "github"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("::warning file="), "{}", out.stdout);
}

#[test]
fn an_unreadable_manifest_is_one_located_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.yaml");
    let out = Command::cargo_bin("dbstash")
        .expect("binary")
        .env_clear()
        .arg("-c")
        .arg(&missing)
        .arg("validate")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "{}:1:1: cannot read the manifest: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    // A secret in every secret-bearing key, each of them also wrong in some way.
    let yaml = "version: 1
remotes: { nas: { path: /tmp/dbstash-test-backups } }
notifiers:
  hook: { type: webhook, url: \"ftp://u:s3cr3t-url-value@x\", secret: 12345678901 }
jobs:
  a:
    engine: postgres
    uri: \"mysql://root:s3cr3t-uri-value@db/shop\"
    remote: nas
  b:
    engine: postgres
    password: 98765432101
    uri: \"postgresql://u:s3cr3t-bad-port@db:99999/x\"
    database: x
    remote: nas
";
    for format in ["text", "json", "github"] {
        let (_dir, _path, out) = validate(yaml, &["--format", format]);
        assert_eq!(out.code, 2);
        let all = format!("{}{}", out.stdout, out.stderr);
        for secret in ["s3cr3t", "12345678901", "98765432101"] {
            assert!(
                !all.contains(secret),
                "`{secret}` leaked ({format}):\n{all}"
            );
        }
        assert!(all.contains("URL must start with http"), "{all}");
    }
}

#[test]
fn a_missing_file_path_is_relative_to_the_manifest() {
    // Sanity check of the `{dir}` substitution the table relies on.
    let (dir, path, out) = validate(
        "version: 1\nremotes: { nas: { path: x } }\njobs:\n  a: { engine: redis, remote: nas, password_file: pw }\n",
        &[],
    );
    let want = format!(
        "{path}:4:51: cannot read password_file `{}`: No such file or directory (os error 2)",
        Path::new(&dir.path().display().to_string())
            .join("pw")
            .display()
    );
    assert!(out.stderr.contains(&want), "{}\nwanted {want}", out.stderr);
}
