//! Explaining why two workflows hash differently.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use crate::canonical::{digest, into_string, nodes_of};
use crate::deep::Deep;
use crate::error::Result;
use crate::js::{is_resource, write_string};
use crate::order::{ValueEntry, key_order, push_canonical};
use crate::writer::Writer;

/// What one input contributes to the hash, as shown in a [`Difference`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputShape {
    /// An array, normally a connection `[source_node_id, output_slot]`, as canonical JSON.
    Link(String),
    /// A model / resource file name (`.safetensors`, `.ckpt`, …): its value counts.
    Model(String),
    /// Any other string (prompt, sampler name, image file …): only its presence counts.
    Text,
    /// A number: only its presence counts.
    Number,
    /// A boolean: only its presence counts.
    Boolean,
    /// `null`.
    Null,
    /// A nested object (compared key by key).
    Object,
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link(json) => f.write_str(json),
            Self::Model(name) => f.write_str(&quoted(name)),
            Self::Text => f.write_str("a text value"),
            Self::Number => f.write_str("a number"),
            Self::Boolean => f.write_str("a boolean"),
            Self::Null => f.write_str("null"),
            Self::Object => f.write_str("an object"),
        }
    }
}

/// One structural difference between two workflows; see [`diff`].
///
/// `node` is a node id; `input` is the path of an input key (one element unless the input is
/// a nested object); class types and non-object entries are shown as canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// A node exists only in the new workflow.
    NodeAdded {
        /// Node id.
        node: String,
        /// Its `class_type` if that is a string.
        class_type: Option<String>,
    },
    /// A node exists only in the old workflow.
    NodeRemoved {
        /// Node id.
        node: String,
        /// Its `class_type` if that is a string.
        class_type: Option<String>,
    },
    /// A node's `class_type` changed.
    ClassChanged {
        /// Node id.
        node: String,
        /// Old class type, canonical JSON (`null` when missing).
        from: String,
        /// New class type, canonical JSON.
        to: String,
    },
    /// An input key exists only in the new workflow.
    InputAdded {
        /// Node id.
        node: String,
        /// Input key path.
        input: Vec<String>,
    },
    /// An input key exists only in the old workflow.
    InputRemoved {
        /// Node id.
        node: String,
        /// Input key path.
        input: Vec<String>,
    },
    /// A connection (array input) changed, or an input became / stopped being a connection.
    EdgeChanged {
        /// Node id.
        node: String,
        /// Input key path.
        input: Vec<String>,
        /// Old value.
        from: InputShape,
        /// New value.
        to: InputShape,
    },
    /// A model / resource file reference changed, appeared or disappeared.
    ModelChanged {
        /// Node id.
        node: String,
        /// Input key path.
        input: Vec<String>,
        /// Old value.
        from: InputShape,
        /// New value.
        to: InputShape,
    },
    /// An input changed kind (say number to text, or a value to an object).
    InputKindChanged {
        /// Node id.
        node: String,
        /// Input key path.
        input: Vec<String>,
        /// Old value.
        from: InputShape,
        /// New value.
        to: InputShape,
    },
    /// A node entry that is not an object (hashed verbatim) changed, or an entry changed
    /// between object and non-object.
    EntryChanged {
        /// Node id.
        node: String,
        /// Old entry, canonical JSON.
        from: String,
        /// New entry, canonical JSON.
        to: String,
    },
}

impl Difference {
    /// The id of the node the difference is about.
    pub fn node(&self) -> &str {
        match self {
            Self::NodeAdded { node, .. }
            | Self::NodeRemoved { node, .. }
            | Self::ClassChanged { node, .. }
            | Self::InputAdded { node, .. }
            | Self::InputRemoved { node, .. }
            | Self::EdgeChanged { node, .. }
            | Self::ModelChanged { node, .. }
            | Self::InputKindChanged { node, .. }
            | Self::EntryChanged { node, .. } => node,
        }
    }
}

fn quoted(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    into_string(out)
}

