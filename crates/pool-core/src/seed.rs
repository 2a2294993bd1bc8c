//! Auto-seed: a `seed` / `noise_seed` input of `-1` gets a fresh random seed per attempt.

use rand::Rng;
use serde_json::Value;

use crate::SeedAssignment;

const SEED_INPUTS: [&str; 2] = ["seed", "noise_seed"];

/// Whether the workflow has any input to seed.
pub(crate) fn needs_seeding(workflow: &Value) -> bool {
    sites(workflow).next().is_some()
}

fn sites(workflow: &Value) -> impl Iterator<Item = (&String, &'static str)> {
    workflow
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(id, node)| {
            let inputs = node.get("inputs").and_then(Value::as_object);
            SEED_INPUTS
                .iter()
                .filter(move |name| {
                    inputs.and_then(|i| i.get(**name)).and_then(Value::as_i64) == Some(-1)
                })
                .map(move |name| (id, *name))
        })
}

/// Returns a copy of `workflow` with every `-1` seed replaced by a random one, and the seeds.
pub(crate) fn apply(workflow: &Value) -> (Value, Vec<SeedAssignment>) {
    let mut copy = workflow.clone();
    let mut seeds = Vec::new();
    let mut rng = rand::rng();
    if let Some(nodes) = copy.as_object_mut() {
        for (id, node) in nodes.iter_mut() {
            let Some(inputs) = node.get_mut("inputs").and_then(Value::as_object_mut) else {
                continue;
            };
            for name in SEED_INPUTS {
                if let Some(slot) = inputs.get_mut(name).filter(|v| v.as_i64() == Some(-1)) {
                    // ComfyUI accepts seeds up to 2^64-1; stay within JavaScript's exact range.
                    let value = rng.random_range(0..(1u64 << 53));
                    *slot = Value::from(value);
                    seeds.push(SeedAssignment {
                        node: id.clone(),
                        input: name.to_owned(),
                        value,
                    });
                }
            }
        }
    }
    (copy, seeds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replaces_only_minus_one_seeds() {
        let wf = json!({
            "1": {"class_type": "KSampler", "inputs": {"seed": -1, "steps": -1}},
            "2": {"class_type": "KSamplerAdvanced", "inputs": {"noise_seed": 5}},
            "3": {"class_type": "X", "inputs": {"noise_seed": -1}}
        });
        assert!(needs_seeding(&wf));
        let (seeded, seeds) = apply(&wf);
        assert_eq!(seeds.len(), 2);
        for s in &seeds {
            assert_eq!(seeded[&s.node]["inputs"][&s.input], json!(s.value));
        }
        assert_eq!(seeded["1"]["inputs"]["steps"], json!(-1));
        assert_eq!(seeded["2"]["inputs"]["noise_seed"], json!(5));
        assert!(!needs_seeding(&seeded));
    }
}
