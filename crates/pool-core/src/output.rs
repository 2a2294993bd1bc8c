//! [`JobOutput`]: what a finished job returns, with its timings and attempts.

use std::sync::Arc;
use std::time::Duration;

use pool_failover::{FailureClass, ServerId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use workflow_hash::WorkflowHash;

use crate::{Blob, JobId, NodeTiming, PreviewFormat, Timestamp};

/// A seed chosen by auto-seed for one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "class", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// Still running (the job's current attempt).
    Running,
    /// It succeeded.
    Succeeded,
    /// It failed with this class.
    Failed(FailureClass),
    /// It was cancelled.
    Cancelled,
    /// It was stopped by a deadline of the job.
    TimedOut,
    /// Its server left the pool; the job went back to the queue.
    Withdrawn,
}

impl AttemptOutcome {
    /// Whether the attempt counts against the job's `max_attempts` (withdrawn ones do not).
    pub fn counts(&self) -> bool {
        !matches!(self, Self::Withdrawn)
    }
}

/// One attempt of a job: where, under which prompt id, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The server.
    pub server: ServerId,
    /// The prompt id it was submitted under (chosen before the submission, so that the pool
    /// can always ask the server what became of it).
    pub prompt_id: String,
    /// Which of the job's workflow variants it ran (its index; 0 for a job of one
    /// workflow).
    #[serde(default)]
    pub variant: usize,
    /// The structural hash of the variant it ran (`None` only in records written before
    /// variants existed, whose one workflow is the spec's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<WorkflowHash>,
    /// Whether it was the probation probe of its (server, workflow) pair.
    #[serde(default)]
    pub probe: bool,
    /// Seeds chosen by auto-seed for it.
    #[serde(default)]
    pub seeds: Vec<SeedAssignment>,
    /// When it was dispatched.
    pub started_at: Timestamp,
    /// When the server accepted the prompt.
    #[serde(default)]
    pub submitted_at: Option<Timestamp>,
    /// When the prompt started executing on the server.
    #[serde(default)]
    pub executing_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    /// From dispatch to its end (zero while it runs).
    #[serde(rename = "duration_ms", with = "crate::time::millis")]
    pub duration: Duration,
    /// How it ended ([`AttemptOutcome::Running`] while it runs).
    pub outcome: AttemptOutcome,
    /// Why it failed, in words, when it did.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Timings of a finished job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobTimings {
    /// From enqueue to the first dispatch.
    #[serde(rename = "queue_wait_ms", with = "crate::time::millis")]
    pub queue_wait: Duration,
    /// From enqueue to the end.
    #[serde(rename = "total_ms", with = "crate::time::millis")]
    pub total: Duration,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Per node of the successful attempt (from the server's events).
    pub nodes: Vec<NodeTiming>,
}

/// An image a node sent only over the websocket (`SaveImageWebsocket`): it never reaches the
/// server's history, so the pool keeps its bytes with the job's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WsImage {
    /// The node that sent it.
    pub node: String,
    /// The image format.
    pub format: PreviewFormat,
    /// The bytes (by reference in records).
    pub image: Blob,
}

impl WsImage {
    /// An image of `node`.
    pub fn new(node: impl Into<String>, format: PreviewFormat, image: Blob) -> Self {
        Self {
            node: node.into(),
            format,
            image,
        }
    }
}

/// What a completed job returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobOutput {
    /// The job.
    pub job: JobId,
    /// The server that ran it.
    pub server: ServerId,
    /// Its prompt id there.
    pub prompt_id: String,
    /// Which of the job's workflow variants ran (its index; 0 for a job of one workflow).
    #[serde(default)]
    pub variant: usize,
    /// The structural hash of the variant that ran (`None` only in results written before
    /// variants existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<WorkflowHash>,
    /// Outputs per node id, from the server's history.
    pub outputs: Map<String, Value>,
    /// Images sent only over the websocket (`SaveImageWebsocket` nodes), in arrival order.
    #[serde(default)]
    pub ws_images: Vec<WsImage>,
    /// Seeds chosen by auto-seed for the successful attempt.
    pub seeds: Vec<SeedAssignment>,
    /// The job's metadata, as given in its options.
    pub metadata: Option<Arc<Map<String, Value>>>,
    /// Timings.
    pub timings: JobTimings,
}
