//! Logs: one JSON object per line (with `job`, `run_id`, `event` fields) or text for people,
//! always on stderr so stdout stays clean for command output.

use crate::manifest::model::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

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
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
