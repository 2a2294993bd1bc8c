//! `RunOutput`: what a successful run produced, and when.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::event::{NodeText, Preview};
use crate::types::{HistoryEntry, ImageRef, NodeOutput};

/// The result of a successful run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOutput {
    /// The prompt id.
    pub prompt_id: String,
    /// UI outputs per node: the history's (authoritative), completed with outputs that
    /// only arrived over the websocket.
    pub outputs: BTreeMap<String, NodeOutput>,
    /// Binary images of the prompt in arrival order (previews and `SaveImageWebsocket`
    /// outputs, which never reach the history).
    pub previews: Vec<Preview>,
    /// Node progress texts (binary type 3) attributed to the prompt.
    pub texts: Vec<NodeText>,
    /// Nodes whose cached outputs were reused.
    pub cached_nodes: Vec<String>,
    /// The history entry, when the server had one.
    pub history: Option<HistoryEntry>,
    /// When things happened.
    pub timings: Timings,
}

impl RunOutput {
    /// Every file reference of every node, as `(node id, file)`.
    pub fn images(&self) -> Vec<(String, ImageRef)> {
        self.outputs
            .iter()
            .flat_map(|(node, out)| out.files().into_iter().map(move |f| (node.clone(), f)))
            .collect()
    }
}

/// Instants of a run (tokio clock, so tests with paused time see them too) and per-node
/// durations.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Timings {
    /// When `POST /prompt` was sent.
    pub submitted_at: Instant,
    /// When the server accepted it.
    pub accepted_at: Instant,
    /// When it started executing (first event of its execution), if seen.
    pub started_at: Option<Instant>,
    /// When the run ended on this side.
    pub finished_at: Instant,
    /// Per executed node, from its `executing` to the next transition, in order.
    pub nodes: Vec<NodeTiming>,
    /// Server timestamp (ms since the epoch) of `execution_start`.
    pub server_started_ms: Option<u64>,
    /// Server timestamp (ms since the epoch) of `execution_success`.
    pub server_finished_ms: Option<u64>,
}

impl Timings {
    /// Time spent waiting in the queue (accepted to started).
    pub fn queue_wait(&self) -> Option<Duration> {
        self.started_at
            .map(|s| s.saturating_duration_since(self.accepted_at))
    }

    /// Time spent executing (started to finished).
    pub fn execution(&self) -> Option<Duration> {
        self.started_at
            .map(|s| self.finished_at.saturating_duration_since(s))
    }

    /// Submission to finish.
    pub fn total(&self) -> Duration {
        self.finished_at
            .saturating_duration_since(self.submitted_at)
    }
}

/// How long one node executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTiming {
    /// The node id.
    pub node: String,
    /// From its `executing` message to the next `executing` (or the end).
    pub duration: Duration,
}
