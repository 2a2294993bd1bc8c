//! [`ServerBackend`]: the seam between the pool engine and one server's transport.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pool_failover::FailureClass;
use serde_json::{Map, Value};

use crate::{EventSink, InputFile, JobId, OutputSelection, WsImage};

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

/// How long one node took, from the server's events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct NodeTiming {
    /// The node id.
    pub node: String,
    /// Its run time (zero for a cached node).
    #[serde(rename = "duration_ms", with = "crate::time::millis")]
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
    /// Images the server sent only over its websocket (`SaveImageWebsocket` nodes).
    pub ws_images: Vec<WsImage>,
}

impl AttemptOutput {
    /// An output with these node outputs and no timings.
    pub fn new(outputs: Map<String, Value>) -> Self {
        Self {
            outputs,
            nodes: Vec::new(),
            ws_images: Vec::new(),
        }
    }

    /// Adds per-node timings.
    #[must_use]
    pub fn with_nodes(mut self, nodes: Vec<NodeTiming>) -> Self {
        self.nodes = nodes;
        self
    }

    /// Adds websocket-only images.
    #[must_use]
    pub fn with_ws_images(mut self, images: Vec<WsImage>) -> Self {
        self.ws_images = images;
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
    /// What a rejection of the prompt named (classes, inputs, values, its text), so the pool
    /// can tell a server that lacks them from a wrong workflow whatever the wording.
    pub rejections: Vec<Rejected>,
}

impl AttemptFailure {
    /// A classified failure.
    pub fn new(class: FailureClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
            rejections: Vec::new(),
        }
    }

    /// With what the server's rejection named.
    #[must_use]
    pub fn with_rejections(mut self, rejections: Vec<Rejected>) -> Self {
        self.rejections = rejections;
        self
    }
}

/// What one rejection of a prompt named (any part may be missing): a node class, an input,
/// a value, and free text (message and details).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Rejected {
    /// A node class it names.
    pub class: Option<String>,
    /// An input it names.
    pub input: Option<String>,
    /// A value it names (the received value).
    pub value: Option<String>,
    /// Its message and details.
    pub text: Option<String>,
}

impl Rejected {
    /// A rejection naming these parts.
    pub fn new(
        class: Option<String>,
        input: Option<String>,
        value: Option<String>,
        text: Option<String>,
    ) -> Self {
        Self {
            class,
            input,
            value,
            text,
        }
    }

    pub(crate) fn borrowed(&self) -> comfy_caps::Rejection<'_> {
        comfy_caps::Rejection {
            class: self.class.as_deref(),
            input: self.input.as_deref(),
            value: self.value.as_deref(),
            text: self.text.as_deref(),
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
    /// Submits `request` under its prompt id, streams its [`RunEvent`](crate::RunEvent)s into
    /// `events` (first [`RunEvent::Accepted`](crate::RunEvent::Accepted) once the server
    /// queued it, then [`RunEvent::Executing`](crate::RunEvent::Executing) when it
    /// starts executing: the between-events deadline runs from there), and returns
    /// its outputs once the server says it finished. A connection lost mid-run must be
    /// resolved by asking the server what became of the prompt: a prompt that vanished is a
    /// [`FailureClass::ServerDown`] failure, never a success.
    async fn run(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure>;

    /// Re-attaches to a prompt submitted earlier under `request.prompt_id` (by this pool
    /// before a restart, or by another pool process) without submitting it again: streams its
    /// remaining events and returns its outputs like [`run`](Self::run). A prompt the server
    /// finished returns its result (or its failure) at once; a prompt the server no longer
    /// knows is a [`FailureClass::ServerDown`] failure ("lost"), never a success. The default
    /// cannot re-attach and reports the prompt as lost, so the job runs again.
    async fn follow(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure> {
        let _ = events;
        Err(AttemptFailure::new(
            FailureClass::ServerDown,
            format!(
                "prompt {} cannot be re-attached to by this backend; counted as lost",
                request.prompt_id
            ),
        ))
    }

    /// What the server can run (its node classes and the model files its loaders offer), for
    /// capability-aware routing; `Ok(None)` when the backend cannot tell (the default: the
    /// server is then judged by its answers only).
    async fn capabilities(&self) -> Result<Option<comfy_caps::Capabilities>, AttemptFailure> {
        Ok(None)
    }

    /// Checks that the server is up and answering.
    async fn health(&self) -> Result<(), AttemptFailure>;

    /// Resolves when the backend sees a sign that the server went away or came back (for
    /// [`ComfyBackend`](crate::ComfyBackend): its websocket dropped or reopened), so that
    /// the pool checks the server's health at once instead of at the next interval. The
    /// default never resolves: health is then checked on the interval only.
    async fn health_hint(&self) {
        std::future::pending::<()>().await;
    }

    /// Whether this process holds the server now: always without a fleet; in a fleet, while
    /// it holds the server's lease. A backend may keep connections open only while it is
    /// held: [`ComfyBackend`](crate::ComfyBackend) keeps its websocket only then, since every
    /// socket open on a server gets the server's broadcasts (`status`, `progress_state`),
    /// which a fleet of N processes would otherwise make each server send N times. Health
    /// checks go on either way. The default does nothing.
    fn hold(&self, held: bool) {
        let _ = held;
    }

    /// Uploads an input file (overwriting a file of the same name).
    async fn upload(&self, file: &InputFile) -> Result<(), AttemptFailure>;

    /// Interrupts the prompt if it runs and deletes it from the server's queue if it waits.
    async fn cancel(&self, prompt_id: &str) -> Result<(), AttemptFailure>;

    /// Takes back a prompt that waits in the server's queue, for the pool to run it on a
    /// server that is free (see [`PoolBuilder::queue_ahead`](crate::PoolBuilder::queue_ahead)):
    /// `Ok(true)` only if the server confirms the prompt was removed before it started, so it
    /// will never run there; `Ok(false)` if it started (or ran) already and stays. Never
    /// interrupts anything. The default cannot take a prompt back (`Ok(false)`).
    async fn withdraw(&self, prompt_id: &str) -> Result<bool, AttemptFailure> {
        let _ = prompt_id;
        Ok(false)
    }
}
