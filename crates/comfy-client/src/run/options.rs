//! `RunOptions`: how one prompt is submitted and how long it may take.

use std::time::Duration;

use serde_json::{Map, Value};

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
    /// How long to wait for the websocket before submitting anyway (and following the
    /// prompt by polling); default: the client's connect timeout.
    pub connect_wait: Option<Duration>,
    /// How long the server may stay unreachable (websocket down and polls failing) before
    /// the run fails with the last error (default 60 s).
    pub unreachable_timeout: Duration,
    /// On a deadline, interrupt the prompt and delete it from the queue (default true).
    pub cancel_on_timeout: bool,
    /// Keep binary images of the prompt (previews, `SaveImageWebsocket` outputs) in the
    /// result (default true).
    pub collect_previews: bool,
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
        }
    }
}

impl RunOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Submits with this prompt id.
    pub fn prompt_id(mut self, id: impl Into<String>) -> Self {
        self.prompt_id = Some(id.into());
        self
    }

    /// Queues at the front.
    pub fn front(mut self, front: bool) -> Self {
        self.front = Some(front);
        self
    }

    /// Sets the queue number.
    pub fn number(mut self, number: f64) -> Self {
        self.number = Some(number);
        self
    }

    /// Sets `extra_data`.
    pub fn extra_data(mut self, extra: Map<String, Value>) -> Self {
        self.extra_data = Some(extra);
        self
    }

    /// Deadline to start executing.
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = Some(d);
        self
    }

    /// Deadline between events once running.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// Deadline for the whole run.
    pub fn total_timeout(mut self, d: Duration) -> Self {
        self.total_timeout = Some(d);
        self
    }

    /// How long to wait for the websocket before submitting.
    pub fn connect_wait(mut self, d: Duration) -> Self {
        self.connect_wait = Some(d);
        self
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
}
