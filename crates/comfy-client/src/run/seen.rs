//! `Seen`: what a run has seen of its prompt and keeps for the result (timings, outputs,
//! images, texts), each kept thing charged to an allowance of the memory limit: a quarter
//! for collected previews and texts, half for the result proper (`SaveImageWebsocket`
//! images, merged `executed` outputs, node timings, cached node ids). The last quarter is
//! the reader's event buffer's (see `buffer`). What does not fit is counted in [`Dropped`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::mem::size_of;

use serde_json::Value;
use tokio::time::Instant;

use super::output::{Dropped, NodeTiming};
use super::ws_output::WsOutput;
use crate::event::{HeapSize, NodeText, Preview};
use crate::types::NodeOutput;

/// The most node timings a run keeps.
pub(super) const MAX_NODE_TIMINGS: usize = 4096;

/// Bytes a kept map entry or list item costs besides its content.
const ENTRY_OVERHEAD: usize = 32;

/// A share of the memory limit.
#[derive(Debug)]
struct Allowance {
    used: usize,
    limit: usize,
}

impl Allowance {
    fn new(limit: usize) -> Self {
        Self { used: 0, limit }
    }

    /// Takes `bytes` if they fit.
    fn take(&mut self, bytes: usize) -> bool {
        let fits = self
            .used
            .checked_add(bytes)
            .is_some_and(|used| used <= self.limit);
        if fits {
            self.used += bytes;
        }
        fits
    }

    fn give_back(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }
}

/// The bytes of the memory limit the reader's event buffer may hold.
pub(super) fn event_share(memory_limit: usize) -> usize {
    memory_limit / 4
}

/// What the run has seen so far, and keeps.
#[derive(Debug)]
pub(super) struct Seen {
    /// An event of the prompt arrived on the socket.
    pub(super) live: bool,
    pub(super) started_at: Option<Instant>,
    pub(super) server_started_ms: Option<u64>,
    pub(super) server_finished_ms: Option<u64>,
    pub(super) success_at: Option<Instant>,
    current: Option<(String, Instant)>,
    pub(super) nodes: Vec<NodeTiming>,
    node_index: HashMap<String, usize>,
    pub(super) cached: Vec<String>,
    cached_bytes: usize,
    pub(super) executed: BTreeMap<String, NodeOutput>,
    pub(super) ws_outputs: Vec<WsOutput>,
    pub(super) previews: Vec<Preview>,
    pub(super) texts: Vec<NodeText>,
    /// The `SaveImageWebsocket` nodes; `None` until the workflow is known (a followed
    /// prompt: from the queue or the history).
    ws_nodes: Option<HashSet<String>>,
    /// Images that arrived while the workflow was unknown, with their cost: outputs if
    /// their node turns out to be a `SaveImageWebsocket`.
    undecided: Vec<(WsOutput, usize)>,
    collected: Allowance,
    result: Allowance,
    pub(super) dropped: Dropped,
}

impl Seen {
    /// Nothing seen yet; `ws_nodes` are the workflow's `SaveImageWebsocket` nodes (`None`:
    /// the workflow is not known yet).
    pub(super) fn new(memory_limit: usize, ws_nodes: Option<HashSet<String>>) -> Self {
        Self {
            live: false,
            started_at: None,
            server_started_ms: None,
            server_finished_ms: None,
            success_at: None,
            current: None,
            nodes: Vec::new(),
            node_index: HashMap::new(),
            cached: Vec::new(),
            cached_bytes: 0,
            executed: BTreeMap::new(),
            ws_outputs: Vec::new(),
            previews: Vec::new(),
            texts: Vec::new(),
            ws_nodes,
            undecided: Vec::new(),
            collected: Allowance::new(memory_limit / 4),
            result: Allowance::new(memory_limit / 2),
            dropped: Dropped::default(),
        }
    }

