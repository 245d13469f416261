//! What happened: the facts a notification carries, and the template context built from them.

use crate::model::kinds::NotifyOn;
use serde_json::{json, Value};
use std::time::Duration;

/// The kind of event a notification reports. Maps one-to-one onto the manifest's `on:` values
/// (`always` is a shorthand for success + failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Start,
    Success,
    Failure,
    ConfigError,
    StreamFailure,
    StreamRecovered,
}

impl EventKind {
    /// The `event` value in templates, webhook bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Success => "success",
            EventKind::Failure => "failure",
            EventKind::ConfigError => "config_error",
            EventKind::StreamFailure => "stream_failure",
            EventKind::StreamRecovered => "stream_recovered",
        }
    }

    /// The `status` value: the state of the run (or of the manifest) this event reports.
    pub fn status(self) -> &'static str {
        match self {
            EventKind::Start => "running",
            EventKind::Success | EventKind::StreamRecovered => "success",
            EventKind::Failure | EventKind::ConfigError | EventKind::StreamFailure => "failure",
        }
    }

    pub fn notify_on(self) -> NotifyOn {
        match self {
            EventKind::Start => NotifyOn::Start,
            EventKind::Success => NotifyOn::Success,
            EventKind::Failure => NotifyOn::Failure,
            EventKind::ConfigError => NotifyOn::ConfigError,
            EventKind::StreamFailure => NotifyOn::StreamFailure,
            EventKind::StreamRecovered => NotifyOn::StreamRecovered,
        }
    }
}

impl From<EventKind> for NotifyOn {
    fn from(k: EventKind) -> NotifyOn {
        k.notify_on()
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run outcome (or start, or rejected manifest). `error` must already be redacted by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub job: String,
    pub engine: String,
    pub database: String,
    pub run_id: String,
    /// Name of the remote (as declared under `remotes:`).
    pub remote: String,
    /// Object path under the remote, once known.
    pub object: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub duration: Option<Duration>,
    /// Already redacted by the caller; only its tail is shown.
    pub error: Option<String>,
    pub started: Option<jiff::Timestamp>,
    pub finished: Option<jiff::Timestamp>,
    pub host: String,
    /// What went wrong without failing the run (an optional remote that failed).
    pub warnings: Vec<String>,
}

/// `run_id` of the events made by [`Event::test`].
pub const TEST_RUN_ID: &str = "test";

/// Longest error tail carried in the template context and webhook body (characters).
pub const ERROR_TAIL_CHARS: usize = 4000;

impl Event {
    /// The template context (the keys of `template::sample_context`, kept in sync by a test).
    /// Absent strings are `""`, absent numbers `null`, so `{{#if size}}` works in templates.
    pub fn context(&self) -> Value {
        json!({
            "job": self.job,
            "engine": self.engine,
            "database": self.database,
            "status": self.kind.status(),
            "event": self.kind.as_str(),
            "object": self.object.clone().unwrap_or_default(),
            "remote": self.remote,
            "size": self.size,
            "size_human": self.size.map(human_size).unwrap_or_default(),
            "duration": self.duration.map(human_duration).unwrap_or_default(),
            "duration_seconds": self.duration.map(|d| d.as_secs_f64()),
            "sha256": self.sha256.clone().unwrap_or_default(),
            "error": self.error.as_deref().map(|e| tail(e, ERROR_TAIL_CHARS, usize::MAX)).unwrap_or_default(),
            "host": self.host,
            "run_id": self.run_id,
            "started": self.started.map(timestamp).unwrap_or_default(),
            "finished": self.finished.map(timestamp).unwrap_or_default(),
            "warnings": self.warnings.join("; "),
        })
    }

    /// The event `dbstash notify test` sends: a success-shaped message that says it is a test
    /// (healthchecks gets it on `/log`, which leaves the check's state alone).
    pub fn test(_notifier: &str) -> Event {
        let now = jiff::Timestamp::now();
        Event {
            kind: EventKind::Success,
            job: "notify-test".into(),
            engine: String::new(),
            database: String::new(),
            run_id: TEST_RUN_ID.into(),
            remote: String::new(),
            object: None,
            size: None,
            sha256: None,
            duration: None,
            error: None,
            started: Some(now),
            finished: Some(now),
            host: local_hostname(),
            warnings: Vec::new(),
        }
    }

