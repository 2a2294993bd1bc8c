//! The crate's [`Error`] type and the per-server reasons it carries.

use std::fmt;
use std::time::Duration;

use pool_failover::{FailureClass, ServerBlock, ServerId};
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which deadline of a job ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadlineKind {
    /// No server took the job in time.
    Start,
    /// The job did not finish in time.
    Total,
}

impl fmt::Display for DeadlineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::Total => "total",
        })
    }
}

/// Why a workflow is blocked on one server, as the failover strategy told the pool (with
/// wall-clock times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockInfo {
    /// The server.
    pub server: ServerId,
    /// The class of the last failure on this server, when known.
    pub class: Option<FailureClass>,
    /// Consecutive failures of the workflow on this server.
    pub failures: u32,
    /// Whether a probe job is in flight (the block ends with its outcome).
    pub probing: bool,
    /// When the server may take the workflow again, when known.
    pub until: Option<Timestamp>,
    /// How long that was from the moment of the decision.
    #[serde(rename = "remaining_ms", with = "crate::time::millis::option")]
    pub remaining: Option<Duration>,
}

impl From<ServerBlock> for BlockInfo {
    fn from(block: ServerBlock) -> Self {
        Self {
            server: block.server,
            class: block.class,
            failures: block.failures,
            probing: block.probing,
            until: block.until.map(Timestamp::of_instant),
            remaining: block.remaining,
        }
    }
}

impl fmt::Display for BlockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.server)?;
        if let Some(class) = self.class {
            write!(f, "{class}, ")?;
        }
        let plural = if self.failures == 1 { "" } else { "s" };
        write!(f, "{} failure{plural}, ", self.failures)?;
        match (self.probing, self.remaining) {
            (true, Some(left)) => write!(
                f,
                "probe in flight, at most {:.1}s more)",
                left.as_secs_f64()
            ),
            (true, None) => f.write_str("probe in flight)"),
            (false, Some(left)) => write!(f, "blocked for {:.1}s more)", left.as_secs_f64()),
            (false, None) => f.write_str("blocked)"),
        }
    }
}

/// Why one server cannot take a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ineligible {
    /// The job requires other servers.
    NotRequired,
    /// The job excludes this server.
    Excluded,
    /// The server lacks tags the job requires.
    MissingTags(Vec<String>),
    /// The failover strategy blocks the workflow on this server (not now).
    Blocked(BlockInfo),
    /// The server lacks what the workflow needs (not until its capabilities change).
    Lacks {
        /// What it lacks ("node class X", "model file F (input of Class)").
        missing: Vec<String>,
    },
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRequired => f.write_str("not among the required servers"),
            Self::Excluded => f.write_str("excluded by the job"),
            Self::MissingTags(tags) => write!(f, "lacks tags {}", tags.join(", ")),
            Self::Blocked(block) => write!(f, "blocked: {block}"),
            Self::Lacks { missing } => write!(f, "{}", missing.join("; ")),
        }
    }
}

/// One failed attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttemptError {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The server it ran on.
    pub server: ServerId,
    /// What kind of failure it was.
    pub class: FailureClass,
    /// What happened, in words (ComfyUI's message where there is one).
    pub reason: String,
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempt {} on {} ({}): {}",
            self.attempt, self.server, self.class, self.reason
        )
    }
}

