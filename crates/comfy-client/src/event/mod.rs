//! Typed websocket events: server messages (text and binary frames) and connection changes.

mod binary;
mod messages;
mod size;
mod stream;

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use binary::{ImageFormat, NodeText, Preview, PreviewMetadata, UnknownBinary};
pub use messages::{
    ExecInfo, Executed, Executing, ExecutionCached, ExecutionError, ExecutionInterrupted,
    ExecutionStart, ExecutionSuccess, NodeProgress, Notification, Progress, ProgressState,
    QueueStatus, Status, UnknownMessage,
};
pub(crate) use size::HeapSize;
pub use stream::EventStream;

use crate::error::{Error, Result};
use crate::types::Features;

/// One event of a client's websocket.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `status`: queue size changed (and on connect).
    Status(Status),
    /// `execution_start`.
    ExecutionStart(ExecutionStart),
    /// `execution_cached`.
    ExecutionCached(ExecutionCached),
    /// `executing`: a node starts, or `node: None` when the prompt is done.
    Executing(Executing),
    /// `progress`: steps inside a node.
    Progress(Progress),
    /// `progress_state`: the state of all nodes of a prompt.
    ProgressState(ProgressState),
    /// `executed`: a node's UI output.
    Executed(Executed),
    /// `execution_success`.
    ExecutionSuccess(ExecutionSuccess),
    /// `execution_error`.
    ExecutionError(ExecutionError),
    /// `execution_interrupted`.
    ExecutionInterrupted(ExecutionInterrupted),
    /// `notification`.
    Notification(Notification),
    /// `feature_flags`: the server's answer to ours.
    FeatureFlags(Features),
    /// A preview image (binary type 1 or 4).
    Preview(Preview),
    /// Node progress text (binary type 3).
    Text(NodeText),
    /// A text message of an unknown type, kept as raw JSON.
    Unknown(UnknownMessage),
    /// A binary frame of an unknown type, kept as raw bytes.
    UnknownBinary(UnknownBinary),
    /// The websocket is open.
    Connected,
    /// The websocket closed or stalled; the client will reconnect unless it gave up.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The client will try to reconnect after `delay`.
    Reconnecting {
        /// Consecutive attempt number, from 1.
        attempt: u32,
        /// The backoff delay before this attempt.
        delay: Duration,
        /// Why the previous connection or attempt ended.
        reason: String,
    },
    /// This subscriber was too slow and missed `skipped` events.
    Lagged {
        /// How many events were dropped for this subscriber.
        skipped: u64,
    },
}

/// The state of a client's websocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not opened yet (nothing subscribed or ran).
    Idle,
    /// Opening for the first time.
    Connecting,
    /// Open.
    Connected,
    /// Lost; waiting or trying to reopen.
    Reconnecting,
    /// Gave up after the configured number of attempts, or the client was dropped.
    Closed,
}

/// A text frame's envelope, borrowed from the frame: its `data` is parsed once, straight
/// into the type its `type` names (no intermediate `Value` tree).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// The JSON text of a frame's `data` (`null` when it has none).
fn raw(data: Option<&RawValue>) -> &str {
    data.map_or("null", RawValue::get)
}

fn data<T: serde::de::DeserializeOwned>(kind: &str, data: Option<&RawValue>) -> Result<T> {
    serde_json::from_str(raw(data)).map_err(|e| Error::decode(format!("`{kind}` message"), e))
}

