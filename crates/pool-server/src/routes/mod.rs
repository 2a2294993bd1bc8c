//! The HTTP routes: `/v1` (jobs, events, outputs, admin), health, metrics, the OpenAPI
//! document and the dashboard.

mod admin;
mod events;
mod jobs;
mod misc;
pub(crate) mod openapi;
mod outputs;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

use crate::api_error::ApiError;
use crate::state::AppState;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.limits.body_bytes;
    let v1 = Router::new()
        .route("/jobs", post(jobs::submit).get(jobs::list))
        .route("/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/jobs/{id}/events", get(events::job_events))
        .route("/jobs/{id}/preview", get(jobs::preview))
        .route(
            "/jobs/{id}/outputs/node/{node}/{index}",
            get(outputs::node_file),
        )
        .route("/jobs/{id}/outputs/ws/{index}", get(outputs::ws_image))
        .route("/events", get(events::pool_events))
        .route(
            "/admin/servers",
            get(admin::list_servers).post(admin::add_server),
        )
        .route(
            "/admin/servers/{id}",
            axum::routing::delete(admin::remove_server),
        )
        .route("/admin/servers/{id}/drain", post(admin::drain_server))
        .route("/admin/blocks", get(admin::list_blocks))
        .route("/admin/blocks/reset", post(admin::reset_blocks))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/keys", post(admin::new_key))
        .fallback(not_found);
    Router::new()
        .nest("/v1", v1)
        .route("/", get(misc::dashboard))
        .route("/healthz", get(misc::healthz))
        .route("/readyz", get(misc::readyz))
        .route("/metrics", get(misc::metrics))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found)
        // A streamed body is cut off at the limit while it is read (413 from the extractor);
        // a declared one over it is refused before anything is read.
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            refuse_declared_oversize,
        ))
        .with_state(state)
}

/// 413 with the API's error body for a `Content-Length` over the limit, before any of the
/// body is read.
async fn refuse_declared_oversize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.limits.body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::TooLarge { limit }.into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}