struct Path<'a>(&'a [String]);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = self.0.join(".");
        f.write_str(&quoted(&joined))
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = quoted(self.node());
        match self {
            Self::NodeAdded {
                class_type: Some(class),
                ..
            } => {
                write!(f, "node {node} added (class {})", quoted(class))
            }
            Self::NodeAdded {
                class_type: None, ..
            } => write!(f, "node {node} added"),
            Self::NodeRemoved {
                class_type: Some(class),
                ..
            } => {
                write!(f, "node {node} removed (class {})", quoted(class))
            }
            Self::NodeRemoved {
                class_type: None, ..
            } => write!(f, "node {node} removed"),
            Self::ClassChanged { from, to, .. } => {
                write!(f, "node {node}: class_type changed from {from} to {to}")
            }
            Self::InputAdded { input, .. } => write!(f, "node {node}: input {} added", Path(input)),
            Self::InputRemoved { input, .. } => {
                write!(f, "node {node}: input {} removed", Path(input))
            }
            Self::EdgeChanged {
                input, from, to, ..
            } => {
                write!(
                    f,
                    "node {node}: input {} connection changed from {from} to {to}",
                    Path(input)
                )
            }
            Self::ModelChanged {
                input, from, to, ..
            } => {
                write!(
                    f,
                    "node {node}: input {} model file changed from {from} to {to}",
                    Path(input)
                )
            }
            Self::InputKindChanged {
                input, from, to, ..
            } => {
                write!(
                    f,
                    "node {node}: input {} changed from {from} to {to}",
                    Path(input)
                )
            }
            Self::EntryChanged { from, to, .. } => {
                write!(f, "node {node}: entry changed from {from} to {to}")
            }
        }
    }
}

/// Lists the structural differences between `old` and `new`, in canonical node order: exactly
/// the changes that make their [`WorkflowHash`](crate::WorkflowHash)es differ. An empty list
/// means the hashes are equal. Prompts, seeds and other volatile values never show up.
///
/// # Errors
///
/// As [`WorkflowHash::of`](crate::WorkflowHash::of), for either workflow.
pub fn diff(old: &Value, new: &Value) -> Result<Vec<Difference>> {
    // Hashing first validates both inputs (object, depth), so the walk below cannot hit the
    // depth limit.
    digest(old)?;
    digest(new)?;
    let mut out = Vec::new();
    let (a, b) = (nodes_of(old)?, nodes_of(new)?);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    push_canonical(&mut ea, a);
    push_canonical(&mut eb, b);
    for pair in merge(ea.iter().map(Key::from), eb.iter().map(Key::from)) {
        match pair {
            Pair::Old(k) => out.push(Difference::NodeRemoved {
                node: k.name(),
                class_type: class_name(k.value),
            }),
            Pair::New(k) => out.push(Difference::NodeAdded {
                node: k.name(),
                class_type: class_name(k.value),
            }),
            Pair::Both(ka, kb) => {
                node_diff(&mut out, &ka.name(), ka.value, kb.value).map_err(Deep::into_error)?;
            }
        }
    }
    Ok(out)
}

fn class_name(node: &Value) -> Option<String> {
    node.get("class_type")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn node_diff(out: &mut Vec<Difference>, node: &str, a: &Value, b: &Value) -> Result<(), Deep> {
    let (Value::Object(fa), Value::Object(fb)) = (a, b) else {
        let (from, to) = (render(a, 2, Writer::node)?, render(b, 2, Writer::node)?);
        if from != to {
            out.push(Difference::EntryChanged {
                node: node.to_owned(),
                from,
                to,
            });
        }
        return Ok(());
    };
    let class = |f: &Map<String, Value>| match f.get("class_type") {
        None | Some(Value::Null) => Ok("null".to_owned()),
        Some(v) => render(v, 3, Writer::verbatim),
    };
    let (from, to) = (class(fa)?, class(fb)?);
    if from != to {
        out.push(Difference::ClassChanged {
            node: node.to_owned(),
            from,
            to,
        });
    }
    let mut path = Vec::new();
    inputs_diff(
        out,
        node,
        &mut path,
        input_keys(fa.get("inputs")),
        input_keys(fb.get("inputs")),
        4,
    )
}

/// The canonical keys of a node's `inputs`: object keys, or array indices.
fn input_keys(inputs: Option<&Value>) -> Vec<Key<'_>> {
    match inputs {
        Some(Value::Object(map)) => map_keys(map),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, value)| Key {
                rank: i as u64,
                key: Cow::Owned(i.to_string()),
                value,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn map_keys(map: &Map<String, Value>) -> Vec<Key<'_>> {
    let mut entries = Vec::new();
    push_canonical(&mut entries, map);
    entries.iter().map(Key::from).collect()
}

fn inputs_diff(
    out: &mut Vec<Difference>,
    node: &str,
    path: &mut Vec<String>,
    a: Vec<Key<'_>>,
    b: Vec<Key<'_>>,
    depth: usize,
) -> Result<(), Deep> {
    for pair in merge(a.into_iter(), b.into_iter()) {
        let here = |k: &Key<'_>, path: &[String]| {
            let mut p = path.to_vec();
            p.push(k.name());
            p
        };
        match pair {
            Pair::Old(k) => out.push(Difference::InputRemoved {
                node: node.to_owned(),
                input: here(&k, path),
            }),
            Pair::New(k) => out.push(Difference::InputAdded {
                node: node.to_owned(),
                input: here(&k, path),
            }),
            Pair::Both(ka, kb) => {
                path.push(ka.name());
                let result = input_diff(out, node, path, ka.value, kb.value, depth);
                path.pop();
                result?;
            }
        }
    }
    Ok(())
}