    /// A rejected manifest (reload or start-up). `message` is the diagnostics text, already redacted.
    pub fn config_error(message: String) -> Event {
        Event {
            kind: EventKind::ConfigError,
            job: String::new(),
            engine: String::new(),
            database: String::new(),
            run_id: String::new(),
            remote: String::new(),
            object: None,
            size: None,
            sha256: None,
            duration: None,
            error: Some(message),
            started: None,
            finished: Some(jiff::Timestamp::now()),
            host: local_hostname(),
            warnings: Vec::new(),
        }
    }

    /// A `pitr` job's WAL stream went down (`error` redacted by the caller) or came back.
    pub fn stream(
        kind: EventKind,
        job: &str,
        engine: &str,
        remote: &str,
        error: Option<String>,
    ) -> Event {
        let mut e = Event::config_error(String::new());
        e.kind = kind;
        e.job = job.to_string();
        e.engine = engine.to_string();
        e.remote = remote.to_string();
        e.error = error;
        e
    }

    /// Was this made by [`Event::test`]?
    pub fn is_test(&self) -> bool {
        self.run_id == TEST_RUN_ID && self.job == "notify-test"
    }
}

/// RFC 3339 in UTC to the second: `2026-01-01T02:00:00Z`.
pub fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// This machine's host name (for `Event::host`), or `unknown`.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// `1.0 KiB`, `3.4 GiB`; below 1 KiB, `512 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `3s`, `2.5s`, `4m 05s`, `1h 02m 03s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 10 {
        let f = d.as_secs_f64();
        if f.fract() >= 0.05 {
            return format!("{f:.1}s");
        }
        return format!("{secs}s");
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The last `max_lines` lines of `text`, at most `max_chars` characters, trimmed; prefixed with `…`
/// when something was cut.
pub fn tail(text: &str, max_chars: usize, max_lines: usize) -> String {
    let text = text.trim_end();
    let mut start = 0;
    if max_lines != usize::MAX {
        let mut seen = 0;
        for (i, c) in text.char_indices().rev() {
            if c == '\n' {
                seen += 1;
                if seen == max_lines {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    let rest = &text[start..];
    let n = rest.chars().count();
    let (cut, out) = if n > max_chars {
        let skip = n - max_chars;
        let idx = rest
            .char_indices()
            .nth(skip)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        (true, &rest[idx..])
    } else {
        (start > 0, rest)
    };
    if cut {
        format!("…{out}")
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::template;

    fn sample() -> Event {
        Event {
            kind: EventKind::Failure,
            job: "app".into(),
            engine: "postgres".into(),
            database: "shop".into(),
            run_id: "r1".into(),
            remote: "offsite".into(),
            object: Some("pg/app/shop.sql.zst".into()),
            size: Some(2048),
            sha256: Some("ab".repeat(32)),
            duration: Some(Duration::from_secs(75)),
            error: Some("pg_dump: error: connection refused".into()),
            started: None,
            finished: None,
            host: "h".into(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn context_keys_match_the_template_sample() {
        let ctx = sample().context();
        let sample_ctx = template::sample_context();
        let keys = |v: &Value| {
            v.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let (mut a, mut b) = (keys(&ctx), keys(&sample_ctx));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // Every event kind, with every optional field absent, renders every variable in strict mode.
        let all: String = b.iter().map(|k| format!("{{{{{k}}}}}|")).collect();
        for e in [
            Event::test("x"),
            Event::config_error("bad".into()),
            sample(),
        ] {
            template::render(&all, &e.context()).unwrap();
        }
        assert_eq!(
            template::render(
                "{{#if size}}{{size_human}}{{else}}none{{/if}}",
                &Event::config_error("x".into()).context()
            )
            .unwrap(),
            "none"
        );
    }

    #[test]
    fn context_values() {
        let ctx = sample().context();
        assert_eq!(ctx["status"], "failure");
        assert_eq!(ctx["event"], "failure");
        assert_eq!(ctx["size"], 2048);
        assert_eq!(ctx["size_human"], "2.0 KiB");
        assert_eq!(ctx["duration"], "1m 15s");
        assert_eq!(ctx["duration_seconds"], 75.0);
    }

    #[test]
    fn humans() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_duration(Duration::from_secs(3)), "3s");
        assert_eq!(human_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 02m 03s");
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc\n", 100, 2), "…b\nc");
        assert_eq!(tail("abcdef", 3, usize::MAX), "…def");
        assert_eq!(tail("ééé", 2, 10), "…éé");
        assert_eq!(tail("short", 100, 10), "short");
    }
}
