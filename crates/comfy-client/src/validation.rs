//! ComfyUI's failure details: prompt rejections (`400` from `POST /prompt`) and run-time
//! node failures (`execution_error`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One error object as ComfyUI writes it: `{type, message, details, extra_info}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptError {
    /// Machine-readable kind, e.g. `invalid_prompt`, `value_not_in_list`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Extra detail, often the input name.
    #[serde(default)]
    pub details: String,
    /// Structured context (`input_name`, `received_value`, ...).
    #[serde(default)]
    pub extra_info: Value,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PromptError {
    /// The `extra_info.input_name` of a per-input error.
    pub fn input_name(&self) -> Option<&str> {
        self.extra_info.get("input_name").and_then(Value::as_str)
    }

    /// The `extra_info.received_value` of a per-input error.
    pub fn received_value(&self) -> Option<&Value> {
        self.extra_info.get("received_value")
    }
}

/// The errors of one node in a rejected prompt.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeErrors {
    /// Each problem found on the node.
    #[serde(default)]
    pub errors: Vec<PromptError>,
    /// Output nodes that depend on this node.
    #[serde(default)]
    pub dependent_outputs: Vec<String>,
    /// The node's class type.
    #[serde(default)]
    pub class_type: String,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// ComfyUI's rejection of a prompt: the top-level `error` and `node_errors` per node id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ValidationError {
    /// The top-level error.
    #[serde(default)]
    pub error: PromptError,
    /// Errors per node id (may be empty, e.g. for an unknown class type).
    #[serde(default)]
    pub node_errors: BTreeMap<String, NodeErrors>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ValidationError {
    /// The top-level error type, e.g. `prompt_outputs_failed_validation`.
    pub fn error_type(&self) -> &str {
        &self.error.kind
    }

    /// The top-level message.
    pub fn message(&self) -> &str {
        &self.error.message
    }

    /// Every error type present: the top-level one, then each node error's.
    pub fn error_types(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.error.kind.as_str()).chain(
            self.node_errors
                .values()
                .flat_map(|n| n.errors.iter().map(|e| e.kind.as_str())),
        )
    }

    /// Whether `kind` is the top-level type or any node error's type.
    pub fn has_error_type(&self, kind: &str) -> bool {
        self.error_types().any(|k| k == kind)
    }

    /// Node errors flattened to `(node id, class type, error)`.
    pub fn node_error_list(&self) -> impl Iterator<Item = (&str, &str, &PromptError)> {
        self.node_errors.iter().flat_map(|(id, n)| {
            n.errors
                .iter()
                .map(move |e| (id.as_str(), n.class_type.as_str(), e))
        })
    }

    /// The server does not know a node class used by the prompt, in either wording:
    /// ComfyUI 0.3.x–0.8 answer `invalid_prompt` "Cannot execute because node X does not
    /// exist.", later releases `missing_node_type` "Node 'X' not found. The custom node may
    /// not be installed.".
    pub fn is_missing_node_class(&self) -> bool {
        self.error.kind == "missing_node_type"
            || (self.error.kind == "invalid_prompt"
                && self.error.message.contains("does not exist"))
    }

    /// The node class the server does not know, when the rejection names it (see
    /// [`is_missing_node_class`](Self::is_missing_node_class)).
    pub fn missing_node_class(&self) -> Option<&str> {
        if !self.is_missing_node_class() {
            return None;
        }
        if let Some(class) = self
            .error
            .extra_info
            .get("class_type")
            .and_then(Value::as_str)
        {
            return Some(class);
        }
        let message = self.error.message.as_str();
        message
            .strip_prefix("Cannot execute because node ")
            .and_then(|rest| rest.strip_suffix(" does not exist."))
            .or_else(|| {
                message
                    .strip_prefix("Node '")
                    .and_then(|rest| rest.split_once("' not found"))
                    .map(|(class, _)| class)
            })
    }

    /// Inputs whose value is not among the server's choices (`value_not_in_list`): for a
    /// model-loader input this means the server lacks the model. Yields
    /// `(node id, class type, input name, received value)`.
    pub fn values_not_in_list(
        &self,
    ) -> impl Iterator<Item = (&str, &str, Option<&str>, Option<&Value>)> {
        self.node_error_list()
            .filter(|(_, _, e)| e.kind == "value_not_in_list")
            .map(|(id, class, e)| (id, class, e.input_name(), e.received_value()))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.kind, self.error.message)?;
        if !self.error.details.is_empty() {
            write!(f, " ({})", self.error.details)?;
        }
        for (id, class, e) in self.node_error_list() {
            write!(f, "; node {id} ({class}): {}: {}", e.kind, e.message)?;
        }
        Ok(())
    }
}

/// A node failure at run time, from `execution_error` (or the history's copy of it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionFailure {
    /// The prompt.
    pub prompt_id: String,
    /// The failing node.
    pub node_id: String,
    /// Its class type.
    pub node_type: String,
    /// The Python exception type, e.g. `RuntimeError`, `torch.OutOfMemoryError`.
    pub exception_type: String,
    /// The exception message.
    pub exception_message: String,
    /// The Python traceback, one frame per entry.
    pub traceback: Vec<String>,
    /// Nodes that had executed before the failure.
    pub executed: Vec<String>,
}

impl fmt::Display for ExecutionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} ({}) raised {}: {}",
            self.node_id,
            self.node_type,
            self.exception_type,
            self.exception_message.trim_end()
        )
    }
}
