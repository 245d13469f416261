//! Generic webhook: a JSON POST of the event context (the template variables, `event` included)
//! plus `notifier`, `title` and `text`. Optional extra headers; with a `secret`, the header
//! `X-Dbstash-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`.

use super::event::Event;
use super::text;
use super::{json_body, json_headers, post, url_of, Attempt, Failure, NotifyError};
use crate::model::Notifier;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-dbstash-signature";
pub const EVENT_HEADER: &str = "x-dbstash-event";

/// The JSON body for `event`.
pub fn payload(n: &Notifier, event: &Event) -> Result<Value, NotifyError> {
    let mut body = event.context();
    body["notifier"] = json!(n.name);
    body["title"] = json!(text::title(event, &n.name));
    body["text"] = json!(text::message_text(event, n)?);
    body["test"] = json!(event.is_test());
    Ok(body)
}

/// `sha256=<hex>` of HMAC-SHA256(key, body).
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn headers(n: &Notifier, event: &Event, body: &[u8]) -> Result<HeaderMap, NotifyError> {
    let mut h = json_headers();
    h.insert(
        HeaderName::from_static(EVENT_HEADER),
        HeaderValue::from_static(event.kind.as_str()),
    );
    for (k, v) in &n.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| NotifyError::Config(format!("invalid header name `{k}`")))?;
        // The value may be a token: never echo it.
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| NotifyError::Config(format!("invalid value for header `{k}`")))?;
        value.set_sensitive(true);
        h.insert(name, value);
    }
    if let Some(key) = &n.secret {
        let sig = HeaderValue::from_str(&signature(key.expose().as_bytes(), body))
            .map_err(|_| NotifyError::Internal("signature header".into()))?;
        h.insert(HeaderName::from_static(SIGNATURE_HEADER), sig);
    }
    Ok(h)
}

pub(crate) async fn send(client: &reqwest::Client, n: &Notifier, event: &Event) -> Attempt {
    let url = url_of(n)?;
    let body = json_body(&payload(n, event).map_err(Failure::permanent)?)?;
    let h = headers(n, event, &body).map_err(Failure::permanent)?;
    post(client, url, n.timeout, h, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
