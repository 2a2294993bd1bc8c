//! `/v1/admin/…`: the fleet (servers, blocks, stats, keys), for the admin key only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pool_core::{BlockReset, ServerId, WorkflowHash};
use pool_failover::PairState;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::Secret;
use crate::api_error::{ApiError, ErrorBody};
use crate::auth::AdminCaller;
use crate::config::{ServerAuth, ServerEntry};
use crate::fleet::server_config;
use crate::keys::issue_key;
use crate::state::AppState;
use crate::tracker::RecentJob;

/// One server of the pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerView {
    /// Its id.
    pub id: String,
    /// Its URL, without credentials.
    pub url: Option<String>,
    /// `connecting`, `online`, `offline`, `ejected`, `draining` or `removed`.
    pub state: String,
    /// Prompts running on it.
    pub in_flight: usize,
    /// Its slots.
    pub max_concurrent: usize,
    /// Attempts that succeeded on it.
    pub completed: u64,
    /// Attempts that failed on it.
    pub failed: u64,
    /// The error that took it offline.
    pub last_error: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
}

/// `POST /v1/admin/servers`: a server to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddServer {
    /// Its id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// A bearer token it wants.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Prompts at once (default 1).
    #[serde(default)]
    pub max_concurrent: Option<usize>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One tracked (server, workflow) pair of the failover strategy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    /// The server.
    pub server: String,
    /// The workflow's structural hash.
    pub hash: String,
    /// `watching`, `blocked`, `probation` or `probing`.
    pub state: String,
    /// Consecutive failures remembered.
    pub failures: u32,
    /// Blocks in a row.
    pub blocked_count: u32,
    /// The last failure's class.
    pub class: String,
    /// Milliseconds until the block (or the probe's slot) ends.
    pub remaining_ms: Option<u64>,
    /// Milliseconds since the last failure.
    pub last_failure_ms_ago: u64,
}

/// `POST /v1/admin/blocks/reset`: what to forget. Both: one pair; one: that workflow on
/// every server or that server for every workflow; `all`: everything.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBlocks {
    /// A server id.
    #[serde(default)]
    pub server: Option<String>,
    /// A workflow hash (hex).
    #[serde(default)]
    pub hash: Option<String>,
    /// Every pair.
    #[serde(default)]
    pub all: bool,
}

/// The answer of a reset.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetDone {
    /// Pairs whose block ended.
    pub unblocked: usize,
}

/// Queued jobs of one tenant at one priority.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueDepth {
    /// The tenant (empty for the admin's jobs).
    pub tenant: String,
    /// The priority.
    pub priority: i32,
    /// Jobs waiting.
    pub queued: u64,
}

/// `GET /v1/admin/stats`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsView {
    /// Jobs waiting for a server.
    pub queued: usize,
    /// Jobs waiting out a retry backoff.
    pub retry_wait: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs completed since the start.
    pub completed: u64,
    /// Jobs failed since the start.
    pub failed: u64,
    /// Jobs cancelled since the start.
    pub cancelled: u64,
    /// Queue depth per tenant and priority.
    pub queue: Vec<QueueDepth>,
    /// Pairs blocked or probing now.
    pub active_blocks: usize,
    /// The servers.
    pub servers: Vec<ServerView>,
    /// Recently finished jobs, newest first.
    pub recent: Vec<RecentJob>,
}

/// `POST /v1/admin/keys`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// The tenant.
    pub tenant: String,
}

/// A new key, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewKeyView {
    /// The key's public id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The key: shown this once, only its hash is kept.
    pub key: String,
}

fn pair_state(state: &PairState, now: Instant) -> (String, Option<u64>) {
    let left = |until: &Instant| {
        Some(u64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX))
    };
    match state {
        PairState::Watching => ("watching".into(), None),
        PairState::Blocked { until } => ("blocked".into(), left(until)),
        PairState::Probation => ("probation".into(), None),
        PairState::Probing { deadline } => ("probing".into(), left(deadline)),
        _ => ("unknown".into(), None),
    }
}

async fn servers(state: &AppState) -> Result<Vec<ServerView>, ApiError> {
    let stats = state.pool.stats().await?;
    Ok(stats
        .servers
        .iter()
        .map(|s| {
            let (url, tags) = state.fleet.describe(s.id.as_str()).unzip();
            ServerView {
                id: s.id.to_string(),
                url,
                state: s.state.to_string(),
                in_flight: s.in_flight,
                max_concurrent: s.max_concurrent,
                completed: s.completed,
                failed: s.failed,
                last_error: s.last_error.clone(),
                tags: tags.unwrap_or_default(),
            }
        })
        .collect())
}

