//! The health endpoint: `/healthz`, `/readyz`, `/metrics`.

pub mod metrics;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The supervisor loop has stopped beating (`/healthz` answers 503).
#[derive(Debug, thiserror::Error)]
#[error("the scheduler loop has not run for {seconds}s")]
pub struct Stuck {
    pub seconds: i64,
}

/// The health endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {listen}: {source}")]
pub struct ServeError {
    listen: String,
    source: std::io::Error,
}

/// What the endpoint reports; shared with the supervisor.
pub trait Health: Send + Sync + 'static {
    fn metrics(&self) -> &metrics::Metrics;
    /// `Err` when the supervisor loop has stopped beating.
    fn alive(&self) -> Result<(), Stuck>;
    fn ready(&self) -> bool;
    /// Jobs whose last success is older than their `stale_after`.
    fn stale_jobs(&self) -> Vec<String>;
}

pub fn router<H: Health>(h: Arc<H>) -> Router {
    Router::new()
        .route("/healthz", get(healthz::<H>))
        .route("/readyz", get(readyz::<H>))
        .route("/metrics", get(metrics_text::<H>))
        .with_state(h)
}

async fn healthz<H: Health>(State(h): State<Arc<H>>) -> impl IntoResponse {
    let stale = h.stale_jobs();
    let body = match h.alive() {
        Ok(()) => serde_json::json!({ "status": "ok", "stale_jobs": stale }),
        Err(e) => return (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "stuck", "error": e.to_string(), "stale_jobs": stale })
                .to_string(),
        ),
    };
    (StatusCode::OK, body.to_string())
}

async fn readyz<H: Health>(State(h): State<Arc<H>>) -> impl IntoResponse {
    if h.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no manifest loaded\n")
    }
}

async fn metrics_text<H: Health>(
    State(h): State<Arc<H>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    match negotiate(&accept) {
        Format::OpenMetrics => (
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            h.metrics().encode_openmetrics(),
        ),
        Format::Text => (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            h.metrics().encode_text(),
        ),
    }
}

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, PartialEq)]
enum Format {
    OpenMetrics,
    Text,
}

/// The exposition format for an `Accept` header: OpenMetrics when the client prefers it (by
/// q-value; Prometheus asks for it first), else the Prometheus text format 0.0.4 — also for no
/// header, `*/*` or anything unknown, as the Go client does.
fn negotiate(accept: &str) -> Format {
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "application/openmetrics-text" => Format::OpenMetrics,
            "text/plain" => Format::Text,
            _ => continue,
        };
        // The first of equally preferred ranges wins.
        if q > 0.0 && best.as_ref().is_none_or(|(b, _)| q > *b) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f).unwrap_or(Format::Text)
}

/// Bind and serve until `stop` resolves. The handle ends once the listener is closed (so the
/// address can be bound again).
pub async fn serve<H: Health>(
    listen: &str,
    h: Arc<H>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError {
            listen: listen.to_string(),
            source,
        })?;
    tracing::info!(
        event = "health_listening",
        listen,
        "serving /healthz /readyz /metrics"
    );
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(h))
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(event = "health_failed", error = %e);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{negotiate, Format};

    #[test]
    fn the_accept_header_picks_the_format() {
        // what Prometheus 2.x sends
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(prom), Format::OpenMetrics);
        assert_eq!(negotiate("text/plain;version=0.0.4"), Format::Text);
        assert_eq!(
            negotiate("text/plain; version=0.0.4; charset=utf-8"),
            Format::Text
        );
        assert_eq!(
            negotiate("application/openmetrics-text"),
            Format::OpenMetrics
        );
        assert_eq!(negotiate(""), Format::Text);
        assert_eq!(negotiate("*/*"), Format::Text);
        assert_eq!(
            negotiate("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
            Format::Text
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=0, text/plain;q=0.1"),
            Format::Text
        );
        assert_eq!(
            negotiate("Application/OpenMetrics-Text; Q=1"),
            Format::OpenMetrics
        );
    }
}
