//! `/v1/jobs/{id}/outputs/…`: a completed job's files.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::routes::jobs::visible_record;
use crate::state::AppState;

/// Output file `index` of node `node` (the `url` of the job's `outputs` entry): proxied from
/// the server that produced it, or from the local copy.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/outputs/node/{node}/{index}", tag = "jobs",
    params(
        ("id" = String, Path, description = "The job id"),
        ("node" = String, Path, description = "The output node's id"),
        ("index" = usize, Path, description = "The file's position among the node's files"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn node_file(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, node, index)): Path<(String, String, usize)>,
) -> Result<Response, ApiError> {
    let record = visible_record(&state, &caller, &id).await?;
    state
        .outputs
        .node_file(&record, &node, index, &state.fleet)
        .await
}

/// Image `index` that a node sent only over the websocket (kept with the job).
#[utoipa::path(
    get, path = "/v1/jobs/{id}/outputs/ws/{index}", tag = "jobs",
    params(
        ("id" = String, Path, description = "The job id"),
        ("index" = usize, Path, description = "The image's position"),
    ),
    responses(
        (status = 200, description = "The image", content_type = "image/png"),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn ws_image(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, index)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let record = visible_record(&state, &caller, &id).await?;
    state.outputs.ws_image(&record, index, &state.store).await
}
