//! `plan` output: text for people, JSON for scripts. Secrets print as `***`.

use crate::domain::units::human_duration;
use crate::engine::{Codec, DumpSpec};
use crate::plan::{JobPlan, Target};
use crate::storage::{rclone_args, StorageError};
use jiff::Timestamp;
use serde_json::{json, Value};

/// The upload step as one line.
pub fn upload_line(p: &JobPlan, key: &str) -> String {
    p.remotes
        .iter()
        .map(|r| upload_line_to(p, &r.target, key))
        .collect::<Vec<_>>()
        .join("\n               ")
}

fn upload_line_to(p: &JobPlan, target: &Target, key: &str) -> String {
    if p.mode == crate::model::Mode::Directory {
        return match target {
            Target::Local { root } => format!(
                "copy {{run_dir}}/dump to {}/ (as a hidden .part folder, renamed when whole)",
                root.join(key).display()
            ),
            Target::Rclone { remote, rclone } => rclone_args::command(
                rclone,
                "copy",
                &["{run_dir}/dump".into(), rclone_args::join(remote, key)],
            )
            .display_line(),
        };
    }
    match target {
        Target::Local { root } => format!(
            "write {} (fsync, then the record)",
            root.join(key).display()
        ),
        Target::Rclone { remote, rclone } => {
            let rcat = rclone_args::rcat(rclone, remote, key, p.expected_size).display_line();
            if crate::storage::rcd::enabled()
                && crate::storage::rcd_upload::suits(rclone, key, p.expected_size)
            {
                // The run decides on its estimate (expected_size, else the last backup's size).
                format!(
                    "{rcat}  (through the shared rclone rcd instead, same flags, unless the \
                     last backup or expected_size is over {} MiB)",
                    crate::storage::rcd_upload::MAX_DAEMON_STREAM >> 20
                )
            } else {
                rcat
            }
        }
    }
}

pub fn dump_line(p: &JobPlan) -> String {
    match &p.dump {
        DumpSpec::Command(c) => c.display_line(),
        DumpSpec::SqliteSnapshot { path } => {
            format!("sqlite online backup of {} (in-process)", path.display())
        }
    }
}

fn codec_line(c: Codec) -> String {
    match c {
        Codec::None => "none".into(),
        Codec::Gzip { level } => format!("gzip level {level} (parallel, in-process)"),
        Codec::Zstd { level } => format!("zstd level {level} (multi-threaded, in-process)"),
    }
}

fn origin(p: &JobPlan, key: &str) -> String {
    p.origins
        .get(key)
        .map(|o| format!("  ({o})"))
        .unwrap_or_else(|| "  (built-in)".into())
}

/// A hook is plain text, but a `${VAR}` in it may have pulled in the job's password: mask the
/// job's secrets wherever they appear.
fn redact_job(p: &JobPlan, text: &str) -> String {
    match p.job() {
        Some(j) => crate::secret::redact(text, &j.secrets()),
        None => text.to_string(),
    }
}

/// The object a run at `now` would write; for several databases with `{db}` left in place.
fn shown_object(p: &JobPlan, now: Timestamp) -> crate::plan::ObjectName {
    let mut obj = p.object_for(&p.name_vars(now));
    if p.databases.is_many() {
        obj.file = obj.file.replacen(
            &crate::domain::naming::sanitize(&p.database),
            &p.database,
            1,
        );
    }
    obj
}

/// Deletions retention would make, if the remote was listed (None = offline).
pub type Deletions<'a> = Option<&'a Result<Vec<String>, StorageError>>;

/// The plan as text: one `key  value` row per fact, in sections.
pub fn text(p: &JobPlan, now: Timestamp, deletions: Deletions) -> String {
    let obj = shown_object(p, now);
    let mut rows = Rows(format!("job {}\n", p.job));
    what_rows(&mut rows, p);
    databases_rows(&mut rows, p);
    shape_rows(&mut rows, p);
    where_rows(&mut rows, p, &obj);
    when_rows(&mut rows, p, now, deletions);
    after_rows(&mut rows, p);
    pitr_rows(&mut rows, p, &obj);
    rows.0
}

