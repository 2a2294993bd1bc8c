//! `POST /prompt` and `GET /prompt`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::ExecInfo;

/// The body of `POST /prompt`. Build it with [`PromptRequest::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptRequest {
    /// The API-format workflow: an object of nodes keyed by node id.
    pub prompt: Value,
    /// The websocket client id that receives this prompt's events; `None` means the
    /// submitting client's own id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A caller-chosen prompt id (ComfyUI echoes and uses it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Put the prompt at the front of the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub front: Option<bool>,
    /// An explicit queue position number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<f64>,
    /// Extra data stored with the prompt (e.g. `extra_pnginfo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_data: Option<Map<String, Value>>,
}

impl PromptRequest {
    /// A request for `workflow` with every option unset.
    pub fn new(workflow: Value) -> Self {
        Self {
            prompt: workflow,
            client_id: None,
            prompt_id: None,
            front: None,
            number: None,
            extra_data: None,
        }
    }

    /// Sets the prompt id.
    pub fn prompt_id(mut self, id: impl Into<String>) -> Self {
        self.prompt_id = Some(id.into());
        self
    }

    /// Sets the client id (default: the submitting client's).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Queues at the front.
    pub fn front(mut self, front: bool) -> Self {
        self.front = Some(front);
        self
    }

    /// Sets the queue number.
    pub fn number(mut self, number: f64) -> Self {
        self.number = Some(number);
        self
    }

    /// Sets `extra_data`.
    pub fn extra_data(mut self, extra: Map<String, Value>) -> Self {
        self.extra_data = Some(extra);
        self
    }
}

/// The answer to an accepted `POST /prompt`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptResponse {
    /// The prompt id (the caller's, when one was given).
    pub prompt_id: String,
    /// The queue number.
    #[serde(default)]
    pub number: Option<f64>,
    /// Errors of nodes that were dropped but did not block the prompt.
    #[serde(default)]
    pub node_errors: Value,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer of `GET /prompt`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptInfo {
    /// Queue counters.
    #[serde(default)]
    pub exec_info: ExecInfo,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