fn input_diff(
    out: &mut Vec<Difference>,
    node: &str,
    path: &mut Vec<String>,
    a: &Value,
    b: &Value,
    depth: usize,
) -> Result<(), Deep> {
    if let (Value::Object(ma), Value::Object(mb)) = (a, b) {
        return inputs_diff(out, node, path, map_keys(ma), map_keys(mb), depth + 1);
    }
    let (from, to) = (shape(a, depth)?, shape(b, depth)?);
    if from == to {
        return Ok(());
    }
    let (node, input) = (node.to_owned(), path.clone());
    out.push(match (&from, &to) {
        (InputShape::Link(_), _) | (_, InputShape::Link(_)) => Difference::EdgeChanged {
            node,
            input,
            from,
            to,
        },
        (InputShape::Model(_), _) | (_, InputShape::Model(_)) => Difference::ModelChanged {
            node,
            input,
            from,
            to,
        },
        _ => Difference::InputKindChanged {
            node,
            input,
            from,
            to,
        },
    });
    Ok(())
}

fn shape(value: &Value, depth: usize) -> Result<InputShape, Deep> {
    Ok(match value {
        Value::Array(_) => InputShape::Link(render(value, depth, Writer::verbatim)?),
        Value::String(s) if is_resource(s) => InputShape::Model(s.clone()),
        Value::String(_) => InputShape::Text,
        Value::Number(_) => InputShape::Number,
        Value::Bool(_) => InputShape::Boolean,
        Value::Null => InputShape::Null,
        Value::Object(_) => InputShape::Object,
    })
}

type Render<'a> = fn(&mut Writer<'a, Vec<u8>>, &'a Value, usize) -> Result<(), Deep>;

fn render<'a>(value: &'a Value, depth: usize, step: Render<'a>) -> Result<String, Deep> {
    let mut writer = Writer::new(Vec::new(), 8);
    step(&mut writer, value, depth)?;
    Ok(into_string(writer.into_sink()))
}

/// An object key in canonical order.
struct Key<'a> {
    rank: u64,
    key: Cow<'a, str>,
    value: &'a Value,
}

impl<'a> From<&ValueEntry<'a>> for Key<'a> {
    fn from(e: &ValueEntry<'a>) -> Self {
        Key {
            rank: e.rank(),
            key: Cow::Borrowed(e.key),
            value: e.value,
        }
    }
}

impl Key<'_> {
    fn name(&self) -> String {
        self.key.clone().into_owned()
    }

    fn cmp(&self, other: &Self) -> Ordering {
        key_order((self.rank, &self.key), (other.rank, &other.key))
    }
}

enum Pair<T> {
    Old(T),
    New(T),
    Both(T, T),
}

/// Merges two key lists that are both in canonical order.
fn merge<'a>(
    a: impl Iterator<Item = Key<'a>>,
    b: impl Iterator<Item = Key<'a>>,
) -> Vec<Pair<Key<'a>>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out = Vec::new();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        };
        match order {
            Ordering::Less => out.extend(a.next().map(Pair::Old)),
            Ordering::Greater => out.extend(b.next().map(Pair::New)),
            Ordering::Equal => {
                if let (Some(x), Some(y)) = (a.next(), b.next()) {
                    out.push(Pair::Both(x, y));
                }
            }
        }
    }
    out
}
