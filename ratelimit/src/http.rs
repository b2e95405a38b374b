//! HTTP endpoints on their own port: `/healthz` and Prometheus `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// Result of the last store probe.
    pub store_up: Arc<AtomicBool>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// 200 while the store answers its probe, 503 otherwise. The memory store always answers.
async fn healthz(State(state): State<HttpState>) -> Response {
    if state.store_up.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "rate-limit store unreachable\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    match state.metrics.render() {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "failed to render metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to render metrics\n",
            )
                .into_response()
        }
    }
}
