//! Prompt validation with ComfyUI's error types and shapes (`execution.py validate_prompt`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::catalog::inputs;
use crate::faults::RejectionStyle;
use crate::shared::Shared;
use crate::values::{combo_options, error, not_in_list, number, py_str, types_match};

/// A prompt that passed validation.
#[derive(Debug)]
pub(crate) struct Valid {
    /// Output nodes to execute.
    pub(crate) outputs: Vec<String>,
    /// Errors of outputs that failed while others passed (ComfyUI runs the good ones).
    pub(crate) node_errors: Map<String, Value>,
}

/// The 400 body `{error:{type,message,details,extra_info}, node_errors}`.
pub(crate) fn rejection(
    kind: &str,
    message: &str,
    details: &str,
    node_errors: Map<String, Value>,
) -> Value {
    let mut body = json!({
        "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
    });
    if let Some(map) = body.as_object_mut() {
        map.insert("node_errors".to_owned(), Value::Object(node_errors));
    }
    body
}

/// The `_meta.title` a workflow editor gave a node.
fn title(node: &Value) -> Option<&str> {
    node.get("_meta")?.get("title")?.as_str()
}

/// The rejection of a node without `class_type`.
fn missing_class_type(style: RejectionStyle, id: &str, node: &Value) -> Value {
    let details = format!("Node ID '#{id}'");
    match style {
        RejectionStyle::Legacy => rejection(
            "invalid_prompt",
            "Cannot execute because a node is missing the class_type property.",
            &details,
            Map::new(),
        ),
        RejectionStyle::Current => {
            let title = title(node);
            let shown = title.map_or_else(|| format!("ID #{id}"), str::to_owned);
            missing_node_type(
                &format!(
                    "Node '{shown}' has no class_type. The workflow may be corrupted or a custom node is missing."
                ),
                &details,
                json!({"node_id": id, "class_type": null, "node_title": title}),
            )
        }
    }
}

/// The rejection of a node whose class the server does not have.
fn unknown_class(style: RejectionStyle, id: &str, node: &Value, class: &str) -> Value {
    let details = format!("Node ID '#{id}'");
    match style {
        RejectionStyle::Legacy => rejection(
            "invalid_prompt",
            &format!("Cannot execute because node {class} does not exist."),
            &details,
            Map::new(),
        ),
        RejectionStyle::Current => {
            let title = title(node).unwrap_or(class);
            missing_node_type(
                &format!("Node '{title}' not found. The custom node may not be installed."),
                &details,
                json!({"node_id": id, "class_type": class, "node_title": title}),
            )
        }
    }
}

/// A 400 body of type `missing_node_type` (no `node_errors`).
fn missing_node_type(message: &str, details: &str, extra_info: Value) -> Value {
    let mut body = rejection("missing_node_type", message, details, Map::new());
    if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
        error.insert("extra_info".to_owned(), extra_info);
    }
    body
}

/// Validates `prompt`; `Err` holds the 400 body.
pub(crate) fn validate(shared: &Shared, prompt: &Map<String, Value>) -> Result<Valid, Value> {
    let style = shared.knobs.lock().rejection_style;
    let mut outputs = Vec::new();
    for (id, node) in prompt {
        let Some(class) = node.get("class_type").and_then(Value::as_str) else {
            return Err(missing_class_type(style, id, node));
        };
        if !shared.has_class(class) {
            return Err(unknown_class(style, id, node, class));
        }
        if shared.catalog.is_output_node(class) {
            outputs.push(id.as_str());
        }
    }
    if outputs.is_empty() {
        return Err(rejection(
            "prompt_no_outputs",
            "Prompt has no outputs",
            "",
            Map::new(),
        ));
    }
    let mut checker = Checker {
        shared,
        prompt,
        validated: HashMap::new(),
    };
    let mut good = Vec::new();
    let mut failed = Vec::new();
    for output in outputs {
        if checker.node(output) {
            good.push(output.to_owned());
        } else {
            failed.push(output.to_owned());
        }
    }
    let mut node_errors = Map::new();
    if !failed.is_empty() {
        for (id, errors) in &checker.validated {
            if errors.is_empty() {
                continue;
            }
            let class = prompt
                .get(id)
                .and_then(|n| n.get("class_type"))
                .cloned()
                .unwrap_or(Value::Null);
            node_errors.insert(
                id.clone(),
                json!({"errors": errors, "dependent_outputs": failed, "class_type": class}),
            );
        }
    }
    if good.is_empty() {
        return Err(rejection(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "",
            node_errors,
        ));
    }
    Ok(Valid {
        outputs: good,
        node_errors,
    })
}

