//! The crate's error type.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while hashing, canonicalising or diffing a workflow, or while
/// parsing a [`WorkflowHash`](crate::WorkflowHash) from hex.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not valid JSON; the message carries serde_json's line and column.
    #[error("invalid workflow json: {0}")]
    Json(serde_json::Error),
    /// Reading the workflow from a reader failed.
    #[error("failed to read workflow: {0}")]
    Io(std::io::Error),
    /// The top level of the workflow is not a JSON object of nodes.
    #[error("workflow must be a json object of nodes, found {found}")]
    NotAnObject {
        /// What was found instead.
        found: JsonKind,
    },
    /// A node entry is not a JSON object (only reported by strict validation; hashing tolerates
    /// such entries exactly like comfyui-node does).
    #[error("node {node:?} must be a json object, found {found}")]
    NodeNotObject {
        /// The node id.
        node: String,
        /// What was found instead.
        found: JsonKind,
    },
    /// The workflow nests containers deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("workflow nesting exceeds {limit} levels in node {node:?} at {pointer}")]
    TooDeep {
        /// The node id whose value is too deep.
        node: String,
        /// JSON Pointer (RFC 6901) of the first container beyond the limit.
        pointer: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A hex workflow hash does not have 64 characters.
    #[error("workflow hash must be 64 hex characters, found {found}")]
    HexLength {
        /// The number of characters found.
        found: usize,
    },
    /// A hex workflow hash contains a character that is not a hex digit.
    #[error("workflow hash has a non-hex character at position {position}")]
    HexDigit {
        /// Byte position of the first bad character.
        position: usize,
    },
}

impl Error {
    /// Whether the input was not syntactically valid JSON (or could not be read).
    pub fn is_syntax(&self) -> bool {
        matches!(self, Self::Json(_) | Self::Io(_))
    }

    /// Whether the input was valid JSON but not a usable workflow.
    pub fn is_structure(&self) -> bool {
        matches!(
            self,
            Self::NotAnObject { .. } | Self::NodeNotObject { .. } | Self::TooDeep { .. }
        )
    }

    /// Whether a hex hash string could not be parsed.
    pub fn is_hex(&self) -> bool {
        matches!(self, Self::HexLength { .. } | Self::HexDigit { .. })
    }

    /// Line (1-based) of a JSON syntax error, if this is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Json(e) => Some(e.line()),
            _ => None,
        }
    }

    /// Column (1-based) of a JSON syntax error, if this is one.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Json(e) => Some(e.column()),
            _ => None,
        }
    }
}

/// The kind of a JSON value, used in error messages and differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonKind {
    /// The kind of `value`.
    pub fn of(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Boolean,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    /// Lowercase name: `null`, `boolean`, `number`, `string`, `array` or `object`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Number => "number",
            Self::String => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
