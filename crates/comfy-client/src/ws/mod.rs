//! The managed `/ws?clientId=` connection: one background task per client that connects,
//! negotiates feature flags, parses frames, attributes binary frames to the executing
//! prompt, detects stalls with pings and reconnects with backoff, broadcasting [`Event`]s.

mod attribution;
mod backoff;
mod task;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, watch};

use crate::client::Config;
use crate::event::{ConnectionState, Event};

pub(crate) use backoff::Backoff;

/// Websocket options (set through the client builder).
#[derive(Debug, Clone)]
pub(crate) struct WsConfig {
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_attempts: Option<u32>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

/// A cheap handle to the connection's broadcast and state.
///
/// Only the task holds the strong sender, so subscribers' streams end when it stops.
#[derive(Clone)]
pub(crate) struct WsHandle {
    tx: broadcast::WeakSender<Arc<Event>>,
    state: watch::Receiver<ConnectionState>,
}

impl WsHandle {
    /// A receiver of the broadcast; already closed if the task has stopped.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        match self.tx.upgrade() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    pub(crate) fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    pub(crate) fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }
}

/// The running connection as the client owns it: dropping it stops the task.
pub(crate) struct WsSlot {
    pub(crate) handle: WsHandle,
    _shutdown: oneshot::Sender<()>,
}

impl WsSlot {
    /// Spawns the connection task on the current tokio runtime. Outside a runtime nothing
    /// is spawned and the state is [`ConnectionState::Closed`].
    pub(crate) fn start(config: Arc<Config>) -> Self {
        let (tx, _) = broadcast::channel(config.event_capacity);
        let weak = tx.downgrade();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(task::run(config, tx, state_tx, shutdown_rx));
            }
            Err(_) => {
                drop(tx);
                tracing::warn!("comfy-client: no tokio runtime; the websocket stays closed");
                state_tx.send_replace(ConnectionState::Closed);
            }
        }
        Self {
            handle: WsHandle {
                tx: weak,
                state: state_rx,
            },
            _shutdown: shutdown_tx,
        }
    }
}