    /// Learns the `SaveImageWebsocket` nodes of a followed prompt (from its workflow in the
    /// queue or the history): images kept meanwhile become outputs or are let go.
    pub(super) fn learn_ws_nodes(&mut self, nodes: HashSet<String>) {
        if self.ws_nodes.is_some() {
            return;
        }
        for (output, cost) in std::mem::take(&mut self.undecided) {
            if nodes.contains(&output.node) {
                self.ws_outputs.push(output);
            } else {
                self.result.give_back(cost);
            }
        }
        self.ws_nodes = Some(nodes);
    }

    /// The workflow stays unknown (the server has no record of it): images kept in case
    /// they were outputs are let go.
    pub(super) fn forget_undecided(&mut self) {
        for (_, cost) in std::mem::take(&mut self.undecided) {
            self.result.give_back(cost);
        }
    }

    pub(super) fn start(&mut self, now: Instant) {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
    }

    /// `node` starts executing: the previous node's time ends.
    pub(super) fn enter_node(&mut self, node: &str, now: Instant) {
        self.close_node(now);
        self.current = Some((node.to_owned(), now));
    }

    /// The executing node's time ends (the prompt moved on or finished).
    pub(super) fn close_node(&mut self, now: Instant) {
        let Some((node, since)) = self.current.take() else {
            return;
        };
        let duration = now.saturating_duration_since(since);
        if let Some(&i) = self.node_index.get(&node) {
            if let Some(timing) = self.nodes.get_mut(i) {
                timing.duration += duration;
            }
            return;
        }
        let cost = size_of::<NodeTiming>() + ENTRY_OVERHEAD + 2 * node.capacity();
        if self.nodes.len() >= MAX_NODE_TIMINGS || !self.result.take(cost) {
            self.dropped.nodes += 1;
            return;
        }
        self.node_index.insert(node.clone(), self.nodes.len());
        self.nodes.push(NodeTiming { node, duration });
    }

    /// `execution_cached` listed these nodes (a later message replaces an earlier one).
    pub(super) fn set_cached(&mut self, nodes: &[String]) {
        self.result
            .give_back(std::mem::take(&mut self.cached_bytes));
        self.cached.clear();
        let cost = std::mem::size_of_val(nodes) + nodes.iter().map(String::len).sum::<usize>();
        if self.result.take(cost) {
            self.cached = nodes.to_vec();
            self.cached_bytes = cost;
        } else {
            self.dropped.nodes += u64::try_from(nodes.len()).unwrap_or(u64::MAX);
        }
    }

    /// Merges an `executed` output: arrays under the same key are concatenated (batched
    /// outputs), other values replace earlier ones.
    pub(super) fn merge_executed(&mut self, node: &str, output: &NodeOutput) {
        let new_entry = !self.executed.contains_key(node);
        let mut cost = output.heap_size();
        if new_entry {
            cost += ENTRY_OVERHEAD + size_of::<NodeOutput>() + node.len();
        }
        if !self.result.take(cost) {
            self.dropped.outputs += 1;
            return;
        }
        let into = self.executed.entry(node.to_owned()).or_default();
        for (key, value) in &output.0 {
            match (into.0.get_mut(key), value) {
                (Some(Value::Array(have)), Value::Array(more)) => {
                    have.extend(more.iter().cloned());
                }
                _ => {
                    into.0.insert(key.clone(), value.clone());
                }
            }
        }
    }

    /// A preview image of the prompt: a `SaveImageWebsocket` output when its node is one
    /// (kept whatever `collect` says; kept in case it is one while the workflow is
    /// unknown), and a collected preview when `collect` is on.
    pub(super) fn preview(&mut self, preview: &Preview, collect: bool) {
        let cost = size_of::<Preview>() + preview.heap_size();
        let output = preview
            .node_id
            .as_ref()
            .and_then(|node| match &self.ws_nodes {
                Some(nodes) if !nodes.contains(node) => None,
                _ => Some(WsOutput::new(
                    node.clone(),
                    preview.format.clone(),
                    preview.image.clone(),
                )),
            });
        let mut charged = false;
        if let Some(output) = output {
            if self.result.take(cost) {
                if self.ws_nodes.is_some() {
                    self.ws_outputs.push(output);
                } else {
                    self.undecided.push((output, cost));
                }
                // The collected copy shares the image's bytes: counted once.
                charged = true;
            } else {
                self.dropped.ws_outputs += 1;
            }
        }
        if !collect {
            return;
        }
        if charged || self.collected.take(cost) {
            self.previews.push(preview.clone());
        } else {
            self.dropped.previews += 1;
        }
    }