/// The text being built, one aligned row at a time.
struct Rows(String);

impl Rows {
    fn row(&mut self, k: &str, v: String) {
        self.0.push_str(&format!("  {k:<13}{v}\n"));
    }
}

/// Which engine, database, dump command, codec and remotes.
fn what_rows(rows: &mut Rows, p: &JobPlan) {
    rows.row(
        "engine",
        format!("{}{}", p.engine.as_str(), origin(p, "engine")),
    );
    rows.row("database", p.database.clone());
    rows.row("dump", dump_line(p));
    rows.row(
        "compress",
        format!("{}{}", codec_line(p.codec), origin(p, "compress")),
    );
    let remotes: Vec<String> = p
        .remotes
        .iter()
        .map(|r| {
            if r.optional {
                format!("{} (optional)", r.name)
            } else {
                r.name.clone()
            }
        })
        .collect();
    rows.row(
        "remote",
        format!("{}{}", remotes.join(", "), origin(p, "remote")),
    );
}

/// Several databases: which, how they are listed, how many at a time.
fn databases_rows(rows: &mut Rows, p: &JobPlan) {
    if p.databases.is_many() {
        let which = match &p.databases {
            crate::model::Databases::List(l) => l.join(", "),
            _ => "every database the server lists".into(),
        };
        let mut line = which;
        if !p.exclude.is_empty() {
            line.push_str(&format!(" except {}", p.exclude.join(", ")));
        }
        if let Some(l) = &p.list_databases {
            line.push_str(&format!("; listed by: {}", l.display_line()));
        }
        rows.row("databases", line);
    }
    if p.per_database {
        let how = match p.parallel {
            1 => "1 (one database after another)".to_string(),
            n => format!("{n} databases at a time, each its own backup and record"),
        };
        rows.row("parallel", format!("{how}{}", origin(p, "parallel")));
    }
}

