//! `dbstash notify test NAME`: send a test message through one notifier, ignoring its `on:` filter.

use super::{CliError, ExitCode, LoadOptions};
use crate::error::exit;
use crate::notify::{Dispatcher, Event};
use std::path::Path;

pub fn test(config: &Path, name: &str) -> Result<ExitCode, CliError> {
    let manifest = super::load(config, LoadOptions::default()).map_err(|e| match e {
        CliError::Manifest { source, .. } => CliError::Manifest {
            source,
            code: exit::FAILED,
        },
        other => other,
    })?;
    if !manifest.notifiers.contains_key(name) {
        let known: Vec<&str> = manifest.notifiers.keys().map(String::as_str).collect();
        if known.is_empty() {
            eprintln!("dbstash: unknown notifier `{name}` (the manifest declares none)");
        } else {
            eprintln!(
                "dbstash: unknown notifier `{name}` (known: {})",
                known.join(", ")
            );
        }
        return Ok(exit::FAILED);
    }
    crate::logging::init(manifest.settings.log_level, manifest.settings.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("cannot start the async runtime: {e}");
            return Ok(exit::FAILED);
        }
    };
    let dispatcher = match Dispatcher::new(manifest.notifiers) {
        Ok(d) => d,
        Err(e) => {
            errln!("{e}");
            return Ok(exit::FAILED);
        }
    };
    let result = runtime.block_on(dispatcher.send_one(name, &Event::test(name)));
    Ok(match result {
        Ok(d) if d.ok => {
            outln!("notifier {name}: sent ({})", attempts(d.attempts));
            0
        }
        Ok(d) => {
            eprintln!(
                "notifier {name}: failed after {}: {}",
                attempts(d.attempts),
                d.error.as_deref().unwrap_or("unknown error")
            );
            1
        }
        Err(e) => {
            eprintln!("notifier {name}: {e}");
            1
        }
    })
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}
