//! `Client`: the cheap-to-clone handle every call goes through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::builder::ClientBuilder;
use crate::endpoint::Endpoint;
use crate::event::{ConnectionState, EventStream};
use crate::ws::{WsConfig, WsHandle, WsSlot};
use parking_lot::Mutex;

/// A ComfyUI client: typed HTTP calls, a managed `/ws` event connection, and
/// [`run`](Client::run) for one prompt from submission to outputs.
///
/// Cloning is cheap (an `Arc` inside); clones share the HTTP connection pool and the
/// websocket. The websocket opens on first use ([`subscribe`](Client::subscribe) or
/// [`run`](Client::run)) and closes when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    pub(crate) http: reqwest::Client,
    pub(crate) ws: Mutex<Option<WsSlot>>,
}

/// The checked options of a client, shared with its websocket task.
pub(crate) struct Config {
    pub(crate) endpoint: Endpoint,
    pub(crate) client_id: String,
    pub(crate) has_auth: bool,
    /// Sends the websocket handshake: HTTP/1.1 only, no read deadline (the socket may be
    /// quiet between pings), the same headers as every request.
    pub(crate) upgrade_http: reqwest::Client,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_response_size: u64,
    pub(crate) max_download_size: u64,
    pub(crate) max_message_size: usize,
    pub(crate) event_capacity: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) ws: WsConfig,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("Client")
            .field("base_url", &c.endpoint.base().as_str())
            .field("client_id", &c.client_id)
            .field("auth", &if c.has_auth { "<redacted>" } else { "none" })
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client for the server at `url` (`http(s)://host:port/` with an
    /// optional path prefix, e.g. `https://host/comfy/` behind a proxy).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// A client with default options.
    pub fn new(url: impl Into<String>) -> crate::Result<Self> {
        Self::builder(url).build()
    }

    pub(crate) fn from_parts(config: Arc<Config>, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                ws: Mutex::new(None),
            }),
        }
    }

    /// The `clientId` used on the websocket and as `client_id` of submitted prompts.
    pub fn client_id(&self) -> &str {
        &self.inner.config.client_id
    }

    /// The base URL (always ends in `/`, credentials removed).
    pub fn base_url(&self) -> &str {
        self.inner.config.endpoint.base().as_str()
    }

    /// The websocket URL derived from the base URL (`ws(s)://.../ws?clientId=...`).
    pub fn ws_url(&self) -> String {
        self.inner
            .config
            .endpoint
            .websocket(&self.inner.config.client_id)
            .to_string()
    }

    /// A new stream of every event of this client's websocket, opening it if needed.
    /// Subscribe before submitting a prompt so that no early event is missed.
    pub fn subscribe(&self) -> EventStream {
        EventStream::new(self.ws().subscribe())
    }

    /// The current state of the websocket ([`ConnectionState::Idle`] before first use).
    pub fn connection_state(&self) -> ConnectionState {
        self.inner
            .ws
            .lock()
            .as_ref()
            .map_or(ConnectionState::Idle, |slot| slot.handle.state())
    }

    /// A watch of the websocket's state, opening the socket if needed: `changed()` wakes on
    /// every transition (connected, reconnecting, closed), so a caller can react to a server
    /// going away without polling it.
    pub fn watch_connection(&self) -> tokio::sync::watch::Receiver<ConnectionState> {
        self.ws().watch_state()
    }

    /// Closes the websocket now, if it is open; the next use opens it again. Streams of it
    /// end. For a caller that stops using the server for a while (a pool process that no
    /// longer holds it): every socket open on a server gets its broadcast messages.
    pub fn close_socket(&self) {
        let slot = self.inner.ws.lock().take();
        drop(slot);
    }

    /// Waits until the websocket is open (opening it if needed), at most `timeout`.
    /// Returns whether it is open.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut state = self.ws().watch_state();
        let wait = state.wait_for(|s| *s == ConnectionState::Connected);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// The websocket handle, started on first use.
    pub(crate) fn ws(&self) -> WsHandle {
        let mut guard = self.inner.ws.lock();
        if let Some(slot) = guard.as_ref()
            && slot.handle.state() != ConnectionState::Closed
        {
            return slot.handle.clone();
        }
        // First use, or the previous connection gave up: start (again).
        let slot = WsSlot::start(Arc::clone(&self.inner.config));
        let handle = slot.handle.clone();
        *guard = Some(slot);
        handle
    }
}
