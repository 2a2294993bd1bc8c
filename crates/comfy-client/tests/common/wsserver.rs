//! A scriptable websocket server on 127.0.0.1:0: each accepted connection follows the
//! next script; it records the handshake headers and the frames the client sent.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::any;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// What one connection does.
#[derive(Clone, Debug)]
pub enum Script {
    /// Send these frames, then stay open and answer pings.
    Send(Vec<Message>),
    /// Send these frames, then close.
    SendThenClose(Vec<Message>),
    /// Send these frames, then never read or write again (a stalled socket: no pongs).
    Silent(Vec<Message>),
}

/// What the server saw.
#[derive(Debug)]
pub enum Seen {
    /// A connection with its query and headers.
    Connect { query: String, headers: HeaderMap },
    /// A text frame from the client.
    Text(String),
}

#[derive(Clone)]
struct St {
    scripts: Arc<Mutex<VecDeque<Script>>>,
    seen: mpsc::UnboundedSender<Seen>,
}

/// The `status` frame ComfyUI sends first on every connection.
pub fn status() -> Message {
    Message::Text(
        r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "x"}}"#.into(),
    )
}

pub struct WsServer {
    pub url: String,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    scripts: Arc<Mutex<VecDeque<Script>>>,
}

impl WsServer {
    /// Starts a server; connections beyond the scripts get `Send(vec![status()])`.
    pub async fn start(scripts: Vec<Script>) -> Self {
        let scripts = Arc::new(Mutex::new(VecDeque::from(scripts)));
        let (tx, rx) = mpsc::unbounded_channel();
        let app = Router::new()
            .route("/{*rest}", any(handler))
            .with_state(St {
                scripts: Arc::clone(&scripts),
                seen: tx,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/"),
            seen: rx,
            scripts,
        }
    }

    /// Adds a script for a later connection.
    pub fn push(&self, script: Script) {
        self.scripts.lock().push_back(script);
    }

    /// The next connection's details.
    pub async fn next_connect(&mut self) -> (String, HeaderMap) {
        loop {
            match self.seen.recv().await.unwrap() {
                Seen::Connect { query, headers } => return (query, headers),
                Seen::Text(_) => {}
            }
        }
    }

    /// The next text frame the client sent.
    pub async fn next_text(&mut self) -> String {
        loop {
            if let Seen::Text(t) = self.seen.recv().await.unwrap() {
                return t;
            }
        }
    }
}

async fn handler(
    State(st): State<St>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let _ = st.seen.send(Seen::Connect {
        query: query.unwrap_or_default(),
        headers,
    });
    let script = st
        .scripts
        .lock()
        .pop_front()
        .unwrap_or_else(|| Script::Send(vec![status()]));
    ws.on_upgrade(move |socket| serve(socket, script, st.seen))
}

async fn serve(mut socket: WebSocket, script: Script, seen: mpsc::UnboundedSender<Seen>) {
    match script {
        Script::Silent(frames) => {
            for f in frames {
                if socket.send(f).await.is_err() {
                    return;
                }
            }
            // Hold the socket without polling it: no pong will ever be sent.
            std::future::pending::<()>().await;
            drop(socket);
        }
        Script::Send(frames) => {
            for f in frames {
                if socket.send(f).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(msg)) = socket.recv().await {
                if let Message::Text(t) = msg {
                    let _ = seen.send(Seen::Text(t.to_string()));
                }
            }
        }
        Script::SendThenClose(frames) => {
            for f in frames {
                if socket.send(f).await.is_err() {
                    return;
                }
            }
            let _ = socket.send(Message::Close(None)).await;
        }
    }
}
