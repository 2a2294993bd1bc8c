//! [`Writer`]: the one walk that turns a workflow into canonical JSON, streamed into a [`Sink`]
//! (a `Vec<u8>` for [`canonical_json`](crate::canonical_json), SHA-256 for the hash).
//!
//! Speed comes from writing few, fused pieces: a node's id, `class_type` and the opening of its
//! `inputs` take two writes, and an input whose value the hash replaces by a fixed token
//! (`"number"`, `""` …) takes one write for key and value together. Connection edges
//! `["id", slot]` take two.

use serde_json::{Map, Value};

use crate::canonical::MAX_DEPTH;
use crate::deep::Deep;
use crate::js::{
    NOT_INDEX, is_resource, key_rank, write_integer, write_key, write_number, write_string,
    write_wrapped,
};
use crate::order::{ValueEntry, push_canonical};
use crate::sink::Sink;

/// Writes canonical JSON into a sink, with one scratch vector for key sorting shared by every
/// object of the workflow (no allocation per node).
pub(crate) struct Writer<'a, S> {
    sink: S,
    scratch: Vec<ValueEntry<'a>>,
}

/// What comes before an object member's key: an opening quote, after a comma unless first.
#[inline(always)]
fn lead(first: bool) -> &'static [u8] {
    if first { b"\"" } else { b",\"" }
}

