//! [`PoolEvent`] and [`JobEvent`]: everything the pool reports.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pool_failover::{FailoverEvent, ServerId};
use serde_json::Value;

use crate::{AttemptError, Error, JobId, JobOutput, PreviewFormat};

/// The state of one server in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// What happened to one job. Every job gets exactly one terminal event:
/// [`Completed`](Self::Completed), [`Failed`](Self::Failed) with `will_retry: false`, or
/// [`Cancelled`](Self::Cancelled) (see [`is_terminal`](Self::is_terminal)).
#[derive(Debug, Clone)]
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
    /// The server queued the prompt: its prompt id is known.
    Accepted {
        /// The server.
        server: ServerId,
        /// The prompt id.
        prompt_id: String,
    },
    /// The server started executing the prompt.
    Executing {
        /// The server.
        server: ServerId,
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
    /// A preview image.
    Preview {
        /// The node, when known.
        node: Option<String>,
        /// The image format.
        format: PreviewFormat,
        /// The image bytes.
        image: Bytes,
        /// Preview metadata, when the server sends it.
        metadata: Option<Value>,
    },
    /// A node produced output.
    Output {
        /// Its id.
        node: String,
        /// The output object.
        data: Value,
    },
    /// An attempt failed and the job will be retried after `delay`.
    Retrying {
        /// The number of the next attempt.
        attempt: u32,
        /// The wait before it is queued again.
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
}

/// One event of one job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobEvent {
    /// The job.
    pub job: JobId,
    /// What happened.
    pub kind: JobEventKind,
}

/// Everything the pool reports, on the broadcast channel of
/// [`Pool::subscribe`](crate::Pool::subscribe).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PoolEvent {
    /// Every server of the initial configuration answered its first health check (or failed
    /// it).
    Ready {
        /// Servers online.
        online: usize,
        /// Servers configured.
        total: usize,
    },
    /// Something happened to a job.
    Job(JobEvent),
    /// A server changed state.
    Server {
        /// The server.
        server: ServerId,
        /// Its new state.
        state: ServerState,
        /// The error that took it offline, if that is why it changed.
        last_error: Option<String>,
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
    },
    /// The failover strategy blocked, probed or unblocked a (server, workflow) pair.
    Workflow(FailoverEvent),
    /// This subscriber fell behind and missed `missed` events.
    Lagged {
        /// How many events were lost for this subscriber.
        missed: u64,
    },
}