impl Event {
    /// Parses a text frame: `{"type": ..., "data": ...}`. Unknown types become
    /// [`Event::Unknown`]; a known type with a malformed `data` is an error.
    pub fn parse_text(text: &str) -> Result<Self> {
        let env: Envelope<'_> =
            serde_json::from_str(text).map_err(|e| Error::decode("websocket text frame", e))?;
        let kind = env.kind.as_ref();
        let d = env.data;
        Ok(match kind {
            "status" => Self::Status(data(kind, d)?),
            "execution_start" => Self::ExecutionStart(data(kind, d)?),
            "execution_cached" => Self::ExecutionCached(data(kind, d)?),
            "executing" => Self::Executing(data(kind, d)?),
            "progress" => Self::Progress(data(kind, d)?),
            "progress_state" => Self::ProgressState(data(kind, d)?),
            "executed" => Self::Executed(data(kind, d)?),
            "execution_success" => Self::ExecutionSuccess(data(kind, d)?),
            "execution_error" => Self::ExecutionError(data(kind, d)?),
            "execution_interrupted" => Self::ExecutionInterrupted(data(kind, d)?),
            "notification" => Self::Notification(data(kind, d)?),
            "feature_flags" => Self::FeatureFlags(data(kind, d)?),
            _ => Self::Unknown(UnknownMessage {
                data: serde_json::from_str(raw(d))
                    .map_err(|e| Error::decode("websocket text frame", e))?,
                kind: env.kind.into_owned(),
            }),
        })
    }

    /// Parses a binary frame (types 1, 3 and 4; others become [`Event::UnknownBinary`]).
    pub fn parse_binary(frame: impl Into<Bytes>) -> Result<Self> {
        binary::parse(&frame.into())
    }

    /// The text frame the server would send for this event, or `None` for binary and
    /// connection events.
    pub fn to_text(&self) -> Option<String> {
        fn wrap<T: serde::Serialize>(kind: &str, data: &T) -> Option<String> {
            let data = serde_json::to_value(data).ok()?;
            Some(serde_json::json!({ "type": kind, "data": data }).to_string())
        }
        match self {
            Self::Status(d) => wrap("status", d),
            Self::ExecutionStart(d) => wrap("execution_start", d),
            Self::ExecutionCached(d) => wrap("execution_cached", d),
            Self::Executing(d) => wrap("executing", d),
            Self::Progress(d) => wrap("progress", d),
            Self::ProgressState(d) => wrap("progress_state", d),
            Self::Executed(d) => wrap("executed", d),
            Self::ExecutionSuccess(d) => wrap("execution_success", d),
            Self::ExecutionError(d) => wrap("execution_error", d),
            Self::ExecutionInterrupted(d) => wrap("execution_interrupted", d),
            Self::Notification(d) => wrap("notification", d),
            Self::FeatureFlags(d) => wrap("feature_flags", d),
            Self::Unknown(u) => wrap(&u.kind, &u.data),
            _ => None,
        }
    }

    /// The binary frame the server would send for this event, or `None` for text and
    /// connection events.
    pub fn to_binary(&self) -> Option<Vec<u8>> {
        binary::encode(self).ok().flatten()
    }

    /// The prompt this event is about, if it names (or was attributed to) one.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            Self::ExecutionStart(d) => Some(&d.prompt_id),
            Self::ExecutionCached(d) => Some(&d.prompt_id),
            Self::Executing(d) => d.prompt_id.as_deref(),
            Self::Progress(d) => d.prompt_id.as_deref(),
            Self::ProgressState(d) => Some(&d.prompt_id),
            Self::Executed(d) => Some(&d.prompt_id),
            Self::ExecutionSuccess(d) => Some(&d.prompt_id),
            Self::ExecutionError(d) => Some(&d.prompt_id),
            Self::ExecutionInterrupted(d) => Some(&d.prompt_id),
            Self::Preview(p) => p.prompt_id.as_deref(),
            Self::Text(t) => t.prompt_id.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a connection event ([`Connected`](Self::Connected),
    /// [`Disconnected`](Self::Disconnected), [`Reconnecting`](Self::Reconnecting),
    /// [`Lagged`](Self::Lagged)) rather than a server message.
    pub fn is_connection_event(&self) -> bool {
        matches!(
            self,
            Self::Connected
                | Self::Disconnected { .. }
                | Self::Reconnecting { .. }
                | Self::Lagged { .. }
        )
    }
}
