//! Everything the pool reports: [`JobEvent`]s (one numbered stream per job), the
//! [`RunEvent`]s of a running prompt inside them, and pool-wide [`PoolEvent`]s. Every event
//! is serde-serializable and stamped with wall-clock time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pool_failover::{FailoverEvent, FailureClass, ServerId, UnblockReason};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use workflow_hash::WorkflowHash;

use crate::{AttemptError, Error, JobId, JobOutput, Timestamp};

/// The state of one server in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerState {
    /// Added; its first health check has not answered yet.
    Connecting,
    /// Takes work.
    Online,
    /// Unreachable or failing: takes no new work; health checks (with backoff) bring it back.
    Offline,
    /// Answers its health checks but failed prompt after prompt: out of rotation until its
    /// ejection time ends (see [`OutlierEjection`](crate::OutlierEjection)).
    Ejected,
    /// Finishes its running work, takes no new work, then leaves the pool.
    Draining,
    /// Left the pool.
    Removed,
}

impl std::fmt::Display for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connecting => "connecting",
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Ejected => "ejected",
            Self::Draining => "draining",
            Self::Removed => "removed",
        })
    }
}

/// The format of a preview image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PreviewFormat {
    /// JPEG bytes.
    Jpeg,
    /// PNG bytes.
    Png,
    /// Something else (the raw format number).
    Other(u32),
}

/// What a running prompt reports, as a backend sends it (through an
/// [`EventSink`](crate::EventSink)) and as subscribers receive it inside
/// [`JobEventKind::Run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunEvent {
    /// The server queued the prompt: its prompt id is known.
    Accepted {
        /// The prompt id.
        prompt_id: String,
    },
    /// The server started executing the prompt.
    Executing,
    /// Nodes served from the server's cache.
    Cached {
        /// Their ids.
        nodes: Vec<String>,
    },
    /// A node started executing.
    Node {
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
    /// A preview image (the bytes as base64 in JSON).
    Preview {
        /// The node that sent it, when known.
        node: Option<String>,
        /// The image format.
        format: PreviewFormat,
        /// The image bytes (empty in pool-wide events: see [`PoolEvent::Job`]).
        #[serde(with = "base64_bytes")]
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

impl RunEvent {
    /// Whether losing this event only thins the stream out (progress and previews): bounded
    /// buffers drop these first.
    pub fn is_expendable(&self) -> bool {
        matches!(self, Self::Progress { .. } | Self::Preview { .. })
    }

    /// Roughly how many bytes the event holds (for byte-bounded buffers).
    pub(crate) fn weight(&self) -> usize {
        match self {
            Self::Preview { image, .. } => 64 + image.len(),
            _ => 64,
        }
    }
}

/// What happened to one job. Every job gets exactly one terminal event:
/// [`Completed`](Self::Completed), [`Failed`](Self::Failed) with `will_retry: false`, or
/// [`Cancelled`](Self::Cancelled) (see [`is_terminal`](Self::is_terminal)).
///
/// Serialized with a `type` tag (`{"type": "started", "server": "gpu-1", ...}`); the run
/// events inside [`Run`](Self::Run) carry their own `type` (`{"type": "progress", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobEventKind {
    /// Accepted into the pool's queue.
    Queued {
        /// Its priority.
        priority: i32,
    },
    /// Dispatched to a server.
    Started {
        /// The server.
        server: ServerId,
        /// The attempt number, from 1.
        attempt: u32,
        /// Whether this attempt is the probation probe of a (server, workflow) pair.
        probe: bool,
    },
    /// An attempt failed and the job will be retried after `delay`.
    Retrying {
        /// The number of the next attempt.
        attempt: u32,
        /// The wait before it is queued again.
        #[serde(rename = "delay_ms", with = "crate::time::millis")]
        delay: Duration,
        /// Why the previous attempt failed.
        cause: AttemptError,
    },
    /// The job finished; terminal.
    Completed {
        /// Outputs and timings.
        output: Arc<JobOutput>,
    },
    /// An attempt failed (`will_retry: true`, a [`Retrying`](Self::Retrying) follows), or
    /// the job failed for good (`will_retry: false`; terminal).
    Failed {
        /// Why.
        error: Error,
        /// Whether another attempt follows.
        will_retry: bool,
    },
    /// The job was cancelled; terminal.
    Cancelled,
    /// This subscriber's buffer overflowed: `missed` events (progress and previews first)
    /// were dropped for it, from this event's `seq` on. Never part of the job's own stream.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
    /// Something the running prompt reported.
    #[serde(untagged)]
    Run(RunEvent),
}

impl JobEventKind {
    /// Whether this is the job's last event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed { .. }
                | Self::Cancelled
                | Self::Failed {
                    will_retry: false,
                    ..
                }
        )
    }

    /// Whether losing this event only thins the stream out (see
    /// [`RunEvent::is_expendable`]).
    pub fn is_expendable(&self) -> bool {
        matches!(self, Self::Run(run) if run.is_expendable())
    }

    pub(crate) fn weight(&self) -> usize {
        match self {
            Self::Run(run) => run.weight(),
            _ => 128,
        }
    }
}

