//! A scripted ComfyUI on 127.0.0.1:0 for races the simulator cannot stage: the test
//! decides when the websocket sends its first frame and every frame after it, and learns
//! when the client submits a prompt and when it reads its history. Every submitted prompt
//! is finished at once (empty queue, successful history entry with one image of node 9).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

#[derive(Clone)]
struct St {
    open: Arc<Notify>,
    frames: Arc<Mutex<Option<mpsc::UnboundedReceiver<String>>>>,
    prompts: mpsc::UnboundedSender<String>,
    histories: mpsc::UnboundedSender<String>,
}

/// The server and the test's side of it.
pub struct FakeComfy {
    pub url: String,
    open: Arc<Notify>,
    frames: mpsc::UnboundedSender<String>,
    prompts: mpsc::UnboundedReceiver<String>,
    histories: mpsc::UnboundedReceiver<String>,
}

impl FakeComfy {
    /// Starts the server. Its one websocket stays silent (so the client does not count
    /// it as open) until [`open`](Self::open).
    pub async fn start() -> Self {
        let (frames_tx, frames_rx) = mpsc::unbounded_channel();
        let (prompts_tx, prompts) = mpsc::unbounded_channel();
        let (histories_tx, histories) = mpsc::unbounded_channel();
        let open = Arc::new(Notify::new());
        let st = St {
            open: Arc::clone(&open),
            frames: Arc::new(Mutex::new(Some(frames_rx))),
            prompts: prompts_tx,
            histories: histories_tx,
        };
        let app = Router::new()
            .route("/ws", get(ws))
            .route("/prompt", post(prompt))
            .route("/queue", get(queue))
            .route("/history/{id}", get(history))
            .with_state(st);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/"),
            open,
            frames: frames_tx,
            prompts,
            histories,
        }
    }

    /// Lets the websocket send its first frame (`status`).
    pub fn open(&self) {
        self.open.notify_one();
    }

    /// Sends text frames `{"type": kind, "data": data}` on the websocket, in order.
    pub fn send(&self, frames: &[(&str, Value)]) {
        for (kind, data) in frames {
            let frame = json!({ "type": kind, "data": data }).to_string();
            self.frames.send(frame).unwrap();
        }
    }

    /// The id of the next submitted prompt.
    pub async fn next_prompt(&mut self) -> String {
        self.prompts.recv().await.unwrap()
    }

    /// The prompt id of the next history request.
    pub async fn next_history(&mut self) -> String {
        self.histories.recv().await.unwrap()
    }
}

/// The frames of a successful run of `id`: node 9 executes and outputs one image, after
/// `progress_steps` progress messages.
pub fn success_frames(id: &str, progress_steps: u32) -> Vec<(&'static str, Value)> {
    let mut frames = vec![
        ("execution_start", json!({"prompt_id": id, "timestamp": 1})),
        (
            "execution_cached",
            json!({"nodes": [], "prompt_id": id, "timestamp": 1}),
        ),
        (
            "executing",
            json!({"node": "9", "display_node": "9", "prompt_id": id}),
        ),
    ];
    for step in 1..=progress_steps {
        frames.push((
            "progress",
            json!({"value": step, "max": progress_steps, "prompt_id": id, "node": "9"}),
        ));
    }
    frames.extend([
        ("executed", json!({"node": "9", "display_node": "9", "output": {"images": [image()]}, "prompt_id": id})),
        ("execution_success", json!({"prompt_id": id, "timestamp": 2})),
        ("executing", json!({"node": null, "display_node": null, "prompt_id": id})),
    ]);
    frames
}

fn image() -> Value {
    json!({"filename": "out_00001_.png", "subfolder": "", "type": "output"})
}

async fn ws(State(st): State<St>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| serve(socket, st))
}

async fn serve(mut socket: WebSocket, st: St) {
    let Some(mut frames) = st.frames.lock().take() else {
        return;
    };
    st.open.notified().await;
    let status = json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "x"}});
    if socket
        .send(Message::Text(status.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(f) => {
                    if socket.send(Message::Text(f.into())).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            msg = socket.recv() => if !matches!(msg, Some(Ok(_))) {
                return;
            },
        }
    }
}

async fn prompt(State(st): State<St>, Json(body): Json<Value>) -> Json<Value> {
    let id = body["prompt_id"].as_str().unwrap_or("fake-id").to_owned();
    let _ = st.prompts.send(id.clone());
    Json(json!({"prompt_id": id, "number": 1, "node_errors": {}}))
}

async fn queue() -> Json<Value> {
    Json(json!({"queue_running": [], "queue_pending": []}))
}

async fn history(State(st): State<St>, Path(id): Path<String>) -> Json<Value> {
    let _ = st.histories.send(id.clone());
    Json(json!({ id: {
        "outputs": {"9": {"images": [image()]}},
        "status": {"status_str": "success", "completed": true, "messages": []},
        "meta": {}
    }}))
}
