//! `WsOutput`: an image a `SaveImageWebsocket` node sent over the websocket, and which nodes
//! of a workflow send them.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::Value;

use crate::event::ImageFormat;

/// The node class whose images travel only over the websocket.
const SAVE_IMAGE_WEBSOCKET: &str = "SaveImageWebsocket";

/// An image a `SaveImageWebsocket` node sent as a binary websocket frame (type 1, or 4 with
/// metadata). Such images never reach the history (its outputs are `{}` for the node), so
/// the run keeps them, in arrival order, attributed to the node executing when they came.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WsOutput {
    /// The node that sent it.
    pub node: String,
    /// The image encoding.
    pub format: ImageFormat,
    /// The encoded image.
    pub bytes: Bytes,
}

impl WsOutput {
    pub(crate) fn new(node: String, format: ImageFormat, bytes: Bytes) -> Self {
        Self {
            node,
            format,
            bytes,
        }
    }
}

/// The ids of the `SaveImageWebsocket` nodes of an API-format workflow (none if it is not
/// an object of nodes).
pub(crate) fn ws_output_nodes(workflow: &Value) -> HashSet<String> {
    workflow
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, node)| {
            node.get("class_type").and_then(Value::as_str) == Some(SAVE_IMAGE_WEBSOCKET)
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_websocket_savers_only() {
        let workflow = serde_json::json!({
            "1": {"class_type": "EmptyImage", "inputs": {}},
            "4": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
            "5": {"class_type": "SaveImage", "inputs": {}},
            "6": "not a node"
        });
        assert_eq!(ws_output_nodes(&workflow), HashSet::from(["4".to_owned()]));
        assert!(ws_output_nodes(&serde_json::json!([1])).is_empty());
    }
}
