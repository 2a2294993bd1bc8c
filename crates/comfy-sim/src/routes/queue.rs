//! Queue, interrupt, free and history routes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::{empty, internal_error, json, parse_json};
use crate::shared::Shared;

pub(super) async fn get_queue(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &shared.life().queue_json())
}

/// `{"delete": [ids]}` and/or `{"clear": true}`.
pub(super) async fn post_queue(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return internal_error();
    };
    let life = shared.life();
    let mut changed = false;
    if body.get("clear").and_then(Value::as_bool) == Some(true) {
        life.clear_pending();
        changed = true;
    }
    let ids = id_list(&body);
    if !ids.is_empty() && life.delete_pending(&ids) > 0 {
        changed = true;
    }
    if changed {
        life.broadcast_status();
    }
    empty(StatusCode::OK)
}

/// No body, `{}`, or `{"prompt_id": id}`.
pub(super) async fn interrupt(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = parse_json(&body).unwrap_or(Value::Null);
    let prompt_id = body.get("prompt_id").and_then(Value::as_str);
    shared.life().interrupt(prompt_id);
    empty(StatusCode::OK)
}

/// `{"unload_models": bool, "free_memory": bool}`: drops the node cache.
pub(super) async fn free(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return internal_error();
    };
    let flag = |k: &str| body.get(k).and_then(Value::as_bool) == Some(true);
    if flag("unload_models") || flag("free_memory") {
        shared.life().clear_cache();
    }
    empty(StatusCode::OK)
}

pub(super) async fn get_history(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let max_items = query.get("max_items").and_then(|m| m.parse::<usize>().ok());
    json(StatusCode::OK, &shared.life().history_json(max_items))
}

pub(super) async fn get_history_one(
    State(shared): State<Arc<Shared>>,
    Path(prompt_id): Path<String>,
) -> Response {
    json(StatusCode::OK, &shared.life().history_one(&prompt_id))
}

/// `{"delete": [ids]}` and/or `{"clear": true}`.
pub(super) async fn post_history(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return internal_error();
    };
    let life = shared.life();
    if body.get("clear").and_then(Value::as_bool) == Some(true) {
        life.clear_history();
    }
    let ids = id_list(&body);
    if !ids.is_empty() {
        life.delete_history(&ids);
    }
    empty(StatusCode::OK)
}

fn id_list(body: &Value) -> Vec<String> {
    body.get("delete")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
