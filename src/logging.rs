//! Logs: one JSON object per line (with `job`, `run_id`, `event` fields) or text for people,
//! always on stderr so stdout stays clean for command output.
//!
//! JSON lines are written by our own formatter (not tracing-subscriber's): every line has a
//! `message`, list-valued fields (`changed = ?names`) are JSON arrays rather than strings holding
//! Rust's debug text, and manifest warnings printed before logging starts use the same shape.

use crate::domain::diag::{Diagnostic, Severity};
use crate::model::{LogFormat, LogLevel};
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log-format` / `DBSTASH_LOG_FORMAT`: wins over the manifest's `settings.log.format`.
static FORMAT_OVERRIDE: OnceLock<LogFormat> = OnceLock::new();

/// Set once by the command line, before any manifest is read.
pub fn set_format_override(format: Option<LogFormat>) {
    if let Some(f) = format {
        let _ = FORMAT_OVERRIDE.set(f);
    }
}

/// Whether this command logs (run, backup, prune, restore, notify): only then does the
/// manifest's `log.format` apply to the manifest's own warnings.
static COMMAND_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_command_logs(logs: bool) {
    COMMAND_LOGS.store(logs, std::sync::atomic::Ordering::Relaxed);
}

/// The format in force: the command line's, else the manifest's.
pub fn effective_format(manifest: LogFormat) -> LogFormat {
    FORMAT_OVERRIDE.get().copied().unwrap_or(manifest)
}

/// The format `init` set up, for lines printed outside tracing.
static ACTIVE: OnceLock<LogFormat> = OnceLock::new();

/// NO_COLOR (https://no-color.org): present and not empty turns colours off.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub fn init(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // DBSTASH_LOG overrides the manifest (e.g. `DBSTASH_LOG=debug`).
    let filter = EnvFilter::try_from_env("DBSTASH_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("dbstash={level},warn")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = effective_format(format);
    let _ = ACTIVE.set(format);
    let _ = match format {
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).with_target(false).try_init(),
    };
}

/// Print manifest diagnostics on stderr: `PATH:LINE:COL: message` lines, or JSON log lines when
/// the logs are JSON (so `jq` reads the whole of stderr). `manifest` is the manifest's own
/// `log.format` when it loaded, which applies to commands that log; `--log-format` to all.
pub fn print_diagnostics(diags: &[Diagnostic], manifest: Option<LogFormat>) {
    let manifest = manifest.filter(|_| COMMAND_LOGS.load(std::sync::atomic::Ordering::Relaxed));
    let format = FORMAT_OVERRIDE.get().copied().or(manifest);
    let mut err = std::io::stderr().lock();
    for d in diags {
        let line = match format {
            Some(LogFormat::Json) => diagnostic_json(d).to_string(),
            _ => d.to_string(),
        };
        let _ = writeln!(err, "{line}");
    }
}

/// A command's error line for people (`dbstash: job a failed: …`), or an ERROR log line when
/// the logs are JSON (as set up, or as `--log-format` says before a manifest has loaded), so
/// stderr stays one object per line.
pub fn print_error(message: &str) {
    let line = match ACTIVE.get().or(FORMAT_OVERRIDE.get()) {
        Some(LogFormat::Json) => {
            let mut fields = Map::new();
            fields.insert("message".into(), message.into());
            log_line(&Level::ERROR, "dbstash", fields).to_string()
        }
        _ => format!("dbstash: {message}"),
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A diagnostic as a log line: `message` is the bare message, the place is in `file`/`line`/`col`.
fn diagnostic_json(d: &Diagnostic) -> Value {
    let (level, event) = match d.severity {
        Severity::Error => (Level::ERROR, "manifest_error"),
        Severity::Warning => (Level::WARN, "manifest_warning"),
    };
    let mut fields = Map::new();
    fields.insert("message".into(), d.message.clone().into());
    fields.insert("event".into(), event.into());
    fields.insert("file".into(), d.file.display().to_string().into());
    fields.insert("line".into(), d.line.into());
    fields.insert("col".into(), d.col.into());
    log_line(&level, "dbstash::manifest", fields)
}

/// One JSON log object: `timestamp`, `level`, `message`, the event's fields, `target`.
/// An event logged without a message gets its `event` name (else its target) as the message.
fn log_line(level: &Level, target: &str, mut fields: Map<String, Value>) -> Value {
    let message = fields
        .shift_remove("message")
        .or_else(|| fields.get("event").cloned())
        .unwrap_or_else(|| Value::String(target.to_string()));
    let mut line = Map::new();
    line.insert(
        "timestamp".into(),
        jiff::Timestamp::now().to_string().into(),
    );
    line.insert("level".into(), level.as_str().into());
    line.insert("message".into(), message);
    line.extend(fields);
    line.insert("target".into(), target.into());
    Value::Object(line)
}

/// The JSON event formatter: one object per line.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        writeln!(
            writer,
            "{}",
            log_line(meta.level(), meta.target(), fields.0)
        )
    }
}

/// Collects an event's fields as JSON values.
#[derive(Default)]
struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.0.insert(field.name().into(), debug_value(text));
    }
}

/// A field logged with `?` is its debug text, except a list (`["a", "b"]`, the debug text of a
/// `Vec<String>` or of numbers), which becomes a JSON array. tracing's `valuable` support would
/// carry the structure itself, but it needs the unstable `tracing_unstable` cfg.
fn debug_value(text: String) -> Value {
    if text.starts_with('[') {
        if let Ok(list @ Value::Array(_)) = serde_json::from_str::<Value>(&text) {
            return list;
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn lists_become_arrays_and_other_debug_text_stays_a_string() {
        let names = vec!["broken".to_string(), "demo \"x\"".to_string()];
        assert_eq!(
            debug_value(format!("{names:?}")),
            serde_json::json!(["broken", "demo \"x\""])
        );
        assert_eq!(
            debug_value(format!("{:?}", Vec::<String>::new())),
            serde_json::json!([])
        );
        assert_eq!(
            debug_value(format!("{:?}", [1, 2])),
            serde_json::json!([1, 2])
        );
        // Not JSON (Rust escapes): kept as text rather than lost.
        let odd = vec!["\u{1b}".to_string()];
        assert!(debug_value(format!("{odd:?}")).is_string());
        assert_eq!(debug_value("[oops".into()), Value::String("[oops".into()));
        assert_eq!(
            debug_value("Some(3)".into()),
            Value::String("Some(3)".into())
        );
    }

    #[test]
    fn every_line_has_a_message() {
        let mut fields = Map::new();
        fields.insert("event".into(), "health_failed".into());
        let line = log_line(&Level::ERROR, "dbstash::x", fields);
        assert_eq!(line["message"], "health_failed");
        assert_eq!(
            log_line(&Level::WARN, "hyper::proto", Map::new())["message"],
            "hyper::proto"
        );
        assert_eq!(line["level"], "ERROR");
        let w = Diagnostic::warning(
            Path::new("m.yaml"),
            crate::domain::diag::Location { line: 3, col: 5 },
            "job `a` has no `schedule`",
        );
        let v = diagnostic_json(&w);
        assert_eq!(v["message"], "job `a` has no `schedule`");
        assert_eq!(v["level"], "WARN");
        assert_eq!((v["line"].as_u64(), v["col"].as_u64()), (Some(3), Some(5)));
        assert_eq!(v["file"], "m.yaml");
    }
}
