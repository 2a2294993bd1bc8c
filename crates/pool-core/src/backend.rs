//! [`ServerBackend`]: the seam between the pool engine and one server's transport.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pool_failover::FailureClass;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::{InputFile, JobId, OutputSelection};

/// One attempt of a job, prepared for a server: the workflow (auto-seeded), the prompt id the
/// pool chose for it, and which outputs to return.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptRequest {
    /// The job.
    pub job: JobId,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The prompt id to submit under, chosen by the pool so that it can always ask the
    /// server what became of this prompt and interrupt it.
    pub prompt_id: String,
    /// The API-format workflow to run.
    pub workflow: Arc<Value>,
    /// Which outputs to return.
    pub outputs: OutputSelection,
}

/// The format of a preview image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PreviewFormat {
    /// JPEG bytes.
    Jpeg,
    /// PNG bytes.
    Png,
    /// Something else (the raw format number).
    Other(u32),
}

/// What a running attempt reports while it runs. The pool turns these into
/// [`JobEventKind`](crate::JobEventKind)s.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BackendEvent {
    /// The server queued the prompt.
    Accepted,
    /// The server started executing the prompt.
    Started,
    /// Nodes served from the server's cache.
    Cached {
        /// Their ids.
        nodes: Vec<String>,
    },
    /// A node started executing.
    Executing {
        /// Its id.
        node: String,
    },
    /// Progress of a node.
    Progress {
        /// The node, when known.
        node: Option<String>,
        /// Steps done.
        value: u64,
        /// Steps in all.
        max: u64,
    },
    /// A preview image.
    Preview {
        /// The node that sent it, when known.
        node: Option<String>,
        /// The image format.
        format: PreviewFormat,
        /// The image bytes.
        image: Bytes,
        /// The preview metadata, when the server sends it.
        metadata: Option<Value>,
    },
    /// A node produced output.
    Output {
        /// Its id.
        node: String,
        /// The output object (`{"images": [...]}` …).
        data: Value,
    },
}

/// Where a backend sends the [`BackendEvent`]s of one attempt. Sending never blocks; events
/// sent after the attempt ended are dropped.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<BackendEvent>,
}

impl EventSink {
    /// A sink and the receiver of what is sent to it (for tests of a backend).
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<BackendEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Reports one event.
    pub fn emit(&self, event: BackendEvent) {
        let _ = self.tx.send(event);
    }
}

/// How long one node took, from the server's events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeTiming {
    /// The node id.
    pub node: String,
    /// Its run time (zero for a cached node).
    pub duration: Duration,
    /// Whether it came from the cache.
    pub cached: bool,
}

impl NodeTiming {
    /// A timing record.
    pub fn new(node: impl Into<String>, duration: Duration, cached: bool) -> Self {
        Self {
            node: node.into(),
            duration,
            cached,
        }
    }
}

/// What a successful attempt returns.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AttemptOutput {
    /// Outputs per node id, from the server's history (authoritative).
    pub outputs: Map<String, Value>,
    /// Per-node timings, when known.
    pub nodes: Vec<NodeTiming>,
}

impl AttemptOutput {
    /// An output with these node outputs and no timings.
    pub fn new(outputs: Map<String, Value>) -> Self {
        Self {
            outputs,
            nodes: Vec::new(),
        }
    }

    /// Adds per-node timings.
    #[must_use]
    pub fn with_nodes(mut self, nodes: Vec<NodeTiming>) -> Self {
        self.nodes = nodes;
        self
    }
}

/// A failed backend call, already classified (see the `classify` rules of
/// [`ComfyBackend`](crate::ComfyBackend)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptFailure {
    /// What kind of failure.
    pub class: FailureClass,
    /// What happened, in words.
    pub reason: String,
}

impl AttemptFailure {
    /// A classified failure.
    pub fn new(class: FailureClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.reason)
    }
}

/// One server's transport, as the engine sees it. [`ComfyBackend`](crate::ComfyBackend)
/// implements it over `comfy-client`; implement it to plug in another transport (the pool
/// stores it as `Arc<dyn ServerBackend>`).
///
/// Every failure comes back classified as an [`AttemptFailure`]: the engine acts on the
/// [`FailureClass`] only.
///
/// ```
/// use async_trait::async_trait;
/// use pool_core::{AttemptFailure, AttemptOutput, AttemptRequest, EventSink, InputFile, ServerBackend};
///
/// /// A backend that "runs" every workflow instantly, with no outputs.
/// struct Instant;
///
/// #[async_trait]
/// impl ServerBackend for Instant {
///     async fn run(&self, _: AttemptRequest, _: EventSink) -> Result<AttemptOutput, AttemptFailure> {
///         Ok(AttemptOutput::default())
///     }
///     async fn health(&self) -> Result<(), AttemptFailure> {
///         Ok(())
///     }
///     async fn upload(&self, _: &InputFile) -> Result<(), AttemptFailure> {
///         Ok(())
///     }
///     async fn cancel(&self, _: &str) -> Result<(), AttemptFailure> {
///         Ok(())
///     }
/// }
///
/// let backend: std::sync::Arc<dyn ServerBackend> = std::sync::Arc::new(Instant);
/// # let _ = backend;
/// ```
#[async_trait]
pub trait ServerBackend: Send + Sync + 'static {
    /// Submits `request` under its prompt id, streams its events into `events`, and returns
    /// its outputs once the server says it finished. A connection lost mid-run must be
    /// resolved by asking the server what became of the prompt: a prompt that vanished is a
    /// [`FailureClass::ServerDown`] failure, never a success.
    async fn run(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure>;

    /// Checks that the server is up and answering.
    async fn health(&self) -> Result<(), AttemptFailure>;

    /// Resolves when the backend sees a sign that the server went away or came back (for
    /// [`ComfyBackend`](crate::ComfyBackend): its websocket dropped or reopened), so that
    /// the pool checks the server's health at once instead of at the next interval. The
    /// default never resolves: health is then checked on the interval only.
    async fn health_hint(&self) {
        std::future::pending::<()>().await;
    }

    /// Uploads an input file (overwriting a file of the same name).
    async fn upload(&self, file: &InputFile) -> Result<(), AttemptFailure>;

    /// Interrupts the prompt if it runs and deletes it from the server's queue if it waits.
    async fn cancel(&self, prompt_id: &str) -> Result<(), AttemptFailure>;
}
