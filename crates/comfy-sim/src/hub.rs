//! The WebSocket registry: which socket speaks for which client id, and fan-out of messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

/// Most messages a flood lets wait for one socket's writer before it waits for room.
const FLOOD_BACKLOG: usize = 16;

/// The queue of one socket's writer as floods see it: how many messages wait, and a signal
/// when one was written or the socket went away.
#[derive(Default)]
pub(crate) struct Pace {
    queued: AtomicUsize,
    room: Notify,
    closed: AtomicBool,
}

impl Pace {
    /// Queues `message` for the writer, counted before it can be taken off.
    fn push(&self, tx: &mpsc::UnboundedSender<Message>, message: Message) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if tx.send(message).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The writer took one message off the queue and wrote it.
    pub(crate) fn written(&self) {
        let before = self.queued.fetch_sub(1, Ordering::AcqRel);
        if before <= FLOOD_BACKLOG {
            self.room.notify_waiters();
        }
    }

    /// The socket is gone: nobody waits for room in it any more.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }

    /// Waits until fewer than [`FLOOD_BACKLOG`] messages wait; false once the socket is gone.
    async fn room(&self) -> bool {
        loop {
            let written = self.room.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            if self.queued.load(Ordering::Acquire) < FLOOD_BACKLOG {
                return true;
            }
            written.await;
        }
    }
}

/// One open socket.
struct Conn {
    tx: mpsc::UnboundedSender<Message>,
    preview_metadata: Arc<AtomicBool>,
    pace: Arc<Pace>,
}

impl Conn {
    fn push(&self, message: Message) {
        self.pace.push(&self.tx, message);
    }
}

/// Who a message is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Audience<'a> {
    /// The current socket of one client id.
    Client(&'a str),
    /// The current socket of every client id.
    All,
}

impl<'a> Audience<'a> {
    /// One client if given, else everybody.
    pub(crate) fn client_or_all(client_id: Option<&'a str>) -> Self {
        client_id.map_or(Self::All, Self::Client)
    }
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
    pub(crate) pace: Arc<Pace>,
}

/// All sockets of one server life.
#[derive(Default)]
pub(crate) struct Hub {
    inner: Mutex<HubInner>,
}

/// A preview frame: event 4 with `metadata` (u32 length, JSON, image), or without metadata
/// event 1 with format 2 (PNG).
pub(crate) fn preview_frame(png: &[u8], metadata: Option<&Value>) -> Message {
    let frame = match metadata {
        Some(metadata) => {
            let meta = metadata.to_string();
            let mut frame = BytesMut::with_capacity(8 + meta.len() + png.len());
            frame.put_u32(4);
            frame.put_u32(u32::try_from(meta.len()).unwrap_or(u32::MAX));
            frame.put_slice(meta.as_bytes());
            frame.put_slice(png);
            frame
        }
        None => {
            let mut frame = BytesMut::with_capacity(8 + png.len());
            frame.put_u32(1);
            frame.put_u32(2);
            frame.put_slice(png);
            frame
        }
    };
    Message::Binary(frame.freeze())
}

/// A progress text frame (event 3): node-id length, node id, UTF-8 text.
pub(crate) fn text_frame(node_id: &str, text: &str) -> Message {
    let mut frame = BytesMut::with_capacity(8 + node_id.len() + text.len());
    frame.put_u32(3);
    frame.put_u32(u32::try_from(node_id.len()).unwrap_or(u32::MAX));
    frame.put_slice(node_id.as_bytes());
    frame.put_slice(text.as_bytes());
    Message::Binary(frame.freeze())
}

/// A text frame of JSON text put together by the caller.
pub(crate) fn text_json(frame: String) -> Message {
    Message::Text(Utf8Bytes::from(frame))
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
        let pace = Arc::new(Pace::default());
        let mut inner = self.inner.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        inner.conns.insert(
            conn,
            Conn {
                tx,
                preview_metadata: Arc::clone(&preview_metadata),
                pace: Arc::clone(&pace),
            },
        );
        inner.by_client.insert(client_id.to_owned(), conn);
        Registration {
            conn,
            rx,
            preview_metadata,
            pace,
        }
    }

    /// Forgets a closed socket.
    pub(crate) fn unregister(&self, conn: u64, client_id: &str) {
        let mut inner = self.inner.lock();
        if let Some(gone) = inner.conns.remove(&conn) {
            gone.pace.close();
        }
        if inner.by_client.get(client_id) == Some(&conn) {
            inner.by_client.remove(client_id);
        }
    }

    /// Sends one flood message to every socket of `to`, each only once fewer than a few
    /// messages wait for it; `message` gets whether the socket wants preview metadata.
    pub(crate) async fn send_paced(&self, to: Audience<'_>, message: impl Fn(bool) -> Message) {
        let targets: Vec<(mpsc::UnboundedSender<Message>, bool, Arc<Pace>)> = {
            let inner = self.inner.lock();
            let ids: Vec<&u64> = match to {
                Audience::Client(id) => inner.by_client.get(id).into_iter().collect(),
                Audience::All => inner.by_client.values().collect(),
            };
            ids.into_iter()
                .filter_map(|id| inner.conns.get(id))
                .map(|c| {
                    let metadata = c.preview_metadata.load(Ordering::Relaxed);
                    (c.tx.clone(), metadata, Arc::clone(&c.pace))
                })
                .collect()
        };
        for (tx, metadata, pace) in targets {
            if pace.room().await {
                pace.push(&tx, message(metadata));
            }
        }
    }

    /// Messages queued for sockets and not written yet, over every socket.
    pub(crate) fn backlog(&self) -> usize {
        let inner = self.inner.lock();
        inner
            .conns
            .values()
            .map(|c| c.pace.queued.load(Ordering::Acquire))
            .sum()
    }

    /// Sends to the current socket of `client_id`, if any.
    pub(crate) fn send_to(&self, client_id: &str, message: Message) {
        let inner = self.inner.lock();
        if let Some(conn) = inner
            .by_client
            .get(client_id)
            .and_then(|c| inner.conns.get(c))
        {
            conn.push(message);
        }
    }

    /// Sends to one socket by its connection number.
    pub(crate) fn send_conn(&self, conn: u64, message: Message) {
        if let Some(c) = self.inner.lock().conns.get(&conn) {
            c.push(message);
        }
    }

    /// Sends to the current socket of every client id.
    pub(crate) fn broadcast(&self, message: &Message) {
        let inner = self.inner.lock();
        for conn in inner.by_client.values() {
            if let Some(c) = inner.conns.get(conn) {
                c.push(message.clone());
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
        let inner = self.inner.lock();
        let targets: Vec<&u64> = match client_id {
            Some(id) => inner.by_client.get(id).into_iter().collect(),
            None => inner.by_client.values().collect(),
        };
        for conn in targets {
            if let Some(c) = inner.conns.get(conn) {
                let message = if c.preview_metadata.load(Ordering::Relaxed) {
                    preview_frame(png, Some(metadata))
                } else {
                    preview_frame(png, None)
                };
                c.push(message);
            }
        }
    }

    /// Broadcasts a progress text (event 3).
    pub(crate) fn broadcast_text(&self, node_id: &str, text: &str) {
        self.broadcast(&text_frame(node_id, text));
    }

    /// Drops every socket: their tasks see the channel close and drop the connection.
    pub(crate) fn drop_all(&self) {
        let mut inner = self.inner.lock();
        for (_, gone) in inner.conns.drain() {
            gone.pace.close();
        }
        inner.by_client.clear();
    }

    /// Number of open sockets.
    pub(crate) fn open(&self) -> usize {
        self.inner.lock().conns.len()
    }
}
