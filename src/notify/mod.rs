//! Notifications: Slack, Discord, email, generic webhook and healthchecks-style pings.
//!
//! A [`Dispatcher`] holds the manifest's notifiers. [`Dispatcher::send`] delivers one [`Event`]
//! concurrently to the named notifiers that want it (`on:`), each attempt bounded by the notifier's
//! `timeout`, with up to 3 retries and exponential backoff on 5xx / 408 / 429 / connection errors /
//! transient SMTP errors, honouring `Retry-After`. It never fails: each outcome comes back as a
//! [`Delivery`], and failures are logged (`notifier`, `event` fields).
//!
//! Secrets (webhook URLs and their path tokens, SMTP passwords, webhook HMAC keys) never appear in
//! a [`NotifyError`], a [`Delivery`] or a log line: reqwest errors are stripped of their URL, and
//! every error text is passed through a [`Redactor`] built from [`secrets_of`] before it leaves.

pub mod discord;
pub mod email;
pub mod event;
pub mod healthchecks;
pub mod slack;
pub mod template;
pub mod text;
pub mod webhook;

pub use event::{Event, EventKind};

use crate::model::kinds::NotifierKind;
use crate::model::Notifier;
use crate::secret::Redactor;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 3;
/// First backoff delay; doubles on each retry (1s, 2s, 4s).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The outcome of delivering one event to one notifier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub notifier: String,
    pub ok: bool,
    /// Attempts made (1 = no retry). 0 when nothing could be tried (unknown notifier).
    pub attempts: u32,
    /// Why it failed (redacted). `None` when `ok`.
    pub error: Option<String>,
}

/// Why a notification failed. Never carries a URL, token or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("unknown notifier `{0}`")]
    UnknownNotifier(String),
    /// The notifier cannot work as configured (missing URL, bad address, unreadable CA file…).
    #[error("configuration: {0}")]
    Config(String),
    #[error("message template: {0}")]
    Template(String),
    /// The server answered with a non-success status.
    #[error("HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Http { status: u16, body: String },
    /// The request did not get an answer (connect, TLS, reset…).
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("could not start a delivery task: {0}")]
    Internal(String),
}

impl NotifyError {
    /// The same error with every secret in its text replaced by `***`.
    pub fn redacted(self, redactor: &Redactor) -> NotifyError {
        let r = |s: String| redactor.redact(&s);
        match self {
            NotifyError::UnknownNotifier(s) => NotifyError::UnknownNotifier(r(s)),
            NotifyError::Config(s) => NotifyError::Config(r(s)),
            NotifyError::Template(s) => NotifyError::Template(r(s)),
            NotifyError::Http { status, body } => NotifyError::Http {
                status,
                body: r(body),
            },
            NotifyError::Request(s) => NotifyError::Request(r(s)),
            NotifyError::Timeout(d) => NotifyError::Timeout(d),
            NotifyError::Smtp(s) => NotifyError::Smtp(r(s)),
            NotifyError::Internal(s) => NotifyError::Internal(r(s)),
        }
    }
}

/// Whether and when a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    No,
    Backoff,
    After(Duration),
}

/// A failed attempt.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: NotifyError,
    pub retry: Retry,
}

impl Failure {
    pub fn permanent(error: NotifyError) -> Failure {
        Failure {
            error,
            retry: Retry::No,
        }
    }
    pub fn transient(error: NotifyError) -> Failure {
        Failure {
            error,
            retry: Retry::Backoff,
        }
    }
}

pub(crate) type Attempt = Result<(), Failure>;

/// Called once per finished delivery (ok or not), e.g. to count `dbstash_notifications_total`.
pub type Observer = Arc<dyn Fn(&Delivery, EventKind) + Send + Sync>;

#[derive(Clone)]
struct Inner {
    notifiers: BTreeMap<String, Notifier>,
    client: reqwest::Client,
    retries: u32,
    backoff: Duration,
    max_retry_after: Duration,
    observer: Option<Observer>,
}

/// Sends events to the manifest's notifiers. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field(
                "notifiers",
                &self.inner.notifiers.keys().collect::<Vec<_>>(),
            )
            .field("retries", &self.inner.retries)
            .field("backoff", &self.inner.backoff)
            .finish()
    }
}

