//! Property tests: the hash ignores key order and volatile values, and reacts to structure.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sha2::Digest;
use workflow_hash::{Difference, WorkflowHash, canonical_json, diff};

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{1,8}", "[0-9]{1,3}", "\\PC{1,3}"]
}

fn leaf_input() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z ]{0,10}".prop_map(Value::from),
        "[a-z0-9_/]{1,8}\\.(safetensors|ckpt|pt|gguf|YAML)".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        ("[0-9]{1,3}", 0u32..8).prop_map(|(id, slot)| json!([id, slot])),
        prop::collection::vec(any::<f32>().prop_map(Value::from), 0..3).prop_map(Value::Array),
    ]
}

fn input() -> impl Strategy<Value = Value> {
    leaf_input().prop_recursive(2, 12, 3, |inner| {
        prop::collection::vec((key(), inner), 0..3)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    })
}

fn node() -> impl Strategy<Value = Value> {
    (
        "[A-Z][a-zA-Z]{0,10}",
        prop::collection::vec((key(), input()), 0..6),
        "[a-z]{0,5}",
        "[a-z0-9]{1,6}\\.safetensors",
        0u32..8,
    )
        .prop_map(|(class, inputs, title, model, slot)| {
            let mut inputs: Map<String, Value> = inputs.into_iter().collect();
            // Every node has a model reference and a connection, so edits can target them.
            inputs.insert("ckpt_name".into(), Value::from(model));
            inputs.insert("model".into(), json!(["1", slot]));
            json!({"class_type": class, "inputs": inputs, "_meta": {"title": title}})
        })
}

fn workflow() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), node()), 1..8)
        .prop_map(|nodes| Value::Object(nodes.into_iter().collect()))
}

/// Rebuilds every object the hash sorts in a rotated key order (objects inside arrays keep
/// their order: comfyui-node hashes them verbatim).
fn reorder(value: &Value, rotate: usize) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if !entries.is_empty() {
                let by = rotate % entries.len();
                entries.rotate_left(by);
                entries.reverse();
            }
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), reorder(v, rotate + 1)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// Replaces every volatile value (numbers, booleans, non-model strings, `_meta`) with another
/// value of the same kind drawn from `pool`.
fn scramble(workflow: &Value, pool: &[u64]) -> Value {
    let mut next = pool.iter().copied().cycle();
    let mut out = workflow.clone();
    for node in out.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        if let Some(fields) = node.as_object_mut() {
            fields.insert(
                "_meta".into(),
                json!({"title": next.next().unwrap_or(0), "x": [1, 2]}),
            );
            if let Some(inputs) = fields.get_mut("inputs") {
                scramble_input(inputs, &mut next);
            }
        }
    }
    out
}

fn scramble_input(value: &mut Value, next: &mut impl Iterator<Item = u64>) {
    let n = next.next().unwrap_or(0);
    match value {
        Value::Number(_) => {
            *value = if n.is_multiple_of(2) {
                Value::from(n)
            } else {
                Value::from(n as f64 / 7.0)
            }
        }
        Value::Bool(b) => *b = n.is_multiple_of(2),
        Value::String(s) if !is_model(s) => *s = format!("prompt {n} with words"),
        Value::Object(map) => map.values_mut().for_each(|v| scramble_input(v, next)),
        _ => {}
    }
}

fn is_model(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    [".safetensors", ".ckpt", ".pt", ".gguf", ".yaml"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

fn hash(v: &Value) -> WorkflowHash {
    WorkflowHash::of(v).expect("hashable")
}

fn nth_node(workflow: &mut Value, pick: usize) -> (String, &mut Map<String, Value>) {
    let map = workflow.as_object_mut().expect("object");
    let index = pick % map.len();
    let (id, node) = map.iter_mut().nth(index).expect("node");
    (id.clone(), node.as_object_mut().expect("node object"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn invariant_under_key_order(w in workflow(), rotate in 0usize..7) {
        let shuffled = reorder(&w, rotate);
        prop_assert_eq!(hash(&w), hash(&shuffled));
        let text = serde_json::to_string(&shuffled).expect("text");
        prop_assert_eq!(WorkflowHash::of_json(text).expect("text hash"), hash(&w));
    }

    #[test]
    fn invariant_under_volatile_values_and_meta(w in workflow(), pool in prop::collection::vec(any::<u64>(), 1..16)) {
        let scrambled = scramble(&w, &pool);
        prop_assert_eq!(hash(&w), hash(&scrambled));
        prop_assert!(diff(&w, &scrambled).expect("diff").is_empty());
    }

    #[test]
    fn class_change_changes_hash(w in workflow(), pick in any::<usize>()) {
        let mut changed = w.clone();
        let (id, node) = nth_node(&mut changed, pick);
        let class = node["class_type"].as_str().unwrap_or_default().to_owned();
        node.insert("class_type".into(), Value::from(format!("{class}V2")));
        prop_assert_ne!(hash(&w), hash(&changed));
        let found = diff(&w, &changed).expect("diff");
        prop_assert!(matches!(found.as_slice(), [Difference::ClassChanged { node, .. }] if *node == id), "{:?}", found);
    }

    #[test]
    fn edge_change_changes_hash(w in workflow(), pick in any::<usize>()) {
        let mut changed = w.clone();
        let (id, node) = nth_node(&mut changed, pick);
        let slot = node["inputs"]["model"][1].as_u64().unwrap_or_default();
        node["inputs"]["model"] = json!(["1", slot + 1]);
        prop_assert_ne!(hash(&w), hash(&changed));
        let found = diff(&w, &changed).expect("diff");
        prop_assert!(matches!(found.as_slice(), [Difference::EdgeChanged { node, .. }] if *node == id), "{:?}", found);
    }

    #[test]
    fn model_change_changes_hash(w in workflow(), pick in any::<usize>()) {
        let mut changed = w.clone();
        let (id, node) = nth_node(&mut changed, pick);
        let model = node["inputs"]["ckpt_name"].as_str().unwrap_or_default().to_owned();
        node["inputs"]["ckpt_name"] = Value::from(format!("other_{model}"));
        prop_assert_ne!(hash(&w), hash(&changed));
        let found = diff(&w, &changed).expect("diff");
        prop_assert!(matches!(found.as_slice(), [Difference::ModelChanged { node, .. }] if *node == id), "{:?}", found);
    }

    #[test]
    fn diff_is_empty_exactly_when_hashes_are_equal(a in workflow(), b in workflow(), mix in any::<bool>()) {
        // Half the time compare against a partly shared workflow to get near misses.
        let b = if mix {
            let mut merged = a.clone();
            if let (Some(m), Some((k, v))) = (merged.as_object_mut(), b.as_object().and_then(|e| e.iter().next())) {
                m.insert(k.clone(), v.clone());
            }
            merged
        } else {
            b
        };
        let found = diff(&a, &b).expect("diff");
        prop_assert_eq!(found.is_empty(), hash(&a) == hash(&b), "{:?}", found);
    }

    #[test]
    fn canonical_text_is_what_gets_hashed(w in workflow()) {
        let canonical = canonical_json(&w).expect("canonical");
        let digest: [u8; 32] = sha2::Sha256::digest(canonical.as_bytes()).into();
        prop_assert_eq!(WorkflowHash::from_bytes(digest), hash(&w));
        // The canonical text is valid JSON.
        prop_assert!(serde_json::from_str::<Value>(&canonical).is_ok());
    }
}
