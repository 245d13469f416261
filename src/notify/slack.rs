//! Slack incoming webhook: `{ "text": fallback, "blocks": [...] }`.

use super::event::Event;
use super::text::{self, truncate};
use super::{json_body, json_headers, post, url_of, Attempt};
use crate::model::Notifier;
use serde_json::{json, Value};

/// Slack's limits: header 150 chars, section text 3000, a field 2000, 10 fields per section.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FIELDS_MAX: usize = 10;

/// Escape the three characters Slack's mrkdwn treats as control characters.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(event: &Event) -> &'static str {
    use super::EventKind::*;
    match event.kind {
        Start => ":arrow_forward:",
        Success | StreamRecovered => ":white_check_mark:",
        Failure | StreamFailure => ":x:",
        ConfigError => ":warning:",
    }
}

/// The Slack payload for `event`.
pub fn payload(n: &Notifier, event: &Event) -> Result<Value, super::NotifyError> {
    let title = text::title(event, &n.name);
    if let Some(custom) = text::custom_text(event, n)? {
        return Ok(json!({
            "text": custom,
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": truncate(&custom, SECTION_MAX) } }
            ],
        }));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&format!("dbstash: {title}"), HEADER_MAX), "emoji": true },
    })];
    if let Some(note) = text::test_note(event, &n.name) {
        blocks.push(
            json!({ "type": "section", "text": { "type": "mrkdwn", "text": escape(&note) } }),
        );
    }
    // Short facts side by side; long ones (object, checksum) on their own lines.
    let facts = text::facts(event);
    let (long, short): (Vec<_>, Vec<_>) = facts
        .into_iter()
        .filter(|(l, _)| !matches!(*l, "Started" | "Finished" | "Run"))
        .partition(|(l, _)| matches!(*l, "Object" | "SHA-256"));
    let fields: Vec<Value> = short
        .iter()
        .take(FIELDS_MAX)
        .map(|(l, v)| json!({ "type": "mrkdwn", "text": truncate(&format!("*{l}*\n{}", escape(v)), FIELD_MAX) }))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if !long.is_empty() {
        let lines: Vec<String> = long
            .iter()
            .map(|(l, v)| format!("*{l}*: `{}`", escape(v)))
            .collect();
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(&lines.join("\n"), SECTION_MAX) } }));
    }
    if let Some(err) = text::error_tail(event) {
        let err = truncate(&escape(&err.replace("```", "'''")), SECTION_MAX - 20);
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Error*\n```{err}```") } }));
    }
    let mut ctx = Vec::new();
    if !event.run_id.is_empty() {
        ctx.push(format!("run {}", escape(&event.run_id)));
    }
    if let Some(t) = event.started {
        ctx.push(format!("started {}", super::event::timestamp(t)));
    }
    if let Some(t) = event.finished {
        ctx.push(format!("finished {}", super::event::timestamp(t)));
    }
    if !ctx.is_empty() {
        blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": ctx.join(" · ") } ] }));
    }
    Ok(json!({
        "text": format!("{} {}", emoji(event), escape(&text::default_text(event, &n.name))),
        "blocks": blocks,
    }))
}

pub(crate) async fn send(client: &reqwest::Client, n: &Notifier, event: &Event) -> Attempt {
    let url = url_of(n)?;
    let body = payload(n, event).map_err(super::Failure::permanent)?;
    post(client, url, n.timeout, json_headers(), json_body(&body)?).await
}
