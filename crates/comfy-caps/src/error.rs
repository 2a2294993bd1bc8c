//! The crate's error type.

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading a server's `/object_info` or a workflow.
///
/// Messages never quote what the server or the user sent beyond serde_json's own description
/// of a syntax error (position and the unexpected token).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `/object_info` body is not valid JSON (serde_json's line and column inside).
    #[error("object_info is not valid json: {0}")]
    Json(serde_json::Error),
    /// The `/object_info` body is valid JSON but not an object of node definitions.
    #[error("object_info must be a json object of node definitions, found {found}")]
    NotAnObject {
        /// What was found instead (`"an array"`, `"a string"`, ...).
        found: &'static str,
    },
    /// A node class, input or choice name is longer than [`MAX_NAME_BYTES`](crate::MAX_NAME_BYTES).
    #[error("a {what} name of {len} bytes exceeds the limit of {limit} bytes")]
    NameTooLong {
        /// Which kind of name (`"node class"`, `"input"`, `"choice"`).
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The names kept exceed 4 GiB, or a workflow's names do.
    #[error("more than 4 GiB of names")]
    TooLarge,
    /// The workflow is not a JSON object of nodes.
    #[error("workflow must be a json object of nodes, found {found}")]
    WorkflowNotAnObject {
        /// What was found instead.
        found: &'static str,
    },
}

impl Error {
    /// Whether the body was not syntactically valid JSON (as opposed to valid JSON of the wrong
    /// shape or beyond a limit).
    pub fn is_syntax(&self) -> bool {
        matches!(self, Self::Json(e) if e.is_syntax() || e.is_eof())
    }
}

/// How a JSON value's kind reads in a message.
pub(crate) fn kind_of(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
