//! `GET /queue`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The answer of `GET /queue`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Queue {
    /// The prompt executing now (at most one on a stock server).
    #[serde(default)]
    pub queue_running: Vec<QueueItem>,
    /// Prompts waiting.
    #[serde(default)]
    pub queue_pending: Vec<QueueItem>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Queue {
    /// Whether `prompt_id` is running.
    pub fn is_running(&self, prompt_id: &str) -> bool {
        self.queue_running.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// Whether `prompt_id` is waiting.
    pub fn is_pending(&self, prompt_id: &str) -> bool {
        self.queue_pending.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// Whether `prompt_id` is running or waiting.
    pub fn contains(&self, prompt_id: &str) -> bool {
        self.is_running(prompt_id) || self.is_pending(prompt_id)
    }

    /// Running plus pending prompts.
    pub fn len(&self) -> usize {
        self.queue_running.len() + self.queue_pending.len()
    }

    /// Nothing running or pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One queue entry; on the wire an array `[number, prompt_id, prompt, extra_data,
/// outputs_to_execute, ...]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueItem {
    /// The queue number.
    pub number: f64,
    /// The prompt id.
    pub prompt_id: String,
    /// The workflow.
    pub prompt: Value,
    /// Its extra data (holds `client_id`).
    pub extra_data: Value,
    /// The output nodes to execute.
    pub outputs_to_execute: Vec<String>,
    /// Array elements after the fifth.
    pub rest: Vec<Value>,
}

impl QueueItem {
    /// The `client_id` the prompt was submitted with.
    pub fn client_id(&self) -> Option<&str> {
        self.extra_data.get("client_id").and_then(Value::as_str)
    }

    /// Decodes the wire array (also used for the `prompt` field of a history entry).
    pub(crate) fn from_array(items: Vec<Value>) -> Result<Self, String> {
        let mut it = items.into_iter();
        let number = match it.next() {
            Some(Value::Number(n)) => n.as_f64().unwrap_or_default(),
            Some(other) => return Err(format!("queue number is not a number: {other}")),
            None => return Err("empty queue item".into()),
        };
        let prompt_id = match it.next() {
            Some(Value::String(s)) => s,
            other => return Err(format!("queue item prompt id is not a string: {other:?}")),
        };
        let prompt = it.next().unwrap_or(Value::Null);
        let extra_data = it.next().unwrap_or(Value::Null);
        let outputs_to_execute = match it.next() {
            Some(v) => serde_json::from_value(v).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        Ok(Self {
            number,
            prompt_id,
            prompt,
            extra_data,
            outputs_to_execute,
            rest: it.collect(),
        })
    }

    fn to_array(&self) -> Vec<Value> {
        let mut out = vec![
            serde_json::json!(self.number),
            Value::String(self.prompt_id.clone()),
            self.prompt.clone(),
            self.extra_data.clone(),
            serde_json::json!(self.outputs_to_execute),
        ];
        out.extend(self.rest.iter().cloned());
        out
    }
}

impl<'de> Deserialize<'de> for QueueItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<Value>::deserialize(d)?;
        Self::from_array(items).map_err(D::Error::custom)
    }
}

impl Serialize for QueueItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_array().serialize(s)
    }
}
