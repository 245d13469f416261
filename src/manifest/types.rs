//! The manifest as written: serde + schemars types. `schema/dbstash.schema.json` is generated from
//! these, and the loader validates documents against that schema, so the two cannot drift.
//!
//! Every job key is optional here because `defaults`, `templates` and `jobs` share one type
//! (`JobDoc`): precedence is defaults < template < job, key by key. Whether the merged job is
//! complete is checked in `resolve`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::model::kinds::{
    Compress, DumpFormat, Engine, LogFormat, LogLevel, Mode, NotifierKind, NotifyOn, SmtpSecurity,
};

/// Durations exactly as `units::parse_duration` reads them (the same syntax, from
/// `units::duration_syntax!`): number+unit parts, largest first (`90s`, `1h30m`, `1d12h`, `1 day`,
/// `2 hours 30 minutes`, `1w`, `500ms`). A value with `${VAR}` is checked once expanded.
pub const DURATION_PATTERN: &str = concat!(
    r"^(?:.*\$\{.*| *(?:",
    crate::domain::units::duration_syntax!(),
    r") *)$"
);

/// Cron lines as `domain::schedule::Schedule::parse` reads them: 5 fields (minute hour day month
/// weekday), 6 with seconds first, or a shorthand, with each number in its field's range (a unit
/// test keeps the two in step; a backwards range like `5-1` is left to `validate`). Names
/// (`MON`, `JAN`), `L`, `W` and `#` are allowed where cron has them. A value with `${VAR}` is
/// checked once expanded.
pub const CRON_PATTERN: &str = concat!(
    r"^\s*(?:",
    r"@(?:yearly|annually|monthly|weekly|daily|hourly)",
    // second and minute 0-59
    r"|(?:(?:\*|\?|0*[1-5]?[0-9](?:-0*[1-5]?[0-9])?)(?:/0*[1-9][0-9]*)?(?:,(?:\*|\?|0*[1-5]?[0-9](?:-0*[1-5]?[0-9])?)(?:/0*[1-9][0-9]*)?)*\s+)?",
    r"(?:\*|\?|0*[1-5]?[0-9](?:-0*[1-5]?[0-9])?)(?:/0*[1-9][0-9]*)?(?:,(?:\*|\?|0*[1-5]?[0-9](?:-0*[1-5]?[0-9])?)(?:/0*[1-9][0-9]*)?)*",
    // hour 0-23
    r"\s+(?:\*|\?|0*(?:[01]?[0-9]|2[0-3])(?:-0*(?:[01]?[0-9]|2[0-3]))?)(?:/0*[1-9][0-9]*)?(?:,(?:\*|\?|0*(?:[01]?[0-9]|2[0-3])(?:-0*(?:[01]?[0-9]|2[0-3]))?)(?:/0*[1-9][0-9]*)?)*",
    // day of month 1-31, L, W
    r"\s+(?:\*|\?|L|LW|0*(?:[1-9]|[12][0-9]|3[01])W?(?:-0*(?:[1-9]|[12][0-9]|3[01]))?)(?:/0*[1-9][0-9]*)?(?:,(?:\*|\?|L|LW|0*(?:[1-9]|[12][0-9]|3[01])W?(?:-0*(?:[1-9]|[12][0-9]|3[01]))?)(?:/0*[1-9][0-9]*)?)*",
    // month 1-12 or a name
    r"\s+(?:\*|\?|(?:0*(?:[1-9]|1[0-2])|[A-Za-z]{3})(?:-(?:0*(?:[1-9]|1[0-2])|[A-Za-z]{3}))?)(?:/0*[1-9][0-9]*)?(?:,(?:\*|\?|(?:0*(?:[1-9]|1[0-2])|[A-Za-z]{3})(?:-(?:0*(?:[1-9]|1[0-2])|[A-Za-z]{3}))?)(?:/0*[1-9][0-9]*)?)*",
    // day of week 0-7 or a name, with L or #n
    r"\s+(?:\*|\?|L|(?:0*[0-7]|[A-Za-z]{3})(?:L|#[1-5])?(?:-(?:0*[0-7]|[A-Za-z]{3}))?)(?:/0*[1-9][0-9]*)?(?:,(?:\*|\?|L|(?:0*[0-7]|[A-Za-z]{3})(?:L|#[1-5])?(?:-(?:0*[0-7]|[A-Za-z]{3}))?)(?:/0*[1-9][0-9]*)?)*",
    r"|.*\$\{.*",
    r")\s*$"
);

