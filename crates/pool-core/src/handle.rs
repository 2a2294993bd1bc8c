//! [`JobHandle`]: the caller's grip on one job; [`JobStatus`]: where it stands.

use std::sync::Arc;

use pool_failover::ServerId;
use serde::{Deserialize, Serialize};

use crate::command::EngineLink;
use crate::job::JobCell;
use crate::{JobEvents, JobId, JobOutput, JobRecord, Result};

/// Where a job stands (derived from its [`JobRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting for a server (or for its retry backoff to end).
    Queued,
    /// Running on a server.
    Running {
        /// The server.
        server: ServerId,
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// Finished successfully.
    Completed,
    /// Failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// The caller's handle on one job: its id, record, status, event stream, result and cancel.
///
/// Cheap to clone (an `Arc` inside); every clone and every handle returned for the same job
/// id sees the same job.
#[derive(Debug, Clone)]
pub struct JobHandle {
    cell: Arc<JobCell>,
    engine: EngineLink,
}

impl JobHandle {
    pub(crate) fn new(cell: Arc<JobCell>, engine: EngineLink) -> Self {
        Self { cell, engine }
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.cell.id
    }

    /// Where the job stands now.
    pub fn status(&self) -> JobStatus {
        self.cell.read(JobRecord::status)
    }

    /// A copy of the job's record: what was asked, every attempt, the result or error.
    pub fn record(&self) -> JobRecord {
        self.cell.record()
    }

    /// The job's events from now on. The stream starts with the events that say where the
    /// job stands (its `Queued`; or the `Started` of its running attempt with its `Accepted`
    /// and `Executing`; or its terminal event if it ended), each with its own `seq`, and ends
    /// after the terminal event. See [`JobEvents`] for the buffering and the lag signal.
    pub fn events(&self) -> JobEvents {
        self.cell.subscribe_current()
    }

    /// The job's events after the one numbered `seq` (0 for all), as far as the job still
    /// keeps them (every state change; progress and previews only while it runs), then the
    /// live ones: to resume a stream, as with SSE's `Last-Event-ID`. Events no longer kept
    /// come as one [`JobEventKind::Lagged`](crate::JobEventKind::Lagged).
    pub fn events_after(&self, seq: u64) -> JobEvents {
        self.cell.subscribe(seq)
    }

    /// Waits for the job to end: its output, or why it failed or was cancelled.
    ///
    /// # Errors
    ///
    /// The job's final error ([`Error::Cancelled`](crate::Error::Cancelled) if it was
    /// cancelled; [`Error::Detached`](crate::Error::Detached) if the pool stopped with
    /// [`ShutdownMode::Detach`](crate::ShutdownMode::Detach) before it ended).
    pub async fn result(&self) -> Result<Arc<JobOutput>> {
        self.cell.wait().await
    }

    /// The job's outcome if it has ended.
    pub fn try_result(&self) -> Option<Result<Arc<JobOutput>>> {
        self.cell.outcome()
    }

    /// Asks the pool to cancel the job: the cancel is recorded on the job and wins over
    /// whatever happens next (a retry, a re-placement, a backoff); a queued job is dropped, a
    /// running one is stopped at once and its prompt removed from its server in the
    /// background. Ends with a `Cancelled` event unless the job ended first.
    pub fn cancel(&self) {
        self.engine.cancel(self.cell.key);
    }
}