/// The servers: state, load, counters.
#[utoipa::path(
    get, path = "/v1/admin/servers", tag = "admin",
    responses((status = 200, body = Vec<ServerView>), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list_servers(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
) -> Result<Json<Vec<ServerView>>, ApiError> {
    servers(&state).await.map(Json)
}

/// Adds a server while the pool runs.
#[utoipa::path(
    post, path = "/v1/admin/servers", tag = "admin",
    request_body = AddServer,
    responses(
        (status = 201, description = "Added"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn add_server(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
    Json(request): Json<AddServer>,
) -> Result<StatusCode, ApiError> {
    let mut entry = ServerEntry::new(request.id, request.url);
    entry.max_concurrent = request.max_concurrent.unwrap_or(1);
    entry.tags = request.tags;
    entry.auth = request
        .bearer_token
        .map(|t| ServerAuth::Bearer(Secret::new(t)));
    let mut probe = crate::Config::for_embedding("an-admin-key-long-enough");
    probe.servers = vec![entry.clone()];
    probe.validate().map_err(|e| match e {
        crate::ConfigError::Invalid { key, reason, .. } => {
            ApiError::BadRequest(format!("{}: {reason}", key.replace("servers[0].", "")))
        }
        other => ApiError::BadRequest(other.to_string()),
    })?;
    state.pool.add_server(server_config(&entry)).await?;
    state.fleet.add(&entry);
    Ok(StatusCode::CREATED)
}

/// Removes a server at once (its running jobs go back to the queue).
#[utoipa::path(
    delete, path = "/v1/admin/servers/{id}", tag = "admin",
    params(("id" = String, Path, description = "The server id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn remove_server(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.pool.remove_server(id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Drains a server: no new work; it leaves once its running jobs end.
#[utoipa::path(
    post, path = "/v1/admin/servers/{id}/drain", tag = "admin",
    params(("id" = String, Path, description = "The server id")),
    responses((status = 202, description = "Draining"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn drain_server(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.pool.drain_server(id.as_str()).await?;
    Ok(StatusCode::ACCEPTED)
}

fn blocks(state: &AppState) -> Vec<BlockView> {
    let now = Instant::now();
    state
        .pool
        .strategy()
        .snapshot(now)
        .into_iter()
        .map(|pair| {
            let (name, remaining_ms) = pair_state(&pair.state, now);
            BlockView {
                server: pair.server.to_string(),
                hash: pair.hash.to_string(),
                state: name,
                failures: pair.consecutive_failures,
                blocked_count: pair.blocked_count,
                class: pair.last_class.to_string(),
                remaining_ms,
                last_failure_ms_ago: u64::try_from(
                    now.saturating_duration_since(pair.last_failure).as_millis(),
                )
                .unwrap_or(u64::MAX),
            }
        })
        .collect()
}

/// Every (server, workflow) pair the strategy tracks, with the time left on its block.
#[utoipa::path(
    get, path = "/v1/admin/blocks", tag = "admin",
    responses((status = 200, body = Vec<BlockView>), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list_blocks(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
) -> Json<Vec<BlockView>> {
    Json(blocks(&state))
}

/// Resets blocks: one pair, one workflow, one server, or all.
#[utoipa::path(
    post, path = "/v1/admin/blocks/reset", tag = "admin",
    request_body = ResetBlocks,
    responses((status = 200, body = ResetDone), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn reset_blocks(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
    Json(request): Json<ResetBlocks>,
) -> Result<Json<ResetDone>, ApiError> {
    let hash = request
        .hash
        .as_deref()
        .map(|h| {
            h.parse::<WorkflowHash>()
                .map_err(|_| ApiError::BadRequest("hash is not a workflow hash".into()))
        })
        .transpose()?;
    let server = request.server.map(ServerId::from);
    let scope = match (server, hash, request.all) {
        (None, None, true) => BlockReset::All,
        (Some(server), Some(hash), false) => BlockReset::Pair(server, hash),
        (None, Some(hash), false) => BlockReset::Workflow(hash),
        (Some(server), None, false) => BlockReset::Server(server),
        _ => {
            return Err(ApiError::BadRequest(
                "give server and/or hash, or all: true alone".into(),
            ));
        }
    };
    // Through the pool: the pool-wide stream reports each `Unblocked`, and the store forgets
    // the blocks so a restart does not bring them back.
    let unblocked = state.pool.reset_blocks(scope).await?;
    Ok(Json(ResetDone { unblocked }))
}

/// Queue depths, counters, servers, blocks and recent jobs, in one answer (the
/// dashboard's).
#[utoipa::path(
    get, path = "/v1/admin/stats", tag = "admin",
    responses((status = 200, body = StatsView), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn stats(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
) -> Result<Json<StatsView>, ApiError> {
    let stats = state.pool.stats().await?;
    let queue = state
        .tracker
        .queue_depth()
        .into_iter()
        .map(|((tenant, priority), queued)| QueueDepth {
            tenant,
            priority,
            queued,
        })
        .collect();
    Ok(Json(StatsView {
        queued: stats.queued,
        retry_wait: stats.retry_wait,
        running: stats.running,
        completed: stats.completed,
        failed: stats.failed,
        cancelled: stats.cancelled,
        queue,
        active_blocks: stats.blocks.iter().filter(|b| b.is_blocked()).count(),
        servers: servers(&state).await?,
        recent: state.tracker.recent(),
    }))
}

/// Makes an API key for a tenant and stores its hash; the key is in this answer only.
#[utoipa::path(
    post, path = "/v1/admin/keys", tag = "admin",
    request_body = NewKeyRequest,
    responses((status = 201, body = NewKeyView), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn new_key(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
    Json(request): Json<NewKeyRequest>,
) -> Result<(StatusCode, Json<NewKeyView>), ApiError> {
    if !crate::config::is_name(&request.tenant) {
        return Err(ApiError::BadRequest(
            "a tenant is 1 to 64 letters, digits, `-`, `_` or `.`".into(),
        ));
    }
    let key = issue_key(state.store.as_ref(), &request.tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyView {
            id: key.record.id.clone(),
            tenant: request.tenant,
            key: key.secret,
        }),
    ))
}
