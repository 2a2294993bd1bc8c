//! `GET /sim/stats`: the sim's own counters, read-only, for a test in another process (no
//! ComfyUI route; not under `/api`, never faulted nor counted).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::json;
use crate::shared::Shared;

/// The prompt counters, the most prompts held at once, and the prompts held now.
pub(super) async fn sim_stats(State(shared): State<Arc<Shared>>) -> Response {
    let queue_remaining = shared.life().queue_remaining();
    let body = {
        let stats = shared.stats.lock();
        json!({
            "prompts_received": stats.prompts_received,
            "prompts_accepted": stats.prompts_accepted,
            "prompts_rejected": stats.prompts_rejected,
            "prompts_executed": stats.prompts_executed,
            "prompts_failed": stats.prompts_failed,
            "prompts_interrupted": stats.prompts_interrupted,
            "max_prompts_held": stats.max_prompts_held,
            "queue_remaining": queue_remaining,
        })
    };
    json(StatusCode::OK, &body)
}
