//! `/v1/jobs`: submit, read, list, cancel; a running job's latest preview.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pool_core::JobQuery;
use pool_core::{JobOptions, JobRecord, JobState};
use pool_store::StoreError;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::keys::hex;
use crate::state::AppState;
use crate::views::{
    JobList, JobView, ListParams, SubmitParams, SubmitRequest, Submitted, WEBHOOK_METADATA_KEY,
    parse_states, segment, state_name,
};
use crate::watch;
use crate::webhook::reserved_metadata;

/// The longest page of a listing.
const MAX_PAGE: u32 = 200;

/// A job id a caller may choose: 1 to 128 letters, digits, `-`, `_`, `.` or `:`.
fn valid_job_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The job id an `Idempotency-Key` stands for: per tenant, so two tenants' keys never meet.
fn idempotent_id(tenant: Option<&str>, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(tenant.unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    format!("idem-{}", &hex(&hasher.finalize())[..32])
}

/// A job's record, from the pool (live or retained) or the store.
pub(crate) async fn find_record(state: &AppState, id: &str) -> Result<Option<JobRecord>, ApiError> {
    if let Some(record) = state.pool.record(id) {
        return Ok(Some(record));
    }
    Ok(state.store.get(id).await?)
}

/// The record of a job the caller may see; 404 otherwise (another tenant's job included).
pub(crate) async fn visible_record(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<JobRecord, ApiError> {
    match find_record(state, id).await? {
        Some(record) if caller.can_see(&record) => Ok(record),
        _ => Err(ApiError::not_found("job")),
    }
}

fn bad_json(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge { limit: 0 };
    }
    ApiError::BadRequest(rejection.body_text())
}

fn options_for(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    request: &SubmitRequest,
) -> Result<JobOptions, ApiError> {
    let mut options = state.pool.default_options().priority(request.priority);
    if let Some(id) = id {
        options = options.job_id(id);
    }
    if let Some(tenant) = caller.tenant() {
        options = options.tenant(tenant);
    }
    if let Some(attempts) = request.max_attempts {
        if attempts == 0 || attempts > 100 {
            return Err(ApiError::BadRequest(
                "max_attempts must be between 1 and 100".into(),
            ));
        }
        options = options.max_attempts(attempts);
    }
    if let Some(deadlines) = request.deadlines {
        options = options.deadlines(deadlines);
    }
    for server in &request.preferred_servers {
        options = options.prefer_server(server.as_str());
    }
    for server in &request.required_servers {
        options = options.require_server(server.as_str());
    }
    for server in &request.excluded_servers {
        options = options.exclude_server(server.as_str());
    }
    for tag in &request.tags {
        options = options.require_tag(tag.as_str());
    }
    for (key, value) in request.metadata.iter().flatten() {
        if reserved_metadata(key) {
            return Err(ApiError::BadRequest(format!(
                "metadata key {key:?} is reserved"
            )));
        }
        options = options.metadata(key.as_str(), value.clone());
    }
    if let Some(url) = &request.webhook {
        state.webhooks.check(url)?;
        options = options.metadata(WEBHOOK_METADATA_KEY, url.as_str());
    }
    Ok(options)
}

fn submitted(record: &JobRecord, created: bool, job: Option<JobView>) -> Response {
    let id = record.id.to_string();
    let body = Submitted {
        id: id.clone(),
        state: state_name(record.state),
        hash: record.hash().to_string(),
        created,
        job,
    };
    let status = if body.job.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", segment(&id))) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Submits a workflow, or several variants of one (`variants`, in order of preference).
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body = SubmitRequest,
    params(
        SubmitParams,
        ("Idempotency-Key" = Option<String>, Header,
         description = "Makes the submission idempotent for this tenant (instead of `id`)"),
    ),
    responses(
        (status = 202, description = "Accepted (or the job the id or key names)", body = Submitted),
        (status = 200, description = "`?wait=` saw the job end; `job` holds it", body = Submitted),
        (status = 400, description = "Invalid request or workflow (a bad variant is named by its index; `workflow` and `variants` are exclusive)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn submit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(params): Query<SubmitParams>,
    headers: HeaderMap,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut request) = body.map_err(|r| match bad_json(&r) {
        ApiError::TooLarge { .. } => ApiError::TooLarge {
            limit: state.config.limits.body_bytes,
        },
        other => other,
    })?;
    let workflows = match (request.workflow.take(), request.variants.take()) {
        (Some(workflow), None) => vec![workflow],
        (None, Some(variants)) if !variants.is_empty() => variants,
        (None, Some(_)) => {
            return Err(ApiError::BadRequest(
                "`variants` needs at least one workflow".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "give a `workflow` or `variants`".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give a `workflow` or `variants`, not both".into(),
            ));
        }
    };
    if let Some(tenant) = caller.tenant() {
        state.limits.take(tenant)?;
    }
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key is not text".into()))?;
    let id = match (&request.id, key) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give a job id or an Idempotency-Key, not both".into(),
            ));
        }
        (Some(id), None) if !valid_job_id(id) => {
            return Err(ApiError::BadRequest(
                "a job id is 1 to 128 letters, digits, `-`, `_`, `.` or `:`".into(),
            ));
        }
        (Some(id), None) => Some(id.clone()),
        (None, Some(key)) if key.is_empty() || key.len() > 256 => {
            return Err(ApiError::BadRequest(
                "an Idempotency-Key is 1 to 256 characters".into(),
            ));
        }
        (None, Some(key)) => Some(idempotent_id(caller.tenant(), &key)),
        (None, None) => None,
    };
    // Job ids are global: one that names another tenant's job is taken.
    let existed = match &id {
        Some(id) => match find_record(&state, id).await? {
            Some(existing) if !caller.can_see(&existing) => {
                return Err(ApiError::Conflict(id.clone()));
            }
            Some(_) => true,
            None => false,
        },
        None => false,
    };
    let options = options_for(&state, &caller, id.as_deref(), &request)?;
    let tenant = caller.tenant().unwrap_or_default().to_owned();
    let counted = caller.tenant().is_some() && !existed;
    if counted {
        let limit = state.limits.queued(&tenant);
        if !state.tracker.reserve(&tenant, limit) {
            return Err(ApiError::QueueFull { limit });
        }
    }
    let accepted = Instant::now();
    let priority = request.priority;
    let handle = match state.pool.enqueue_variants(workflows, options).await {
        Ok(handle) => handle,
        Err(error) => {
            if counted {
                state.tracker.release(&tenant);
            }
            return Err(error.into());
        }
    };
    let record = handle.record();
    let id = record.id.to_string();
    if existed || state.tracker.is_tracked(&id) || !caller.can_see(&record) {
        // The id named a job made before (by an earlier request, or one meanwhile).
        if counted {
            state.tracker.release(&tenant);
        }
        if !caller.can_see(&record) {
            return Err(ApiError::Conflict(id));
        }
        return Ok(submitted(&record, false, None));
    }
    state.tracker.track(&id, &tenant, priority, counted);
    tokio::spawn(watch::watch(
        Arc::clone(&state),
        handle.clone(),
        Some(accepted),
    ));
    let Some(wait) = params.wait.filter(|w| *w > 0.0) else {
        return Ok(submitted(&record, true, None));
    };
    let wait = Duration::try_from_secs_f64(wait)
        .unwrap_or(state.config.limits.max_wait)
        .min(state.config.limits.max_wait);
    let stopping = state.stopping.clone();
    tokio::select! {
        _ = handle.result() => {}
        () = tokio::time::sleep(wait) => {}
        () = stopping.cancelled() => {}
    }
    let record = handle.record();
    let job = record
        .state
        .is_terminal()
        .then(|| JobView::of(&record, false));
    Ok(submitted(&record, true, job))
}

