//! `ClientBuilder`: every option of a [`Client`], checked by `build()`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Auth, build_headers};
use crate::client::{Client, Config};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::ws::WsConfig;

/// Builds a [`Client`]. Start with [`Client::builder`].
///
/// `Debug` never shows credentials or custom header values.
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    auth: Option<Auth>,
    headers: Vec<(String, String)>,
    client_id: Option<String>,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_response_size: u64,
    max_download_size: u64,
    max_message_size: usize,
    event_capacity: usize,
    poll_interval: Duration,
    ws: WsConfig,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ClientBuilder")
            .field("url", &crate::endpoint::redact(&self.url))
            .field("auth", &self.auth)
            .field("headers", &header_names)
            .field("client_id", &self.client_id)
            .field("user_agent", &self.user_agent)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: None,
            headers: Vec::new(),
            client_id: None,
            user_agent: concat!("comfy-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_size: 64 << 20,
            max_download_size: 1 << 30,
            max_message_size: 64 << 20,
            event_capacity: 1024,
            poll_interval: Duration::from_secs(1),
            ws: WsConfig::default(),
        }
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer_auth(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer(token.into()));
        self
    }

    /// Sends `Authorization: Basic ...`. Credentials in the URL (`https://user:pw@host/`)
    /// are used the same way.
    pub fn basic_auth(mut self, user: impl Into<String>, password: Option<String>) -> Self {
        self.auth = Some(Auth::Basic {
            user: user.into(),
            password,
        });
        self
    }

    /// Uses this authentication (replaces any earlier one).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Adds a header to every request and to the websocket handshake (for example an API
    /// key for a proxy). Its value is treated as a secret.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The `clientId` of the websocket and `client_id` of prompts (default: a random uuid).
    /// ComfyUI sends a prompt's execution messages only to the socket of the id it was
    /// submitted with: a process that keeps a stable id gets the live events of its
    /// prompts again after a restart, with [`Client::follow`].
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Deadline to open a connection (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Deadline of one HTTP request, body included (default 60 s). Downloads use it as a
    /// per-read deadline instead.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Largest JSON answer accepted (default 64 MiB).
    pub fn max_response_size(mut self, bytes: u64) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// Largest file accepted by [`Client::download`] (default 1 GiB).
    pub fn max_download_size(mut self, bytes: u64) -> Self {
        self.max_download_size = bytes;
        self
    }

    /// Largest websocket message (and frame) accepted (default 64 MiB); larger ones close
    /// the connection instead of being buffered.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Events buffered per subscriber of the websocket before a slow one starts losing
    /// them (default 1024). While a subscriber is 8 or more events behind, the websocket
    /// task yields every 8 frames so that it can catch up. The buffer is allocated when the
    /// socket starts, about 32 bytes a slot: it holds each event once, shared by every
    /// subscriber (a run copies only the events of its own prompt).
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }

    /// Interval of a run's `/queue` + `/history` polls while the websocket is down, does
    /// not carry the prompt, or a poll failed (default 1 s); five intervals otherwise.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Interval of websocket pings when nothing arrives (default 10 s).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ws.ping_interval = d;
        self
    }

    /// How long after a ping a silent socket is declared stalled and reopened (default 10 s).
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.ws.pong_timeout = d;
        self
    }

    /// Reconnect backoff: first delay and cap (default 250 ms and 10 s; doubled each attempt,
    /// with jitter).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.ws.backoff_initial = initial;
        self.ws.backoff_max = max;
        self
    }

    /// Gives up reconnecting after this many consecutive failed attempts (default: never).
    pub fn max_reconnect_attempts(mut self, n: Option<u32>) -> Self {
        self.ws.max_attempts = n;
        self
    }

    /// Checks every option and builds the client. Needs no runtime; nothing connects yet.
    pub fn build(self) -> Result<Client> {
        let (endpoint, url_auth) = Endpoint::parse(&self.url)?;
        let auth = self.auth.or(url_auth);
        let headers = build_headers(auth.as_ref(), &self.headers)?;
        let client_id = self
            .client_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if client_id.is_empty() {
            return Err(Error::InvalidInput("the client id is empty".into()));
        }
        if self.event_capacity == 0 {
            return Err(Error::InvalidInput(
                "the event capacity must be at least 1".into(),
            ));
        }
        for (name, d) in [
            ("connect timeout", self.connect_timeout),
            ("request timeout", self.request_timeout),
            ("poll interval", self.poll_interval),
            ("ping interval", self.ws.ping_interval),
            ("pong timeout", self.ws.pong_timeout),
            ("reconnect backoff", self.ws.backoff_initial),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidInput(format!("the {name} must not be zero")));
            }
        }
        if self.ws.backoff_max < self.ws.backoff_initial {
            return Err(Error::InvalidInput(
                "the reconnect backoff cap is below its first delay".into(),
            ));
        }
        // Header values are marked sensitive (auth.rs): their Debug prints `Sensitive`.
        let http = reqwest::Client::builder()
            .default_headers(headers.clone())
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.request_timeout)
            .tls_backend_rustls()
            .build()
            .map_err(|e| Error::InvalidInput(format!("cannot build the http client: {e}")))?;
        let upgrade_http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(self.user_agent)
            .connect_timeout(self.connect_timeout)
            .http1_only()
            .tls_backend_rustls()
            .build()
            .map_err(|e| Error::InvalidInput(format!("cannot build the http client: {e}")))?;
        let config = Config {
            endpoint,
            client_id,
            has_auth: auth.is_some(),
            upgrade_http,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            max_response_size: self.max_response_size,
            max_download_size: self.max_download_size,
            max_message_size: self.max_message_size,
            event_capacity: self.event_capacity,
            poll_interval: self.poll_interval,
            ws: self.ws,
        };
        Ok(Client::from_parts(Arc::new(config), http))
    }
}
