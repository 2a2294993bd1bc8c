//! `comfy-caps`: what a ComfyUI server can run, what a workflow needs, and whether it fits,
//! so a pool can keep a job off a server that lacks a node class or a model file instead of
//! finding out from a 400.
//!
//! - [`Capabilities`] of one server, read from the bytes of `GET /object_info` (streamed: a
//!   multi-megabyte answer becomes a compact set of class names and, per combo input, the
//!   model files offered), updated from `GET /object_info/{class}`, with a content
//!   [`version`](Capabilities::version).
//! - [`Requirements`] of one workflow: node classes and model-file references, computed once
//!   per [`WorkflowHash`](workflow_hash::WorkflowHash).
//! - [`check`] → [`Verdict`]: capable, or what is [`Missing`].
//! - [`VerdictCache`]: verdicts by (server, capabilities version, workflow hash), O(1), bounded.
//! - [`explain_rejection`]: whether a 400 from `POST /prompt` names a class or file the server
//!   lacks, whatever the wording.
//!
//! Model files are recognised by [`workflow_hash::is_model_file`], the rule the workflow hash
//! uses: a workflow that differs in a model file hashes differently *and* is routed by it.
//! Pure computation: no async, no I/O.
//!
//! ```
//! use comfy_caps::{Capabilities, Missing, Requirements, Verdict, VerdictCache, check};
//!
//! // What the server answered to GET /object_info (trimmed; both combo forms).
//! let object_info = br#"{
//!     "CheckpointLoaderSimple": {"input": {"required": {
//!         "ckpt_name": [["sd15.safetensors", "sdxl.safetensors"], {"tooltip": "..."}]}}},
//!     "LoraLoader": {"input": {"required": {
//!         "lora_name": ["COMBO", {"options": ["detail.safetensors"]}],
//!         "model": ["MODEL"]}}},
//!     "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}}
//! }"#;
//! let caps = Capabilities::from_object_info(object_info)?;
//! assert!(caps.has_class("SaveImage"));
//! assert_eq!(caps.allows("LoraLoader", "lora_name", "detail.safetensors"), Some(true));
//!
//! let workflow = serde_json::json!({
//!     "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux.safetensors"}},
//!     "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
//! });
//! let reqs = Requirements::of(&workflow)?;
//! let verdict = check(&caps, &reqs);
//! assert_eq!(
//!     verdict.to_string(),
//!     "lacks node class VAEDecode; \
//!      lacks model file flux.safetensors (ckpt_name of CheckpointLoaderSimple)"
//! );
//! assert_eq!(verdict.missing()[0], Missing::NodeClass("VAEDecode".into()));
//!
//! // Cached per (server, capabilities version, workflow hash).
//! let hash = workflow_hash::WorkflowHash::of(&workflow)?;
//! let mut cache = VerdictCache::new(1024);
//! assert_eq!(cache.get_or_check(&"gpu-1", &caps, &hash, &reqs), &verdict);
//! assert_eq!(cache.get(&"gpu-1", caps.version(), &hash), Some(&verdict));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use crate::cache::VerdictCache;
pub use crate::capabilities::Capabilities;
pub use crate::error::{Error, Result};
pub use crate::intern::MAX_NAME_BYTES;
pub use crate::rejection::{Rejection, explain_rejection, explains_rejection};
pub use crate::requirements::{ModelRef, Requirements};
pub use crate::verdict::{Missing, Verdict, check};
pub use crate::version::CapsVersion;

pub mod synthetic;

mod cache;
mod capabilities;
mod error;
mod intern;
mod object_info;
mod rejection;
mod requirements;
mod verdict;
mod version;
