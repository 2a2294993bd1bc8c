//! [`JobRecord`]: the single truth of one job — what was asked (its [`JobSpec`]), where it
//! stands, every attempt, and how it ended. The engine changes it only through
//! [`Transition`](crate::Transition)s, one at a time, so that a store can persist each.

use std::sync::Arc;

use pool_failover::ServerId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use workflow_hash::WorkflowHash;

use crate::{
    AttemptError, AttemptOutcome, AttemptRecord, DeadlineKind, Error, JobId, JobOptions, JobOutput,
    JobStatus, Timestamp,
};

/// What was asked of a job; fixed at acceptance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobSpec {
    /// The API-format workflow (input-file references already pointing at the uploaded
    /// names).
    pub workflow: Arc<Value>,
    /// Its structural hash.
    pub hash: WorkflowHash,
    /// How the job is scheduled, retried and bounded (tenant, priority and metadata
    /// included; input-file bytes by reference).
    pub options: JobOptions,
}

impl JobSpec {
    /// A spec.
    pub fn new(workflow: Arc<Value>, hash: WorkflowHash, options: JobOptions) -> Self {
        Self {
            workflow,
            hash,
            options,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for a server.
    Queued,
    /// An attempt runs on a server.
    Running,
    /// Waiting out the backoff before its next attempt.
    RetryWait,
    /// Finished successfully; terminal.
    Completed,
    /// Failed for good; terminal.
    Failed,
    /// Cancelled; terminal.
    Cancelled,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// A short, stable, snake_case name (its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::RetryWait => "retry_wait",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The attempt a running job is on: where to ask about its prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CurrentAttempt {
    /// The attempt number.
    pub attempt: u32,
    /// The server.
    pub server: ServerId,
    /// The prompt id there.
    pub prompt_id: String,
}

/// The record of one job ([`Pool::record`](crate::Pool::record)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// What was asked.
    pub spec: Arc<JobSpec>,
    /// Where it stands.
    pub state: JobState,
    /// Every attempt, in order; the last one is running while the state is
    /// [`JobState::Running`].
    pub attempts: Vec<AttemptRecord>,
    /// The result, once completed.
    pub result: Option<Arc<JobOutput>>,
    /// The final error, once failed or cancelled.
    pub error: Option<Error>,
    /// The job was cancelled: whatever happens next, it ends cancelled.
    pub cancel_requested: bool,
    /// A deadline that ran out while an attempt ran: the job ends with it.
    pub deadline_expired: Option<DeadlineKind>,
    /// When the pool accepted it.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// How many transitions it went through (1 after acceptance).
    pub version: u64,
    /// The `seq` of its last event.
    pub last_seq: u64,
}

impl JobRecord {
    /// The record of a job just accepted.
    pub fn new(id: JobId, spec: Arc<JobSpec>, at: Timestamp) -> Self {
        Self {
            id,
            spec,
            state: JobState::Queued,
            attempts: Vec::new(),
            result: None,
            error: None,
            cancel_requested: false,
            deadline_expired: None,
            created_at: at,
            updated_at: at,
            version: 1,
            last_seq: 0,
        }
    }

    /// The job's options.
    pub fn options(&self) -> &JobOptions {
        &self.spec.options
    }

    /// The tenant, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.spec.options.tenant.as_deref()
    }

    /// The priority.
    pub fn priority(&self) -> i32 {
        self.spec.options.priority
    }

    /// The workflow's structural hash.
    pub fn hash(&self) -> WorkflowHash {
        self.spec.hash
    }

    /// The running attempt, while the job runs.
    pub fn current(&self) -> Option<CurrentAttempt> {
        if self.state != JobState::Running {
            return None;
        }
        self.attempts.last().map(|a| CurrentAttempt {
            attempt: a.attempt,
            server: a.server.clone(),
            prompt_id: a.prompt_id.clone(),
        })
    }

    /// Where the job stands, for callers.
    pub fn status(&self) -> JobStatus {
        match self.state {
            JobState::Queued | JobState::RetryWait => JobStatus::Queued,
            JobState::Running => match self.attempts.last() {
                Some(a) => JobStatus::Running {
                    server: a.server.clone(),
                    attempt: a.attempt,
                },
                None => JobStatus::Queued,
            },
            JobState::Completed => JobStatus::Completed,
            JobState::Failed => JobStatus::Failed,
            JobState::Cancelled => JobStatus::Cancelled,
        }
    }

    /// The job's outcome, once it ended.
    pub fn outcome(&self) -> Option<crate::Result<Arc<JobOutput>>> {
        match self.state {
            JobState::Completed => Some(self.result.clone().ok_or(Error::Cancelled)),
            JobState::Cancelled => Some(Err(Error::Cancelled)),
            JobState::Failed => Some(Err(self.error.clone().unwrap_or(Error::Cancelled))),
            _ => None,
        }
    }

    /// Attempts that count against `max_attempts` (withdrawn ones do not).
    pub fn counted_attempts(&self) -> u32 {
        let n = self.attempts.iter().filter(|a| a.outcome.counts()).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The failed attempts, as errors.
    pub fn attempt_errors(&self) -> Vec<AttemptError> {
        self.attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                AttemptOutcome::Failed(class) => Some(AttemptError {
                    attempt: a.attempt,
                    server: a.server.clone(),
                    class: *class,
                    reason: a.reason.clone().unwrap_or_default(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether a prompt of the job started executing on a server (its start deadline is
    /// met).
    pub fn executed(&self) -> bool {
        self.attempts.iter().any(|a| a.executing_at.is_some())
    }
}
