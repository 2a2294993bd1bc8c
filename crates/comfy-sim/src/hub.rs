//! The WebSocket registry: which socket speaks for which client id, and fan-out of messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

/// One open socket.
struct Conn {
    tx: mpsc::UnboundedSender<Message>,
    preview_metadata: Arc<AtomicBool>,
}

#[derive(Default)]
struct HubInner {
    next_conn: u64,
    conns: HashMap<u64, Conn>,
    /// ComfyUI's `sockets` dict: the latest socket of each client id. Only these hear anything.
    by_client: HashMap<String, u64>,
}

/// What a newly registered socket needs to run.
pub(crate) struct Registration {
    pub(crate) conn: u64,
    pub(crate) rx: mpsc::UnboundedReceiver<Message>,
    pub(crate) preview_metadata: Arc<AtomicBool>,
}

/// All sockets of one server life.
#[derive(Default)]
pub(crate) struct Hub {
    inner: Mutex<HubInner>,
}

/// Encodes `{"type": kind, "data": data}` as a text frame.
pub(crate) fn text(kind: &str, data: Value) -> Message {
    let mut frame = serde_json::Map::new();
    frame.insert("type".to_owned(), Value::from(kind));
    frame.insert("data".to_owned(), data);
    Message::Text(Utf8Bytes::from(Value::Object(frame).to_string()))
}

impl Hub {
    /// Registers a socket for `client_id`; it takes over from an earlier socket of that id.
    pub(crate) fn register(&self, client_id: &str) -> Registration {
        let (tx, rx) = mpsc::unbounded_channel();
        let preview_metadata = Arc::new(AtomicBool::new(false));
        let mut inner = self.inner.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        inner.conns.insert(
            conn,
            Conn {
                tx,
                preview_metadata: Arc::clone(&preview_metadata),
            },
        );
        inner.by_client.insert(client_id.to_owned(), conn);
        Registration {
            conn,
            rx,
            preview_metadata,
        }
    }

    /// Forgets a closed socket.
    pub(crate) fn unregister(&self, conn: u64, client_id: &str) {
        let mut inner = self.inner.lock();
        inner.conns.remove(&conn);
        if inner.by_client.get(client_id) == Some(&conn) {
            inner.by_client.remove(client_id);
        }
    }

    /// Sends to the current socket of `client_id`, if any.
    pub(crate) fn send_to(&self, client_id: &str, message: Message) {
        let inner = self.inner.lock();
        if let Some(conn) = inner
            .by_client
            .get(client_id)
            .and_then(|c| inner.conns.get(c))
        {
            let _ = conn.tx.send(message);
        }
    }

    /// Sends to one socket by its connection number.
    pub(crate) fn send_conn(&self, conn: u64, message: Message) {
        if let Some(c) = self.inner.lock().conns.get(&conn) {
            let _ = c.tx.send(message);
        }
    }

    /// Sends to the current socket of every client id.
    pub(crate) fn broadcast(&self, message: &Message) {
        let inner = self.inner.lock();
        for conn in inner.by_client.values() {
            if let Some(c) = inner.conns.get(conn) {
                let _ = c.tx.send(message.clone());
            }
        }
    }

    /// Whether [`Hub::send_or_broadcast`] to `client_id` would reach any socket.
    pub(crate) fn reaches(&self, client_id: Option<&str>) -> bool {
        let inner = self.inner.lock();
        match client_id {
            Some(id) => inner.by_client.contains_key(id),
            None => !inner.by_client.is_empty(),
        }
    }

    /// Sends to `client_id` if given, else to everybody.
    pub(crate) fn send_or_broadcast(&self, client_id: Option<&str>, message: Message) {
        match client_id {
            Some(id) => self.send_to(id, message),
            None => self.broadcast(&message),
        }
    }

    /// Sends a PNG preview: event 4 with metadata to sockets that negotiated
    /// `supports_preview_metadata`, else event 1 (format 2 = PNG).
    pub(crate) fn send_preview(&self, client_id: Option<&str>, png: &Bytes, metadata: &Value) {
        let plain = || {
            let mut frame = BytesMut::with_capacity(8 + png.len());
            frame.put_u32(1);
            frame.put_u32(2);
            frame.put_slice(png);
            Message::Binary(frame.freeze())
        };
        let with_metadata = || {
            let meta = metadata.to_string();
            let mut frame = BytesMut::with_capacity(8 + meta.len() + png.len());
            frame.put_u32(4);
            frame.put_u32(u32::try_from(meta.len()).unwrap_or(u32::MAX));
            frame.put_slice(meta.as_bytes());
            frame.put_slice(png);
            Message::Binary(frame.freeze())
        };
        let inner = self.inner.lock();
        let targets: Vec<&u64> = match client_id {
            Some(id) => inner.by_client.get(id).into_iter().collect(),
            None => inner.by_client.values().collect(),
        };
        for conn in targets {
            if let Some(c) = inner.conns.get(conn) {
                let message = if c.preview_metadata.load(Ordering::Relaxed) {
                    with_metadata()
                } else {
                    plain()
                };
                let _ = c.tx.send(message);
            }
        }
    }

    /// Broadcasts a progress text (event 3): node-id length, node id, UTF-8 text.
    pub(crate) fn broadcast_text(&self, node_id: &str, text: &str) {
        let mut frame = BytesMut::with_capacity(8 + node_id.len() + text.len());
        frame.put_u32(3);
        frame.put_u32(u32::try_from(node_id.len()).unwrap_or(u32::MAX));
        frame.put_slice(node_id.as_bytes());
        frame.put_slice(text.as_bytes());
        self.broadcast(&Message::Binary(frame.freeze()));
    }

    /// Drops every socket: their tasks see the channel close and drop the connection.
    pub(crate) fn drop_all(&self) {
        let mut inner = self.inner.lock();
        inner.conns.clear();
        inner.by_client.clear();
    }

    /// Number of open sockets.
    pub(crate) fn open(&self) -> usize {
        self.inner.lock().conns.len()
    }
}
