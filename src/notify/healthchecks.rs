//! Healthchecks.io-style pings (also Uptime Kuma push / Cronitor-compatible servers that follow it):
//! start → `POST {url}/start`, success → `POST {url}`, failure and config errors →
//! `POST {url}/fail`, a `notify test` → `POST {url}/log` (logged, state unchanged). The body is the
//! message text (so the error tail shows in the check's log). When the run id is a UUID it is sent
//! as `?rid=` so concurrent runs are timed separately.

use super::event::{Event, EventKind};
use super::text;
use super::{post, url_of, Attempt, Failure, NotifyError};
use crate::model::Notifier;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

/// Healthchecks keeps the first 100 kB of a ping body; stay well below.
const BODY_MAX: usize = 10_000;

/// The suffix for `event`: `start`, `` (success), `fail` or `log`.
pub fn suffix(event: &Event) -> &'static str {
    if event.is_test() {
        return "log";
    }
    match event.kind {
        EventKind::Start => "start",
        EventKind::Success | EventKind::StreamRecovered => "",
        EventKind::Failure | EventKind::ConfigError | EventKind::StreamFailure => "fail",
    }
}

/// The ping URL for `event` under the base `url` (its query string kept).
pub fn ping_url(base: &str, event: &Event) -> Result<String, NotifyError> {
    let mut u = url::Url::parse(base)
        .map_err(|e| NotifyError::Config(format!("invalid healthchecks url: {e}")))?;
    let s = suffix(event);
    if !s.is_empty() {
        u.path_segments_mut()
            .map_err(|_| NotifyError::Config("healthchecks url cannot have a path".into()))?
            .pop_if_empty()
            .push(s);
    }
    if uuid::Uuid::parse_str(&event.run_id).is_ok() {
        u.query_pairs_mut().append_pair("rid", &event.run_id);
    }
    Ok(u.to_string())
}

pub(crate) async fn send(client: &reqwest::Client, n: &Notifier, event: &Event) -> Attempt {
    let url = ping_url(url_of(n)?, event).map_err(Failure::permanent)?;
    let body = text::message_text(event, n).map_err(Failure::permanent)?;
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    post(
        client,
        &url,
        n.timeout,
        h,
        text::truncate(&body, BODY_MAX).into_bytes(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let mut e = Event::test("hc");
        assert_eq!(ping_url("https://hc/u", &e).unwrap(), "https://hc/u/log");
        e.run_id = "r".into();
        e.job = "app".into();
        e.kind = EventKind::Start;
        assert_eq!(ping_url("https://hc/u/", &e).unwrap(), "https://hc/u/start");
        e.kind = EventKind::Success;
        assert_eq!(ping_url("https://hc/u", &e).unwrap(), "https://hc/u");
        e.kind = EventKind::Failure;
        e.run_id = "2f1e5a3c-5d2b-4e55-9b8e-111111111111".into();
        assert_eq!(
            ping_url("https://hc/u?k=1", &e).unwrap(),
            "https://hc/u/fail?k=1&rid=2f1e5a3c-5d2b-4e55-9b8e-111111111111"
        );
    }
}
