//! The canonical form straight from JSON text: serde visitors write it into [`Pieces`] while
//! serde_json parses, without building a [`Value`](serde_json::Value); keys without escapes
//! are borrowed from the text.
//!
//! serde_json is driven exactly as when it builds a `Value` (`deserialize_any` for every value,
//! `deserialize_str` for keys), so the grammar, the number and string checks and the recursion
//! limit are its own: invalid text fails with the same error, at the same line and column, as
//! parsing it into a `Value` does. Values the hash ignores are parsed all the same.
//!
//! The rules are those of [`canonical`](crate::canonical); a repeated key counts with its last
//! value (and, in objects kept verbatim, at its first place), as after `JSON.parse`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as DeError, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, JsonKind, Result};
use crate::js::{
    is_resource, write_f64, write_i64, write_integer, write_string, write_u64, write_wrapped,
};
use crate::order::{Entry, sort_canonical};
use crate::pieces::{Pieces, Span};
use crate::sink::Sink;

/// Parses `text` and streams its canonical form into `sink`.
pub(crate) fn write_text<S: Sink>(sink: &mut S, text: &[u8]) -> Result<()> {
    let mut pieces = Pieces::with_capacity(text.len());
    let mut de = serde_json::Deserializer::from_slice(text);
    let room = (text.len() / NODE_BYTES).min(MAX_ROOM);
    let nodes = Drive(Workflow(&mut pieces, room))
        .deserialize(&mut de)
        .map_err(Error::Json)?;
    de.end().map_err(Error::Json)?;
    let mut nodes = nodes.map_err(|found| Error::NotAnObject { found })?;
    emit(sink, &pieces, &mut nodes);
    Ok(())
}

/// A node as written: its class and inputs, or the whole entry when it is not an object.
#[derive(Clone, Copy)]
enum Node {
    Fields {
        /// The `class_type` value, verbatim (`None`: absent).
        class: Option<Span>,
        /// The members of `inputs`, canonical, without braces.
        inputs: Span,
    },
    Verbatim(Span),
}

/// A top-level member: the node id, with its place in the document and the node.
type NodeEntry<'de> = Entry<Cow<'de, str>, (usize, Node)>;

/// Writes the workflow object: ids in canonical order, the last of a repeated id, no
/// `__proto__`.
fn emit<S: Sink>(sink: &mut S, pieces: &Pieces<'_>, nodes: &mut [NodeEntry<'_>]) {
    // A repeated id keeps document order, so the last of a run is the one that counts.
    sort_canonical(nodes, |a, b| a.0.cmp(&b.0));
    sink.put(b"{");
    let mut first = true;
    let mut rest = nodes.iter().peekable();
    while let Some(entry) = rest.next() {
        let id: &str = entry.key.as_ref();
        if rest.peek().is_some_and(|next| next.same_key(entry)) || id == "__proto__" {
            continue;
        }
        let lead: &[u8] = if first { b"\"" } else { b",\"" };
        first = false;
        match &entry.value.1 {
            Node::Fields { class, inputs } => {
                write_wrapped(sink, lead, id, b"\":{\"class_type\":");
                match class {
                    Some(class) => sink.put(pieces.bytes(*class)),
                    None => sink.put(b"null"),
                }
                sink.put3(b",\"inputs\":{", pieces.bytes(*inputs), b"}}");
            }
            Node::Verbatim(span) => {
                write_wrapped(sink, lead, id, b"\":");
                sink.put(pieces.bytes(*span));
            }
        }
    }
    sink.put(b"}");
}

/// A JSON scalar as serde_json reports it.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(&'a str),
}

impl Scalar<'_> {
    fn kind(self) -> JsonKind {
        match self {
            Self::Null => JsonKind::Null,
            Self::Bool(_) => JsonKind::Boolean,
            Self::U64(_) | Self::I64(_) | Self::F64(_) => JsonKind::Number,
            Self::Str(_) => JsonKind::String,
        }
    }

    /// Writes the scalar as `JSON.stringify` prints it after `JSON.parse`.
    #[inline]
    fn write_verbatim(self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.put(b"null"),
            Self::Bool(true) => out.put(b"true"),
            Self::Bool(false) => out.put(b"false"),
            Self::U64(u) => write_u64(out, u),
            Self::I64(i) => write_i64(out, i),
            Self::F64(f) => write_f64(out, f),
            Self::Str(s) => write_string(out, s),
        }
    }
}

