//! `GET /prompt` and `POST /prompt`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{internal_error, json, parse_json};
use crate::life::QueueItem;
use crate::shared::Shared;
use crate::stats::{ReceivedPrompt, StatKeys};
use crate::validate::{rejection, validate};
use crate::version::ComfyVersion;

pub(super) async fn get_prompt(State(shared): State<Arc<Shared>>) -> Response {
    let remaining = shared.life().queue_remaining();
    json(
        StatusCode::OK,
        &json!({"exec_info": {"queue_remaining": remaining}}),
    )
}

pub(super) async fn post_prompt(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(Value::Object(body)) = parse_json(&body) else {
        return internal_error();
    };
    let life = shared.life();
    let counter = life.next_number();
    let front = body.get("front").is_some_and(truthy);
    let (number, order) = match body.get("number").and_then(Value::as_f64) {
        Some(n) => {
            let n = if front { -n } else { n };
            (json!(n), n)
        }
        None => {
            let n = i64::try_from(counter).unwrap_or(i64::MAX);
            let n = if front { -n } else { n };
            (json!(n), n as f64)
        }
    };
    let Some(prompt) = body.get("prompt") else {
        return json(
            StatusCode::BAD_REQUEST,
            &rejection(
                "no_prompt",
                "No prompt provided",
                "No prompt provided",
                Map::new(),
            ),
        );
    };
    let prompt_id = body
        .get("prompt_id")
        .and_then(Value::as_str)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let mut extra_data = match body.get("extra_data") {
        Some(Value::Object(extra)) => extra.clone(),
        _ => Map::new(),
    };
    let client_id = body
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(client_id) = &client_id {
        extra_data.insert("client_id".into(), Value::from(client_id.as_str()));
    }
    if shared.version == ComfyVersion::V0_8 {
        extra_data.insert("create_time".into(), Value::from(crate::run::now_ms()));
    }
    let extra_data = Value::Object(extra_data);
    let keys = StatKeys::of(prompt, &extra_data);

    let verdict = match prompt.as_object() {
        Some(nodes) => validate(&shared, nodes),
        None => Err(rejection(
            "invalid_prompt",
            "Cannot execute because a node is missing the class_type property.",
            "Node ID '#'",
            Map::new(),
        )),
    };
    let received = |accepted| {
        ReceivedPrompt::new(
            prompt_id.clone(),
            prompt.clone(),
            extra_data.clone(),
            accepted,
        )
    };
    match verdict {
        Err(body) => {
            shared.stats.lock().record_prompt(&keys, received(false));
            json(StatusCode::BAD_REQUEST, &body)
        }
        Ok(valid) => {
            shared.stats.lock().record_prompt(&keys, received(true));
            let answer = json!({
                "prompt_id": prompt_id,
                "number": number,
                "node_errors": valid.node_errors,
            });
            let held = life.enqueue(QueueItem {
                number,
                order,
                seq: life.next_seq(),
                prompt_id,
                prompt: Arc::new(prompt.clone()),
                extra_data,
                outputs: valid.outputs,
                client_id: client_id.clone(),
                keys,
            });
            shared.record_held(&life, client_id.as_deref(), held);
            json(StatusCode::OK, &answer)
        }
    }
}

/// Python truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
