//! The HTTP surface: every route, served both at `/` and under `/api`; and the sim's own
//! read-only `GET /sim/stats` (only at `/`).

mod garbage;
mod info;
mod jobs;
mod prompt;
mod queue;
mod sim_stats;
mod upload;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::shared::Shared;
use crate::version::ComfyVersion;

/// The complete application, both at the root and under `/api` (the Jobs API of 0.8 only
/// under `/api`); anything else is aiohttp's bare 404.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    let limit = shared.body_limit;
    let version = shared.version;
    let mut routes: Router<Arc<Shared>> = Router::new()
        .route("/ws", get(crate::ws::upgrade))
        .route("/prompt", get(prompt::get_prompt).post(prompt::post_prompt))
        .route("/queue", get(queue::get_queue).post(queue::post_queue))
        .route("/interrupt", post(queue::interrupt))
        .route("/free", post(queue::free))
        .route(
            "/history",
            get(queue::get_history).post(queue::post_history),
        )
        .route("/history/{prompt_id}", get(queue::get_history_one))
        .route("/system_stats", get(info::system_stats))
        .route("/features", get(info::features))
        .route("/models", get(info::models))
        .route("/models/{folder}", get(info::model_folder))
        .route("/embeddings", get(info::embeddings))
        .route("/object_info", get(info::object_info))
        .route("/object_info/{node_class}", get(info::object_info_one))
        .route("/view", get(view::view))
        .route("/upload/image", post(upload::image))
        .route("/upload/mask", post(upload::image));
    let mut api_only: Router<Arc<Shared>> = Router::new();
    if version == ComfyVersion::V0_8 {
        routes = routes
            .route("/global_subgraphs", get(info::global_subgraphs))
            .route("/global_subgraphs/{id}", get(info::global_subgraph));
        api_only = api_only
            .route("/jobs", get(jobs::list))
            .route("/jobs/{job_id}", get(jobs::one));
    }
    let layer = middleware::from_fn_with_state(Arc::clone(&shared), faults_and_stats);
    let api = routes.clone().merge(api_only).route_layer(layer.clone());
    Router::new()
        .merge(routes.route_layer(layer))
        .nest("/api", api)
        .route("/sim/stats", get(sim_stats::sim_stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// aiohttp's answer for a route it does not have: 404, `application/octet-stream`, empty.
async fn not_found() -> Response {
    let mut response = StatusCode::NOT_FOUND.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// Counts the request, then applies the HTTP faults (delay, freeze, 500, garbage).
async fn faults_and_stats(
    State(shared): State<Arc<Shared>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched
        .as_ref()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    let route = route.strip_prefix("/api").unwrap_or(route).to_owned();
    let method = request.method().clone();
    shared
        .stats
        .lock()
        .record_request(format!("{method} {route}"));
    let (delay, freeze, fail, garbage) = {
        let knobs = shared.knobs.lock();
        let hits = |pattern: &Option<String>| {
            pattern
                .as_deref()
                .is_some_and(|p| covers(p, &method, &route))
        };
        let garbage = match (method == Method::GET, route.as_str()) {
            (true, "/history" | "/history/{prompt_id}") => knobs.history_garbage,
            (true, "/queue") => knobs.queue_garbage,
            _ => None,
        };
        (
            knobs.http_delay,
            route != "/ws" && hits(&knobs.http_freeze),
            hits(&knobs.http_500),
            garbage,
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if freeze {
        return std::future::pending().await;
    }
    if fail {
        return internal_error();
    }
    if let Some(garbage) = garbage {
        return garbage::answer(&shared, &route, request.uri().path(), garbage).await;
    }
    next.run(request).await
}

/// Whether a fault pattern covers a request: `"/prefix"` (`""` and `"/"` cover every route)
/// or `"METHOD /prefix"` for one method only. `route` is without the `/api` prefix.
fn covers(pattern: &str, method: &Method, route: &str) -> bool {
    let (wanted, prefix) = match pattern.split_once(' ') {
        Some((m, rest)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            (Some(m), rest.trim())
        }
        _ => (None, pattern),
    };
    wanted.is_none_or(|m| m == method.as_str())
        && (prefix == "/" || route.starts_with(prefix.trim_end_matches('/')))
}

/// aiohttp's answer to an unhandled exception: 500 text/plain.
pub(crate) fn internal_error() -> Response {
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error\n\nServer got itself in trouble",
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A JSON answer with aiohttp's content type.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// 200 with an empty body, like `web.Response(status=200)`.
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// Parses a request body as aiohttp's `request.json()` would; `None` means 500.
pub(crate) fn parse_json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}
