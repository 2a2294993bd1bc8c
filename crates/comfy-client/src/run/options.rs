//! `RunOptions`: how one prompt is submitted and how long it may take.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::setters::option_setters;

/// The default of [`RunOptions::event_buffer`].
const DEFAULT_EVENT_BUFFER: usize = 4096;
/// The default of [`RunOptions::memory_limit`].
const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// Options of [`crate::Client::run`], [`crate::Client::submit`] and
/// [`crate::Client::follow`]. Start from `RunOptions::default()` and use the setters.
///
/// # Limits
///
/// A run ends, with its outputs or a typed error, whatever the server does:
///
/// - every HTTP call is bounded by the client's request timeout, and every answer by its
///   response size limit (a larger answer is cut off at the limit as
///   [`Error::TooLarge`](crate::Error::TooLarge), never read whole);
/// - when polls of `/queue` + `/history` fail (no answer, garbage, wrong types, too large,
///   5xx) without a success for [`unreachable_timeout`](Self::unreachable_timeout), the
///   run ends with [`Error::Unreachable`](crate::Error::Unreachable), whatever the
///   websocket says: a socket that is up counts for nothing while the server's answers are
///   broken. Once a poll failed, polls come every poll interval;
/// - the deadlines (`start_timeout`, `idle_timeout`, `total_timeout`) end it with
///   [`Error::Timeout`](crate::Error::Timeout), checked on the clock, never delayed by a
///   poll in flight (a deadline's cancel calls are bounded by the request timeout each);
/// - a run keeps at most [`memory_limit`](Self::memory_limit) bytes of what the server
///   sent: a quarter for the events its reader has not read yet, a quarter for collected
///   previews and texts, half for the result (`SaveImageWebsocket` images, `executed`
///   outputs, node timings). What does not fit is dropped and counted in
///   [`RunOutput::dropped`](crate::RunOutput::dropped) (and reported to the reader as
///   [`Event::Lagged`](crate::Event::Lagged)). The history entry, read once at the end, is
///   bounded by the client's response size limit instead.
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
    /// How long polls may fail without a success before the run fails with
    /// [`Error::Unreachable`](crate::Error::Unreachable), whether or not the websocket is up
    /// (default 60 s). See [Limits](Self#limits).
    pub unreachable_timeout: Duration,
    /// On a deadline, interrupt the prompt and delete it from the queue (default true).
    pub cancel_on_timeout: bool,
    /// Keep the binary images of the prompt (previews) in
    /// [`RunOutput::previews`](crate::RunOutput::previews) (default true), within a quarter
    /// of the memory limit. `SaveImageWebsocket` images are kept in
    /// [`RunOutput::ws_outputs`](crate::RunOutput::ws_outputs) either way.
    pub collect_previews: bool,
    /// Keep the node progress texts (binary frame type 3) of the prompt in
    /// [`RunOutput::texts`](crate::RunOutput::texts) (default false), within a quarter of
    /// the memory limit shared with previews.
    pub collect_texts: bool,
    /// The most bytes a run keeps of what the server sent (default 64 MiB); see
    /// [Limits](Self#limits).
    pub memory_limit: usize,
    /// How many unread events the [`Execution`](crate::Execution) buffers before it drops
    /// some and reports [`Event::Lagged`](crate::Event::Lagged) (default 4096; at least
    /// one); their bytes are bounded too, by a quarter of the memory limit. Progress
    /// events and previews go first; the run's last message and its result are never
    /// lost. See [`Execution`](crate::Execution).
    pub event_buffer: usize,
    /// Read the prompt's history entry at the end of a successful run even when the
    /// websocket delivered every output (default false: see
    /// [Outputs without `/history`](Self#outputs-without-history)); with it,
    /// [`RunOutput::history`](crate::RunOutput::history) is always filled when the server
    /// has the entry.
    pub fetch_history: bool,
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
            collect_texts: false,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            event_buffer: DEFAULT_EVENT_BUFFER,
            fetch_history: false,
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

    /// Whether preview images are kept in the result.
    pub fn collect_previews(mut self, yes: bool) -> Self {
        self.collect_previews = yes;
        self
    }

    /// Whether node progress texts are kept in the result.
    pub fn collect_texts(mut self, yes: bool) -> Self {
        self.collect_texts = yes;
        self
    }

    /// The most bytes the run keeps of what the server sent.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// How many unread events the [`Execution`](crate::Execution) buffers (at least one).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
    }

    /// Whether a successful run reads its history entry even when the websocket delivered
    /// every output.
    pub fn fetch_history(mut self, yes: bool) -> Self {
        self.fetch_history = yes;
        self
    }
}