/// A dbstash manifest (version 1).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "dbstash manifest")]
// Top-level `x-…` keys (compose's place for shared snippets with anchors) are dropped before
// the schema layer; editors must accept them too.
#[schemars(extend("patternProperties" = { "^x-": {} }))]
pub struct ManifestDoc {
    /// Manifest format version; always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Process-wide settings: time zone, parallelism, logs, health endpoint, rclone.
    #[serde(default)]
    pub settings: SettingsDoc,
    /// Inherited by every job; a template or the job itself may override any key.
    #[serde(default)]
    pub defaults: JobDoc,
    /// Named job presets: a job says `template: NAME`.
    #[serde(default)]
    pub templates: BTreeMap<String, JobDoc>,
    /// Named places backups go: an rclone remote path or a local folder.
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteDoc>,
    /// Named notifiers (slack, discord, email, webhook, healthchecks) that jobs list in `notify`.
    #[serde(default)]
    pub notifiers: BTreeMap<String, NotifierDoc>,
    /// The backup jobs, by name (letters, digits, `-`, `_`, `.`).
    #[serde(default)]
    pub jobs: BTreeMap<String, JobDoc>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsDoc {
    /// IANA time zone for schedules and `{date}`/`{time}` (default UTC).
    pub timezone: Option<String>,
    /// Jobs running at the same time (default 2).
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
    /// Work folder: locks, option files, directory/tar modes (default /tmp/dbstash).
    pub temp_dir: Option<String>,
    /// Serve /healthz, /readyz and /metrics; absent = off.
    pub health: Option<HealthDoc>,
    /// Log level and format (logs go to stderr).
    pub log: Option<LogDoc>,
    /// How dbstash runs rclone.
    pub rclone: Option<RcloneDoc>,
    /// How long running backups may finish after SIGTERM, e.g. `30s` (default 30s).
    #[schemars(extend("pattern" = DURATION_PATTERN))]
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthDoc {
    /// `HOST:PORT` to listen on, e.g. `0.0.0.0:8080`.
    pub listen: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogDoc {
    /// trace | debug | info | warn | error (default info; `DBSTASH_LOG` overrides it).
    pub level: Option<LogLevel>,
    /// json (one object per line) | text; `--log-format`/`DBSTASH_LOG_FORMAT` override it.
    pub format: Option<LogFormat>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RcloneDoc {
    /// rclone.conf to use (default: rclone's own lookup, which honours RCLONE_CONFIG_* variables).
    pub config_file: Option<String>,
    /// Extra flags for every rclone call, e.g. `["--s3-upload-concurrency=8"]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// The rclone program (default `rclone` on PATH).
    pub binary: Option<String>,
}

/// One name, or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A remote reference in a job's `remote:` list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RemoteRef {
    Name(String),
    Entry(RemoteRefEntry),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteRefEntry {
    /// A remote under `remotes`.
    pub name: String,
    /// A failed upload to an optional remote does not fail the run.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionDoc {
    /// Keep at most this many complete backups (0 = unlimited).
    pub max_files: Option<u32>,
    /// Delete complete backups older than this many days (0 = unlimited).
    pub max_days: Option<u32>,
    /// Keep the newest N backups; a backup any `keep_*` rule keeps is kept (0 = rule off).
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one, in the job's time zone.
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one, in the job's time zone.
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years that have one.
    pub keep_yearly: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HooksDoc {
    /// `sh -c` before the dump; non-zero exit aborts the run as a failure.
    pub pre: Option<String>,
    /// `sh -c` after every run, with DBSTASH_STATUS set.
    pub post: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyDoc {
    /// When to run the test-restore drill (cron, like the job's `schedule`).
    #[schemars(extend("pattern" = CRON_PATTERN))]
    pub schedule: Option<String>,
    /// Scratch database the drill restores into (dropped afterwards).
    pub restore_to: Option<String>,
    /// age identity file, for drills of an encrypted job (keep it off the backup host otherwise).
    pub identity_file: Option<String>,
    /// postgres: drills restore without the backup's owners and privileges (`restore --no-owner`),
    /// for a scratch server that does not have the backup's roles (default false).
    pub no_owner: Option<bool>,
}

/// `pitr:` — continuous WAL (postgres) or binlog (mysql/mariadb) archiving and restore to an instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PitrDoc {
    /// Stream the server's WAL (postgres) or binlog (mysql/mariadb) to the job's remotes for as
    /// long as `dbstash run` runs; `schedule` then takes base backups (postgres) or dumps that
    /// record their binlog position (mysql/mariadb) (default false).
    pub enabled: Option<bool>,
    /// /healthz reports the job when its stream has been down this long (default `5m`).
    #[schemars(extend("pattern" = DURATION_PATTERN))]
    pub max_lag: Option<String>,
    /// postgres: physical replication slot to stream from (created if missing; default `dbstash_JOB`).
    /// The server keeps WAL for it while dbstash is away: mind `max_slot_wal_keep_size`.
    pub slot: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptDoc {
    /// age public keys (`age1...`); every backup can be read by any of them.
    #[serde(default)]
    pub age_recipients: Vec<String>,
    /// A file of age public keys, one per line (`#` comments allowed).
    pub age_recipients_file: Option<String>,
}

/// A backup job (also the shape of `defaults` and of each template).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobDoc {
    /// Name of a preset under `templates`.
    pub template: Option<String>,
    /// postgres (or `pg`, `postgresql`), postgis, mysql, mariadb, mongo (or `mongodb`), redis, sqlite.
    pub engine: Option<Engine>,
    /// Connection URI (a secret: it may hold the password).
    pub uri: Option<String>,
    /// File holding the connection URI.
    pub uri_file: Option<String>,
    /// Database server host name or address (overrides the URI's).
    pub host: Option<String>,
    /// Database server port (default: the engine's usual port).
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    /// User to connect as (overrides the URI's).
    pub user: Option<String>,
    /// Password to connect with (a secret: prefer `password_file` or `${VAR}`).
    pub password: Option<String>,
    /// File holding the password (a trailing newline is ignored).
    pub password_file: Option<String>,
    /// Database name; `"*"` or a list backs up several (one backup each).
    pub database: Option<OneOrMany<String>>,
    /// Glob patterns of databases to skip when `database` is `"*"` or a list.
    pub exclude: Option<Vec<String>>,
    /// postgres: also store `pg_dumpall --globals-only` (roles, tablespaces).
    pub globals: Option<bool>,
    /// mongo: authentication database (default `admin`).
    pub auth_source: Option<String>,
    /// Remote name, or a list of remotes (one dump, several uploads).
    pub remote: Option<OneOrMany<RemoteRef>>,
    /// Folder under the remote; name tokens allowed.
    pub path: Option<String>,
    /// Cron: 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly.
    #[schemars(extend("pattern" = CRON_PATTERN))]
    pub schedule: Option<String>,
    /// IANA time zone for this job (default: settings.timezone).
    pub timezone: Option<String>,
    /// stream (dump piped to the remote, no temporary file) | directory | tar (default stream).
    pub mode: Option<Mode>,
    /// Object name template: {job} {db} {engine} {date} {time} {ts} {uuid}; the extension is added.
    pub name: Option<String>,
    /// none | gzip | zstd | native (the dump tool's own compression) (default none).
    pub compress: Option<Compress>,
    /// Compression level (gzip 1-9, zstd 1-19).
    pub compress_level: Option<i32>,
    /// Dump format: plain or custom (postgres), snapshot or sql (sqlite).
    pub format: Option<DumpFormat>,
    /// Kill the run after this long, e.g. `1h`.
    #[schemars(extend("pattern" = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Which complete backups to keep; the others are deleted after each successful run.
    pub retention: Option<RetentionDoc>,
    /// Notifier names.
    pub notify: Option<Vec<String>>,
    /// Run once right when the supervisor starts.
    pub run_on_start: Option<bool>,
    /// Shell commands before and after each run.
    pub hooks: Option<HooksDoc>,
    /// Extra arguments for the dump tool.
    pub dump_args: Option<Vec<String>>,
    /// Extra arguments for the restore tool.
    pub restore_args: Option<Vec<String>>,
    /// postgis: role that creates the extension before a restore.
    pub admin_user: Option<String>,
    /// /healthz reports the job when it has not succeeded for this long, e.g. `8h`.
    #[schemars(extend("pattern" = DURATION_PATTERN))]
    pub stale_after: Option<String>,
    /// A scheduled test-restore drill into a scratch database.
    pub verify: Option<VerifyDoc>,
    /// Encrypt backups with age before they leave the host.
    pub encrypt: Option<EncryptDoc>,
    /// Point-in-time recovery: continuous WAL archiving (`restore --at TIME`).
    pub pitr: Option<PitrDoc>,
    /// Accept an empty or tiny dump as a success (default false).
    pub allow_empty: Option<bool>,
    /// Expected size of one backup (e.g. `200GiB`): sizes rclone's S3 chunks for very large streams.
    pub expected_size: Option<String>,
    /// Several databases (`database: "*"` or a list): how many of them are backed up at the same
    /// time, each its own backup and record (default 1; independent of `settings.max_parallel`).
    #[schemars(range(min = 1, max = 64))]
    pub parallel: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteDoc {
    /// Any rclone remote path, e.g. `s3-crypt:backups`.
    pub rclone: Option<String>,
    /// A local folder (no rclone needed).
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpDoc {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port (default 587 for starttls, 465 for tls, 25 for none).
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    /// starttls | tls | none (default starttls).
    pub security: Option<SmtpSecurity>,
    /// SMTP login user (no login when absent).
    pub username: Option<String>,
    /// SMTP login password (a secret: prefer `password_file` or `${VAR}`).
    pub password: Option<String>,
    /// File holding the SMTP password (a trailing newline is ignored).
    pub password_file: Option<String>,
    /// Extra CA certificate (PEM) to trust, e.g. for a private relay.
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifierDoc {
    /// slack | discord | email | webhook | healthchecks.
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    /// Webhook / healthchecks URL (a secret: it often carries a token).
    pub url: Option<String>,
    /// File holding the URL (a trailing newline is ignored).
    pub url_file: Option<String>,
    /// failure | success | always | start | config_error, or a list (default failure).
    pub on: Option<OneOrMany<NotifyOn>>,
    /// Handlebars text replacing the default message.
    pub message: Option<String>,
    /// How long one delivery attempt may take, e.g. `10s` (default 10s).
    #[schemars(extend("pattern" = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// email: sender.
    pub from: Option<String>,
    /// email: recipients.
    pub to: Option<Vec<String>>,
    /// email: the SMTP relay.
    pub smtp: Option<SmtpDoc>,
    /// webhook: extra HTTP headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// webhook: HMAC-SHA256 key; the body's signature goes in `X-Dbstash-Signature`.
    pub secret: Option<String>,
    /// File holding the webhook `secret` (a trailing newline is ignored).
    pub secret_file: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::Schedule;
    use crate::domain::units::parse_duration;

    /// The pattern as editors and the `jsonschema` crate read it (ECMA 262, not Rust's regex).
    fn matcher(pattern: &str) -> impl Fn(&str) -> bool {
        let v =
            jsonschema::validator_for(&serde_json::json!({ "type": "string", "pattern": pattern }))
                .expect("the pattern compiles");
        move |s: &str| v.is_valid(&serde_json::json!(s))
    }

    const DURATION_UNITS: &[&str] = &[
        "y",
        "yr",
        "years",
        "mo",
        "month",
        "w",
        "wk",
        "weeks",
        "d",
        "day",
        "days",
        "h",
        "hr",
        "hrs",
        "hour",
        "hours",
        "m",
        "min",
        "mins",
        "minute",
        "minutes",
        "s",
        "sec",
        "secs",
        "second",
        "seconds",
        "ms",
        "msec",
        "msecs",
        "milli",
        "millis",
        "millisecond",
        "milliseconds",
        "us",
        "µs",
        "usec",
        "micros",
        "microseconds",
        "ns",
        "nsec",
        "nanos",
        "nanoseconds",
        "x",
        "",
    ];

    #[test]
    fn duration_pattern_agrees_with_the_parser() {
        let matches = matcher(DURATION_PATTERN);
        let mut samples: Vec<String> = [
            "30s",
            "1h30m",
            "2d",
            "500ms",
            "10m",
            "26h",
            "2h30m",
            "8h",
            "0s",
            " 1h ",
            "1.5h",
            "90 s",
            "2 hours, 30 minutes",
            "1 hour 30 minutes",
            "1h 30m 15s 10ms",
            "01:30:00",
            "1:02:03.5",
            "PT1H30M",
            "pt15m",
            "PT0.5S",
            "+5m",
            "7 d",
            "3 minutes 34,123s",
            "banana",
            "soon",
            "30x",
            "-5s",
            "5s ago",
            "1d12h",
            "",
            "P1D",
            "5",
            "1s1h",
            "h",
            "1h-",
            "1..5h",
            "PT",
            "--5s",
            "1 h 1 h",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in ["0", "1", "15", "90", "1.5", "01"] {
            for u in DURATION_UNITS {
                samples.push(format!("{n}{u}"));
                samples.push(format!("{n} {u}"));
            }
        }
        for a in DURATION_UNITS {
            for b in DURATION_UNITS {
                samples.push(format!("1{a}2{b}"));
            }
        }
        let mut wrong = Vec::new();
        for s in &samples {
            if parse_duration(s).is_ok() != matches(s) {
                wrong.push(format!("{s:?}: parser {:?}", parse_duration(s)));
            }
        }
        assert!(
            wrong.is_empty(),
            "pattern and parser disagree on:\n{}",
            wrong.join("\n")
        );
        // `${VAR}` is expanded before the value is read: editors must not flag it.
        assert!(matches("${TIMEOUT}") && matches("${T:-1h}"));
    }

    #[test]
    fn cron_pattern_agrees_with_the_parser() {
        let matches = matcher(CRON_PATTERN);
        let mut samples: Vec<String> = [
            "0 2 * * *",
            "*/15 * * * *",
            "0 */6 * * *",
            "0 5 * * 0",
            "30 3 * * *",
            "0 0 1 1 *",
            "*/10 * * * * *",
            "*/1 * * * * *",
            "@daily",
            "@hourly",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
            "@midnight",
            " 0 2 * * * ",
            "0 9-17 * * MON-FRI",
            "0 0 * JAN,JUL *",
            "0,30 8-18/2 * * 1-5",
            "0 0 L * *",
            "0 0 * * 5L",
            "0 0 * * 5#2",
            "0 0 15W * *",
            "banana",
            "61 * * * *",
            "* 24 * * *",
            "0 0 32 * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "0 0 * 0 *",
            "0 0 * * 8",
            "*/0 * * * *",
            "@often",
            "* * *",
            "* * * * * * *",
            "",
            "5-1 * * * *",
            "60 * * * * *",
            "0 0 * * MON-FRI/2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in 0..=62 {
            samples.push(format!("{n} * * * *"));
            samples.push(format!("0 {n} * * *"));
            samples.push(format!("0 0 {n} * *"));
            samples.push(format!("0 0 * {n} *"));
            samples.push(format!("0 0 * * {n}"));
            samples.push(format!("{n} 0 * * * *"));
            samples.push(format!("{n}-59 * * * *"));
            samples.push(format!("*/{n} * * * *"));
            samples.push(format!("0 0 1-{n} * *"));
        }
        // What a regular expression cannot see: the order of a range's ends.
        let only_validate_rejects = |s: &str| s == "5-1 * * * *";
        let mut wrong = Vec::new();
        for s in &samples {
            let parsed = Schedule::parse(s);
            if parsed.is_ok() != matches(s) && !(parsed.is_err() && only_validate_rejects(s)) {
                wrong.push(format!("{s:?}: parser {:?}", parsed.err()));
            }
        }
        assert!(
            wrong.is_empty(),
            "pattern and parser disagree on:\n{}",
            wrong.join("\n")
        );
        assert!(matches("${SCHEDULE}"));
    }
}
