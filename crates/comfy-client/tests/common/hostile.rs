//! A hostile ComfyUI on 127.0.0.1:0, for the limits of a run: its `/queue` and `/history`
//! answers can be garbage, of the wrong type, endless (100 MB) or never come; its websocket
//! can be refused, stay up but silent, or send whatever frames the test generates once a
//! prompt is submitted (a flood, or a stream paced by the server). It counts the requests
//! it answered and the bytes of the endless answers it managed to send.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;

/// How `/queue` or `/history/{id}` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Like ComfyUI while the prompt runs: in `queue_running`; no history entry.
    Running,
    /// Like ComfyUI once the prompt succeeded: not queued; a history entry with one image.
    Finished,
    /// `200` with a body that is not JSON.
    Garbage,
    /// `200` with JSON of the wrong shape.
    WrongType,
    /// `200` with 100 MB of JSON whitespace, streamed without a length.
    Huge,
    /// Never answers.
    Frozen,
}

/// The frame number `i` the socket sends for prompt `id`, `None` when done.
pub type Frames = Arc<dyn Fn(&str, u64) -> Option<Message> + Send + Sync>;

/// What the websocket does.
#[derive(Clone)]
pub enum Socket {
    /// The upgrade is refused (404): the client's socket never opens.
    Refused,
    /// `status`, then nothing more (pings are answered).
    Silent,
    /// `status`, then, once a prompt is submitted, the generated frames, one every `pace`
    /// (as fast as the client reads when `None`), then nothing more (pings are answered).
    Frames {
        frames: Frames,
        pace: Option<Duration>,
    },
}

/// Bytes of the endless answer.
pub const HUGE_BYTES: u64 = 100 * 1000 * 1000;
const HUGE_CHUNK: usize = 64 * 1024;

struct St {
    queue: Mutex<Answer>,
    history: Mutex<Answer>,
    socket: Socket,
    prompt: watch::Sender<Option<String>>,
    queue_requests: AtomicU64,
    history_requests: watch::Sender<u64>,
    huge_sent: Arc<AtomicU64>,
}

/// The server and the test's side of it.
pub struct Hostile {
    pub url: String,
    st: Arc<St>,
}

impl Hostile {
    /// Starts a server whose `/queue` and `/history/{id}` answer as given.
    pub async fn start(queue: Answer, history: Answer, socket: Socket) -> Self {
        let st = Arc::new(St {
            queue: Mutex::new(queue),
            history: Mutex::new(history),
            socket,
            prompt: watch::channel(None).0,
            queue_requests: AtomicU64::new(0),
            history_requests: watch::channel(0).0,
            huge_sent: Arc::new(AtomicU64::new(0)),
        });
        let app = Router::new()
            .route("/ws", get(ws))
            .route("/prompt", post(prompt))
            .route("/queue", get(queue_route))
            .route("/history/{id}", get(history_route))
            .with_state(Arc::clone(&st));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/"),
            st,
        }
    }

    /// Changes how `/queue` answers from now on.
    pub fn set_queue(&self, answer: Answer) {
        *self.st.queue.lock() = answer;
    }

    /// Changes how `/history/{id}` answers from now on.
    pub fn set_history(&self, answer: Answer) {
        *self.st.history.lock() = answer;
    }

    /// `GET /queue` requests received.
    pub fn queue_requests(&self) -> u64 {
        self.st.queue_requests.load(Ordering::SeqCst)
    }

    /// `GET /history/{id}` requests received.
    pub fn history_requests(&self) -> u64 {
        *self.st.history_requests.borrow()
    }

    /// Waits until `/history/{id}` was requested at least once.
    pub async fn history_requested(&self) {
        let mut rx = self.st.history_requests.subscribe();
        rx.wait_for(|n| *n > 0).await.unwrap();
    }

    /// Bytes of endless answers the client took before hanging up.
    pub fn huge_bytes_sent(&self) -> u64 {
        self.st.huge_sent.load(Ordering::SeqCst)
    }

    /// Waits until a prompt was submitted; returns its id.
    pub async fn submitted(&self) -> String {
        let mut rx = self.st.prompt.subscribe();
        let id = rx.wait_for(Option::is_some).await.unwrap();
        id.clone().unwrap_or_default()
    }
}

/// A text frame `{"type": kind, "data": data}`.
pub fn text(kind: &str, data: Value) -> Message {
    let mut frame = serde_json::Map::new();
    frame.insert("type".to_owned(), kind.into());
    frame.insert("data".to_owned(), data);
    Message::Text(Value::Object(frame).to_string().into())
}

/// A type-1 binary frame (PNG format code) holding `image`.
pub fn preview(image: &[u8]) -> Message {
    let mut frame = Vec::with_capacity(8 + image.len());
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&2u32.to_be_bytes());
    frame.extend_from_slice(image);
    Message::Binary(frame.into())
}

