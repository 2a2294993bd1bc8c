//! [`Workflow`]: the demo workflows (from `examples/workflows/`), with their hashes.

use std::path::Path;

use comfy_pool::WorkflowHash;
use serde_json::Value;

use crate::{DemoError, Result};

/// The workflows shipped in `examples/workflows/`, by name. All but `txt2img-checkpoint`
/// need no model weights, so they also run on a stock ComfyUI.
pub const LIBRARY: [(&str, &str); 6] = [
    ("invert-save", include_str!("../workflows/invert-save.json")),
    (
        "emptyimage-scale-preview",
        include_str!("../workflows/emptyimage-scale-preview.json"),
    ),
    (
        "getimagesize-savews-binary",
        include_str!("../workflows/getimagesize-savews-binary.json"),
    ),
    (
        "loadimage-blur-save",
        include_str!("../workflows/loadimage-blur-save.json"),
    ),
    (
        "runtime-fail-imagescaleby",
        include_str!("../workflows/runtime-fail-imagescaleby.json"),
    ),
    (
        "txt2img-checkpoint",
        include_str!("../workflows/txt2img-checkpoint.json"),
    ),
];

/// A workflow with a name and its structural hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// A short name (the file name without `.json`, or a label for a variant).
    pub name: String,
    /// The API-format workflow.
    pub value: Value,
    /// Its structural hash.
    pub hash: WorkflowHash,
}

impl Workflow {
    /// A named workflow from [`LIBRARY`].
    ///
    /// # Errors
    ///
    /// [`DemoError::Usage`] for an unknown name; a hash error if the file is broken.
    pub fn named(name: &str) -> Result<Self> {
        let text = LIBRARY
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text)
            .ok_or_else(|| DemoError::Usage(format!("no workflow named {name:?}")))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| DemoError::Usage(format!("workflow {name}: {e}")))?;
        Self::new(name, value)
    }

    /// A workflow from a value.
    ///
    /// # Errors
    ///
    /// A hash error when `value` is not an API-format workflow.
    pub fn new(name: impl Into<String>, value: Value) -> Result<Self> {
        let hash = WorkflowHash::of(&value)?;
        Ok(Self {
            name: name.into(),
            value,
            hash,
        })
    }

    /// Reads a workflow file.
    ///
    /// # Errors
    ///
    /// [`DemoError::WorkflowFile`] when it cannot be read or is not JSON; a hash error when it
    /// is not an API-format workflow.
    pub fn from_file(path: &Path) -> Result<Self> {
        let file_error = |source| DemoError::WorkflowFile {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(file_error)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| file_error(e.into()))?;
        Self::new(path.display().to_string(), value)
    }

    /// A copy named `name` with `inputs[input]` of node `node` set to `value` (re-hashed).
    ///
    /// # Errors
    ///
    /// [`DemoError::Usage`] if the node has no `inputs` object.
    pub fn with_input(
        &self,
        name: &str,
        node: &str,
        input: &str,
        value: impl Into<Value>,
    ) -> Result<Self> {
        let mut copy = self.value.clone();
        let inputs = copy
            .get_mut(node)
            .and_then(|n| n.get_mut("inputs"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| DemoError::Usage(format!("{}: node {node} has no inputs", self.name)))?;
        inputs.insert(input.to_owned(), value.into());
        Self::new(name, copy)
    }

    /// A copy named `name` with node `node`'s `class_type` replaced (re-hashed).
    ///
    /// # Errors
    ///
    /// [`DemoError::Usage`] if there is no such node.
    pub fn with_class(&self, name: &str, node: &str, class_type: &str) -> Result<Self> {
        let mut copy = self.value.clone();
        let slot = copy
            .get_mut(node)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| DemoError::Usage(format!("{}: no node {node}", self.name)))?;
        slot.insert("class_type".to_owned(), class_type.into());
        Self::new(name, copy)
    }

    /// The distinct node classes, sorted (the key of the simulator's per-workflow counters).
    pub fn classes(&self) -> Vec<&str> {
        let mut classes: Vec<&str> = self
            .value
            .as_object()
            .into_iter()
            .flat_map(|nodes| nodes.values())
            .filter_map(|node| node.get("class_type").and_then(Value::as_str))
            .collect();
        classes.sort_unstable();
        classes.dedup();
        classes
    }
}

#[cfg(test)]
mod tests {
    use super::{LIBRARY, Workflow};

    #[test]
    fn every_library_workflow_loads_and_hashes() {
        for (name, _) in LIBRARY {
            let workflow = Workflow::named(name).unwrap();
            assert!(!workflow.classes().is_empty(), "{name}");
        }
    }

    #[test]
    fn values_keep_the_hash_and_classes_change_it() {
        let base = Workflow::named("invert-save").unwrap();
        let recoloured = base.with_input("recoloured", "1", "color", 255).unwrap();
        assert_eq!(recoloured.hash, base.hash);
        assert_ne!(recoloured.value, base.value);
        let other = base.with_class("other", "2", "ImageBlur").unwrap();
        assert_ne!(other.hash, base.hash);
        assert!(Workflow::named("nope").is_err());
    }
}
