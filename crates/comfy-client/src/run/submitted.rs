//! `Submitted`: a prompt the server accepted.

use serde_json::Value;
use tokio::time::Instant;

/// A prompt the server accepted ([`Client::submit`](crate::Client::submit)): follow it with
/// [`Client::follow`](crate::Client::follow), here or from another process.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Submitted {
    /// The prompt id (the caller's, from [`RunOptions::prompt_id`](crate::RunOptions::prompt_id),
    /// unless the server ignored it).
    pub prompt_id: String,
    /// The queue number the server gave it.
    pub number: Option<f64>,
    /// Errors of nodes that were dropped but did not block the prompt.
    pub node_errors: Value,
    /// When `POST /prompt` was sent.
    pub submitted_at: Instant,
    /// When the server accepted it.
    pub accepted_at: Instant,
}
