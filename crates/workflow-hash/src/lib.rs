//! `workflow-hash`: a structural hash of ComfyUI API-format workflows
//! (`{node_id: {class_type, inputs, _meta}}`), byte-for-byte compatible with `hashWorkflow` of
//! the TypeScript SDK comfyui-node (1.10 and later), so mixed TypeScript/Rust fleets share
//! failover keys.
//!
//! The main type is [`WorkflowHash`]. The hash covers node ids, class types, input keys,
//! connection edges and model / resource file references; it ignores prompts, seeds, sizes,
//! sampler settings, `_meta` and per-job data files. The same graph with another prompt or seed
//! hashes the same; another model file, node class or wiring hashes differently.
//! [`canonical_json`] shows the exact text that is hashed and [`diff`] explains why two
//! workflows hash differently.
//!
//! Workflows that arrive as text are best hashed as text: [`WorkflowHash::of_json`] (and
//! [`WorkflowHash::of_reader`]) write the canonical form while serde_json parses, without
//! building a `serde_json::Value`, and fail on invalid JSON with exactly the error parsing into
//! a `Value` gives; [`canonical_json_from_text`] shows what they hash.
//!
//! ```
//! use workflow_hash::{WorkflowHash, diff};
//!
//! let a = serde_json::json!({
//!     "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
//!     "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
//! });
//! let mut b = a.clone();
//! b["6"]["inputs"]["text"] = "a dog".into();
//! assert_eq!(WorkflowHash::of(&a)?, WorkflowHash::of(&b)?);
//!
//! b["4"]["inputs"]["ckpt_name"] = "flux.safetensors".into();
//! assert_ne!(WorkflowHash::of(&a)?, WorkflowHash::of(&b)?);
//! let why = diff(&a, &b)?;
//! assert_eq!(
//!     why[0].to_string(),
//!     r#"node "4": input "ckpt_name" model file changed from "sdxl.safetensors" to "flux.safetensors""#
//! );
//!
//! let hash = WorkflowHash::of_json(r#"{"1": {"class_type": "SaveImage", "inputs": {}}}"#)?;
//! let parsed: WorkflowHash = hash.to_string().parse()?;
//! assert_eq!(parsed, hash);
//! # Ok::<(), workflow_hash::Error>(())
//! ```

pub use crate::canonical::{MAX_DEPTH, canonical_json, canonical_json_from_text, validate};
pub use crate::diff::{Difference, InputShape, diff};
pub use crate::error::{Error, JsonKind, Result};
pub use crate::hash::{ShortHash, WorkflowHash};

/// Whether `value` names a model file: it ends in `.` plus one of the model / resource
/// extensions of comfyui-node's `RESOURCE_VALUE` rule (`safetensors`, `sft`, `ckpt`, `pt`,
/// `pth`, `bin`, `gguf`, `onnx`, `pkl`, `npz`, `vae`, `yaml`, `yml`), ASCII
/// case-insensitively.
///
/// This is THE model-file rule of the project: the hash keeps exactly these input strings, and
/// capability routing (`comfy-caps`) requires and checks exactly these files, so a workflow
/// whose hash names a model file is also routed by it.
///
/// ```
/// assert!(workflow_hash::is_model_file("sdxl/base.SafeTensors"));
/// assert!(!workflow_hash::is_model_file("example.png"));
/// assert!(!workflow_hash::is_model_file("a cat. in a hat"));
/// ```
#[inline]
pub fn is_model_file(value: &str) -> bool {
    js::is_resource(value)
}

mod canonical;
mod deep;
mod diff;
mod error;
mod hash;
mod js;
mod order;
mod pieces;
mod sink;
mod text;
mod writer;
