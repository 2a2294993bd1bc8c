//! The one error type of the crate and its predicates.

use std::fmt;
use std::time::Duration;

use crate::validation::{ExecutionFailure, ValidationError};

/// A boxed error cause, kept in [`std::error::Error::source`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which deadline ran out in an [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deadline {
    /// Opening a TCP/TLS connection (HTTP or websocket).
    Connect,
    /// One HTTP request, from sending it to reading the whole answer.
    Request,
    /// A submitted prompt did not start executing in time (it waited in the queue);
    /// counted from its acceptance, or from the call to `follow`.
    Start,
    /// No event of a running prompt arrived in time.
    Idle,
    /// The whole run, from submission (or the call to `follow`) to outputs.
    Total,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Request => "request",
            Self::Start => "start",
            Self::Idle => "idle",
            Self::Total => "total",
        })
    }
}

/// Everything that can go wrong talking to a ComfyUI server.
///
/// Callers decide with the predicates ([`is_timeout`](Self::is_timeout),
/// [`is_connect`](Self::is_connect), [`is_validation`](Self::is_validation),
/// [`is_retryable`](Self::is_retryable)) and read details with the accessors
/// ([`validation`](Self::validation), [`execution`](Self::execution)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL cannot be used.
    #[error("invalid url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given (credentials removed).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A builder option or argument is invalid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The server could not be reached.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL that was tried.
        url: String,
        /// The underlying cause.
        #[source]
        source: BoxError,
    },
    /// A deadline ran out.
    #[error("{deadline} deadline of {limit:?} exceeded")]
    Timeout {
        /// Which deadline.
        deadline: Deadline,
        /// Its configured length.
        limit: Duration,
    },
    /// The server answered with an unexpected HTTP status.
    #[error("http status {status} from {path}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The route that answered (for example `/prompt`).
        path: String,
        /// The start of the response body (at most 512 characters).
        body: String,
    },
    /// ComfyUI rejected the prompt (`400` from `POST /prompt`).
    #[error("prompt rejected: {0}")]
    Validation(Box<ValidationError>),
    /// A node failed while the prompt executed (`execution_error`).
    #[error("execution failed: {0}")]
    Execution(Box<ExecutionFailure>),
    /// The prompt was interrupted on the server by someone else than this run's caller.
    #[error("prompt {prompt_id} was interrupted{}", at_node(node_id.as_deref(), node_type.as_deref()))]
    Interrupted {
        /// The prompt.
        prompt_id: String,
        /// The node that was running, if known.
        node_id: Option<String>,
        /// Its class type, if known.
        node_type: Option<String>,
    },
    /// The run was cancelled by its caller.
    #[error("prompt {prompt_id} was cancelled")]
    Cancelled {
        /// The prompt.
        prompt_id: String,
    },
    /// The prompt vanished from both the queue and the history (the server restarted).
    #[error(
        "prompt {prompt_id} was lost: it is in neither the queue nor the history of the server"
    )]
    Lost {
        /// The prompt.
        prompt_id: String,
    },
    /// The server answered no poll of a running prompt (`/queue`, `/history`) correctly
    /// for the run's `unreachable_timeout`, whatever its websocket did; `source` is the
    /// last poll's error.
    #[error("prompt {prompt_id}: no correct answer from the server for {limit:?}")]
    Unreachable {
        /// The prompt.
        prompt_id: String,
        /// The run's `unreachable_timeout`.
        limit: Duration,
        /// The last poll's error.
        #[source]
        source: Box<Error>,
    },
    /// An answer or a frame could not be decoded.
    #[error("cannot decode {context}: {reason}")]
    Decode {
        /// What was being decoded.
        context: String,
        /// What was wrong with it.
        reason: String,
    },
    /// An answer or a frame is larger than the configured limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The websocket failed.
    #[error("websocket error")]
    WebSocket(#[source] BoxError),
    /// The HTTP request failed after connecting (body read, protocol error, redirect loop).
    #[error("http request failed")]
    Http(#[source] BoxError),
    /// A local I/O error.
    #[error("i/o error")]
    Io(#[from] std::io::Error),
}

fn at_node(node_id: Option<&str>, node_type: Option<&str>) -> String {
    match (node_id, node_type) {
        (Some(id), Some(ty)) => format!(" at node {id} ({ty})"),
        (Some(id), None) => format!(" at node {id}"),
        _ => String::new(),
    }
}

impl Error {
    /// A deadline ran out (see [`deadline`](Self::deadline) for which).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The server could not be reached (connection refused, DNS, TLS, connect timeout).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout {
                    deadline: Deadline::Connect,
                    ..
                }
        )
    }

    /// ComfyUI rejected the prompt; see [`validation`](Self::validation).
    pub fn is_validation(&self) -> bool {
        matches!(self, Self::Validation(_))
    }

    /// A node failed at run time; see [`execution`](Self::execution).
    pub fn is_execution(&self) -> bool {
        matches!(self, Self::Execution(_))
    }

    /// The prompt vanished from the server (restart); it never completed.
    pub fn is_lost(&self) -> bool {
        matches!(self, Self::Lost { .. })
    }

    /// The caller cancelled the run.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled { .. })
    }

    /// A run gave up on a server that answered its polls with errors for too long.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// The prompt was interrupted on the server.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Interrupted { .. })
    }

    /// Trying the same request again (here or on another server) may succeed:
    /// connection failures, timeouts, `408`/`429`/`5xx` answers, lost prompts, unreachable
    /// servers and transport errors. Validation and execution failures are not retryable by this measure (a pool
    /// decides those from [`validation`](Self::validation) / [`execution`](Self::execution)).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Lost { .. }
            | Self::Unreachable { .. }
            | Self::WebSocket(_)
            | Self::Http(_)
            | Self::Io(_) => true,
            Self::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Which deadline ran out, for a timeout.
    pub fn deadline(&self) -> Option<Deadline> {
        match self {
            Self::Timeout { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// The HTTP status of an unexpected answer (`400` for a validation error).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Validation(_) => Some(400),
            _ => None,
        }
    }

    /// ComfyUI's rejection of the prompt, for a validation error.
    pub fn validation(&self) -> Option<&ValidationError> {
        match self {
            Self::Validation(v) => Some(v),
            _ => None,
        }
    }

    /// The failing node and its exception, for an execution error.
    pub fn execution(&self) -> Option<&ExecutionFailure> {
        match self {
            Self::Execution(e) => Some(e),
            _ => None,
        }
    }

    /// The prompt id this error is about, when it is about one prompt.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            Self::Interrupted { prompt_id, .. }
            | Self::Cancelled { prompt_id }
            | Self::Lost { prompt_id }
            | Self::Unreachable { prompt_id, .. } => Some(prompt_id),
            Self::Execution(e) => Some(&e.prompt_id),
            _ => None,
        }
    }

    pub(crate) fn decode(context: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Decode {
            context: context.into(),
            reason: reason.to_string(),
        }
    }

    /// Maps a reqwest failure to the variant a caller can act on.
    pub(crate) fn from_reqwest(
        err: reqwest::Error,
        url: &str,
        connect: Duration,
        request: Duration,
    ) -> Self {
        if err.is_connect() {
            if err.is_timeout() {
                return Self::Timeout {
                    deadline: Deadline::Connect,
                    limit: connect,
                };
            }
            return Self::Connect {
                url: url.to_owned(),
                source: Box::new(err.without_url()),
            };
        }
        if err.is_timeout() {
            return Self::Timeout {
                deadline: Deadline::Request,
                limit: request,
            };
        }
        Self::Http(Box::new(err.without_url()))
    }
}
