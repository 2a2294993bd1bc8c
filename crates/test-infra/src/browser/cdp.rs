//! The DevTools connection: numbered commands over one websocket, each answered by the message
//! carrying its number. A reader task routes answers to their callers; events (messages
//! without a number) are not needed by the driver and are dropped.

use super::BrowserError;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one command may take (a navigation answers when the page has committed).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An answer: the command's result, or Chromium's error message.
type Answer = Result<Value, String>;

/// Callers waiting for their answers, by command number.
type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// One DevTools websocket.
#[derive(Debug)]
pub(crate) struct Cdp {
    next_id: AtomicU64,
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    waiting: Waiting,
    reader: JoinHandle<()>,
}

impl Cdp {
    /// Connects to the browser's websocket (`ws://127.0.0.1:PORT/devtools/browser/ID`).
    pub(crate) async fn connect(url: &str) -> Result<Cdp, BrowserError> {
        let (socket, _) =
            tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| BrowserError::Connect {
                    reason: e.to_string(),
                })?;
        let (sink, mut stream) = socket.split();
        let waiting = Waiting::default();
        let routes = Arc::clone(&waiting);
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Text(text) => route(&routes, &text),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            // Dropping the senders tells every caller still waiting that the connection is gone.
            lock(&routes).clear();
        });
        Ok(Cdp {
            next_id: AtomicU64::new(1),
            sink: tokio::sync::Mutex::new(sink),
            waiting,
            reader,
        })
    }

    /// Sends `method` with `params` (to the page of `session`, or to the browser) and returns
    /// its result.
    pub(crate) async fn call(
        &self,
        session: Option<&str>,
        method: &'static str,
        params: Value,
    ) -> Result<Value, BrowserError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = Value::from(session);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id, tx);
        let sent = self
            .sink
            .lock()
            .await
            .send(Message::text(command.to_string()))
            .await;
        if sent.is_err() {
            lock(&self.waiting).remove(&id);
            return Err(BrowserError::Closed);
        }
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Err(_) => {
                lock(&self.waiting).remove(&id);
                Err(BrowserError::Timeout {
                    what: format!("Chromium's answer to {method}"),
                    after: CALL_TIMEOUT,
                })
            }
            Ok(Err(_)) => Err(BrowserError::Closed),
            Ok(Ok(Err(message))) => Err(BrowserError::Protocol { method, message }),
            Ok(Ok(Ok(result))) => Ok(result),
        }
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Hands a numbered answer to its caller; anything else is an event or noise, and dropped.
fn route(waiting: &Waiting, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(id) = message.get("id").and_then(Value::as_u64) else {
        return;
    };
    let Some(caller) = lock(waiting).remove(&id) else {
        return;
    };
    let answer = match message.get("error") {
        Some(error) => Err(error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned)),
        None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
    };
    // The caller may have timed out and gone; nothing to do then.
    let _ = caller.send(answer);
}

/// The waiting map; a panic elsewhere cannot leave it inconsistent (single inserts/removes).
fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Answer>>> {
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}
