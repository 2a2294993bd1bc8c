//! `RunOptions`: how one prompt is submitted and how long it may take.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::setters::option_setters;

/// The default of [`RunOptions::event_buffer`].
const DEFAULT_EVENT_BUFFER: usize = 4096;

/// Options of [`crate::Client::run`]. Start from `RunOptions::default()` and use the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The prompt id to submit with (default: a random uuid).
    pub prompt_id: Option<String>,
    /// Queue at the front.
    pub front: Option<bool>,
    /// Explicit queue number.
    pub number: Option<f64>,
    /// `extra_data` stored with the prompt.
    pub extra_data: Option<Map<String, Value>>,
    /// Deadline from submission until the prompt starts executing (queue wait included).
    pub start_timeout: Option<Duration>,
    /// Deadline between two events of the running prompt.
    pub idle_timeout: Option<Duration>,
    /// Deadline from submission to outputs.
    pub total_timeout: Option<Duration>,
    /// How long to wait for the websocket's first connection before submitting anyway
    /// (and following the prompt by polling); default: the client's connect timeout. A
    /// socket that is reconnecting after a drop is never waited for: the submission
    /// itself tells whether the server is there.
    pub connect_wait: Option<Duration>,
    /// How long the server may stay unreachable (websocket down and polls failing) before
    /// the run fails with the last error (default 60 s).
    pub unreachable_timeout: Duration,
    /// On a deadline, interrupt the prompt and delete it from the queue (default true).
    pub cancel_on_timeout: bool,
    /// Keep binary images of the prompt (previews, `SaveImageWebsocket` outputs) in the
    /// result (default true).
    pub collect_previews: bool,
    /// How many unread events the [`Execution`](crate::Execution) buffers before it drops
    /// some and reports [`Event::Lagged`](crate::Event::Lagged) (default 4096; at least
    /// one). Progress events and previews go first; the run's last message and its
    /// result are never lost. See [`Execution`](crate::Execution).
    pub event_buffer: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            prompt_id: None,
            front: None,
            number: None,
            extra_data: None,
            start_timeout: None,
            idle_timeout: None,
            total_timeout: None,
            connect_wait: None,
            unreachable_timeout: Duration::from_secs(60),
            cancel_on_timeout: true,
            collect_previews: true,
            event_buffer: DEFAULT_EVENT_BUFFER,
        }
    }
}

impl RunOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    option_setters! {
        /// Submits with this prompt id.
        prompt_id: impl Into<String>;
        /// Queues at the front (`true`) or at the back.
        front: bool;
        /// Sets the queue number.
        number: f64;
        /// Sets `extra_data`.
        extra_data: Map<String, Value>;
        /// Deadline to start executing.
        start_timeout: Duration;
        /// Deadline between events once running.
        idle_timeout: Duration;
        /// Deadline for the whole run.
        total_timeout: Duration;
        /// How long to wait for the websocket before submitting.
        connect_wait: Duration;
    }

    /// How long the server may stay unreachable.
    pub fn unreachable_timeout(mut self, d: Duration) -> Self {
        self.unreachable_timeout = d;
        self
    }

    /// Whether a deadline interrupts and deletes the prompt.
    pub fn cancel_on_timeout(mut self, yes: bool) -> Self {
        self.cancel_on_timeout = yes;
        self
    }

    /// Whether binary images are kept in the result.
    pub fn collect_previews(mut self, yes: bool) -> Self {
        self.collect_previews = yes;
        self
    }

    /// How many unread events the [`Execution`](crate::Execution) buffers (at least one).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
    }
}
