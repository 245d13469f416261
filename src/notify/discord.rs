//! Discord webhook: `{ "content": ..., "embeds": [{ title, description, color, fields }] }`.

use super::event::{Event, EventKind};
use super::text::{self, truncate};
use super::{json_body, json_headers, post, url_of, Attempt};
use crate::model::Notifier;
use serde_json::{json, Value};

/// Embed colours by status.
pub const GREEN: u32 = 0x2E_B6_7D;
pub const RED: u32 = 0xE0_1E_5A;
pub const BLUE: u32 = 0x36_C5_F0;
pub const AMBER: u32 = 0xEC_B2_2E;

/// Discord's limits: content 2000, embed title 256, description 4096, field value 1024, 25 fields.
const CONTENT_MAX: usize = 2000;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;
const FIELD_MAX: usize = 1024;

pub fn color(kind: EventKind) -> u32 {
    match kind {
        EventKind::Success | EventKind::StreamRecovered => GREEN,
        EventKind::Failure | EventKind::StreamFailure => RED,
        EventKind::Start => BLUE,
        EventKind::ConfigError => AMBER,
    }
}

/// The Discord payload for `event`.
pub fn payload(n: &Notifier, event: &Event) -> Result<Value, super::NotifyError> {
    let title = text::title(event, &n.name);
    let custom = text::custom_text(event, n)?;
    let is_custom = custom.is_some();
    let content = custom.unwrap_or_else(|| format!("**dbstash: {title}**"));
    let mut description = Vec::new();
    if let Some(note) = text::test_note(event, &n.name) {
        description.push(note);
    }
    let facts = text::facts(event);
    for (l, v) in &facts {
        if matches!(*l, "Object" | "SHA-256") {
            description.push(format!("**{l}**: `{}`", v.replace('`', "'")));
        }
    }
    if let Some(err) = text::error_tail(event) {
        let err = truncate(&err.replace("```", "'''"), DESCRIPTION_MAX / 2);
        description.push(format!("**Error**\n```\n{err}\n```"));
    }
    let fields: Vec<Value> = facts
        .iter()
        .filter(|(l, _)| !matches!(*l, "Object" | "SHA-256" | "Started" | "Finished"))
        .map(|(l, v)| json!({ "name": l, "value": truncate(v, FIELD_MAX), "inline": true }))
        .collect();
    let mut embed = json!({
        "title": truncate(&title, TITLE_MAX),
        "color": color(event.kind),
        "fields": fields,
        "footer": { "text": format!("dbstash on {}", event.host) },
    });
    if !description.is_empty() {
        // Discord rejects empty strings, so the key is left out when there is nothing to say.
        embed["description"] = json!(truncate(&description.join("\n"), DESCRIPTION_MAX));
    }
    if let Some(t) = event.finished.or(event.started) {
        embed["timestamp"] = json!(super::event::timestamp(t));
    }
    let mut body = json!({
        "content": truncate(&content, CONTENT_MAX),
        "embeds": [embed],
    });
    if !is_custom {
        // Text from dump tools must not ping anyone; a `message:` template may mention on purpose.
        body["allowed_mentions"] = json!({ "parse": [] });
    }
    Ok(body)
}

pub(crate) async fn send(client: &reqwest::Client, n: &Notifier, event: &Event) -> Attempt {
    let url = url_of(n)?;
    let body = payload(n, event).map_err(super::Failure::permanent)?;
    post(client, url, n.timeout, json_headers(), json_body(&body)?).await
}
