//! [`Pieces`]: canonical text written in document order while JSON text is parsed, each object
//! put into its final key order (and rid of duplicate keys) when it closes.
//!
//! Members are written as `"key":value` separated by commas, exactly as they come; an object
//! whose members already stand in their final order, once each, keeps its bytes where they
//! are. Otherwise the members are copied in order behind the object and moved back over it,
//! so the buffer never holds more than the canonical text written so far plus one object.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::js::{NOT_INDEX, write_wrapped};
use crate::order::{Entry, canonical_order};

/// Where a piece of finished canonical text lies in the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A member of an open object: its key and the span of its `"key":value` (no comma).
type Member<'de> = Entry<Cow<'de, str>, Span>;

/// An object being written: where its members start in the buffer and on the member stack.
#[derive(Clone, Copy)]
pub(crate) struct Open {
    region: usize,
    mark: usize,
}

/// The canonical text written so far and the members of the objects still open.
pub(crate) struct Pieces<'de> {
    buf: Vec<u8>,
    members: Vec<Member<'de>>,
}

impl<'de> Pieces<'de> {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            members: Vec::with_capacity(64),
        }
    }

    /// The bytes of `span` (empty if it is not a span of this buffer).
    pub(crate) fn bytes(&self, span: Span) -> &[u8] {
        self.buf.get(span.start..span.end).unwrap_or_default()
    }

    /// The current end of the buffer, where the next piece starts.
    #[inline(always)]
    pub(crate) fn position(&self) -> usize {
        self.buf.len()
    }

    /// The span from `start` to the end of the buffer.
    #[inline(always)]
    pub(crate) fn since(&self, start: usize) -> Span {
        Span {
            start,
            end: self.buf.len(),
        }
    }

    /// The buffer, to write a piece at its end.
    #[inline(always)]
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Starts the members of an object (the caller writes any brace).
    #[inline(always)]
    pub(crate) fn open(&self) -> Open {
        Open {
            region: self.buf.len(),
            mark: self.members.len(),
        }
    }

    /// Writes `"key":`, after a comma unless it is the object's first member, and returns where
    /// the member starts (at its opening quote).
    #[inline(always)]
    pub(crate) fn begin_member(&mut self, open: &Open, key: &str) -> usize {
        if self.buf.len() != open.region {
            self.buf.push(b',');
        }
        let start = self.buf.len();
        write_wrapped(&mut self.buf, b"\"", key, b"\":");
        start
    }

    /// Records the member begun at `start`, whose value has now been written.
    #[inline(always)]
    pub(crate) fn end_member(&mut self, key: Cow<'de, str>, start: usize) {
        let span = self.since(start);
        self.members.push(Entry::new(key, span));
    }

    /// Closes an object the algorithm builds: members in canonical order (array indices first,
    /// then UTF-16 order), the last value of a repeated key. Returns the span of the members
    /// (without braces), which starts where the object's members started.
    pub(crate) fn close_sorted(&mut self, open: Open) -> Span {
        let Self { buf, members } = self;
        let mine = members.get_mut(open.mark..).unwrap_or_default();
        if !in_final_order(mine, open.region, buf.len()) {
            // Ties (repeated keys) keep document order, so the last of a run is the last value.
            mine.sort_unstable_by(|a, b| {
                canonical_order(a, b).then(a.value.start.cmp(&b.value.start))
            });
            let kept = mine
                .iter()
                .zip(mine.iter().skip(1).map(Some).chain([None]))
                .filter(|(member, next)| !next.is_some_and(|next| next.same_key(member)))
                .map(|(member, _)| member.value);
            rewrite(buf, open.region, kept);
        }
        members.truncate(open.mark);
        self.since(open.region)
    }

    /// Closes an object kept verbatim (as `JSON.parse` + `JSON.stringify` print it): array
    /// indices first (numerically), then the other keys in document order; a repeated key
    /// stays where it first appeared, with its last value. The caller writes the braces.
    pub(crate) fn close_verbatim(&mut self, open: Open) {
        let Self { buf, members } = self;
        let mine = members.get(open.mark..).unwrap_or_default();
        if mine.iter().any(Entry::is_index) || has_repeated_key(mine) {
            let kept = verbatim_order(mine);
            rewrite(buf, open.region, kept.into_iter());
        }
        members.truncate(open.mark);
    }
}

/// Whether `members` are in strictly increasing canonical order (so no key repeats) and their
/// bytes, joined by commas, are exactly `region..end`.
fn in_final_order(members: &[Member<'_>], region: usize, end: usize) -> bool {
    let mut next_start = region;
    let mut previous: Option<&Member<'_>> = None;
    for member in members {
        if member.value.start != next_start
            || previous.is_some_and(|p| canonical_order(p, member) != Ordering::Less)
        {
            return false;
        }
        next_start = member.value.end + 1;
        previous = Some(member);
    }
    previous.map_or(region, |p| p.value.end) == end
}

/// Whether two members have the same key.
fn has_repeated_key(members: &[Member<'_>]) -> bool {
    match members.len() {
        0 | 1 => false,
        2..=8 => members
            .iter()
            .enumerate()
            .any(|(i, a)| members.iter().skip(i + 1).any(|b| b.same_key(a))),
        _ => {
            let mut keys: Vec<&str> = members.iter().map(|m| m.key.as_ref()).collect();
            keys.sort_unstable();
            keys.windows(2).any(|pair| pair.first() == pair.last())
        }
    }
}

/// The spans of a verbatim object's members in output order (see [`Pieces::close_verbatim`]).
#[cold]
fn verbatim_order(members: &[Member<'_>]) -> Vec<Span> {
    // Positions grouped by key, each group in document order.
    let mut by_key: Vec<usize> = (0..members.len()).collect();
    let key = |i: usize| members.get(i).map_or("", |m| m.key.as_ref());
    by_key.sort_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
    // (rank, first position, span of the last value) per key.
    let mut kept: Vec<(u64, usize, Span)> = by_key
        .chunk_by(|&a, &b| key(a) == key(b))
        .filter_map(|group| {
            let first = members.get(*group.first()?)?;
            let last = members.get(*group.last()?)?;
            let rank = if first.is_index() {
                first.rank()
            } else {
                NOT_INDEX
            };
            Some((rank, *group.first()?, last.value))
        })
        .collect();
    kept.sort_unstable_by_key(|&(rank, position, _)| (rank, position));
    kept.into_iter().map(|(_, _, span)| span).collect()
}

/// Replaces the bytes from `region` to the end of `buf` by the `spans` (all within that
/// region) joined by commas.
fn rewrite(buf: &mut Vec<u8>, region: usize, spans: impl Iterator<Item = Span>) {
    let out = buf.len();
    for (i, span) in spans.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Always true: members lie between `region` and `out`.
        if span.start <= span.end && span.end <= out {
            buf.extend_from_within(span.start..span.end);
        }
    }
    let len = buf.len() - out;
    buf.copy_within(out.., region);
    buf.truncate(region + len);
}
