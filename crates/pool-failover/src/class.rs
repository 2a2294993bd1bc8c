//! [`FailureClass`]: what kind of failure happened, as classified by the pool.

use std::fmt;

/// What kind of failure a job met on a server.
///
/// The pool *classifies* an outcome (it knows HTTP errors and ComfyUI messages); the strategy
/// only *decides* what to block for each class:
///
/// | class | blocks the (server, hash) pair? | retry elsewhere? |
/// |---|---|---|
/// | [`WorkflowInvalid`](Self::WorkflowInvalid) | no | no |
/// | [`ServerLacksResource`](Self::ServerLacksResource) | yes, at once, long cooldown | yes |
/// | [`Execution`](Self::Execution) | after the configured number of consecutive failures | yes |
/// | [`ServerDown`](Self::ServerDown) | no: the pool takes the whole server offline | yes |
/// | [`Stuck`](Self::Stuck) | like `Execution` | yes |
/// | [`Cancelled`](Self::Cancelled) | no | no |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureClass {
    /// The workflow itself is wrong (no outputs, missing input, bad link, value out of range):
    /// it fails everywhere, so nothing is blocked and nothing is retried.
    WorkflowInvalid,
    /// The server lacks something the workflow needs (an unknown node class, a model file not
    /// in its list): blocks the pair at once, with the long resource cooldown.
    ServerLacksResource,
    /// The workflow failed while running (out of memory, CUDA error, exception in a node):
    /// counts toward the consecutive-failure threshold.
    Execution,
    /// The server is unreachable or broken as a whole: never a workflow block, the pool takes
    /// the whole server offline instead.
    ServerDown,
    /// No progress past a deadline. Counted exactly like [`Execution`](Self::Execution): a hung
    /// run is evidence against this pair, but a slow workflow can trip it too, so it does not
    /// get the immediate long block of [`ServerLacksResource`](Self::ServerLacksResource).
    Stuck,
    /// The user cancelled the job: blocks nothing.
    Cancelled,
}

impl FailureClass {
    /// Every class, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::WorkflowInvalid,
        Self::ServerLacksResource,
        Self::Execution,
        Self::ServerDown,
        Self::Stuck,
        Self::Cancelled,
    ];

    /// A short, stable, snake_case name (the same as its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkflowInvalid => "workflow_invalid",
            Self::ServerLacksResource => "server_lacks_resource",
            Self::Execution => "execution",
            Self::ServerDown => "server_down",
            Self::Stuck => "stuck",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job may be retried on another server.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::ServerLacksResource | Self::Execution | Self::ServerDown | Self::Stuck => true,
            Self::WorkflowInvalid | Self::Cancelled => false,
        }
    }

    /// Whether this class is evidence against the (server, hash) pair, i.e. can lead to a block.
    pub fn affects_pair(self) -> bool {
        matches!(
            self,
            Self::ServerLacksResource | Self::Execution | Self::Stuck
        )
    }

    /// Whether one failure of this class blocks the pair at once, whatever the threshold.
    pub fn blocks_immediately(self) -> bool {
        matches!(self, Self::ServerLacksResource)
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Self::WorkflowInvalid => 0,
            Self::ServerLacksResource => 1,
            Self::Execution => 2,
            Self::ServerDown => 3,
            Self::Stuck => 4,
            Self::Cancelled => 5,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::WorkflowInvalid,
            1 => Self::ServerLacksResource,
            3 => Self::ServerDown,
            4 => Self::Stuck,
            5 => Self::Cancelled,
            _ => Self::Execution,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
