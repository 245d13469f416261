//! The words of a notification, shared by every kind: a title, labelled facts and an error tail.

use super::event::{human_duration, human_size, tail, Event, EventKind};
use super::{template, NotifyError};
use crate::model::Notifier;

/// Lines and characters of the error shown in chat messages and emails.
pub const ERROR_LINES: usize = 20;
pub const ERROR_CHARS: usize = 1500;

/// One line that says what happened: `app: backup failed`.
pub fn title(event: &Event, notifier: &str) -> String {
    if event.is_test() {
        return format!("test message from notifier {notifier}");
    }
    match event.kind {
        EventKind::Start => format!("{}: backup started", event.job),
        EventKind::Success => format!("{}: backup succeeded", event.job),
        EventKind::Failure => format!("{}: backup failed", event.job),
        EventKind::ConfigError => "manifest rejected (configuration error)".to_string(),
        EventKind::StreamFailure => format!("{}: WAL stream down", event.job),
        EventKind::StreamRecovered => format!("{}: WAL stream recovered", event.job),
    }
}

/// Email subject.
pub fn subject(event: &Event, notifier: &str) -> String {
    format!("[dbstash] {}", title(event, notifier))
}

/// The facts worth acting on, as (label, value), skipping what is unknown.
pub fn facts(event: &Event) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = Vec::new();
    let mut push = |label: &'static str, v: &str| {
        if !v.is_empty() {
            f.push((label, v.to_string()));
        }
    };
    push("Job", &event.job);
    push("Engine", &event.engine);
    push("Database", &event.database);
    push("Status", event.kind.status());
    push("Remote", &event.remote);
    push("Object", event.object.as_deref().unwrap_or(""));
    push(
        "Size",
        &event
            .size
            .map(|s| format!("{} ({s} bytes)", human_size(s)))
            .unwrap_or_default(),
    );
    push(
        "Duration",
        &event.duration.map(human_duration).unwrap_or_default(),
    );
    push("SHA-256", event.sha256.as_deref().unwrap_or(""));
    push("Warnings", &event.warnings.join("; "));
    push("Host", &event.host);
    push("Run", &event.run_id);
    push(
        "Started",
        &event
            .started
            .map(super::event::timestamp)
            .unwrap_or_default(),
    );
    push(
        "Finished",
        &event
            .finished
            .map(super::event::timestamp)
            .unwrap_or_default(),
    );
    f
}

/// The redacted error's tail, for chat and email.
pub fn error_tail(event: &Event) -> Option<String> {
    event
        .error
        .as_deref()
        .map(|e| tail(e, ERROR_CHARS, ERROR_LINES))
        .filter(|e| !e.is_empty())
}

/// A line for test messages saying what they are.
pub fn test_note(event: &Event, notifier: &str) -> Option<String> {
    event.is_test().then(|| {
        format!(
            "This is a test sent by `dbstash notify test {notifier}` from {}. If you can read it, the notifier works.",
            event.host
        )
    })
}

/// The default plain-text message: title, facts, error tail.
pub fn default_text(event: &Event, notifier: &str) -> String {
    let mut out = format!("dbstash: {}\n", title(event, notifier));
    if let Some(note) = test_note(event, notifier) {
        out.push_str(&note);
        out.push('\n');
    }
    out.push('\n');
    for (label, value) in facts(event) {
        out.push_str(&format!("{label}: {value}\n"));
    }
    if let Some(err) = error_tail(event) {
        out.push_str("\nError:\n");
        out.push_str(&err);
        out.push('\n');
    }
    out
}

/// The notifier's `message:` template rendered against the event, if it has one (and it renders
/// to something other than blanks). `validate`
/// dry-renders every template, so a failure here is unexpected; the message then falls back to
/// the default text (with a warning logged) rather than not being sent at all.
pub fn custom_text(event: &Event, notifier: &Notifier) -> Result<Option<String>, NotifyError> {
    match &notifier.message {
        None => Ok(None),
        Some(t) => match template::render(t, &event.context()) {
            // An empty message would be rejected by Slack/Discord and useless anywhere else.
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                let e = NotifyError::Template(e);
                tracing::warn!(notifier = %notifier.name, event = %event.kind, error = %e,
                    "message template failed; sending the default text");
                Ok(None)
            }
        },
    }
}

/// The message text: the `message:` template if set, else the default text.
pub fn message_text(event: &Event, notifier: &Notifier) -> Result<String, NotifyError> {
    Ok(custom_text(event, notifier)?.unwrap_or_else(|| default_text(event, &notifier.name)))
}

/// Cut `s` to at most `max` characters, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn default_text_has_what_an_operator_needs() {
        let e = Event {
            kind: EventKind::Failure,
            job: "app".into(),
            engine: "postgres".into(),
            database: "shop".into(),
            run_id: "r-42".into(),
            remote: "offsite".into(),
            object: Some("pg/app/shop-1.sql.zst".into()),
            size: Some(1536),
            sha256: Some("f".repeat(64)),
            duration: Some(Duration::from_secs(12)),
            error: Some(format!(
                "{}pg_dump: error: connection to server failed",
                "noise\n".repeat(50)
            )),
            started: None,
            finished: None,
            host: "backup-1".into(),
            warnings: Vec::new(),
        };
        let t = default_text(&e, "ops");
        for needle in [
            "app: backup failed",
            "Engine: postgres",
            "Database: shop",
            "Status: failure",
            "Remote: offsite",
            "Object: pg/app/shop-1.sql.zst",
            "Size: 1.5 KiB (1536 bytes)",
            "Duration: 12s",
            &"f".repeat(64),
            "Host: backup-1",
            "Run: r-42",
            "pg_dump: error: connection to server failed",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
        }
        assert!(t.matches("noise").count() < ERROR_LINES, "{t}");
        assert_eq!(subject(&e, "ops"), "[dbstash] app: backup failed");
    }

    #[test]
    fn test_event_says_it_is_a_test() {
        let e = Event::test("ops");
        assert!(default_text(&e, "ops").contains("dbstash notify test ops"));
        assert_eq!(
            subject(&e, "ops"),
            "[dbstash] test message from notifier ops"
        );
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
