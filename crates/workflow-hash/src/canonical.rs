//! The canonical structural form of a workflow, streamed into any [`Sink`].
//!
//! This reproduces comfyui-node's `structuralJson` followed by `JSON.stringify`:
//!
//! * the top level maps node id to entry; ids are sorted;
//! * an object node becomes `{"class_type": <class_type or null>, "inputs": {...}}` (`_meta` and
//!   every other key are dropped); `inputs` that is not an object or array becomes `{}`;
//! * an input value that is an array (a connection edge `[node, slot]`, or any list) is kept
//!   verbatim; a string is kept if it names a model file ([`is_resource`]) and becomes `""`
//!   otherwise; a nested object is canonicalised recursively; a number becomes `"number"`, a
//!   boolean `"boolean"`, `null` stays `null`;
//! * a node entry that is not an object is kept verbatim (comfyui-node tolerates it);
//! * objects the algorithm builds list array-index keys first (numerically), then the other
//!   keys sorted by UTF-16 code units, and drop a `__proto__` key (JavaScript's assignment to
//!   `obj["__proto__"]` sets the prototype instead of a property);
//! * objects kept verbatim (inside arrays or `class_type`) list array-index keys first, then
//!   the other keys in document order, exactly as `JSON.parse` + `JSON.stringify` do.

use serde_json::{Map, Value};

use crate::deep::Deep;
use crate::error::{Error, JsonKind, Result};
use crate::sink::{HashSink, Sink};
use crate::text::write_text;
use crate::writer::Writer;

/// Deepest container nesting accepted, counting the workflow object itself as level 1.
///
/// Text parsed by serde_json never exceeds it (serde_json stops at 127 levels); a
/// [`Value`] built in code can, and is rejected with [`Error::TooDeep`] instead of risking the
/// stack.
pub const MAX_DEPTH: usize = 128;

/// Returns the canonical structural JSON text of `workflow`: exactly the bytes whose SHA-256 is
/// its [`WorkflowHash`](crate::WorkflowHash). Useful to see what was hashed.
///
/// # Errors
///
/// [`Error::NotAnObject`] if the top level is not an object, [`Error::TooDeep`] if it nests
/// deeper than [`MAX_DEPTH`].
pub fn canonical_json(workflow: &Value) -> Result<String> {
    let mut out = Vec::with_capacity(256);
    write_workflow(&mut out, workflow)?;
    Ok(into_string(out))
}

/// Returns the canonical structural JSON text of the workflow in JSON `text`, straight from the
/// text (no [`Value`] is built): the same bytes as [`canonical_json`] of the parsed value.
///
/// # Errors
///
/// [`Error::Json`] (with line and column) for invalid JSON, exactly as `serde_json` reports it
/// when parsing a [`Value`]; [`Error::NotAnObject`] if the top level is not an object.
pub fn canonical_json_from_text(text: impl AsRef<[u8]>) -> Result<String> {
    let text = text.as_ref();
    let mut out = Vec::with_capacity(text.len() / 2);
    write_text(&mut out, text)?;
    Ok(into_string(out))
}

/// Converts sink output to a `String`; the writer only emits UTF-8, so the lossy branch is
/// never taken.
pub(crate) fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Streams the canonical form of `workflow` into SHA-256 and returns the digest.
pub(crate) fn digest(workflow: &Value) -> Result<[u8; 32]> {
    let mut sink = HashSink::new();
    write_workflow(&mut sink, workflow)?;
    Ok(sink.finish())
}

/// Streams the canonical form of the workflow in JSON `text` into SHA-256 and returns the
/// digest.
pub(crate) fn digest_text(text: &[u8]) -> Result<[u8; 32]> {
    let mut sink = HashSink::new();
    write_text(&mut sink, text)?;
    Ok(sink.finish())
}

/// Checks `workflow` strictly: an object of nodes, every node an object, nesting within
/// [`MAX_DEPTH`]. Hashing is more lenient (see [`canonical_json`]).
///
/// # Errors
///
/// [`Error::NotAnObject`], [`Error::NodeNotObject`] or [`Error::TooDeep`].
pub fn validate(workflow: &Value) -> Result<()> {
    let nodes = nodes_of(workflow)?;
    if let Some((id, node)) = nodes.iter().find(|(_, node)| !node.is_object()) {
        return Err(Error::NodeNotObject {
            node: id.clone(),
            found: JsonKind::of(node),
        });
    }
    struct Discard;
    impl Sink for Discard {
        fn put(&mut self, _: &[u8]) {}
    }
    write_workflow(&mut Discard, workflow)
}

/// The node map of a workflow, or [`Error::NotAnObject`].
pub(crate) fn nodes_of(workflow: &Value) -> Result<&Map<String, Value>> {
    workflow.as_object().ok_or(Error::NotAnObject {
        found: JsonKind::of(workflow),
    })
}

fn write_workflow<S: Sink>(sink: &mut S, workflow: &Value) -> Result<()> {
    let nodes = nodes_of(workflow)?;
    // Room for the nodes and one node's members and inputs at a time (it grows for more):
    // a small workflow's scratch stays under a kilobyte, which the allocator serves from
    // its per-thread cache.
    let mut writer = Writer::new(sink, nodes.len() + 16);
    writer.workflow(nodes).map_err(Deep::into_error)
}