/// Globals, mode and encryption.
fn shape_rows(rows: &mut Rows, p: &JobPlan) {
    if let Some(g) = &p.globals {
        rows.row(
            "globals",
            format!(
                "{} (as {{db}} = {})",
                g.display_line(),
                crate::plan::GLOBALS_DB
            ),
        );
    }
    if p.mode != crate::model::Mode::Stream {
        rows.row(
            "mode",
            format!(
                "{}: the dump tool writes a folder in settings.temp_dir{}",
                p.mode.as_str(),
                if p.mode == crate::model::Mode::Tar {
                    ", streamed as a tar archive"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(e) = &p.encrypt {
        rows.row(
            "encrypt",
            format!("age, after compression, to {}", e.recipients.join(", ")),
        );
    }
}

/// Where the object and its record go.
fn where_rows(rows: &mut Rows, p: &JobPlan, obj: &crate::plan::ObjectName) {
    rows.row(
        "object",
        format!(
            "{}  (name {}{}, path {})",
            obj.key(),
            p.name_template,
            p.extension,
            p.folder_template
        ),
    );
    rows.row("upload", upload_line(p, &obj.key()));
    rows.row(
        "record",
        format!("{}.dbstash.json, written last", obj.key()),
    );
}

/// Schedule, timeout, retention and what retention would delete.
fn when_rows(rows: &mut Rows, p: &JobPlan, now: Timestamp, deletions: Deletions) {
    match &p.schedule {
        Some(s) => {
            let next: Vec<String> = p
                .next_runs(now, 3)
                .iter()
                .map(|z| z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
                .collect();
            rows.row(
                "schedule",
                format!("{s} in {}{}", p.timezone, origin(p, "schedule")),
            );
            rows.row("next runs", next.join(", "));
        }
        None => rows.row("schedule", "none: runs only with `dbstash backup`".into()),
    }
    rows.row(
        "timeout",
        format!("{}{}", human_duration(p.timeout), origin(p, "timeout")),
    );
    rows.row(
        "retention",
        format!(
            "{}{}",
            crate::catalog::keep::describe(p.retention),
            origin(p, "retention")
        ),
    );
    match deletions {
        None => rows.row("would delete", "(offline: remote not listed)".into()),
        Some(Err(e)) => rows.row("would delete", format!("(could not list the remote: {e})")),
        Some(Ok(v)) if v.is_empty() => rows.row("would delete", "nothing".into()),
        Some(Ok(v)) => rows.row("would delete", v.join(", ")),
    }
}

/// Notifiers, hooks, run on start.
fn after_rows(rows: &mut Rows, p: &JobPlan) {
    if !p.notify.is_empty() {
        rows.row(
            "notify",
            format!("{}{}", p.notify.join(", "), origin(p, "notify")),
        );
    }
    if let Some(pre) = &p.hooks.pre {
        rows.row("pre hook", format!("sh -c {:?}", redact_job(p, pre)));
    }
    if let Some(post) = &p.hooks.post {
        rows.row("post hook", format!("sh -c {:?}", redact_job(p, post)));
    }
    if p.run_on_start {
        rows.row("on start", "runs once when the supervisor starts".into());
    }
}

/// The WAL stream of a pitr job.
fn pitr_rows(rows: &mut Rows, p: &JobPlan, obj: &crate::plan::ObjectName) {
    if let Some(x) = &p.pitr {
        let wal = crate::storage::join_key(&obj.folder, &x.wal_folder);
        if x.binlog {
            binlog_rows(rows, p, x, &wal);
            return;
        }
        rows.row("pitr slot", format!("{} (created if missing)", x.slot));
        rows.row(
            "pitr stream",
            format!("{} (while `dbstash run` runs)", x.stream.display_line()),
        );
        rows.row(
            "pitr wal",
            format!("{wal}/SEGMENT{}, each with its record", p.codec.extension()),
        );
        rows.row(
            "pitr max lag",
            format!("{} (/healthz)", human_duration(x.max_lag)),
        );
    }
}

/// The binlog stream of a mysql/mariadb pitr job.
fn binlog_rows(rows: &mut Rows, p: &JobPlan, x: &crate::plan::pitr::PitrPlan, folder: &str) {
    rows.row(
        "pitr check",
        format!(
            "{} (before each start: needs REPLICATION SLAVE, REPLICATION CLIENT)",
            x.create_slot.display_line()
        ),
    );
    rows.row(
        "pitr stream",
        format!(
            "{} (while `dbstash run` runs; {} = the last complete file, else the oldest kept dump's, else the server's current one)",
            x.stream.display_line(),
            crate::engine::mysql_pitr::FIRST_FILE
        ),
    );
    rows.row(
        "pitr binlog",
        format!("{folder}/FILE{}, each with its record", p.codec.extension()),
    );
    rows.row(
        "pitr max lag",
        format!("{} (/healthz)", human_duration(x.max_lag)),
    );
}

pub fn json(p: &JobPlan, now: Timestamp, deletions: Deletions) -> Value {
    let obj = shown_object(p, now);
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "hooks".into(),
            json!({
                "pre": p.hooks.pre.as_deref().map(|h| redact_job(p, h)),
                "post": p.hooks.post.as_deref().map(|h| redact_job(p, h)),
            }),
        );
        m.insert("object".into(), json!(obj.key()));
        m.insert("upload".into(), json!(upload_line(p, &obj.key())));
        m.insert(
            "next_runs".into(),
            json!(p
                .next_runs(now, 3)
                .iter()
                .map(|z| z.to_string())
                .collect::<Vec<_>>()),
        );
        m.insert(
            "would_delete".into(),
            match deletions {
                None => Value::Null,
                Some(Ok(d)) => json!(d),
                Some(Err(e)) => json!({ "error": e.to_string() }),
            },
        );
    }
    v
}
