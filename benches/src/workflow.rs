//! The workflows of the benchmarks: the golden rows of comfyui-node's hash vectors, a trivial
//! three-node prompt for simulated servers, and deterministic synthetic workflows.
//!
//! [`synthetic_workflow`] repeats a ten-node txt2img pipeline (checkpoint, LoRA, two prompts,
//! latent, sampler, VAE, decode, upscale, save), each node with a `_meta` title, wired inside
//! its block and to the block before it, listed in a shuffled order as exported workflows are.
//! 500 nodes make about 92 KB of compact JSON, the size the comfyui-node comparison used.

use serde_json::{Map, Value, json};

/// comfyui-node's hash vectors: one JSON row per workflow (`name`, `workflow_text`, …).
const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/workflow-hash/tests/data/workflow-hash.jsonl"
));

/// The `workflow_text` of the golden row called `name` (say `real/simple-txt2img.json`).
///
/// # Panics
///
/// If there is no such row.
pub fn golden_text(name: &str) -> String {
    GOLDEN
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|row| row["name"] == name)
        .and_then(|row| row["workflow_text"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("golden row {name} missing"))
}

/// The workflow of the golden row called `name`, parsed.
///
/// # Panics
///
/// If there is no such row.
pub fn golden(name: &str) -> Value {
    serde_json::from_str(&golden_text(name))
        .unwrap_or_else(|e| panic!("golden row {name} does not parse: {e}"))
}

/// EmptyImage → ImageInvert → SaveImage: a prompt a simulated server runs in no time;
/// `color` tells one from another (it does not change the hash).
pub fn trivial(color: usize) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bench"}}
    })
}

/// Nodes per repeated pipeline block.
const BLOCK: usize = 10;

/// A workflow of `nodes` nodes with ids `"1"..="nodes"`, the same for the same `nodes`.
pub fn synthetic_workflow(nodes: usize) -> Value {
    let mut entries: Vec<(usize, Value)> = (0..nodes).map(|i| (i + 1, node(i))).collect();
    shuffle(&mut entries);
    let map: Map<String, Value> = entries
        .into_iter()
        .map(|(id, node)| (id.to_string(), node))
        .collect();
    Value::Object(map)
}

/// The node at zero-based position `i`: slot `i % BLOCK` of block `i / BLOCK`.
fn node(i: usize) -> Value {
    let block = i / BLOCK;
    let base = block * BLOCK;
    // The id of slot `slot` in this block, and in the block before (the first block wires to
    // itself).
    let here = |slot: usize| (base + slot + 1).to_string();
    let before = |slot: usize| (base.saturating_sub(BLOCK) + slot + 1).to_string();
    let (class, title, inputs) = match i % BLOCK {
        0 => (
            "CheckpointLoaderSimple",
            "Load Checkpoint",
            json!({"ckpt_name": format!("sdxl/juggernautXL_v{}.safetensors", block % 5)}),
        ),
        1 => (
            "LoraLoader",
            "Load LoRA",
            json!({"lora_name": format!("styles/detail_tweaker_{}.safetensors", block % 7),
                   "strength_model": 0.85, "strength_clip": 0.85,
                   "model": [here(0), 0], "clip": [here(0), 1]}),
        ),
        2 => (
            "CLIPTextEncode",
            "CLIP Text Encode (Positive)",
            json!({"text": format!("masterpiece, best quality, a photo of a red fox in a snowy \
                                    forest at golden hour, 35mm, shallow depth of field, \
                                    soft rim light, detailed fur, frost on the branches, \
                                    breath visible in the cold air, cinematic color grading, \
                                    scene {block}"),
                   "clip": [here(1), 1]}),
        ),
        3 => (
            "CLIPTextEncode",
            "CLIP Text Encode (Negative)",
            json!({"text": "lowres, bad anatomy, bad hands, blurry, jpeg artifacts, \
                            watermark, signature, text, cropped, worst quality, extra fingers",
                   "clip": [here(1), 1]}),
        ),
        4 => (
            "EmptyLatentImage",
            "Empty Latent Image",
            json!({"width": 1024, "height": 1024, "batch_size": 1}),
        ),
        5 => (
            "KSampler",
            "KSampler",
            json!({"seed": 156_680_208_700_286_u64 + block as u64, "steps": 30, "cfg": 6.5,
                   "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1,
                   "model": [here(1), 0], "positive": [here(2), 0], "negative": [here(3), 0],
                   "latent_image": [here(4), 0]}),
        ),
        6 => (
            "VAELoader",
            "Load VAE",
            json!({"vae_name": "sdxl_vae_fp16_fix.safetensors"}),
        ),
        7 => (
            "VAEDecode",
            "VAE Decode",
            json!({"samples": [here(5), 0], "vae": [here(6), 0]}),
        ),
        8 => (
            "ImageScaleBy",
            "Upscale Image By",
            json!({"upscale_method": "lanczos", "scale_by": 1.5, "image": [before(7), 0]}),
        ),
        _ => (
            "SaveImage",
            "Save Image",
            json!({"filename_prefix": format!("fox-series/2024-11-03/run_{block}"), "images": [here(8), 0]}),
        ),
    };
    json!({"inputs": inputs, "class_type": class, "_meta": {"title": title}})
}

/// A fixed pseudo-random permutation (xorshift-driven Fisher-Yates).
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_hundred_nodes_make_about_92_kb() {
        let workflow = synthetic_workflow(500);
        assert_eq!(workflow.as_object().map(Map::len), Some(500));
        let text = workflow.to_string();
        assert!(
            (91_000..93_000).contains(&text.len()),
            "{} bytes",
            text.len()
        );
        assert_eq!(synthetic_workflow(500), workflow, "deterministic");
    }

    #[test]
    fn every_edge_points_at_an_existing_node() {
        let workflow = synthetic_workflow(37);
        let nodes = workflow.as_object().expect("object");
        for node in nodes.values() {
            for input in node["inputs"].as_object().expect("inputs").values() {
                if let Some(source) = input.get(0).and_then(Value::as_str) {
                    assert!(nodes.contains_key(source), "{source}");
                }
            }
        }
    }
}
