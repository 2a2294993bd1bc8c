//! The node catalog: which node classes a simulated server knows and what inputs they take.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::version::ComfyVersion;

/// A trimmed copy of a real ComfyUI 0.3.64 `GET /object_info` answer (core nodes only).
const CORE_CATALOG: &str = include_str!("catalog.json");

/// Node definitions as `GET /object_info` serves them, keyed by class name.
///
/// Cheap to clone (an `Arc` inside). The default ([`NodeCatalog::core`]) holds the core image
/// nodes (`EmptyImage`, `ImageInvert`, `SaveImage`, `PreviewImage`, `LoadImage`, `ImageBlur`,
/// `ImageScaleBy`, `GetImageSize`, `SaveImageWebsocket`, ...) and the usual model nodes
/// (`CheckpointLoaderSimple`, `CLIPTextEncode`, `KSampler`, `EmptyLatentImage`, `VAEDecode`,
/// `LoraLoader`, ...), copied from a recording of a real server.
#[derive(Clone, Debug)]
pub struct NodeCatalog {
    nodes: Arc<Map<String, Value>>,
}

impl Default for NodeCatalog {
    fn default() -> Self {
        Self::core()
    }
}

impl NodeCatalog {
    /// The built-in catalog of core nodes.
    pub fn core() -> Self {
        let nodes = match serde_json::from_str::<Value>(CORE_CATALOG) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        Self {
            nodes: Arc::new(nodes),
        }
    }

    /// A catalog from a full `GET /object_info` body (an object of node definitions).
    pub fn from_json(body: Value) -> Result<Self> {
        let Value::Object(map) = body else {
            return Err(Error::Catalog("expected a JSON object".into()));
        };
        for (name, def) in &map {
            if !def.is_object() {
                return Err(Error::Catalog(format!(
                    "definition of {name} is not an object"
                )));
            }
        }
        Ok(Self {
            nodes: Arc::new(map),
        })
    }

    /// Adds (or replaces) one node class. `definition` has the shape of one
    /// `GET /object_info/{class}` entry; `input.required`, `output` and `output_node` are used.
    #[must_use]
    pub fn with_node(mut self, class: impl Into<String>, definition: Value) -> Self {
        Arc::make_mut(&mut self.nodes).insert(class.into(), definition);
        self
    }

    /// Adds a minimal node class: required inputs as `(name, type)` pairs, output types, and
    /// whether it is an output node.
    #[must_use]
    pub fn with_simple_node(
        self,
        class: &str,
        inputs: &[(&str, &str)],
        outputs: &[&str],
        output_node: bool,
    ) -> Self {
        let mut required = Map::new();
        for (name, kind) in inputs {
            required.insert((*name).to_owned(), Value::Array(vec![Value::from(*kind)]));
        }
        let order: Vec<Value> = inputs.iter().map(|(n, _)| Value::from(*n)).collect();
        let definition = serde_json::json!({
            "input": {"required": required},
            "input_order": {"required": order},
            "output": outputs,
            "output_is_list": outputs.iter().map(|_| false).collect::<Vec<_>>(),
            "output_name": outputs,
            "name": class,
            "display_name": class,
            "description": "",
            "python_module": "custom_nodes.sim",
            "category": "sim",
            "output_node": output_node,
        });
        self.with_node(class, definition)
    }

    /// Removes one node class, so prompts using it are rejected like on a server without it.
    #[must_use]
    pub fn without_node(mut self, class: &str) -> Self {
        Arc::make_mut(&mut self.nodes).shift_remove(class);
        self
    }

    /// True when the catalog defines `class`.
    pub fn contains(&self, class: &str) -> bool {
        self.nodes.contains_key(class)
    }

    /// The definition of `class`, if known.
    pub fn get(&self, class: &str) -> Option<&Value> {
        self.nodes.get(class)
    }

