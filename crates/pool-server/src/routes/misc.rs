//! Health, readiness, metrics and the dashboard page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The dashboard: one self-contained page (no build step, nothing from elsewhere).
const DASHBOARD: &str = include_str!("../dashboard.html");

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process serves")))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: every configured server answered its first health check and the service is not
/// stopping.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not yet, or stopping")))]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.ready.load(Ordering::SeqCst) && !state.stopping.is_cancelled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready }))).into_response()
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = state.pool.stats().await.ok();
    let text = state.metrics.render(stats.as_ref(), &state.tracker);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The dashboard page (it asks for the admin key; its data come from the admin API).
pub(crate) async fn dashboard() -> Response {
    let mut response = Html(DASHBOARD).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
