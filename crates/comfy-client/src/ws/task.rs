//! The connection loop: connect, read until the socket ends or stalls, back off, repeat.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::Backoff;
use super::attribution::Attribution;
use crate::client::Config;
use crate::event::{ConnectionState, Event};

type Socket = WebSocketStream<reqwest::Upgraded>;

/// Events not yet read by every subscriber past which the task yields; also how many frames
/// it sends between two looks at that backlog.
const BACKLOG_YIELD: usize = 8;

/// Bytes the socket reads at most at once. tungstenite zero-fills this much of its buffer
/// before every read: with its default, 128 KiB, that fill cost more than parsing the
/// server's messages (which are small but for previews, read in several pieces).
const READ_BUFFER: usize = 16 * 1024;

/// The first frame sent on every connection: ask for type-4 previews with metadata.
const FEATURE_FLAGS: &str = r#"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#;

pub(super) async fn run(
    config: Arc<Config>,
    tx: broadcast::Sender<Arc<Event>>,
    state: watch::Sender<ConnectionState>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let ws = &config.ws;
    let mut backoff = Backoff::new(ws.backoff_initial, ws.backoff_max);
    let mut failures: u32 = 0;
    let mut attribution = Attribution::default();
    loop {
        let connected = tokio::select! {
            _ = &mut shutdown => break,
            r = connect(&config) => r,
        };
        let reason = match connected {
            Ok(socket) => {
                let mut opened = false;
                let reason = tokio::select! {
                    _ = &mut shutdown => break,
                    reason = session(socket, &config, &tx, &mut attribution, || {
                        opened = true;
                        failures = 0;
                        backoff.reset();
                        state.send_replace(ConnectionState::Connected);
                        let _ = tx.send(Arc::new(Event::Connected));
                    }) => reason,
                };
                if opened {
                    tracing::debug!(%reason, "comfy-client: websocket disconnected");
                    let _ = tx.send(Arc::new(Event::Disconnected {
                        reason: reason.clone(),
                    }));
                }
                reason
            }
            Err(reason) => reason,
        };
        failures = failures.saturating_add(1);
        if ws.max_attempts.is_some_and(|max| failures > max) {
            tracing::warn!(%reason, "comfy-client: giving up reconnecting the websocket");
            break;
        }
        let delay = backoff.next_delay();
        state.send_replace(ConnectionState::Reconnecting);
        let _ = tx.send(Arc::new(Event::Reconnecting {
            attempt: failures,
            delay,
            reason,
        }));
        tokio::select! {
            _ = &mut shutdown => break,
            () = sleep(delay) => {}
        }
    }
    state.send_replace(ConnectionState::Closed);
}

/// Opens the socket. The handshake goes through the client's HTTP stack (reqwest, HTTP/1.1
/// upgrade), not tungstenite's: tungstenite logs the raw handshake request, credentials
/// included, at TRACE level; reqwest prints no header value.
async fn connect(config: &Config) -> Result<Socket, String> {
    let key = generate_key();
    let request = config
        .upgrade_http
        .get(config.endpoint.upgrade(&config.client_id))
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "websocket")
        .header(SEC_WEBSOCKET_VERSION, "13")
        .header(SEC_WEBSOCKET_KEY, &key);
    let handshake = async {
        let response = request.send().await.map_err(|e| chain(&e.without_url()))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(format!("http status {}", response.status().as_u16()));
        }
        let accept = response.headers().get(SEC_WEBSOCKET_ACCEPT);
        if accept.is_none_or(|a| a.as_bytes() != derive_accept_key(key.as_bytes()).as_bytes()) {
            return Err("the server did not accept the websocket key".to_owned());
        }
        let upgraded = response
            .upgrade()
            .await
            .map_err(|e| chain(&e.without_url()))?;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(config.max_message_size))
            .max_frame_size(Some(config.max_message_size));
        Ok(WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(ws_config)).await)
    };
    match timeout(config.connect_timeout, handshake).await {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(reason)) => Err(format!("cannot open the websocket: {reason}")),
        Err(_) => Err(format!(
            "opening the websocket took longer than {:?}",
            config.connect_timeout
        )),
    }
}

/// An error and its causes, as one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads one connection until it ends; returns why it ended. `on_open` runs once the
/// server's first frame arrived (ComfyUI sends `status` right after registering the
/// socket, so events of prompts submitted from then on reach it), or after the connect
/// timeout if the server sends nothing.
async fn session(
    socket: Socket,
    config: &Config,
    tx: &broadcast::Sender<Arc<Event>>,
    attribution: &mut Attribution,
    on_open: impl FnOnce(),
) -> String {
    let mut on_open = Some(on_open);
    let (mut sink, mut stream) = socket.split();
    let ping_interval = config.ws.ping_interval;
    let pong_timeout = config.ws.pong_timeout;
    match timeout(pong_timeout, sink.send(Message::text(FEATURE_FLAGS))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return format!("cannot send feature flags: {e}"),
        Err(_) => return "stalled: cannot send feature flags".to_owned(),
    }
    let mut last_seen = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let open_by = last_seen + config.connect_timeout;
    // Frames sent since the subscribers' backlog was last looked at.
    let mut unchecked = 0;
    loop {
        let deadline = match ping_sent {
            Some(at) => at + pong_timeout,
            None if on_open.is_some() => open_by.min(last_seen + ping_interval),
            None => last_seen + ping_interval,
        };
        tokio::select! {
            msg = stream.next() => {
                let msg = match msg {
                    None => return "closed by the server".to_owned(),
                    Some(Err(WsError::Capacity(e))) => {
                        return format!("frame refused: over the size limit of {} bytes ({e})", config.max_message_size);
                    }
                    Some(Err(e)) => return format!("websocket error: {e}"),
                    Some(Ok(msg)) => msg,
                };
                last_seen = Instant::now();
                ping_sent = None;
                if let Some(open) = on_open.take() {
                    open();
                }
                let parsed = match msg {
                    Message::Text(text) => crate::Event::parse_text(text.as_str()),
                    Message::Binary(bytes) => crate::Event::parse_binary(bytes),
                    Message::Close(frame) => {
                        return match frame {
                            Some(f) => format!("closed by the server ({} {})", f.code, f.reason),
                            None => "closed by the server".to_owned(),
                        };
                    }
                    _ => continue,
                };
                match parsed {
                    Ok(mut event) => {
                        attribution.observe(&mut event);
                        let _ = tx.send(Arc::new(event));
                        unchecked += 1;
                        // Every few frames (asking costs a search of the broadcast's ring
                        // under its lock): a subscriber that fell behind gets to read before
                        // the next frame, or a flood would pile up to the broadcast's capacity.
                        if unchecked >= BACKLOG_YIELD {
                            unchecked = 0;
                            if tx.len() >= BACKLOG_YIELD {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "comfy-client: dropped a malformed frame"),
                }
            }
            () = sleep_until(deadline) => {
                if Instant::now() >= open_by
                    && let Some(open) = on_open.take()
                {
                    open();
                }
                if ping_sent.is_some() {
                    return format!("stalled: no answer to a ping within {pong_timeout:?}");
                }
                match timeout(pong_timeout, sink.send(Message::Ping(Bytes::new()))).await {
                    Ok(Ok(())) => ping_sent = Some(Instant::now()),
                    Ok(Err(e)) => return format!("cannot send a ping: {e}"),
                    Err(_) => return "stalled: cannot send a ping".to_owned(),
                }
            }
        }
    }
}