/// The HTTP client dbstash uses for notifications (user agent set, no global timeout: each
/// request gets its notifier's).
pub fn http_client() -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .user_agent(concat!("dbstash/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::Internal(describe_reqwest(e)))
}

impl Dispatcher {
    /// A dispatcher for these notifiers (the manifest's `notifiers`), with a fresh HTTP client.
    pub fn new(notifiers: BTreeMap<String, Notifier>) -> Result<Dispatcher, NotifyError> {
        Ok(Dispatcher::with_client(notifiers, http_client()?))
    }

    /// A dispatcher sharing an existing client (e.g. across manifest reloads: `d.client().clone()`).
    pub fn with_client(
        notifiers: BTreeMap<String, Notifier>,
        client: reqwest::Client,
    ) -> Dispatcher {
        Dispatcher {
            inner: Arc::new(Inner {
                notifiers,
                client,
                retries: DEFAULT_RETRIES,
                backoff: DEFAULT_BACKOFF,
                max_retry_after: DEFAULT_MAX_RETRY_AFTER,
                observer: None,
            }),
        }
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Dispatcher {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Dispatcher {
            inner: Arc::new(inner),
        }
    }

    /// First retry delay (doubles each retry). Default 1s; tests use a few milliseconds.
    pub fn with_backoff(self, base: Duration) -> Dispatcher {
        self.map_inner(|i| i.backoff = base)
    }

    /// Retries after the first attempt (default 3).
    pub fn with_retries(self, retries: u32) -> Dispatcher {
        self.map_inner(|i| i.retries = retries)
    }

    /// Cap on a server's `Retry-After` (default 60s).
    pub fn with_max_retry_after(self, cap: Duration) -> Dispatcher {
        self.map_inner(|i| i.max_retry_after = cap)
    }

    /// Call `f` after every delivery made through this dispatcher (including fire-and-forget
    /// sends whose results nobody reads). Count either here or from the returned `Delivery`s,
    /// not both.
    pub fn with_observer(
        self,
        f: impl Fn(&Delivery, EventKind) + Send + Sync + 'static,
    ) -> Dispatcher {
        let f: Observer = Arc::new(f);
        self.map_inner(|i| i.observer = Some(f))
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    pub fn notifiers(&self) -> &BTreeMap<String, Notifier> {
        &self.inner.notifiers
    }

    /// Deliver `event` to each named notifier whose `on:` wants it, concurrently. Names are
    /// deduplicated; notifiers that do not want the event are skipped (no `Delivery`); an unknown
    /// name gives a failed `Delivery` with 0 attempts. Results are in name order. Never fails.
    pub async fn send(&self, names: &[String], event: &Event) -> Vec<Delivery> {
        let unique: BTreeSet<&String> = names.iter().collect();
        let mut out = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut names_by_task = std::collections::HashMap::new();
        let event = Arc::new(event.clone());
        for name in unique {
            match self.inner.notifiers.get(name) {
                None => {
                    let error = NotifyError::UnknownNotifier(name.clone());
                    tracing::warn!(notifier = %name, event = %event.kind, error = %error, "notification not sent");
                    out.push(Delivery {
                        notifier: name.clone(),
                        ok: false,
                        attempts: 0,
                        error: Some(error.to_string()),
                    });
                }
                Some(n) if !n.wants(event.kind.notify_on()) => {}
                Some(_) => {
                    let inner = self.inner.clone();
                    let event = event.clone();
                    let name = name.clone();
                    let task_name = name.clone();
                    let handle =
                        tasks.spawn(async move { inner.deliver(&task_name, &event).await });
                    names_by_task.insert(handle.id(), name);
                }
            }
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            match joined {
                Ok((_, d)) => out.push(d),
                // A delivery task panicked or was cancelled: report it rather than propagate.
                Err(e) => {
                    let name = names_by_task.get(&e.id()).cloned().unwrap_or_default();
                    tracing::error!(notifier = %name, event = %event.kind, error = %e, "notification task failed");
                    out.push(Delivery {
                        notifier: name,
                        ok: false,
                        attempts: 0,
                        error: Some(NotifyError::Internal(e.to_string()).to_string()),
                    })
                }
            }
        }
        out.sort_by(|a, b| a.notifier.cmp(&b.notifier));
        out
    }

    /// Deliver to every notifier that wants the event (e.g. `config_error`, which belongs to no job).
    pub async fn send_all(&self, event: &Event) -> Vec<Delivery> {
        let names: Vec<String> = self.inner.notifiers.keys().cloned().collect();
        self.send(&names, event).await
    }

    /// Deliver to one notifier regardless of its `on:` filter (`dbstash notify test`).
    /// `Err` only when the name is unknown; a failed delivery is an `Ok(Delivery { ok: false, .. })`.
    pub async fn send_one(&self, name: &str, event: &Event) -> Result<Delivery, NotifyError> {
        if !self.inner.notifiers.contains_key(name) {
            return Err(NotifyError::UnknownNotifier(name.to_string()));
        }
        Ok(self.inner.deliver(name, event).await)
    }
}

impl Inner {
    async fn deliver(&self, name: &str, event: &Event) -> Delivery {
        let d = self.deliver_inner(name, event).await;
        if let Some(observe) = &self.observer {
            observe(&d, event.kind);
        }
        d
    }

    async fn deliver_inner(&self, name: &str, event: &Event) -> Delivery {
        let Some(n) = self.notifiers.get(name) else {
            return Delivery {
                notifier: name.to_string(),
                ok: false,
                attempts: 0,
                error: Some(NotifyError::UnknownNotifier(name.to_string()).to_string()),
            };
        };
        let redactor = Redactor::from_values(secrets_of(n).iter().map(String::as_str));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = match tokio::time::timeout(n.timeout, self.attempt(n, event)).await {
                Ok(r) => r,
                Err(_) => Err(Failure::transient(NotifyError::Timeout(n.timeout))),
            };
            let failure = match result {
                Ok(()) => {
                    tracing::info!(notifier = %name, event = %event.kind, attempts, "notification sent");
                    return Delivery {
                        notifier: name.to_string(),
                        ok: true,
                        attempts,
                        error: None,
                    };
                }
                Err(f) => f,
            };
            let error = failure.error.redacted(&redactor);
            let delay = match failure.retry {
                _ if attempts > self.retries => None,
                Retry::No => None,
                Retry::Backoff => Some(self.backoff.saturating_mul(1 << (attempts - 1).min(16))),
                Retry::After(d) => Some(d.min(self.max_retry_after)),
            };
            match delay {
                Some(delay) => {
                    tracing::debug!(notifier = %name, event = %event.kind, attempt = attempts,
                        error = %error, retry_in_ms = delay.as_millis() as u64, "notification attempt failed, retrying");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    tracing::warn!(notifier = %name, event = %event.kind, attempts, error = %error, "notification failed");
                    return Delivery {
                        notifier: name.to_string(),
                        ok: false,
                        attempts,
                        error: Some(error.to_string()),
                    };
                }
            }
        }
    }

    async fn attempt(&self, n: &Notifier, event: &Event) -> Attempt {
        match n.kind {
            NotifierKind::Slack => slack::send(&self.client, n, event).await,
            NotifierKind::Discord => discord::send(&self.client, n, event).await,
            NotifierKind::Webhook => webhook::send(&self.client, n, event).await,
            NotifierKind::Healthchecks => healthchecks::send(&self.client, n, event).await,
            NotifierKind::Email => email::send(n, event).await,
        }
    }
}

/// Strings that must never be shown for this notifier: the URL, its path and query, each long
/// path segment or query value (webhook tokens), the SMTP password and the webhook HMAC key.
pub fn secrets_of(n: &Notifier) -> Vec<String> {
    let mut s = Vec::new();
    if let Some(u) = &n.url {
        let raw = u.expose();
        s.push(raw.to_string());
        if let Ok(parsed) = url::Url::parse(raw) {
            s.push(parsed.to_string());
            let path = parsed.path();
            if path.len() > 1 {
                s.push(path.to_string());
            }
            if let Some(q) = parsed.query() {
                s.push(q.to_string());
            }
            // Tokens hide in long segments; short ones (`api`, `services`) are route names.
            for seg in parsed.path_segments().into_iter().flatten() {
                if seg.len() >= MIN_TOKEN_PIECE {
                    s.push(seg.to_string());
                }
            }
            for (_, v) in parsed.query_pairs() {
                if v.len() >= MIN_TOKEN_PIECE {
                    s.push(v.into_owned());
                }
            }
            if let Some(p) = parsed.password() {
                s.push(p.to_string());
            }
        }
    }
    if let Some(p) = n.smtp.as_ref().and_then(|s| s.password.as_ref()) {
        s.push(p.expose().to_string());
    }
    if let Some(k) = &n.secret {
        s.push(k.expose().to_string());
    }
    s.retain(|v| v.len() >= 3);
    s.sort();
    s.dedup();
    s.sort_by_key(|v| std::cmp::Reverse(v.len()));
    s
}

/// Shortest URL path segment or query value treated as a token on its own.
const MIN_TOKEN_PIECE: usize = 10;

/// An error and its causes as one line, each cause added only when the text so far lacks it
/// (HTTP and SMTP clients often repeat their source in their own message).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    msg
}

/// A reqwest error as text: the URL stripped, the cause chain kept.
pub(crate) fn describe_reqwest(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// The notifier's URL (required for every kind but email).
pub(crate) fn url_of(n: &Notifier) -> Result<&str, Failure> {
    n.url
        .as_ref()
        .map(|u| u.expose())
        .ok_or_else(|| Failure::permanent(NotifyError::Config("no url".into())))
}

/// `Retry-After` as a delay: seconds, or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let ms = when.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// Most of an error response body worth showing.
const BODY_SNIPPET: usize = 300;

/// POST `body` to `url` and classify the answer: 2xx ok; 408, 429 and 5xx retried (after
/// `Retry-After` when given); other statuses permanent; no answer retried.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> Attempt {
    let resp = client
        .post(url)
        .timeout(timeout)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let builder = e.is_builder();
            let timeout_hit = e.is_timeout();
            let msg = describe_reqwest(e);
            if builder {
                Failure::permanent(NotifyError::Config(msg))
            } else if timeout_hit {
                Failure::transient(NotifyError::Timeout(timeout))
            } else {
                Failure::transient(NotifyError::Request(msg))
            }
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let after = retry_after(resp.headers());
    let body = read_snippet(resp).await;
    let error = NotifyError::Http {
        status: status.as_u16(),
        body,
    };
    let retryable = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    Err(Failure {
        error,
        retry: match (retryable, after) {
            (false, _) => Retry::No,
            (true, Some(d)) => Retry::After(d),
            (true, None) => Retry::Backoff,
        },
    })
}

async fn read_snippet(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < 4 * BODY_SNIPPET {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text::truncate(&one_line, BODY_SNIPPET)
}

/// `application/json` plus nothing else.
pub(crate) fn json_headers() -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    h
}

/// Serialize a JSON body (cannot fail for `serde_json::Value`, but stay total).
pub(crate) fn json_body(v: &serde_json::Value) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(v).map_err(|e| Failure::permanent(NotifyError::Internal(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    pub(crate) fn notifier(kind: NotifierKind, url: &str) -> Notifier {
        Notifier {
            name: "n".into(),
            kind,
            url: Some(Secret::new(url)),
            on: [crate::model::kinds::NotifyOn::Failure].into(),
            message: None,
            timeout: Duration::from_secs(5),
            from: None,
            to: vec![],
            smtp: None,
            headers: BTreeMap::new(),
            secret: None,
        }
    }

    #[test]
    fn secrets_cover_url_pieces() {
        let n = notifier(
            NotifierKind::Slack,
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX?x=querytoken123",
        );
        let s = secrets_of(&n);
        let msg = "error for /services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX and XXXXXXXXXXXXXXXXXXXXXXXX and querytoken123";
        let r = Redactor::from_values(s.iter().map(String::as_str)).redact(msg);
        assert!(!r.contains("XXXXXXXX"), "{r}");
        assert!(!r.contains("querytoken123"), "{r}");
    }

    #[test]
    fn errors_redact_their_text() {
        let e = NotifyError::Http {
            status: 404,
            body: "no hook sekrit-token-1".into(),
        }
        .redacted(&Redactor::from_values(["sekrit-token-1"]));
        assert_eq!(e.to_string(), "HTTP 404: no hook ***");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