/// What one place of the workflow makes of each kind of value.
trait Place<'de>: Sized {
    type Out;

    fn scalar(self, scalar: Scalar<'_>) -> Self::Out;

    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Out, A::Error>;

    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error>;
}

/// Parses one value (with `deserialize_any`, as for a `Value`) and hands it to a [`Place`].
struct Drive<P>(P);

impl<'de, P: Place<'de>> DeserializeSeed<'de> for Drive<P> {
    type Value = P::Out;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, P: Place<'de>> Visitor<'de> for Drive<P> {
    type Value = P::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    #[inline]
    fn visit_unit<E: DeError>(self) -> Result<Self::Value, E> {
        Ok(self.0.scalar(Scalar::Null))
    }

    #[inline]
    fn visit_bool<E: DeError>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.0.scalar(Scalar::Bool(v)))
    }

    #[inline]
    fn visit_u64<E: DeError>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.0.scalar(Scalar::U64(v)))
    }

    #[inline]
    fn visit_i64<E: DeError>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.0.scalar(Scalar::I64(v)))
    }

    #[inline]
    fn visit_f64<E: DeError>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.0.scalar(Scalar::F64(v)))
    }

    #[inline]
    fn visit_str<E: DeError>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.scalar(Scalar::Str(v)))
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.seq(seq)
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.map(map)
    }
}

/// An object key, borrowed from the text unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    #[inline]
    fn visit_borrowed_str<E: DeError>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: DeError>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A key of a node object, classified without keeping it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    ClassType,
    Inputs,
    Other,
}

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Self;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl Visitor<'_> for Field {
    type Value = Self;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    #[inline]
    fn visit_str<E: DeError>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match v {
            "class_type" => Self::ClassType,
            "inputs" => Self::Inputs,
            _ => Self::Other,
        })
    }
}

/// Fewer bytes of text than a node takes, so the node list is sized from the text ...
const NODE_BYTES: usize = 96;

/// ... up to this many nodes (a huge text may be one huge prompt); beyond, the list grows.
const MAX_ROOM: usize = 1024;

/// The top level: the node entries, or the kind of a value that is not an object; with room
/// for that many nodes.
struct Workflow<'p, 'de>(&'p mut Pieces<'de>, usize);

impl<'de> Place<'de> for Workflow<'_, 'de> {
    type Out = Result<Vec<NodeEntry<'de>>, JsonKind>;

    fn scalar(self, scalar: Scalar<'_>) -> Self::Out {
        Err(scalar.kind())
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element_seed(Drive(Discard))?.is_some() {}
        Ok(Err(JsonKind::Array))
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let pieces = self.0;
        let mut nodes = Vec::with_capacity(self.1);
        while let Some(id) = map.next_key_seed(Key)? {
            let node = map.next_value_seed(Drive(NodeValue(&mut *pieces)))?;
            let position = nodes.len();
            nodes.push(Entry::new(id, (position, node)));
        }
        Ok(Ok(nodes))
    }
}

/// A top-level entry: a node object, or anything else kept verbatim.
struct NodeValue<'p, 'de>(&'p mut Pieces<'de>);

impl<'de> Place<'de> for NodeValue<'_, 'de> {
    type Out = Node;

    fn scalar(self, scalar: Scalar<'_>) -> Node {
        let start = self.0.position();
        scalar.write_verbatim(self.0.out());
        Node::Verbatim(self.0.since(start))
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
        let start = self.0.position();
        Verbatim(&mut *self.0).seq(seq)?;
        Ok(Node::Verbatim(self.0.since(start)))
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let pieces = self.0;
        let (mut class, mut inputs) = (None, Span::default());
        while let Some(field) = map.next_key_seed(Field::Other)? {
            match field {
                Field::ClassType => {
                    let start = pieces.position();
                    map.next_value_seed(Drive(Verbatim(&mut *pieces)))?;
                    class = Some(pieces.since(start));
                }
                Field::Inputs => inputs = map.next_value_seed(Drive(Inputs(&mut *pieces)))?,
                Field::Other => map.next_value_seed(Drive(Discard))?,
            }
        }
        Ok(Node::Fields { class, inputs })
    }
}

