//! The JSON payloads (`data`) of ComfyUI's websocket text messages.
//!
//! Every struct keeps fields it does not know in `extra`, so nothing the server sends is lost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::types::NodeOutput;

/// `status`: the queue size; `sid` only on the first message after connecting.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Status {
    /// `{exec_info: {queue_remaining}}`.
    #[serde(default)]
    pub status: QueueStatus,
    /// The session id (equals the client id) on the first message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Status {
    /// Prompts queued or running on the server.
    pub fn queue_remaining(&self) -> Option<u64> {
        self.status.exec_info.queue_remaining
    }
}

/// The `status` object of a [`Status`] message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueueStatus {
    /// Queue counters.
    #[serde(default)]
    pub exec_info: ExecInfo,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `exec_info`: queue counters (also the answer of `GET /prompt`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecInfo {
    /// Prompts queued or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_remaining: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `execution_start`: the prompt left the queue and began executing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutionStart {
    /// The prompt.
    pub prompt_id: String,
    /// Server time in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `execution_cached`: nodes whose cached outputs are reused (not executed).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutionCached {
    /// The cached node ids.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// The prompt.
    pub prompt_id: String,
    /// Server time in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `executing`: a node starts; `node: null` is the last message of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Executing {
    /// The node now executing, `None` when the prompt is done.
    pub node: Option<String>,
    /// The node shown in the UI (differs inside subgraphs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_node: Option<String>,
    /// The prompt; absent on the message replayed to a socket that reconnects mid-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `progress`: step `value` of `max` inside a node (sampler steps, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Steps done.
    pub value: f64,
    /// Steps in total.
    pub max: f64,
    /// The prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// The node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `progress_state`: the state of every node touched so far (broadcast to all sockets).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProgressState {
    /// The prompt.
    pub prompt_id: String,
    /// State per node id.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeProgress>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One node's entry in [`ProgressState`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeProgress {
    /// Progress value.
    #[serde(default)]
    pub value: f64,
    /// Progress maximum.
    #[serde(default)]
    pub max: f64,
    /// `pending`, `running`, `finished`, ...
    #[serde(default)]
    pub state: String,
    /// The node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// The node shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_node_id: Option<String>,
    /// The enclosing node of a subgraph node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_node_id: Option<String>,
    /// The node id before subgraph expansion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_node_id: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `executed`: a node finished and produced UI output (images, text, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Executed {
    /// The node.
    pub node: String,
    /// The node shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_node: Option<String>,
    /// Its output (`{images: [...]}` for image savers).
    #[serde(default)]
    pub output: NodeOutput,
    /// The prompt.
    pub prompt_id: String,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `execution_success`: the prompt completed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutionSuccess {
    /// The prompt.
    pub prompt_id: String,
    /// Server time in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `execution_error`: a node raised an exception; the prompt stops.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutionError {
    /// The prompt.
    pub prompt_id: String,
    /// The failing node.
    #[serde(default)]
    pub node_id: String,
    /// Its class type.
    #[serde(default)]
    pub node_type: String,
    /// Nodes executed before the failure.
    #[serde(default)]
    pub executed: Vec<String>,
    /// The exception message.
    #[serde(default)]
    pub exception_message: String,
    /// The Python exception type.
    #[serde(default)]
    pub exception_type: String,
    /// The Python traceback.
    #[serde(default)]
    pub traceback: Vec<String>,
    /// The failing node's inputs (as strings).
    #[serde(default)]
    pub current_inputs: Value,
    /// Outputs computed so far.
    #[serde(default)]
    pub current_outputs: Value,
    /// Server time in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ExecutionError {
    /// The failure details as carried by [`crate::Error::Execution`].
    pub fn to_failure(&self) -> crate::ExecutionFailure {
        crate::ExecutionFailure {
            prompt_id: self.prompt_id.clone(),
            node_id: self.node_id.clone(),
            node_type: self.node_type.clone(),
            exception_type: self.exception_type.clone(),
            exception_message: self.exception_message.clone(),
            traceback: self.traceback.clone(),
            executed: self.executed.clone(),
        }
    }
}

/// `execution_interrupted`: the prompt was interrupted at a node boundary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutionInterrupted {
    /// The prompt.
    pub prompt_id: String,
    /// The node that was about to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Its class type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    /// Nodes executed before the interruption.
    #[serde(default)]
    pub executed: Vec<String>,
    /// Server time in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `notification`: a server notice for the UI.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Notification {
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// An id grouping related notices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A text message of a type this crate does not know, kept whole.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UnknownMessage {
    /// Its `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its `data`.
    #[serde(default)]
    pub data: Value,
}