struct Checker<'a> {
    shared: &'a Shared,
    prompt: &'a Map<String, Value>,
    /// Node id -> its own errors; presence means "visited". A node is valid when it and
    /// everything it links to are valid.
    validated: HashMap<String, Vec<Value>>,
}

/// One node under validation: its inputs in catalog order and how far the walk got.
///
/// ComfyUI validates a node's linked ancestors recursively; the checker keeps an explicit
/// stack of these frames instead, so a chain of any length cannot overflow the thread stack.
struct Frame<'a> {
    id: &'a str,
    class: &'a str,
    given: &'a Map<String, Value>,
    specs: Vec<(&'a str, &'a Value, bool)>,
    next: usize,
    errors: Vec<Value>,
    valid: bool,
}

/// What entering a node gave: a frame to walk, or an answer at once.
enum Entered<'a> {
    Walk(Frame<'a>),
    Done(bool),
}

/// `["node id", slot]`.
pub(crate) fn as_link(value: &Value) -> Option<(&str, u64)> {
    match value.as_array()?.as_slice() {
        [Value::String(id), slot] => Some((id.as_str(), slot.as_u64()?)),
        _ => None,
    }
}

/// An empty input map, for nodes without `inputs`.
static NO_INPUTS: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Checker<'a> {
    /// Validates one node and its ancestors; true when all are valid.
    fn node(&mut self, root: &'a str) -> bool {
        let mut stack = match self.enter(root) {
            Entered::Done(ok) => return ok,
            Entered::Walk(frame) => vec![frame],
        };
        let mut root_ok = false;
        loop {
            let descend = match stack.last_mut() {
                Some(frame) => self.advance(frame),
                None => return root_ok,
            };
            if let Some(linked) = descend {
                match self.enter(linked) {
                    Entered::Walk(frame) => stack.push(frame),
                    Entered::Done(ok) => {
                        if let (false, Some(frame)) = (ok, stack.last_mut()) {
                            frame.valid = false;
                        }
                    }
                }
                continue;
            }
            let Some(done) = stack.pop() else {
                return root_ok;
            };
            let ok = done.valid && done.errors.is_empty();
            self.validated.insert(done.id.to_owned(), done.errors);
            match stack.last_mut() {
                Some(parent) if !ok => parent.valid = false,
                Some(_) => {}
                None => root_ok = ok,
            }
        }
    }

    /// Starts validating `id`, or answers from what is known already.
    fn enter(&mut self, id: &'a str) -> Entered<'a> {
        if let Some(errors) = self.validated.get(id) {
            return Entered::Done(errors.is_empty());
        }
        // Mark as visited first so that a cycle terminates.
        self.validated.insert(id.to_owned(), Vec::new());
        let Some(node) = self.prompt.get(id) else {
            return Entered::Done(false);
        };
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
        let Some(definition) = self.shared.catalog.get(class) else {
            return Entered::Done(false);
        };
        let given = node
            .get("inputs")
            .and_then(Value::as_object)
            .unwrap_or(&NO_INPUTS);
        let specs = inputs(definition, "required")
            .into_iter()
            .map(|(n, s)| (n, s, true))
            .chain(
                inputs(definition, "optional")
                    .into_iter()
                    .map(|(n, s)| (n, s, false)),
            )
            .collect();
        Entered::Walk(Frame {
            id,
            class,
            given,
            specs,
            next: 0,
            errors: Vec::new(),
            valid: true,
        })
    }

    /// Checks the frame's next inputs; stops at a link to a node not validated yet and
    /// returns it (the caller validates it, then comes back here).
    fn advance(&self, frame: &mut Frame<'a>) -> Option<&'a str> {
        while let Some(&(name, spec, required)) = frame.specs.get(frame.next) {
            frame.next += 1;
            let Some(value) = frame.given.get(name) else {
                if required {
                    frame.errors.push(error(
                        "required_input_missing",
                        "Required input is missing",
                        name,
                        json!({"input_name": name}),
                    ));
                    frame.valid = false;
                }
                continue;
            };
            if let Some((linked, slot)) = as_link(value) {
                if let Some(e) = self.link(name, spec, linked, slot) {
                    frame.errors.push(e);
                    frame.valid = false;
                    continue;
                }
                match self.validated.get(linked) {
                    Some(errors) if !errors.is_empty() => frame.valid = false,
                    Some(_) => {}
                    None => return Some(linked),
                }
            } else if let Some(e) = self.literal(frame.class, name, spec, value) {
                frame.errors.push(e);
                frame.valid = false;
            }
        }
        None
    }

    /// The error of a link itself (missing node, wrong type), before its node is validated.
    fn link(&self, name: &str, spec: &Value, linked: &str, slot: u64) -> Option<Value> {
        let Some(linked_node) = self.prompt.get(linked) else {
            return Some(error(
                "exception_during_inner_validation",
                "Exception when validating inner node",
                &format!("'{linked}'"),
                json!({
                    "input_name": name,
                    "input_config": spec,
                    "exception_message": format!("'{linked}'"),
                    "exception_type": "KeyError",
                    "traceback": [self.shared.version.missing_link_traceback()],
                    "linked_node": [linked, slot],
                }),
            ));
        };
        let linked_class = linked_node
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let input_type = spec.get(0).and_then(Value::as_str);
        let received = self.shared.catalog.output_type(linked_class, slot);
        if let (Some(input_type), Some(received)) = (input_type, received)
            && !types_match(input_type, received)
        {
            return Some(error(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                &format!("{name}, received_type({received}) mismatch input_type({input_type})"),
                json!({
                    "input_name": name,
                    "input_config": spec,
                    "received_type": received,
                    "linked_node": [linked, slot],
                }),
            ));
        }
        None
    }

    fn literal(&self, class: &str, name: &str, spec: &Value, value: &Value) -> Option<Value> {
        if matches!(class, "LoadImage" | "LoadImageMask") && name == "image" {
            let path = value.as_str().unwrap_or("");
            if self.shared.files.lock().has_input(path) {
                return None;
            }
            return Some(error(
                "custom_validation_failed",
                "Custom validation failed for node",
                &format!("{name} - Invalid image file: {}", py_str(value)),
                json!({"input_name": name}),
            ));
        }
        if let Some(folder) = self.shared.model_folder(class, name) {
            let mut options: Vec<Value> = combo_options(spec).cloned().unwrap_or_default();
            options.extend(
                self.shared
                    .model_files(folder)
                    .unwrap_or_default()
                    .into_iter()
                    .map(Value::from),
            );
            let mut config = spec.clone();
            if let Some(first) = config.get_mut(0) {
                *first = Value::Array(options.clone());
            }
            return not_in_list(name, &config, &options, value);
        }
        match spec.get(0) {
            Some(Value::String(kind)) => match kind.as_str() {
                "INT" | "FLOAT" => number(kind, name, spec, value),
                "COMBO" => {
                    let options = combo_options(spec).cloned().unwrap_or_default();
                    not_in_list(name, spec, &options, value)
                }
                _ => None,
            },
            Some(Value::Array(options)) => not_in_list(name, spec, options, value),
            _ => None,
        }
    }
}
