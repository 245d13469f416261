//! Handlebars message templates, rendered in strict mode: an unknown variable is an error.

use handlebars::Handlebars;
use serde_json::{json, Value};

/// Variables a `message:` template may use (the same keys as `notify::Event::context`).
pub fn sample_context() -> Value {
    json!({
        "job": "app", "engine": "postgres", "database": "shop", "status": "success",
        "event": "success", "object": "pg/app/shop-2026-01-01-020000.sql.zst", "remote": "offsite",
        "size": 1024, "size_human": "1.0 KiB", "duration": "3s", "duration_seconds": 3.0,
        "sha256": "0".repeat(64), "error": "", "host": "backup-1", "run_id": "r1", "warnings": "",
        "started": "2026-01-01T02:00:00Z", "finished": "2026-01-01T02:00:03Z",
    })
}

fn registry() -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    h.register_escape_fn(handlebars::no_escape);
    h
}

pub fn render(template: &str, ctx: &Value) -> Result<String, String> {
    registry()
        .render_template(template, ctx)
        .map_err(|e| e.to_string())
}

/// Compile and dry-render against the sample context, so typos fail `validate`, not a 3 a.m. run.
pub fn check(template: &str) -> Result<(), String> {
    render(template, &sample_context()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variables_render_and_unknown_fail() {
        assert_eq!(
            render("{{job}} {{status}}", &sample_context()).unwrap(),
            "app success"
        );
        assert!(check("{{jobb}}").is_err());
        assert!(check("{{#if error}}x{{/if}}").is_ok());
    }
}