/// A type-3 binary frame: progress text of `node`.
pub fn node_text(node: &str, text: &str) -> Message {
    let mut frame = Vec::with_capacity(8 + node.len() + text.len());
    frame.extend_from_slice(&3u32.to_be_bytes());
    frame.extend_from_slice(&u32::try_from(node.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(node.as_bytes());
    frame.extend_from_slice(text.as_bytes());
    Message::Binary(frame.into())
}

/// The end of a successful run: `execution_success`, then `executing(null)`.
pub fn success_end(id: &str) -> [Message; 2] {
    [
        text(
            "execution_success",
            json!({"prompt_id": id, "timestamp": 2}),
        ),
        text("executing", json!({"node": null, "prompt_id": id})),
    ]
}

fn image() -> Value {
    json!({"filename": "out_00001_.png", "subfolder": "", "type": "output"})
}

async fn prompt(State(st): State<Arc<St>>, body: axum::Json<Value>) -> Response {
    let id = body["prompt_id"]
        .as_str()
        .unwrap_or("hostile-id")
        .to_owned();
    st.prompt.send_replace(Some(id.clone()));
    axum::Json(json!({"prompt_id": id, "number": 1, "node_errors": {}})).into_response()
}

async fn queue_route(State(st): State<Arc<St>>) -> Response {
    st.queue_requests.fetch_add(1, Ordering::SeqCst);
    let answer = *st.queue.lock();
    let running = st.prompt.borrow().clone().unwrap_or_default();
    match answer {
        Answer::Running => axum::Json(json!({
            "queue_running": [[1, running, {}, {"client_id": "someone"}, []]],
            "queue_pending": []
        }))
        .into_response(),
        Answer::Finished => {
            axum::Json(json!({"queue_running": [], "queue_pending": []})).into_response()
        }
        other => hostile(other, &st).await,
    }
}

async fn history_route(State(st): State<Arc<St>>, Path(id): Path<String>) -> Response {
    st.history_requests.send_modify(|n| *n += 1);
    let answer = *st.history.lock();
    match answer {
        Answer::Running => axum::Json(json!({})).into_response(),
        Answer::Finished => axum::Json(json!({ id.clone(): {
            "prompt": [1, id, {}, {"client_id": "someone"}, ["9"]],
            "outputs": {"9": {"images": [image()]}},
            "status": {"status_str": "success", "completed": true, "messages": []},
            "meta": {}
        }}))
        .into_response(),
        other => hostile(other, &st).await,
    }
}

async fn hostile(answer: Answer, st: &St) -> Response {
    match answer {
        Answer::Garbage => (StatusCode::OK, "<html>not json {").into_response(),
        Answer::WrongType => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"queue_running": 5, "queue_pending": "x", "abc": {"outputs": 7}}"#,
        )
            .into_response(),
        Answer::Huge => {
            let sent = Arc::clone(&st.huge_sent);
            let chunks = HUGE_BYTES.div_ceil(HUGE_CHUNK as u64);
            let body = futures_util::stream::iter(0..chunks).map(move |_| {
                sent.fetch_add(HUGE_CHUNK as u64, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(Bytes::from(vec![b' '; HUGE_CHUNK]))
            });
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                Body::from_stream(body),
            )
                .into_response()
        }
        _ => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

async fn ws(State(st): State<Arc<St>>, upgrade: WebSocketUpgrade) -> Response {
    if matches!(st.socket, Socket::Refused) {
        return StatusCode::NOT_FOUND.into_response();
    }
    upgrade.on_upgrade(move |socket| serve(socket, st))
}

async fn serve(mut socket: WebSocket, st: Arc<St>) {
    let hello = text(
        "status",
        json!({"status": {"exec_info": {"queue_remaining": 0}}, "sid": "hostile"}),
    );
    if socket.send(hello).await.is_err() {
        return;
    }
    if let Socket::Frames { frames, pace } = &st.socket {
        let mut submitted = st.prompt.subscribe();
        let id = tokio::select! {
            id = submitted.wait_for(Option::is_some) => id.map(|id| id.clone().unwrap_or_default()),
            () = drain(&mut socket) => return,
        };
        let Ok(id) = id else { return };
        let mut i = 0;
        while let Some(frame) = frames(&id, i) {
            if let Some(pace) = pace {
                tokio::time::sleep(*pace).await;
            }
            if socket.send(frame).await.is_err() {
                return;
            }
            i += 1;
        }
    }
    drain(&mut socket).await;
}

/// Reads (and so answers pings) until the client goes away.
async fn drain(socket: &mut WebSocket) {
    while let Some(Ok(_)) = socket.recv().await {}
}
