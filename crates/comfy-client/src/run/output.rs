//! `RunOutput`: what a successful run produced, and when.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::WsOutput;
use crate::event::{NodeText, Preview};
use crate::types::{HistoryEntry, ImageRef, NodeOutput};

/// The result of a successful run (or follow).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOutput {
    /// The prompt id.
    pub prompt_id: String,
    /// UI outputs per node: the history's when it was read (authoritative), completed with
    /// outputs that only arrived over the websocket (`executed` messages); the websocket's
    /// alone when it delivered all of them (see
    /// [`RunOptions`](crate::RunOptions#outputs-without-history)).
    pub outputs: BTreeMap<String, NodeOutput>,
    /// Images of the `SaveImageWebsocket` nodes of the workflow, in arrival order: they
    /// never reach the history. Kept whatever
    /// [`RunOptions::collect_previews`](crate::RunOptions::collect_previews) says, within
    /// the memory limit.
    pub ws_outputs: Vec<WsOutput>,
    /// Binary images of the prompt in arrival order (previews, and `SaveImageWebsocket`
    /// images too), when [`RunOptions::collect_previews`](crate::RunOptions::collect_previews)
    /// is on.
    pub previews: Vec<Preview>,
    /// Node progress texts (binary type 3) attributed to the prompt, when
    /// [`RunOptions::collect_texts`](crate::RunOptions::collect_texts) is on.
    pub texts: Vec<NodeText>,
    /// Nodes whose cached outputs were reused.
    pub cached_nodes: Vec<String>,
    /// The history entry, when it was read and the server had one: not read when the
    /// websocket delivered every output, unless
    /// [`RunOptions::fetch_history`](crate::RunOptions::fetch_history) asks for it.
    pub history: Option<HistoryEntry>,
    /// When things happened.
    pub timings: Timings,
    /// What the run did not keep or deliver because of its memory limit, or missed.
    pub dropped: Dropped,
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
/// durations. For a followed prompt, `submitted_at` and `accepted_at` are the call to
/// [`Client::follow`](crate::Client::follow).
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
    /// Per executed node, from its `executing` to the next transition, in the order nodes
    /// first executed; a node that executes again adds to its entry. At most 4096 entries
    /// (and within the memory limit); more are counted in [`Dropped::nodes`].
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

/// What a run dropped to stay within its memory limit (see
/// [`RunOptions::memory_limit`](crate::RunOptions::memory_limit)), and the events it
/// missed, by kind. All zero unless the server sent more than the limits allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped {
    /// Preview images not kept in [`RunOutput::previews`].
    pub previews: u64,
    /// Node texts not kept in [`RunOutput::texts`].
    pub texts: u64,
    /// `SaveImageWebsocket` images not kept in [`RunOutput::ws_outputs`].
    pub ws_outputs: u64,
    /// `executed` outputs not merged into [`RunOutput::outputs`].
    pub outputs: u64,
    /// Node timings and cached node ids not kept.
    pub nodes: u64,
    /// Events dropped from the reader's buffer.
    pub events: u64,
    /// Events the run itself missed because its subscription to the websocket lagged
    /// behind (the client's `event_capacity`).
    pub missed: u64,
}

impl Dropped {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
