//! The string arena of a [`Capabilities`](crate::Capabilities): every class, input and file
//! name stored once in one `String`, named by a 4-byte [`Sym`], found by a hashed index that
//! holds only symbols.

use std::hash::Hasher;

use hashbrown::HashTable;
use rustc_hash::FxHasher;

use crate::error::{Error, Result};

/// Longest class, input or choice name kept, in bytes (a hostile server cannot make one name
/// cost more; real names are far shorter, file paths included).
pub const MAX_NAME_BYTES: usize = 4096;

/// An interned name: an index into the arena's spans.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct Sym(u32);

impl Sym {
    /// The symbol's index, for packing into wider keys.
    pub(crate) fn index(self) -> u32 {
        self.0
    }

    /// The symbol at `index` (unpacking a wider key; an index no name has resolves to `""`).
    pub(crate) fn from_index(index: u32) -> Self {
        Self(index)
    }
}

/// Where a name lies in the arena text.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    end: u32,
}

/// Names stored once; see the module docs.
#[derive(Clone, Default)]
pub(crate) struct Interner {
    text: String,
    spans: Vec<Span>,
    index: HashTable<Sym>,
}

/// The hash of a name, for the index and for the content fingerprint.
#[inline]
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(s.as_bytes());
    h.finish()
}

/// The text of `sym` in an arena given by its parts (so the index can be borrowed apart).
#[inline]
fn text_of<'a>(text: &'a str, spans: &[Span], sym: Sym) -> &'a str {
    spans
        .get(sym.0 as usize)
        .and_then(|s| text.get(s.start as usize..s.end as usize))
        .unwrap_or_default()
}

impl Interner {
    /// The symbol of `name`, adding it if new.
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] beyond [`MAX_NAME_BYTES`] (`what` names the kind of name),
    /// [`Error::TooLarge`] when the arena would pass 4 GiB.
    pub(crate) fn intern(&mut self, name: &str, what: &'static str) -> Result<Sym> {
        if name.len() > MAX_NAME_BYTES {
            return Err(Error::NameTooLong {
                what,
                len: name.len(),
                limit: MAX_NAME_BYTES,
            });
        }
        let hash = hash_str(name);
        let (text, spans) = (&self.text, &self.spans);
        let entry = self.index.entry(
            hash,
            |&sym| text_of(text, spans, sym) == name,
            |&sym| hash_str(text_of(text, spans, sym)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => Ok(*found.get()),
            hashbrown::hash_table::Entry::Vacant(place) => {
                let start = u32::try_from(self.text.len()).map_err(|_| Error::TooLarge)?;
                let end =
                    u32::try_from(self.text.len() + name.len()).map_err(|_| Error::TooLarge)?;
                let sym = Sym(u32::try_from(self.spans.len()).map_err(|_| Error::TooLarge)?);
                self.text.push_str(name);
                self.spans.push(Span { start, end });
                place.insert(sym);
                Ok(sym)
            }
        }
    }

    /// The symbol of `name`, if it was ever interned.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<Sym> {
        let (text, spans) = (&self.text, &self.spans);
        self.index
            .find(hash_str(name), |&sym| text_of(text, spans, sym) == name)
            .copied()
    }

    /// The text of `sym` (empty for a symbol of another interner).
    #[inline]
    pub(crate) fn resolve(&self, sym: Sym) -> &str {
        text_of(&self.text, &self.spans, sym)
    }

    /// How many names are interned.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Every symbol, in interning order.
    pub(crate) fn symbols(&self) -> impl ExactSizeIterator<Item = Sym> + use<> {
        (0..u32::try_from(self.spans.len()).unwrap_or(u32::MAX)).map(Sym)
    }

    /// Heap bytes held.
    pub(crate) fn heap_size(&self) -> usize {
        self.text.capacity()
            + self.spans.capacity() * std::mem::size_of::<Span>()
            + self.index.allocation_size()
    }

    /// Releases spare capacity (after a bulk parse).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.spans.shrink_to_fit();
        let (text, spans) = (&self.text, &self.spans);
        self.index
            .shrink_to_fit(|&sym| hash_str(text_of(text, spans, sym)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_once_and_resolve_back() -> Result<()> {
        let mut names = Interner::default();
        let a = names.intern("CheckpointLoaderSimple", "node class")?;
        let b = names.intern("ckpt_name", "input")?;
        assert_eq!(names.intern("CheckpointLoaderSimple", "node class")?, a);
        assert_ne!(a, b);
        assert_eq!(names.resolve(a), "CheckpointLoaderSimple");
        assert_eq!(names.resolve(b), "ckpt_name");
        assert_eq!(names.get("ckpt_name"), Some(b));
        assert_eq!(names.get("lora_name"), None);
        assert_eq!(names.len(), 2);
        assert_eq!(names.resolve(Sym(99)), "");
        Ok(())
    }

    #[test]
    fn an_overlong_name_is_a_typed_error() {
        let mut names = Interner::default();
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            names.intern(&long, "choice"),
            Err(Error::NameTooLong { what: "choice", len, .. }) if len == MAX_NAME_BYTES + 1
        ));
        assert!(names.intern(&long[1..], "choice").is_ok());
    }
}
