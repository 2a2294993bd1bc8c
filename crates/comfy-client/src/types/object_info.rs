//! `GET /object_info`: node class definitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The definition of one node class.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Inputs by section.
    #[serde(default)]
    pub input: NodeInputs,
    /// Input names per section, in display order.
    #[serde(default)]
    pub input_order: BTreeMap<String, Vec<String>>,
    /// Output types (a combo output is a list of choices).
    #[serde(default)]
    pub output: Vec<Value>,
    /// Whether each output is a list.
    #[serde(default)]
    pub output_is_list: Vec<bool>,
    /// Output names.
    #[serde(default)]
    pub output_name: Vec<String>,
    /// The class name.
    #[serde(default)]
    pub name: String,
    /// The display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: String,
    /// The Python module that defines it.
    #[serde(default)]
    pub python_module: String,
    /// The menu category.
    #[serde(default)]
    pub category: String,
    /// Whether it is an output node.
    #[serde(default)]
    pub output_node: bool,
    /// Tooltips of the outputs.
    #[serde(default)]
    pub output_tooltips: Option<Vec<Value>>,
    /// Deprecated node.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// Experimental node.
    #[serde(default)]
    pub experimental: Option<bool>,
    /// Node backed by a paid API.
    #[serde(default)]
    pub api_node: Option<bool>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NodeInfo {
    /// The allowed values of a combo input (e.g. the model files of a loader), looking in
    /// `required` then `optional`. Understands both `[[choices...], {...}]` and
    /// `["COMBO", {"options": [...]}]`.
    pub fn input_choices(&self, input: &str) -> Option<Vec<String>> {
        let spec = self
            .input
            .required
            .get(input)
            .or_else(|| self.input.optional.get(input))?;
        let first = spec.get(0)?;
        let list = match first {
            Value::Array(items) => items,
            Value::String(s) if s == "COMBO" => spec.get(1)?.get("options")?.as_array()?,
            _ => return None,
        };
        Some(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        )
    }
}

/// The `input` object of [`NodeInfo`]: specs per section, kept as JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeInputs {
    /// Required inputs: name -> `[type, options]`.
    #[serde(default)]
    pub required: Map<String, Value>,
    /// Optional inputs.
    #[serde(default)]
    pub optional: Map<String, Value>,
    /// Hidden inputs.
    #[serde(default)]
    pub hidden: Map<String, Value>,
    /// Sections this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
