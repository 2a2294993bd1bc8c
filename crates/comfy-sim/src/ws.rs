//! `GET /ws?clientId=…`: one WebSocket session.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::SinkExt;
use serde_json::{Value, json};

use crate::hub::text;
use crate::life::Life;
use crate::shared::Shared;

/// Bytes a socket reads at most at once. tungstenite zero-fills this much of its buffer
/// before every read: its default, 128 KiB, cost more than parsing the client's messages.
const READ_BUFFER: usize = 16 * 1024;

/// Most queued messages written before one flush.
const BATCH: usize = 64;

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let client_id = query
        .get("clientId")
        .filter(|id| !id.is_empty())
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let life = shared.life();
    ws.read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| session(shared, life, socket, client_id))
}

async fn session(shared: Arc<Shared>, life: Arc<Life>, mut socket: WebSocket, client_id: String) {
    if life.is_over() {
        // The server crashed between the upgrade request and now: the socket just drops.
        return;
    }
    let mut reg = life.hub.register(&client_id);
    shared.stats.lock().ws_connections += 1;
    let hello = text("status", life.status_data(Some(&client_id)));
    if socket.send(hello).await.is_err() {
        life.hub.unregister(reg.conn, &client_id);
        return;
    }
    if let Some(node) = life.running_node_for(&client_id) {
        life.hub
            .send_conn(reg.conn, text("executing", json!({"node": node})));
    }
    loop {
        tokio::select! {
            queued = reg.rx.recv() => {
                let Some(first) = queued else { break };
                let fed = socket.feed(first).await;
                reg.pace.written();
                if fed.is_err() {
                    break;
                }
                let mut sent = 1;
                while sent < BATCH {
                    let Ok(next) = reg.rx.try_recv() else { break };
                    let fed = socket.feed(next).await;
                    reg.pace.written();
                    if fed.is_err() {
                        break;
                    }
                    sent += 1;
                }
                if socket.flush().await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Text(frame))) => {
                        let parsed: Value = serde_json::from_str(frame.as_str()).unwrap_or(Value::Null);
                        if parsed.get("type").and_then(Value::as_str) == Some("feature_flags") {
                            let wants = parsed
                                .get("data")
                                .and_then(|d| d.get("supports_preview_metadata"))
                                .and_then(Value::as_bool)
                                .unwrap_or(false);
                            reg.preview_metadata.store(wants, Ordering::Relaxed);
                            let answer = text("feature_flags", shared.version.features());
                            if socket.send(answer).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                }
            }
            () = life.token.cancelled() => break,
        }
    }
    reg.pace.close();
    life.hub.unregister(reg.conn, &client_id);
}
