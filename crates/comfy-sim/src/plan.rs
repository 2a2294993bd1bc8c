//! Execution planning: node order, cache signatures and image sizes traced through a prompt.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

use crate::validate::as_link;

/// Deepest nesting of `GetImageSize` sizes traced into each other when finding image sizes.
const MAX_DEPTH: usize = 64;

/// The linked node ids of a node's inputs, in input order.
fn links<'a>(prompt: &'a Map<String, Value>, id: &str) -> Vec<&'a str> {
    prompt
        .get(id)
        .and_then(|node| node.get("inputs"))
        .and_then(Value::as_object)
        .map(|inputs| {
            inputs
                .values()
                .filter_map(|value| as_link(value).map(|(linked, _)| linked))
                .collect()
        })
        .unwrap_or_default()
}

/// Nodes reachable from `outputs`, dependencies first (ComfyUI's depth-first order).
///
/// An explicit stack instead of recursion: a chain of any length plans without touching the
/// thread stack. A link to a missing node is skipped; a cycle is cut where it closes.
pub(crate) fn order(prompt: &Map<String, Value>, outputs: &[String]) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    // (node, its links, how many of them were followed)
    let mut stack: Vec<(&str, Vec<&str>, usize)> = Vec::new();
    for output in outputs {
        let Some((root, _)) = prompt.get_key_value(output.as_str()) else {
            continue;
        };
        if !seen.insert(root.as_str()) {
            continue;
        }
        stack.push((root.as_str(), links(prompt, root), 0));
        while let Some((id, linked, next)) = stack.last_mut() {
            let id = *id;
            if let Some(&child) = linked.get(*next) {
                *next += 1;
                if let Some((child, _)) = prompt.get_key_value(child)
                    && seen.insert(child.as_str())
                {
                    stack.push((child.as_str(), links(prompt, child), 0));
                }
                continue;
            }
            stack.pop();
            out.push(id.to_owned());
        }
    }
    out
}

/// Cache signature of every node of `nodes` (dependencies first, as [`order`] gives them):
/// its class and inputs, with links replaced by the signature of the linked node, so a
/// change upstream invalidates everything below. A link to a node without a signature yet
/// (a cycle, a missing node) is hashed as written.
pub(crate) fn signatures(prompt: &Map<String, Value>, nodes: &[String]) -> HashMap<String, u64> {
    let mut memo: HashMap<String, u64> = HashMap::with_capacity(nodes.len());
    for id in nodes {
        if memo.contains_key(id) {
            continue;
        }
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        if let Some(node) = prompt.get(id) {
            node.get("class_type")
                .map(Value::to_string)
                .hash(&mut hasher);
            if let Some(inputs) = node.get("inputs").and_then(Value::as_object) {
                for (name, value) in inputs {
                    name.hash(&mut hasher);
                    match as_link(value).and_then(|(linked, slot)| Some((memo.get(linked)?, slot)))
                    {
                        Some((linked_sig, slot)) => {
                            linked_sig.hash(&mut hasher);
                            slot.hash(&mut hasher);
                        }
                        None => value.to_string().hash(&mut hasher),
                    }
                }
            }
        }
        memo.insert(id.clone(), hasher.finish());
    }
    memo
}

/// Width, height and batch size of the image a node produces, traced back to the
/// `EmptyImage`/`EmptyLatentImage` that made it (512x512x1 when unknown).
pub(crate) fn image_dims(prompt: &Map<String, Value>, id: &str) -> (i64, i64, i64) {
    dims(prompt, id, 0)
}

fn dims(prompt: &Map<String, Value>, id: &str, depth: usize) -> (i64, i64, i64) {
    const UNKNOWN: (i64, i64, i64) = (512, 512, 1);
    if depth > MAX_DEPTH {
        return UNKNOWN;
    }
    let mut current = id;
    // Every step follows one link; more steps than nodes means a cycle.
    for _ in 0..=prompt.len() {
        let Some(node) = prompt.get(current) else {
            return UNKNOWN;
        };
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
        let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
            return UNKNOWN;
        };
        if matches!(class, "EmptyImage" | "EmptyLatentImage") {
            let get = |name: &str, default: i64| {
                int_input(prompt, inputs, name, depth).unwrap_or(default)
            };
            return (get("width", 512), get("height", 512), get("batch_size", 1));
        }
        let Some(linked) = ["image", "images", "samples", "pixels", "latent_image"]
            .into_iter()
            .find_map(|name| inputs.get(name).and_then(as_link))
        else {
            return UNKNOWN;
        };
        current = linked.0;
    }
    UNKNOWN
}

fn int_input(
    prompt: &Map<String, Value>,
    inputs: &Map<String, Value>,
    name: &str,
    depth: usize,
) -> Option<i64> {
    let value = inputs.get(name)?;
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let (linked, slot) = as_link(value)?;
    let node = prompt.get(linked)?;
    if node.get("class_type").and_then(Value::as_str) != Some("GetImageSize") {
        return None;
    }
    let source = node.get("inputs")?.get("image").and_then(as_link)?.0;
    let (w, h, b) = dims(prompt, source, depth + 1);
    match slot {
        0 => Some(w),
        1 => Some(h),
        2 => Some(b),
        _ => None,
    }
}