/// A job: state, attempts, server, outputs with download URLs, error, timings.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let record = visible_record(&state, &caller, &id).await?;
    let preview = state.tracker.preview(&id).is_some();
    Ok(Json(JobView::of(&record, preview)))
}

/// The caller's jobs (the admin's: everyone's), newest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListParams),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<JobList>, ApiError> {
    let limit = params.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let mut query = JobQuery::new(limit);
    match (&caller, &params.tenant) {
        (Caller::Tenant(tenant), _) => query = query.tenant(&**tenant),
        (Caller::Admin, Some(tenant)) => query = query.tenant(tenant.as_str()),
        (Caller::Admin, None) => {}
    }
    if let Some(states) = &params.state {
        query = query.states(parse_states(states).map_err(ApiError::BadRequest)?);
    }
    if let Some(cursor) = &params.cursor {
        query = query.after(cursor.as_str());
    }
    let page = state.store.list(&query).await.map_err(|e| match e {
        StoreError::Config(_) | StoreError::Corrupt(_) => {
            ApiError::BadRequest("invalid cursor".into())
        }
        other => other.into(),
    })?;
    // The store filters by tenant; this is the second lock on the same door.
    let jobs = page
        .jobs
        .iter()
        .filter(|r| caller.can_see(r))
        .map(|r| JobView::of(r, false))
        .collect();
    Ok(Json(JobList {
        jobs,
        next_cursor: page.next,
    }))
}

/// Cancels a job (a finished one stays as it is).
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 202, description = "Cancel requested", body = JobView),
        (status = 200, description = "The job had ended", body = JobView),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = visible_record(&state, &caller, &id).await?;
    if record.state.is_terminal() {
        return Ok((StatusCode::OK, Json(JobView::of(&record, false))).into_response());
    }
    if !state.pool.cancel(&id) {
        return Err(ApiError::Pool {
            code: "not_live",
            message: "the job is not live in this process; retry after it is taken over".into(),
        });
    }
    let record = state.pool.record(&id).unwrap_or(record);
    let status = if record.state == JobState::Cancelled {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(JobView::of(&record, false))).into_response())
}

/// The latest preview image of a running job.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/preview", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The image (JPEG or PNG)", content_type = "image/jpeg"),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn preview(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_record(&state, &caller, &id).await?;
    let preview = state
        .tracker
        .preview(&id)
        .ok_or_else(|| ApiError::not_found("preview"))?;
    let kind = match preview.format {
        pool_core::PreviewFormat::Png => "image/png",
        pool_core::PreviewFormat::Jpeg => "image/jpeg",
        _ => "application/octet-stream",
    };
    let mut response = Body::from(preview.image).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    response
        .headers_mut()
        .insert("x-preview-seq", HeaderValue::from(preview.seq));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_scoped_to_the_tenant() {
        let a = idempotent_id(Some("a"), "k");
        assert_eq!(a, idempotent_id(Some("a"), "k"));
        assert_ne!(a, idempotent_id(Some("b"), "k"));
        assert_ne!(
            idempotent_id(Some("ab"), "c"),
            idempotent_id(Some("a"), "bc")
        );
        assert!(valid_job_id(&a));
    }

    #[test]
    fn job_ids_are_plain_names() {
        assert!(valid_job_id("render-42:v1.final_2"));
        for bad in ["", "a/b", "a b", "../x", &"x".repeat(129)] {
            assert!(!valid_job_id(bad), "{bad:?}");
        }
    }
}
