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

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, JsonKind, Result};
use crate::js::{
    NOT_INDEX, cmp_utf16, is_resource, key_prefix, key_rank, write_integer, write_key,
    write_number, write_string,
};
use crate::sink::{HashSink, Sink};

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
    let mut writer = Writer::new(sink, nodes.len() + 32);
    writer
        .object(nodes, 1, Writer::node)
        .map_err(Deep::into_error)
}

/// One key of an object being written, with a sort word that decides most comparisons alone.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// Ordered like the keys (ties need the strings): an array index is its value (below
    /// `0xFFFF_FFFF`); any other key is its [`key_prefix`], at least `0xFFFF_FFFF`.
    order: u64,
    pub(crate) key: &'a str,
    pub(crate) value: &'a Value,
}

impl<'a> Entry<'a> {
    #[inline]
    fn new(key: &'a str, value: &'a Value) -> Self {
        /// Every prefix below it (keys starting with four NUL bytes, or empty) is raised to it:
        /// still after all indices and before the other keys, tied among themselves.
        const LEAST_NAME: u64 = 0xFFFF_FFFF;
        let rank = key_rank(key);
        let order = if rank == NOT_INDEX {
            key_prefix(key).max(LEAST_NAME)
        } else {
            rank
        };
        Self { order, key, value }
    }

    /// The key's JavaScript enumeration rank ([`key_rank`]).
    pub(crate) fn rank(&self) -> u64 {
        key_rank(self.key)
    }
}

/// Canonical key order of objects the algorithm builds (see the module docs).
#[inline]
pub(crate) fn canonical_order(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
    match a.order.cmp(&b.order) {
        Ordering::Equal => cmp_utf16(a.key, b.key),
        unequal => unequal,
    }
}

/// Canonical order of two keys given with their [`key_rank`].
pub(crate) fn key_order(a: (u64, &str), b: (u64, &str)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| cmp_utf16(a.1, b.1))
}

/// Pushes the keys of `map` that survive canonicalisation onto `out`, and sorts the pushed part
/// into canonical order.
pub(crate) fn push_canonical<'a>(out: &mut Vec<Entry<'a>>, map: &'a Map<String, Value>) {
    let start = out.len();
    out.extend(
        map.iter()
            .filter(|(k, _)| k.as_str() != "__proto__")
            .map(|(k, v)| Entry::new(k, v)),
    );
    if let Some(pushed) = out.get_mut(start..) {
        pushed.sort_unstable_by(canonical_order);
    }
}

