//! The health endpoint: `/healthz`, `/readyz`, `/metrics`.

pub mod metrics;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// What the endpoint reports; shared with the supervisor.
pub trait Health: Send + Sync + 'static {
    fn metrics(&self) -> &metrics::Metrics;
    /// `Err` when the supervisor loop has stopped beating.
    fn alive(&self) -> Result<(), String>;
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
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "status": "stuck", "error": e, "stale_jobs": stale })
                    .to_string(),
            )
        }
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

async fn metrics_text<H: Health>(State(h): State<Arc<H>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics().encode(),
    )
}

/// Bind and serve until `stop` resolves.
pub async fn serve<H: Health>(
    listen: &str,
    h: Arc<H>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(
        event = "health_listening",
        listen,
        "serving /healthz /readyz /metrics"
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(h))
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(event = "health_failed", error = %e);
        }
    });
    Ok(())
}