/// A node's `inputs`: an object's members in canonical order, an array's as members `"0"`,
/// `"1"` …, nothing for anything else. Yields the span of the members, without braces.
struct Inputs<'p, 'de>(&'p mut Pieces<'de>);

impl<'de> Place<'de> for Inputs<'_, 'de> {
    type Out = Span;

    fn scalar(self, _: Scalar<'_>) -> Span {
        Span::default()
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Span, A::Error> {
        let pieces = self.0;
        let start = pieces.position();
        for index in 0u64.. {
            let mark = pieces.position();
            let out = pieces.out();
            out.put(if index == 0 { b"\"" } else { b",\"" });
            write_integer(out, false, index);
            out.put(b"\":");
            if seq.next_element_seed(Drive(Input(&mut *pieces)))?.is_none() {
                pieces.out().truncate(mark);
                break;
            }
        }
        Ok(pieces.since(start))
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Span, A::Error> {
        let pieces = self.0;
        let open = pieces.open();
        while let Some(key) = map.next_key_seed(Key)? {
            let start = pieces.begin_member(&open, &key);
            map.next_value_seed(Drive(Input(&mut *pieces)))?;
            // Assigning `__proto__` sets the prototype, not a member.
            if key != "__proto__" {
                pieces.end_member(key, start);
            }
        }
        Ok(pieces.close_sorted(open))
    }
}

/// An input's value: a type token for volatile scalars, model files kept, arrays verbatim,
/// objects canonical.
struct Input<'p, 'de>(&'p mut Pieces<'de>);

impl<'de> Place<'de> for Input<'_, 'de> {
    type Out = ();

    #[inline]
    fn scalar(self, scalar: Scalar<'_>) {
        let out = self.0.out();
        match scalar {
            Scalar::Null => out.put(b"null"),
            Scalar::Bool(_) => out.put(b"\"boolean\""),
            Scalar::U64(_) | Scalar::I64(_) | Scalar::F64(_) => out.put(b"\"number\""),
            Scalar::Str(s) if is_resource(s) => write_string(out, s),
            Scalar::Str(_) => out.put(b"\"\""),
        }
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Verbatim(self.0).seq(seq)
    }

    fn map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.out().put(b"{");
        Inputs(&mut *self.0).map(map)?;
        self.0.out().put(b"}");
        Ok(())
    }
}

/// A value kept as `JSON.stringify` prints it after `JSON.parse`.
struct Verbatim<'p, 'de>(&'p mut Pieces<'de>);

impl<'de> Place<'de> for Verbatim<'_, 'de> {
    type Out = ();

    #[inline]
    fn scalar(self, scalar: Scalar<'_>) {
        scalar.write_verbatim(self.0.out());
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let pieces = self.0;
        pieces.out().put(b"[");
        let start = pieces.position();
        loop {
            let mark = pieces.position();
            if mark != start {
                pieces.out().put(b",");
            }
            if seq
                .next_element_seed(Drive(Verbatim(&mut *pieces)))?
                .is_none()
            {
                pieces.out().truncate(mark);
                break;
            }
        }
        pieces.out().put(b"]");
        Ok(())
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let pieces = self.0;
        pieces.out().put(b"{");
        let open = pieces.open();
        while let Some(key) = map.next_key_seed(Key)? {
            let start = pieces.begin_member(&open, &key);
            map.next_value_seed(Drive(Verbatim(&mut *pieces)))?;
            pieces.end_member(key, start);
        }
        pieces.close_verbatim(open);
        pieces.out().put(b"}");
        Ok(())
    }
}

/// A value the hash ignores (`_meta` and the like): parsed and checked, nothing written.
struct Discard;

impl<'de> Place<'de> for Discard {
    type Out = ();

    #[inline]
    fn scalar(self, _: Scalar<'_>) {}

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Drive(Discard))?.is_some() {}
        Ok(())
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Field::Other)?.is_some() {
            map.next_value_seed(Drive(Discard))?;
        }
        Ok(())
    }
}