/// A container nested too deeply; carries the path while the error unwinds (innermost first),
/// so the happy path never tracks it.
pub(crate) struct Deep {
    // A boxed slice keeps `Result<(), Deep>` two words wide, returned in registers.
    segments: Box<[Segment]>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Deep {
    fn new() -> Self {
        Self {
            segments: Box::default(),
        }
    }

    #[cold]
    fn push(self, segment: Segment) -> Self {
        let mut segments = Vec::from(self.segments);
        segments.push(segment);
        Self {
            segments: segments.into_boxed_slice(),
        }
    }

    fn at_key(self, key: &str) -> Self {
        self.push(Segment::Key(key.to_owned()))
    }

    fn at_index(self, index: usize) -> Self {
        self.push(Segment::Index(index))
    }

    pub(crate) fn into_error(self) -> Error {
        let mut node = String::new();
        let mut pointer = String::new();
        for (i, segment) in self.segments.iter().rev().enumerate() {
            pointer.push('/');
            match segment {
                Segment::Key(key) => {
                    if i == 0 {
                        node.clone_from(key);
                    }
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Index(index) => pointer.push_str(&index.to_string()),
            }
        }
        Error::TooDeep {
            node,
            pointer,
            limit: MAX_DEPTH,
        }
    }
}

/// Writes canonical JSON into a sink, with one scratch vector for key sorting shared by every
/// object of the workflow (no allocation per node).
pub(crate) struct Writer<'a, S> {
    sink: S,
    scratch: Vec<Entry<'a>>,
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

    /// Writes an object the algorithm builds: `__proto__` dropped, keys in canonical order,
    /// each value written by `step` one level deeper.
    fn object(
        &mut self,
        map: &'a Map<String, Value>,
        depth: usize,
        step: impl Fn(&mut Self, &'a Value, usize) -> Result<(), Deep>,
    ) -> Result<(), Deep> {
        if depth > MAX_DEPTH {
            return Err(Deep::new());
        }
        self.sink.put(b"{");
        let start = self.scratch.len();
        push_canonical(&mut self.scratch, map);
        let end = self.scratch.len();
        for i in start..end {
            let Some(&entry) = self.scratch.get(i) else {
                break;
            };
            write_key(&mut self.sink, i == start, entry.key);
            if let Err(deep) = step(self, entry.value, depth + 1) {
                self.scratch.truncate(start);
                return Err(deep.at_key(entry.key));
            }
        }
        self.scratch.truncate(start);
        self.sink.put(b"}");
        Ok(())
    }

    /// Writes one top-level entry (a node, at level 2).
    pub(crate) fn node(&mut self, node: &'a Value, depth: usize) -> Result<(), Deep> {
        let Value::Object(fields) = node else {
            return self.verbatim(node, depth);
        };
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
        self.sink.put(b"{\"class_type\":");
        match class {
            None | Some(Value::Null) => self.sink.put(b"null"),
            Some(class) => self
                .verbatim(class, depth + 1)
                .map_err(|d| d.at_key("class_type"))?,
        }
        self.sink.put(b",\"inputs\":");
        match inputs {
            Some(Value::Object(inputs)) => {
                self.object(inputs, depth + 1, Self::input)
                    .map_err(|d| d.at_key("inputs"))?;
            }
            Some(Value::Array(inputs)) => {
                self.indexed(inputs, depth + 1)
                    .map_err(|d| d.at_key("inputs"))?;
            }
            _ => self.sink.put(b"{}"),
        }
        self.sink.put(b"}");
        Ok(())
    }

    /// Writes an `inputs` array the way `Object.keys` + assignment turn it into an object with
    /// keys `"0"`, `"1"`, … in index order.
    fn indexed(&mut self, inputs: &'a [Value], depth: usize) -> Result<(), Deep> {
        if depth > MAX_DEPTH {
            return Err(Deep::new());
        }
        self.sink.put(b"{");
        for (i, value) in inputs.iter().enumerate() {
            self.sink.put(if i == 0 { b"\"" } else { b",\"" });
            write_integer(&mut self.sink, false, i as u64);
            self.sink.put(b"\":");
            self.input(value, depth + 1).map_err(|d| d.at_index(i))?;
        }
        self.sink.put(b"}");
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
            Value::Object(map) => self.object(map, depth, Self::input),
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
                    // Edges hold scalars: write them here instead of recursing.
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
            let start = self.scratch.len();
            self.scratch.extend(map.iter().map(|(key, value)| Entry {
                order: key_rank(key),
                key,
                value,
            }));
            if let Some(pushed) = self.scratch.get_mut(start..) {
                // Stable: the non-index keys, all tied, keep document order.
                pushed.sort_by_key(|e| e.order);
            }
            let end = self.scratch.len();
            for i in start..end {
                let Some(&entry) = self.scratch.get(i) else {
                    break;
                };
                if let Err(deep) = self.member(i > start, entry.key, entry.value, depth) {
                    self.scratch.truncate(start);
                    return Err(deep);
                }
            }
            self.scratch.truncate(start);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_order_matches_rank_then_utf16_order() {
        let value = Value::Null;
        let keys = [
            "",
            "\0",
            "\0\0\0\0",
            "\0\0\0\0a",
            "\0\0\0\u{1}",
            "0",
            "1",
            "10",
            "2",
            "4294967294",
            "4294967295",
            "01",
            "a",
            "ab",
            "abcdefgh",
            "abcdefghi",
            "abcdefgi",
            "a😀",
            "a\u{ff01}",
            "\u{ffff}",
            "😀",
            "é",
        ];
        for a in keys {
            for b in keys {
                let (ea, eb) = (Entry::new(a, &value), Entry::new(b, &value));
                let expected = key_order((key_rank(a), a), (key_rank(b), b));
                assert_eq!(canonical_order(&ea, &eb), expected, "{a:?} vs {b:?}");
            }
        }
    }
}