impl<'a, S: Sink> Writer<'a, S> {
    pub(crate) fn new(sink: S, capacity: usize) -> Self {
        Self {
            sink,
            scratch: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn into_sink(self) -> S {
        self.sink
    }

    /// Writes the whole workflow: node ids in canonical order, each node at level 2.
    pub(crate) fn workflow(&mut self, nodes: &'a Map<String, Value>) -> Result<(), Deep> {
        self.sink.put(b"{");
        self.members(nodes, 2, Self::node_member)?;
        self.sink.put(b"}");
        Ok(())
    }

    /// Writes the members of an object the algorithm builds (`__proto__` dropped, keys in
    /// canonical order, no braces), each by `member(first, key, value, depth)`.
    #[inline(always)]
    fn members(
        &mut self,
        map: &'a Map<String, Value>,
        depth: usize,
        member: impl Fn(&mut Self, bool, &'a str, &'a Value, usize) -> Result<(), Deep>,
    ) -> Result<(), Deep> {
        let start = self.scratch.len();
        push_canonical(&mut self.scratch, map);
        let end = self.scratch.len();
        for i in start..end {
            let Some(&entry) = self.scratch.get(i) else {
                break;
            };
            if let Err(deep) = member(self, i == start, entry.key, entry.value, depth) {
                self.scratch.truncate(start);
                return Err(deep.at_key(entry.key));
            }
        }
        self.scratch.truncate(start);
        Ok(())
    }

    /// Writes one top-level member `"id":node`.
    fn node_member(
        &mut self,
        first: bool,
        id: &'a str,
        node: &'a Value,
        depth: usize,
    ) -> Result<(), Deep> {
        match node {
            Value::Object(fields) => {
                write_wrapped(&mut self.sink, lead(first), id, b"\":{\"class_type\":");
                self.node_fields(fields, depth)
            }
            _ => {
                write_key(&mut self.sink, first, id);
                self.verbatim(node, depth)
            }
        }
    }

    /// Writes one top-level entry (a node, at level 2).
    pub(crate) fn node(&mut self, node: &'a Value, depth: usize) -> Result<(), Deep> {
        match node {
            Value::Object(fields) => {
                self.sink.put(b"{\"class_type\":");
                self.node_fields(fields, depth)
            }
            _ => self.verbatim(node, depth),
        }
    }

    /// Writes a node object after its opening `{"class_type":`: the class, the inputs and
    /// the closing braces.
    fn node_fields(&mut self, fields: &'a Map<String, Value>, depth: usize) -> Result<(), Deep> {
        if depth > MAX_DEPTH {
            return Err(Deep::new());
        }
        // A node has a handful of keys: a linear scan beats two hash lookups.
        let (mut class, mut inputs) = (None, None);
        for (key, value) in fields {
            match key.as_str() {
                "class_type" => class = Some(value),
                "inputs" => inputs = Some(value),
                _ => {}
            }
        }
        const INPUTS: &[u8] = b",\"inputs\":{";
        match class {
            Some(Value::String(class)) => {
                write_wrapped(&mut self.sink, b"\"", class, b"\",\"inputs\":{");
            }
            None | Some(Value::Null) => self.sink.put(b"null,\"inputs\":{"),
            Some(class) => {
                self.verbatim(class, depth + 1)
                    .map_err(|d| d.at_key("class_type"))?;
                self.sink.put(INPUTS);
            }
        }
        // `inputs` that is neither an object nor an array becomes `{}`.
        let written = match inputs {
            Some(Value::Object(inputs)) => self.input_members(inputs, depth + 1),
            Some(Value::Array(inputs)) => self.indexed_members(inputs, depth + 1),
            _ => Ok(()),
        };
        written.map_err(|d| d.at_key("inputs"))?;
        self.sink.put(b"}}");
        Ok(())
    }

    /// Writes the members of an input object (level `depth`), without braces.
    fn input_members(&mut self, inputs: &'a Map<String, Value>, depth: usize) -> Result<(), Deep> {
        if depth > MAX_DEPTH {
            return Err(Deep::new());
        }
        // Nested objects recurse through the small `nested_input` rather than through
        // `input_member`, whose many inlined writes make a large stack frame in debug builds.
        self.members(
            inputs,
            depth + 1,
            |writer, first, key, value, depth| match value {
                Value::Object(map) => writer.nested_input(first, key, map, depth),
                _ => writer.input_member(first, key, value, depth),
            },
        )
    }

    /// Writes an input member whose value is an object: `"key":{...}`.
    fn nested_input(
        &mut self,
        first: bool,
        key: &'a str,
        map: &'a Map<String, Value>,
        depth: usize,
    ) -> Result<(), Deep> {
        write_wrapped(&mut self.sink, lead(first), key, b"\":{");
        self.input_members(map, depth)?;
        self.sink.put(b"}");
        Ok(())
    }

    /// Writes an `inputs` array the way `Object.keys` + assignment turn it into an object with
    /// keys `"0"`, `"1"`, … in index order (without braces).
    fn indexed_members(&mut self, inputs: &'a [Value], depth: usize) -> Result<(), Deep> {
        if depth > MAX_DEPTH {
            return Err(Deep::new());
        }
        for (i, value) in inputs.iter().enumerate() {
            self.sink.put(lead(i == 0));
            write_integer(&mut self.sink, false, i as u64);
            self.sink.put(b"\":");
            self.input(value, depth + 1).map_err(|d| d.at_index(i))?;
        }
        Ok(())
    }

    /// Writes one input member `"key":value` where `value` is the input's structural
    /// contribution; the common shapes take one or two writes.
    #[inline]
    fn input_member(
        &mut self,
        first: bool,
        key: &'a str,
        value: &'a Value,
        depth: usize,
    ) -> Result<(), Deep> {
        // Key and replacement token in one write.
        let fused: &[u8] = match value {
            Value::Number(_) => b"\":\"number\"",
            Value::String(s) if !is_resource(s) => b"\":\"\"",
            Value::Bool(_) => b"\":\"boolean\"",
            Value::Null => b"\":null",
            Value::Array(items) => {
                // An array at level `MAX_DEPTH + 1` is too deep even when it is an edge.
                if let Some((source, tail)) = edge(items).filter(|_| depth <= MAX_DEPTH) {
                    write_wrapped(&mut self.sink, lead(first), key, b"\":[\"");
                    write_wrapped(&mut self.sink, b"", source, tail);
                    return Ok(());
                }
                write_key(&mut self.sink, first, key);
                return self.verbatim(value, depth);
            }
            Value::String(model) => {
                write_wrapped(&mut self.sink, lead(first), key, b"\":\"");
                write_wrapped(&mut self.sink, b"", model, b"\"");
                return Ok(());
            }
            Value::Object(map) => return self.nested_input(first, key, map, depth),
        };
        write_wrapped(&mut self.sink, lead(first), key, fused);
        Ok(())
    }

    /// Writes the structural contribution of one input value.
    pub(crate) fn input(&mut self, value: &'a Value, depth: usize) -> Result<(), Deep> {
        match value {
            Value::Array(_) => self.verbatim(value, depth),
            Value::String(s) if is_resource(s) => {
                write_string(&mut self.sink, s);
                Ok(())
            }
            Value::String(_) => {
                self.sink.put(b"\"\"");
                Ok(())
            }
            Value::Object(map) => {
                self.sink.put(b"{");
                self.input_members(map, depth)?;
                self.sink.put(b"}");
                Ok(())
            }
            Value::Null => {
                self.sink.put(b"null");
                Ok(())
            }
            Value::Number(_) => {
                self.sink.put(b"\"number\"");
                Ok(())
            }
            Value::Bool(_) => {
                self.sink.put(b"\"boolean\"");
                Ok(())
            }
        }
    }

    /// Writes a scalar `value` as `JSON.stringify` would and returns `true`, or returns `false`
    /// for a container.
    #[inline(always)]
    fn scalar(&mut self, value: &Value) -> bool {
        match value {
            Value::Null => self.sink.put(b"null"),
            Value::Bool(true) => self.sink.put(b"true"),
            Value::Bool(false) => self.sink.put(b"false"),
            Value::Number(n) => write_number(&mut self.sink, n),
            Value::String(s) => write_string(&mut self.sink, s),
            Value::Array(_) | Value::Object(_) => return false,
        }
        true
    }

    /// Writes `value` as `JSON.stringify` would after `JSON.parse`.
    pub(crate) fn verbatim(&mut self, value: &'a Value, depth: usize) -> Result<(), Deep> {
        match value {
            Value::Array(items) => {
                if depth > MAX_DEPTH {
                    return Err(Deep::new());
                }
                self.sink.put(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.sink.put(b",");
                    }
                    // Lists mostly hold scalars: write them here instead of recursing.
                    if !self.scalar(item) {
                        self.verbatim(item, depth + 1).map_err(|d| d.at_index(i))?;
                    }
                }
                self.sink.put(b"]");
            }
            Value::Object(map) => self.verbatim_object(map, depth)?,
            scalar => {
                self.scalar(scalar);
            }
        }
        Ok(())
    }

    /// A parsed object enumerates array-index keys first (numerically), then the rest in
    /// document order; `__proto__` is an ordinary own property here.
    fn verbatim_object(&mut self, map: &'a Map<String, Value>, depth: usize) -> Result<(), Deep> {
        if depth > MAX_DEPTH {
            return Err(Deep::new());
        }
        self.sink.put(b"{");
        if map.keys().all(|k| key_rank(k) == NOT_INDEX) {
            for (i, (key, value)) in map.iter().enumerate() {
                self.member(i > 0, key, value, depth)?;
            }
        } else {
            let mut entries: Vec<(u64, &'a str, &'a Value)> = map
                .iter()
                .map(|(key, value)| (key_rank(key), key.as_str(), value))
                .collect();
            // Stable: the non-index keys, all tied, keep document order.
            entries.sort_by_key(|e| e.0);
            for (i, &(_, key, value)) in entries.iter().enumerate() {
                self.member(i > 0, key, value, depth)?;
            }
        }
        self.sink.put(b"}");
        Ok(())
    }

    fn member(
        &mut self,
        comma: bool,
        key: &'a str,
        value: &'a Value,
        depth: usize,
    ) -> Result<(), Deep> {
        write_key(&mut self.sink, !comma, key);
        self.verbatim(value, depth + 1).map_err(|d| d.at_key(key))
    }
}

/// A connection edge `["source_id", slot]` with a one-digit slot, as the source and the text
/// that follows it (`",0]"` …). Other arrays (longer slots, lists) take the general path.
#[inline(always)]
fn edge(items: &[Value]) -> Option<(&str, &'static [u8; 4])> {
    match items {
        [Value::String(source), Value::Number(slot)] => {
            let tail = EDGE_TAILS.get(usize::try_from(slot.as_u64()?).ok()?)?;
            Some((source, tail))
        }
        _ => None,
    }
}

/// What follows the source id of an edge with slot 0 to 9. A constant, not bytes assembled
/// on the stack: reading those back as one word would stall on store forwarding.
static EDGE_TAILS: [[u8; 4]; 10] = {
    let mut tails = [[0; 4]; 10];
    let mut slot = 0;
    while slot < 10 {
        tails[slot] = [b'"', b',', b'0' + slot as u8, b']'];
        slot += 1;
    }
    tails
};