/// One event of one job: numbered from 1 without gaps per job (`seq`) and stamped with
/// wall-clock time, so a subscriber can resume after the last event it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobEvent {
    /// The job.
    pub job: JobId,
    /// The event's number in the job's stream, from 1.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: JobEventKind,
}

impl JobEvent {
    /// An event (for backends and stores that rebuild streams).
    pub fn new(job: JobId, seq: u64, at: Timestamp, kind: JobEventKind) -> Self {
        Self { job, seq, at, kind }
    }
}

/// A change of a (server, workflow) pair in the failover strategy, with wall-clock times
/// (the strategy's own [`FailoverEvent`] carries process-local instants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowEvent {
    /// The workflow will not be routed to the server until `until`.
    Blocked {
        /// The server.
        server: ServerId,
        /// The workflow's structural hash.
        hash: WorkflowHash,
        /// The class of the failure that caused the block.
        class: FailureClass,
        /// Consecutive failures of this pair when it was blocked.
        failures: u32,
        /// How many times this pair has been blocked in a row (1 for the first block).
        blocked_count: u32,
        /// When the block ends and the pair goes on probation.
        until: Timestamp,
        /// When it was blocked.
        at: Timestamp,
    },
    /// One job was allowed to try the pair after its cooldown (the probation probe).
    Probing {
        /// The server.
        server: ServerId,
        /// The workflow's structural hash.
        hash: WorkflowHash,
        /// When.
        at: Timestamp,
    },
    /// The block of the pair ended.
    Unblocked {
        /// The server.
        server: ServerId,
        /// The workflow's structural hash.
        hash: WorkflowHash,
        /// Why it ended.
        reason: UnblockReason,
        /// When.
        at: Timestamp,
    },
}

impl WorkflowEvent {
    /// The strategy's event, stamped with wall-clock time now.
    pub fn from_failover(event: &FailoverEvent) -> Self {
        let at = Timestamp::now();
        match event {
            FailoverEvent::Blocked {
                server,
                hash,
                class,
                failures,
                blocked_count,
                until,
            } => Self::Blocked {
                server: server.clone(),
                hash: *hash,
                class: *class,
                failures: *failures,
                blocked_count: *blocked_count,
                until: Timestamp::of_instant(*until),
                at,
            },
            FailoverEvent::Probing { server, hash } => Self::Probing {
                server: server.clone(),
                hash: *hash,
                at,
            },
            FailoverEvent::Unblocked {
                server,
                hash,
                reason,
            } => Self::Unblocked {
                server: server.clone(),
                hash: *hash,
                reason: *reason,
                at,
            },
            // A change this version does not know: report it as what it is closest to.
            other => Self::Probing {
                server: other.server().clone(),
                hash: *other.hash(),
                at,
            },
        }
    }

    /// The server the event is about.
    pub fn server(&self) -> &ServerId {
        match self {
            Self::Blocked { server, .. }
            | Self::Probing { server, .. }
            | Self::Unblocked { server, .. } => server,
        }
    }

    /// The workflow hash the event is about.
    pub fn hash(&self) -> &WorkflowHash {
        match self {
            Self::Blocked { hash, .. }
            | Self::Probing { hash, .. }
            | Self::Unblocked { hash, .. } => hash,
        }
    }
}

/// Everything the pool reports, on the broadcast channel of
/// [`Pool::subscribe`](crate::Pool::subscribe). Serialized with an `event` tag
/// (`{"event": "server", ...}`; a job's event keeps its own `type` inside:
/// `{"event": "job", "job": "…", "seq": 3, "type": "started", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PoolEvent {
    /// Every server of the initial configuration answered its first health check (or failed
    /// it).
    Ready {
        /// Servers online.
        online: usize,
        /// Servers configured.
        total: usize,
        /// When.
        at: Timestamp,
    },
    /// Something happened to a job. Preview images are not repeated here (their `image` is
    /// empty): the job's own stream ([`JobHandle::events`](crate::JobHandle::events)) has
    /// them.
    Job(JobEvent),
    /// A server changed state.
    Server {
        /// The server.
        server: ServerId,
        /// Its new state.
        state: ServerState,
        /// The error that took it offline (or why it was ejected), if that is why it changed.
        last_error: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The server-side clean-up of a prompt the pool stopped following (cancelled, timed
    /// out, stalled, withdrawn, or abandoned on an unreachable server) ended.
    Cleanup {
        /// The server.
        server: ServerId,
        /// The prompt.
        prompt_id: String,
        /// Whether the server confirmed it.
        outcome: crate::CleanupOutcome,
        /// When.
        at: Timestamp,
    },
    /// The failover strategy blocked, probed or unblocked a (server, workflow) pair.
    Workflow(WorkflowEvent),
    /// This subscriber fell behind and missed `missed` events.
    Lagged {
        /// How many events were lost for this subscriber.
        missed: u64,
    },
}

/// Serde for bytes as standard base64 text.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}
