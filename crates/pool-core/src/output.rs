//! [`JobOutput`]: what a finished job returns, with its timings.

use std::sync::Arc;
use std::time::Duration;

use pool_failover::{FailureClass, ServerId};
use serde_json::{Map, Value};

use crate::{JobId, NodeTiming};

/// A seed chosen by auto-seed for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedAssignment {
    /// The node id.
    pub node: String,
    /// The input name (`seed` or `noise_seed`).
    pub input: String,
    /// The seed used.
    pub value: u64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It succeeded.
    Succeeded,
    /// It failed with this class.
    Failed(FailureClass),
    /// It was cancelled.
    Cancelled,
    /// It was stopped by the job's total deadline.
    TimedOut,
    /// Its server left the pool; the job went back to the queue.
    Withdrawn,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The server.
    pub server: ServerId,
    /// The prompt id it was submitted under.
    pub prompt_id: String,
    /// From dispatch to its end.
    pub duration: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// Timings of a finished job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobTimings {
    /// From enqueue to the first dispatch.
    pub queue_wait: Duration,
    /// From enqueue to the end.
    pub total: Duration,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Per node of the successful attempt (from the server's events).
    pub nodes: Vec<NodeTiming>,
}

/// What a completed job returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobOutput {
    /// The job.
    pub job: JobId,
    /// The server that ran it.
    pub server: ServerId,
    /// Its prompt id there.
    pub prompt_id: String,
    /// Outputs per node id, from the server's history.
    pub outputs: Map<String, Value>,
    /// Seeds chosen by auto-seed for the successful attempt.
    pub seeds: Vec<SeedAssignment>,
    /// The job's metadata, as given in its options.
    pub metadata: Option<Arc<Map<String, Value>>>,
    /// Timings.
    pub timings: JobTimings,
}