/// Everything that can go wrong in the pool: refused input, and the final error of a job.
///
/// Cheap enough to clone; every [`JobHandle`](crate::JobHandle) of a job gets a copy.
/// Serialized as `{"code": "<snake_case variant>", "detail": …}` (the codes are stable).
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// The workflow is not an object of nodes (refused by `enqueue`).
    #[error("invalid workflow: {0}")]
    InvalidWorkflow(String),
    /// One of a job's workflow variants is not an object of nodes (refused by
    /// [`Pool::enqueue_variants`](crate::Pool::enqueue_variants) for a job of several).
    #[error("invalid workflow variant {index}: {reason}")]
    InvalidVariant {
        /// The variant's index (from 0, in the order given).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A job was given no workflow variant at all.
    #[error("a job needs at least one workflow variant")]
    NoVariants,
    /// A builder or server setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A server rejected the workflow itself (ComfyUI validation: missing input, bad link,
    /// value out of range, no output node); it would fail anywhere, so it was not retried.
    #[error("workflow rejected by {server}: {reason}")]
    WorkflowRejected {
        /// The server that rejected it.
        server: ServerId,
        /// ComfyUI's reasons.
        reason: String,
    },
    /// No server can take the job: per server, why.
    #[error("no eligible server: {}", PerServer(per_server))]
    NoEligibleServer {
        /// Each server of the pool and why it cannot take the job.
        per_server: Vec<(ServerId, Ineligible)>,
    },
    /// Every allowed attempt failed (or no other server was left to retry on).
    #[error("job failed after {} attempt(s): {}", attempts.len(), Attempts(attempts))]
    AttemptsExhausted {
        /// Every attempt, in order.
        attempts: Vec<AttemptError>,
    },
    /// One attempt failed and the job will be retried (only in
    /// [`JobEventKind::Failed`](crate::JobEventKind::Failed) events with `will_retry: true`).
    #[error("{0}")]
    AttemptFailed(AttemptError),
    /// The job was cancelled (by its caller or by a cancelling shutdown).
    #[error("job cancelled")]
    Cancelled,
    /// A deadline of the job ran out.
    #[error("{0} deadline exceeded")]
    DeadlineExceeded(DeadlineKind),
    /// The pool is shutting down and accepts no new jobs.
    #[error("pool is shutting down")]
    ShuttingDown,
    /// The pool stopped with [`ShutdownMode::Detach`](crate::ShutdownMode::Detach) while the
    /// job was unfinished: it goes on (its prompt stays on its server) and a pool that starts
    /// on the same store takes it up again. Not a terminal state of the job.
    #[error("the pool detached from the job; it continues under the next pool on its store")]
    Detached,
    /// No server has this id.
    #[error("unknown server {0}")]
    UnknownServer(ServerId),
    /// A server with this id is already in the pool.
    #[error("duplicate server {0}")]
    DuplicateServer(ServerId),
    /// A job with this id exists with another workflow (a caller's job id names one job).
    #[error("job {id} exists with another workflow")]
    JobIdConflict {
        /// The job id.
        id: String,
    },
    /// The job store failed (the job was not accepted, or could not be taken up again).
    #[error("job store: {0}")]
    Store(String),
}

impl Error {
    /// The stable code of the error (its serde tag), for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidWorkflow(_) => "invalid_workflow",
            Self::InvalidVariant { .. } => "invalid_variant",
            Self::NoVariants => "no_variants",
            Self::Config(_) => "config",
            Self::WorkflowRejected { .. } => "workflow_rejected",
            Self::NoEligibleServer { .. } => "no_eligible_server",
            Self::AttemptsExhausted { .. } => "attempts_exhausted",
            Self::AttemptFailed(_) => "attempt_failed",
            Self::Cancelled => "cancelled",
            Self::DeadlineExceeded(_) => "deadline_exceeded",
            Self::ShuttingDown => "shutting_down",
            Self::Detached => "detached",
            Self::UnknownServer(_) => "unknown_server",
            Self::DuplicateServer(_) => "duplicate_server",
            Self::JobIdConflict { .. } => "job_id_conflict",
            Self::Store(_) => "store",
        }
    }

    /// The job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }

    /// The workflow itself is at fault (refused locally or rejected by ComfyUI validation).
    pub fn is_workflow_invalid(&self) -> bool {
        matches!(
            self,
            Self::InvalidWorkflow(_)
                | Self::InvalidVariant { .. }
                | Self::NoVariants
                | Self::WorkflowRejected { .. }
        )
    }

    /// A deadline ran out.
    pub fn is_deadline(&self) -> bool {
        matches!(self, Self::DeadlineExceeded(_))
    }

    /// No server could take the job (filters, or blocked everywhere under fail-fast).
    pub fn is_no_eligible_server(&self) -> bool {
        matches!(self, Self::NoEligibleServer { .. })
    }

    /// The failed attempts, for [`Error::AttemptsExhausted`]; empty otherwise.
    pub fn attempts(&self) -> &[AttemptError] {
        match self {
            Self::AttemptsExhausted { attempts } => attempts,
            _ => &[],
        }
    }
}

struct PerServer<'a>(&'a [(ServerId, Ineligible)]);

impl fmt::Display for PerServer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the pool has no server");
        }
        for (i, (server, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{server}: {why}")?;
        }
        Ok(())
    }
}

struct Attempts<'a>(&'a [AttemptError]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}
