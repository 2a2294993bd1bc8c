//! `GET /history` and `GET /history/{id}`.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{NodeOutput, QueueItem};
use crate::event::{ExecutionError, ExecutionInterrupted};

/// Finished prompts, in the server's order (`GET /history`: oldest first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// One entry per prompt.
    pub entries: Vec<HistoryEntry>,
}

impl History {
    /// The entry of `prompt_id`.
    pub fn get(&self, prompt_id: &str) -> Option<&HistoryEntry> {
        self.entries.iter().find(|e| e.prompt_id == prompt_id)
    }

    /// Takes the entry of `prompt_id`.
    pub(crate) fn take(self, prompt_id: &str) -> Option<HistoryEntry> {
        self.entries.into_iter().find(|e| e.prompt_id == prompt_id)
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let mut entries = Vec::with_capacity(map.len());
        for (prompt_id, value) in map {
            let mut entry = HistoryEntry::deserialize(value)
                .map_err(|e| D::Error::custom(format!("history entry {prompt_id}: {e}")))?;
            entry.prompt_id = prompt_id;
            entries.push(entry);
        }
        Ok(Self { entries })
    }
}

/// One finished prompt: its workflow, outputs per node and final status.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The prompt id (the key of the entry on the wire).
    #[serde(skip)]
    pub prompt_id: String,
    /// The queue item the prompt ran as.
    #[serde(default)]
    pub prompt: Option<QueueItem>,
    /// UI outputs per node id (empty for nodes that send results over the websocket).
    #[serde(default)]
    pub outputs: BTreeMap<String, NodeOutput>,
    /// The final status.
    #[serde(default)]
    pub status: Option<HistoryStatus>,
    /// Display metadata per output node.
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HistoryEntry {
    /// Whether the prompt completed successfully (`status_str` "success" or `completed`).
    pub fn is_success(&self) -> bool {
        self.status.as_ref().is_some_and(HistoryStatus::is_success)
    }
}

/// The `status` of a history entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistoryStatus {
    /// `success` or `error`.
    #[serde(default)]
    pub status_str: String,
    /// Whether every output node executed.
    #[serde(default)]
    pub completed: bool,
    /// The execution messages of the run: `[type, data]` pairs.
    #[serde(default)]
    pub messages: Vec<(String, Value)>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HistoryStatus {
    /// `status_str` is "success", or the run completed without a recorded failure.
    pub fn is_success(&self) -> bool {
        self.status_str == "success"
            || (self.completed && self.status_str != "error" && self.failure_message().is_none())
    }

    fn failure_message(&self) -> Option<&Value> {
        self.message("execution_error")
            .or_else(|| self.message("execution_interrupted"))
    }

    /// The data of the first message of type `kind`.
    pub fn message(&self, kind: &str) -> Option<&Value> {
        self.messages
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, data)| data)
    }

    /// The recorded `execution_error`, if the run failed.
    pub fn execution_error(&self) -> Option<ExecutionError> {
        self.message("execution_error")
            .and_then(|v| ExecutionError::deserialize(v).ok())
    }

    /// The recorded `execution_interrupted`, if the run was interrupted.
    pub fn interrupted(&self) -> Option<ExecutionInterrupted> {
        self.message("execution_interrupted")
            .and_then(|v| ExecutionInterrupted::deserialize(v).ok())
    }

    /// The server timestamp (ms since the epoch) of the first message of type `kind`.
    pub fn timestamp(&self, kind: &str) -> Option<u64> {
        self.message(kind)
            .and_then(|v| v.get("timestamp"))
            .and_then(Value::as_u64)
    }
}
