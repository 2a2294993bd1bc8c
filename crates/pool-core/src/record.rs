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

/// One workflow of a job: the API-format workflow and its structural hash.
///
/// A job carries one or more of them, in order of preference ([`JobSpec::variants`]); it
/// runs the first one that a capable, unblocked server can run when it is dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variant {
    /// The API-format workflow (input-file references already pointing at the uploaded
    /// names).
    pub workflow: Arc<Value>,
    /// Its structural hash (failover blocks and capability verdicts are per server and
    /// this hash).
    pub hash: WorkflowHash,
}

impl Variant {
    /// A variant.
    pub fn new(workflow: Arc<Value>, hash: WorkflowHash) -> Self {
        Self { workflow, hash }
    }
}

/// What was asked of a job; fixed at acceptance.
///
/// Its workflow variants are never empty. Serialized as the first variant's `workflow` and
/// `hash`, the others (if any) under `alternatives`, and `options`: a spec of one variant
/// reads and writes exactly as before variants existed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "SpecWire")]
#[non_exhaustive]
pub struct JobSpec {
    /// The workflow variants, in order of preference (at least one).
    variants: Vec<Variant>,
    /// How the job is scheduled, retried and bounded (tenant, priority and metadata
    /// included; input-file bytes by reference).
    pub options: JobOptions,
}

impl JobSpec {
    /// The spec of a job with one workflow.
    pub fn new(workflow: Arc<Value>, hash: WorkflowHash, options: JobOptions) -> Self {
        Self {
            variants: vec![Variant::new(workflow, hash)],
            options,
        }
    }

    /// The spec of a job with these workflow variants, in order of preference.
    ///
    /// # Errors
    ///
    /// [`Error::NoVariants`] if `variants` is empty.
    pub fn with_variants(variants: Vec<Variant>, options: JobOptions) -> crate::Result<Self> {
        if variants.is_empty() {
            return Err(Error::NoVariants);
        }
        Ok(Self { variants, options })
    }

    /// The workflow variants, in order of preference (never empty).
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// The variant at `index`, if there is one.
    pub fn variant(&self, index: usize) -> Option<&Variant> {
        self.variants.get(index)
    }

    /// The first (preferred) variant.
    pub fn first(&self) -> &Variant {
        // Never empty: every constructor (and the serde form) holds a first variant.
        &self.variants[0]
    }

    /// The first variant's workflow.
    pub fn workflow(&self) -> &Arc<Value> {
        &self.first().workflow
    }

    /// The first variant's structural hash.
    pub fn hash(&self) -> WorkflowHash {
        self.first().hash
    }

    /// The hashes of all variants, in order.
    pub fn hashes(&self) -> impl Iterator<Item = WorkflowHash> + '_ {
        self.variants.iter().map(|v| v.hash)
    }
}

/// The serde form of a [`JobSpec`], as read.
#[derive(Deserialize)]
struct SpecWire {
    workflow: Arc<Value>,
    hash: WorkflowHash,
    #[serde(default)]
    alternatives: Vec<Variant>,
    options: JobOptions,
}

/// The serde form of a [`JobSpec`], as written.
#[derive(Serialize)]
struct SpecWireRef<'a> {
    workflow: &'a Arc<Value>,
    hash: WorkflowHash,
    #[serde(skip_serializing_if = "<[Variant]>::is_empty")]
    alternatives: &'a [Variant],
    options: &'a JobOptions,
}

impl From<SpecWire> for JobSpec {
    fn from(wire: SpecWire) -> Self {
        let mut variants = Vec::with_capacity(1 + wire.alternatives.len());
        variants.push(Variant::new(wire.workflow, wire.hash));
        variants.extend(wire.alternatives);
        Self {
            variants,
            options: wire.options,
        }
    }
}

impl Serialize for JobSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let first = self.first();
        SpecWireRef {
            workflow: &first.workflow,
            hash: first.hash,
            alternatives: self.variants.get(1..).unwrap_or_default(),
            options: &self.options,
        }
        .serialize(serializer)
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
    /// The `seq` of its last event (1 after acceptance: its `Queued` is event 1).
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
            last_seq: 1,
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

    /// The structural hash of the job's first (preferred) workflow variant.
    pub fn hash(&self) -> WorkflowHash {
        self.spec.hash()
    }

    /// The variant the last attempt ran (index and hash), once the job was dispatched.
    pub fn variant_ran(&self) -> Option<(usize, WorkflowHash)> {
        let attempt = self.attempts.last()?;
        let hash = attempt
            .hash
            .or_else(|| self.spec.variant(attempt.variant).map(|v| v.hash))?;
        Some((attempt.variant, hash))
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
