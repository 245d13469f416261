//! `settings:`: time zone, parallelism, folders, health, logging, rclone, shutdown grace.

use super::{serde_reason, typed, Ctx};
use crate::manifest::tree::escape;
use crate::manifest::types;
use crate::model::*;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The manifest's `settings`, defaults for what is not set.
pub(super) fn settings(doc: &Value, ctx: &mut Ctx) -> Settings {
    let settings_doc = doc
        .get("settings")
        .map(|s| lenient_settings(s, ctx))
        .unwrap_or_default();
    build(&settings_doc, ctx)
}

/// `settings` with every key that parses: a `health:` block missing its `listen` (reported by
/// the schema layer) must not also throw away `timezone` and hide its errors.
/// A key dropped here passed the schema but does not fit its type (`max_parallel: 5000000000`):
/// it is reported, never silently replaced by the default.
fn lenient_settings(v: &Value, ctx: &mut Ctx) -> types::SettingsDoc {
    if let Some(all) = typed(v) {
        return all;
    }
    let mut kept = Map::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        kept.insert(k.clone(), val.clone());
        if let Err(e) = serde_json::from_value::<types::SettingsDoc>(Value::Object(kept.clone())) {
            kept.remove(k);
            // A block missing a key was reported by the schema layer; a number is not.
            if val.is_number() {
                ctx.error(&format!("/settings/{}", escape(k)), serde_reason(&e));
            }
        }
    }
    typed(&Value::Object(kept)).unwrap_or_default()
}

fn build(s: &types::SettingsDoc, ctx: &mut Ctx) -> Settings {
    let timezone = match &s.timezone {
        Some(name) => Zone::get(name).unwrap_or_else(|e| {
            ctx.error("/settings/timezone", e);
            Zone::utc()
        }),
        None => Zone::utc(),
    };
    let health_listen = s.health.as_ref().map(|h| h.listen.clone());
    if let Some(l) = &health_listen {
        let ok = l
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            ctx.error(
                "/settings/health/listen",
                format!("invalid listen address `{l}` (use HOST:PORT, e.g. `0.0.0.0:8080`)"),
            );
        }
    }
    let rclone = s.rclone.clone().unwrap_or_default();
    Settings {
        timezone,
        max_parallel: s.max_parallel.unwrap_or(2).max(1) as usize,
        temp_dir: s
            .temp_dir
            .as_deref()
            .map(|p| ctx.path(p))
            .unwrap_or_else(|| PathBuf::from("/tmp/dbstash")),
        health_listen,
        log_level: s.log.as_ref().and_then(|l| l.level).unwrap_or_default(),
        log_format: s.log.as_ref().and_then(|l| l.format).unwrap_or_default(),
        rclone: RcloneSettings {
            binary: rclone.binary.unwrap_or_else(|| "rclone".into()),
            config_file: rclone.config_file.as_deref().map(|p| ctx.path(p)),
            extra_args: rclone.extra_args,
        },
        shutdown_grace: ctx
            .duration(s.shutdown_grace.as_ref(), "/settings/shutdown_grace")
            .unwrap_or(Duration::from_secs(30)),
    }
}
