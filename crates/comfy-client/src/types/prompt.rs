//! `POST /prompt` and `GET /prompt`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::ExecInfo;
use crate::setters::option_setters;

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

    option_setters! {
        /// Sets the prompt id.
        prompt_id: impl Into<String>;
        /// Sets the client id (default: the submitting client's).
        client_id: impl Into<String>;
        /// Queues at the front (`true`) or at the back.
        front: bool;
        /// Sets the queue number.
        number: f64;
        /// Sets `extra_data`.
        extra_data: Map<String, Value>;
    }

    /// The wire body, with `client_id` defaulting to `default_client_id`.
    pub(crate) fn body<'a>(&'a self, default_client_id: &'a str) -> PromptBody<'a> {
        PromptBody {
            prompt: &self.prompt,
            client_id: self.client_id.as_deref().unwrap_or(default_client_id),
            prompt_id: self.prompt_id.as_deref(),
            front: self.front,
            number: self.number,
            extra_data: self.extra_data.as_ref(),
        }
    }
}

/// The body of `POST /prompt` as sent: [`PromptRequest`]'s fields, borrowed, so that a
/// shared workflow is serialized without being copied.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PromptBody<'a> {
    pub(crate) prompt: &'a Value,
    pub(crate) client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prompt_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) front: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) number: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) extra_data: Option<&'a Map<String, Value>>,
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