    /// A node text of the prompt, kept when `collect` is on.
    pub(super) fn text(&mut self, text: &NodeText, collect: bool) {
        if !collect {
            return;
        }
        if self
            .collected
            .take(size_of::<NodeText>() + text.heap_size())
        {
            self.texts.push(text.clone());
        } else {
            self.dropped.texts += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::event::ImageFormat;

    fn image(node: &str, bytes: usize) -> Preview {
        Preview {
            format: ImageFormat::Png,
            metadata: None,
            image: Bytes::from(vec![0u8; bytes]),
            prompt_id: Some("p".into()),
            node_id: Some(node.into()),
        }
    }

    #[test]
    fn websocket_images_are_kept_without_collecting_previews_and_within_half_the_limit() {
        let mut seen = Seen::new(40_000, Some(HashSet::from(["7".to_owned()])));
        for _ in 0..5 {
            seen.preview(&image("7", 5_000), false);
            seen.preview(&image("3", 5_000), false);
        }
        // 20 000 bytes for the result: three images of 5 000 and their bookkeeping fit.
        assert_eq!(seen.ws_outputs.len(), 3);
        assert!(seen.ws_outputs.iter().all(|o| o.node == "7"));
        assert!(seen.previews.is_empty());
        assert_eq!((seen.dropped.ws_outputs, seen.dropped.previews), (2, 0));
    }

    #[test]
    fn repeated_nodes_add_up_and_new_ones_stop_at_the_cap() {
        let mut seen = Seen::new(usize::MAX, Some(HashSet::new()));
        let t0 = Instant::now();
        for i in 0..10 {
            seen.enter_node("1", t0 + std::time::Duration::from_secs(i));
        }
        seen.close_node(t0 + std::time::Duration::from_secs(10));
        assert_eq!(seen.nodes.len(), 1);
        assert_eq!(seen.nodes[0].duration, std::time::Duration::from_secs(10));
        for i in 0..MAX_NODE_TIMINGS + 10 {
            seen.enter_node(&format!("n{i}"), t0);
        }
        seen.close_node(t0);
        assert_eq!(seen.nodes.len(), MAX_NODE_TIMINGS);
        assert_eq!(seen.dropped.nodes, 11);
    }

    #[test]
    fn merged_outputs_stop_growing_at_the_limit() {
        let mut seen = Seen::new(400_000, Some(HashSet::new()));
        let output: NodeOutput = serde_json::from_value(json!({
            "images": vec![json!({"filename": "a.png", "subfolder": "", "type": "output"}); 100]
        }))
        .unwrap_or_default();
        for _ in 0..100 {
            seen.merge_executed("9", &output);
        }
        let kept = seen.executed["9"].0["images"]
            .as_array()
            .map_or(0, Vec::len);
        assert!((100..100 * 100).contains(&kept), "{kept}");
        assert!(seen.dropped.outputs > 0);
        assert!(seen.result.used <= seen.result.limit);
    }

    #[test]
    fn images_before_the_workflow_is_known_are_decided_once_it_is() {
        let mut seen = Seen::new(1 << 20, None);
        seen.preview(&image("7", 1000), false);
        seen.preview(&image("3", 1000), false);
        let before = seen.result.used;
        seen.learn_ws_nodes(HashSet::from(["7".to_owned()]));
        seen.preview(&image("7", 1000), false);
        seen.preview(&image("3", 1000), false);
        assert_eq!(seen.ws_outputs.len(), 2);
        assert!(seen.ws_outputs.iter().all(|o| o.node == "7"));
        assert_eq!(seen.result.used, before);
        let mut unknown = Seen::new(1 << 20, None);
        unknown.preview(&image("7", 1000), false);
        unknown.forget_undecided();
        assert!(unknown.ws_outputs.is_empty());
        assert_eq!(unknown.result.used, 0);
    }
}