    /// Class names, in catalog order.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// This catalog as `version` serves it: on 0.8 the core nodes written against ComfyUI's
    /// V3 node API (`GetImageSize`, `ImageBlur`) get their 0.8 definitions, unless the
    /// catalog replaced them.
    pub(crate) fn for_version(mut self, version: ComfyVersion) -> Self {
        if version != ComfyVersion::V0_8 {
            return self;
        }
        let core = Self::core();
        let nodes = Arc::make_mut(&mut self.nodes);
        for class in ["GetImageSize", "ImageBlur"] {
            let Some(definition) = nodes.get_mut(class) else {
                continue;
            };
            if core.get(class) != Some(&*definition) {
                continue;
            }
            *definition = match class {
                "GetImageSize" => get_image_size_v0_8(),
                _ => with_output_matchtypes(definition),
            };
        }
        self
    }

    pub(crate) fn is_output_node(&self, class: &str) -> bool {
        self.get(class)
            .and_then(|d| d.get("output_node"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Type name of output `slot` of `class` (`"IMAGE"`, `"INT"`, ...).
    pub(crate) fn output_type(&self, class: &str, slot: u64) -> Option<&str> {
        let outputs = self.get(class)?.get("output")?.as_array()?;
        let index = usize::try_from(slot).ok()?;
        outputs.get(index)?.as_str()
    }
}

/// `GetImageSize` as ComfyUI 0.8 defines it (moved to the V3 node API).
fn get_image_size_v0_8() -> Value {
    serde_json::json!({
        "input": {"required": {"image": ["IMAGE", {}]}, "hidden": {"unique_id": ["UNIQUE_ID"]}},
        "input_order": {"required": ["image"], "hidden": ["unique_id"]},
        "output": ["INT", "INT", "INT"],
        "output_is_list": [false, false, false],
        "output_name": ["width", "height", "batch_size"],
        "output_tooltips": [null, null, null],
        "output_matchtypes": null,
        "name": "GetImageSize",
        "display_name": "Get Image Size",
        "description": "Returns width and height of the image, and passes it through unchanged.",
        "python_module": "comfy_extras.nodes_images",
        "category": "image",
        "output_node": false,
        "deprecated": false,
        "experimental": false,
        "api_node": false
    })
}

/// A V3 definition with 0.8's `output_matchtypes: null` after `output_tooltips`.
fn with_output_matchtypes(definition: &Value) -> Value {
    let Some(fields) = definition.as_object() else {
        return definition.clone();
    };
    let mut out = Map::new();
    for (key, value) in fields {
        out.insert(key.clone(), value.clone());
        if key == "output_tooltips" {
            out.insert("output_matchtypes".to_owned(), Value::Null);
        }
    }
    Value::Object(out)
}

/// Ordered `(name, spec)` pairs of one section (`required` or `optional`) of a definition.
pub(crate) fn inputs<'a>(definition: &'a Value, section: &str) -> Vec<(&'a str, &'a Value)> {
    let Some(specs) = definition
        .get("input")
        .and_then(|i| i.get(section))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let order = definition
        .get("input_order")
        .and_then(|o| o.get(section))
        .and_then(Value::as_array);
    match order {
        Some(order) => order
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|name| specs.get_key_value(name))
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        None => specs.iter().map(|(k, v)| (k.as_str(), v)).collect(),
    }
}

/// A model-file input: `class.input` lists the files of model folder `folder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModelInput {
    pub(crate) class: String,
    pub(crate) input: String,
    pub(crate) folder: String,
}

/// The loaders of the core catalog and the folder each one reads.
pub(crate) fn core_model_inputs() -> Vec<ModelInput> {
    [
        ("CheckpointLoaderSimple", "ckpt_name", "checkpoints"),
        ("LoraLoader", "lora_name", "loras"),
        ("VAELoader", "vae_name", "vae"),
    ]
    .into_iter()
    .map(|(c, i, f)| ModelInput {
        class: c.into(),
        input: i.into(),
        folder: f.into(),
    })
    .collect()
}
