//! The node states of the running prompt, as its `progress_state` messages carry them.
//!
//! Every node's state is kept as the JSON text it is sent as, so that a message (sent on
//! every state change, carrying the latest states of the prompt) is put together from
//! ready-made pieces instead of a fresh `Value` tree per message.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

/// Most node states one `progress_state` message carries (ComfyUI sends all of them, which
/// grows quadratically with the length of a prompt).
const PROGRESS_WINDOW: usize = 64;

/// One node's entry in a `progress_state` message, in ComfyUI's field order.
#[derive(Serialize)]
struct Entry<'a> {
    value: &'a Value,
    max: &'a Value,
    state: &'a str,
    node_id: &'a str,
    prompt_id: &'a str,
    display_node_id: &'a str,
    parent_node_id: Option<&'a str>,
    real_node_id: &'a str,
}

/// A node's latest state.
struct NodeState {
    /// The node id as a JSON string (the key in `nodes`).
    key: String,
    node: String,
    running: bool,
    /// Its [`Entry`] as JSON text.
    entry: String,
}

/// The states of a prompt's nodes, in the order they first changed.
#[derive(Default)]
pub(super) struct NodeStates {
    nodes: Vec<NodeState>,
    index: HashMap<String, usize>,
}

/// A string as JSON text.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

impl NodeStates {
    /// Records `node`'s state: `value` of `max`, `state` (`running` or `finished`).
    pub(super) fn set(
        &mut self,
        prompt_id: &str,
        node: &str,
        value: &Value,
        max: &Value,
        state: &str,
    ) {
        let entry = Entry {
            value,
            max,
            state,
            node_id: node,
            prompt_id,
            display_node_id: node,
            parent_node_id: None,
            real_node_id: node,
        };
        let entry = serde_json::to_string(&entry).unwrap_or_default();
        let running = state == "running";
        if let Some(&at) = self.index.get(node) {
            let known = &mut self.nodes[at];
            known.entry = entry;
            known.running = running;
            return;
        }
        self.index.insert(node.to_owned(), self.nodes.len());
        self.nodes.push(NodeState {
            key: json_string(node),
            node: node.to_owned(),
            running,
            entry,
        });
    }

    /// The `progress_state` text frame: the prompt and the most recently started nodes'
    /// states, in start order (all of them in any usual prompt).
    pub(super) fn message(&self, prompt_id: &str) -> String {
        let skip = self.nodes.len().saturating_sub(PROGRESS_WINDOW);
        let window = &self.nodes[skip..];
        let size = window
            .iter()
            .map(|n| n.key.len() + n.entry.len() + 2)
            .sum::<usize>();
        let mut frame = String::with_capacity(64 + prompt_id.len() + size);
        frame.push_str(r#"{"type":"progress_state","data":{"prompt_id":"#);
        frame.push_str(&json_string(prompt_id));
        frame.push_str(r#","nodes":{"#);
        for (i, node) in window.iter().enumerate() {
            if i > 0 {
                frame.push(',');
            }
            frame.push_str(&node.key);
            frame.push(':');
            frame.push_str(&node.entry);
        }
        frame.push_str("}}}");
        frame
    }

    /// The last node (in start order) still running, if any.
    pub(super) fn last_running(&self) -> Option<&str> {
        self.nodes
            .iter()
            .rev()
            .find(|n| n.running)
            .map(|n| n.node.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::NodeStates;

    fn parsed(states: &NodeStates) -> Value {
        serde_json::from_str(&states.message("p\"1")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_message_carries_each_nodes_latest_state_in_start_order() {
        let mut states = NodeStates::default();
        states.set("p\"1", "7", &json!(0.0), &json!(1.0), "running");
        states.set("p\"1", "3", &json!(0.0), &json!(1.0), "running");
        states.set("p\"1", "7", &json!(1.0), &json!(1.0), "finished");
        let message = parsed(&states);
        assert_eq!(message["type"], "progress_state");
        assert_eq!(message["data"]["prompt_id"], "p\"1");
        let nodes = message["data"]["nodes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let order: Vec<&str> = nodes.keys().map(String::as_str).collect();
        assert_eq!(order, ["7", "3"]);
        assert_eq!(
            nodes["7"],
            json!({"value": 1.0, "max": 1.0, "state": "finished", "node_id": "7",
                   "prompt_id": "p\"1", "display_node_id": "7", "parent_node_id": null,
                   "real_node_id": "7"})
        );
        assert_eq!(nodes["3"]["state"], "running");
        assert_eq!(states.last_running(), Some("3"));
        states.set("p\"1", "3", &json!(1.0), &json!(1.0), "finished");
        assert_eq!(states.last_running(), None);
    }

    #[test]
    fn a_message_carries_at_most_the_latest_window_of_nodes() {
        let mut states = NodeStates::default();
        for i in 0..70 {
            states.set("p", &format!("n{i}"), &json!(0), &json!(1), "running");
        }
        let message = parsed(&states);
        let nodes = message["data"]["nodes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(nodes.len(), super::PROGRESS_WINDOW);
        assert_eq!(nodes.keys().next().map(String::as_str), Some("n6"));
        assert_eq!(nodes.keys().next_back().map(String::as_str), Some("n69"));
    }
}
