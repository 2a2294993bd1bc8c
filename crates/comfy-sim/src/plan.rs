//! Execution planning: node order, cache signatures and image sizes traced through a prompt.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

use crate::validate::as_link;

/// Deepest link chain followed when tracing values (guards against cycles).
const MAX_DEPTH: usize = 64;

/// Nodes reachable from `outputs`, dependencies first (ComfyUI's depth-first order).
pub(crate) fn order(prompt: &Map<String, Value>, outputs: &[String]) -> Vec<String> {
    fn visit(
        prompt: &Map<String, Value>,
        id: &str,
        seen: &mut HashSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH || !seen.insert(id.to_owned()) {
            return;
        }
        let Some(node) = prompt.get(id) else {
            return;
        };
        if let Some(inputs) = node.get("inputs").and_then(Value::as_object) {
            for value in inputs.values() {
                if let Some((linked, _)) = as_link(value) {
                    visit(prompt, linked, seen, out, depth + 1);
                }
            }
        }
        out.push(id.to_owned());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for output in outputs {
        visit(prompt, output, &mut seen, &mut out, 0);
    }
    out
}

/// Cache signature of every node: its class and inputs, with links replaced by the
/// signature of the linked node (so a change upstream invalidates everything below).
pub(crate) fn signatures(prompt: &Map<String, Value>, nodes: &[String]) -> HashMap<String, u64> {
    fn sig(
        prompt: &Map<String, Value>,
        id: &str,
        memo: &mut HashMap<String, u64>,
        depth: usize,
    ) -> u64 {
        if let Some(s) = memo.get(id) {
            return *s;
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
                    match as_link(value) {
                        Some((linked, slot)) if depth < MAX_DEPTH => {
                            sig(prompt, linked, memo, depth + 1).hash(&mut hasher);
                            slot.hash(&mut hasher);
                        }
                        _ => value.to_string().hash(&mut hasher),
                    }
                }
            }
        }
        let s = hasher.finish();
        memo.insert(id.to_owned(), s);
        s
    }
    let mut memo = HashMap::new();
    for id in nodes {
        sig(prompt, id, &mut memo, 0);
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
    let Some(node) = prompt.get(id) else {
        return UNKNOWN;
    };
    let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
    let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
        return UNKNOWN;
    };
    if matches!(class, "EmptyImage" | "EmptyLatentImage") {
        let get =
            |name: &str, default: i64| int_input(prompt, inputs, name, depth).unwrap_or(default);
        return (get("width", 512), get("height", 512), get("batch_size", 1));
    }
    for name in ["image", "images", "samples", "pixels", "latent_image"] {
        if let Some((linked, _)) = inputs.get(name).and_then(as_link) {
            return dims(prompt, linked, depth + 1);
        }
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
