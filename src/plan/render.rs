//! `plan` output: text for people, JSON for scripts. Secrets print as `***`.

use super::{JobPlan, Target};
use crate::engine::{Codec, DumpSpec};
use crate::manifest::units::human_duration;
use crate::storage::rclone_args;
use jiff::Timestamp;
use serde_json::{json, Value};

/// The upload step as one line.
pub fn upload_line(p: &JobPlan, key: &str) -> String {
    match &p.remote.target {
        Target::Local { root } => format!(
            "write {} (fsync, then the record)",
            root.join(key).display()
        ),
        Target::Rclone { remote, rclone } => {
            rclone_args::rcat(rclone, remote, key, p.expected_size).display_line()
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

/// Deletions retention would make, if the remote was listed (None = offline).
pub type Deletions<'a> = Option<&'a Result<Vec<String>, String>>;

pub fn text(p: &JobPlan, now: Timestamp, deletions: Deletions) -> String {
    let obj = p.object_for(&p.name_vars(now));
    let mut out = format!("job {}\n", p.job);
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<13}{v}\n"));
    row(
        "engine",
        format!("{}{}", p.engine.as_str(), origin(p, "engine")),
    );
    row("database", p.database.clone());
    row("dump", dump_line(p));
    row(
        "compress",
        format!("{}{}", codec_line(p.codec), origin(p, "compress")),
    );
    row(
        "remote",
        format!("{}{}", p.remote.name, origin(p, "remote")),
    );
    row(
        "object",
        format!(
            "{}  (name {}{}, path {})",
            obj.key(),
            p.name_template,
            p.extension,
            p.folder_template
        ),
    );
    row("upload", upload_line(p, &obj.key()));
    row(
        "record",
        format!("{}.dbstash.json, written last", obj.key()),
    );
    match &p.schedule {
        Some(s) => {
            let next: Vec<String> = p
                .next_runs(now, 3)
                .iter()
                .map(|z| z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
                .collect();
            row(
                "schedule",
                format!("{s} in {}{}", p.timezone, origin(p, "schedule")),
            );
            row("next runs", next.join(", "));
        }
        None => row("schedule", "none: runs only with `dbstash backup`".into()),
    }
    row(
        "timeout",
        format!("{}{}", human_duration(p.timeout), origin(p, "timeout")),
    );
    row(
        "retention",
        format!(
            "{}{}",
            super::retention::describe(p.retention),
            origin(p, "retention")
        ),
    );
    match deletions {
        None => row("would delete", "(offline: remote not listed)".into()),
        Some(Err(e)) => row("would delete", format!("(could not list the remote: {e})")),
        Some(Ok(v)) if v.is_empty() => row("would delete", "nothing".into()),
        Some(Ok(v)) => row("would delete", v.join(", ")),
    }
    if !p.notify.is_empty() {
        row(
            "notify",
            format!("{}{}", p.notify.join(", "), origin(p, "notify")),
        );
    }
    if let Some(pre) = &p.hooks.pre {
        row("pre hook", format!("sh -c {:?}", redact_job(p, pre)));
    }
    if let Some(post) = &p.hooks.post {
        row("post hook", format!("sh -c {:?}", redact_job(p, post)));
    }
    if p.run_on_start {
        row("on start", "runs once when the supervisor starts".into());
    }
    out
}

pub fn json(p: &JobPlan, now: Timestamp, deletions: Deletions) -> Value {
    let obj = p.object_for(&p.name_vars(now));
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
                Some(Err(e)) => json!({ "error": e }),
            },
        );
    }
    v
}
