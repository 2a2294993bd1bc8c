//! The key order of objects the canonical form builds: array-index keys first (numerically),
//! then the other keys by UTF-16 code units, `__proto__` dropped.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::js::{NOT_INDEX, cmp_utf16, key_prefix, key_rank};

/// One member of an object being written, with a sort word that decides most comparisons
/// alone; `V` is what is written for it (a `&Value`, or the place of its canonical bytes).
#[derive(Clone, Copy)]
pub(crate) struct Entry<K, V> {
    /// Ordered like the keys (ties need the strings): an array index is its value (below
    /// `0xFFFF_FFFF`); any other key is its [`key_prefix`], at least `0xFFFF_FFFF`.
    order: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// The least sort word of a key that is not an array index: every prefix below it (keys
/// starting with four NUL bytes, or empty) is raised to it, still after all indices and before
/// the other keys, tied among themselves.
const LEAST_NAME: u64 = 0xFFFF_FFFF;

/// The entry of a member of a parsed object.
pub(crate) type ValueEntry<'a> = Entry<&'a str, &'a Value>;

impl<K: AsRef<str>, V> Entry<K, V> {
    #[inline(always)]
    pub(crate) fn new(key: K, value: V) -> Self {
        let name = key.as_ref();
        let prefix = key_prefix(name);
        // The prefix's first byte tells whether the key can be an array index at all: only
        // keys starting with a digit pay for the full check.
        let leads_with_digit = (prefix >> 56).wrapping_sub(u64::from(b'0')) < 10;
        let rank = if leads_with_digit {
            key_rank(name)
        } else {
            NOT_INDEX
        };
        let order = if rank == NOT_INDEX {
            prefix.max(LEAST_NAME)
        } else {
            rank
        };
        Self { order, key, value }
    }

    /// The key's JavaScript enumeration rank ([`key_rank`]).
    pub(crate) fn rank(&self) -> u64 {
        key_rank(self.key.as_ref())
    }

    /// Whether the key is an array index (JavaScript lists those first, numerically).
    #[inline]
    pub(crate) fn is_index(&self) -> bool {
        self.order < LEAST_NAME
    }

    /// Whether both entries have the same key.
    #[inline]
    pub(crate) fn same_key(&self, other: &Self) -> bool {
        self.order == other.order && self.key.as_ref() == other.key.as_ref()
    }
}

/// Canonical key order of objects the algorithm builds (see the module docs).
#[inline]
pub(crate) fn canonical_order<K: AsRef<str>, V>(a: &Entry<K, V>, b: &Entry<K, V>) -> Ordering {
    match a.order.cmp(&b.order) {
        Ordering::Equal => cmp_utf16(a.key.as_ref(), b.key.as_ref()),
        unequal => unequal,
    }
}

/// Canonical order of two keys given with their [`key_rank`].
pub(crate) fn key_order(a: (u64, &str), b: (u64, &str)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| cmp_utf16(a.1, b.1))
}

/// Pushes the keys of `map` that survive canonicalisation onto `out`, and sorts the pushed part
/// into canonical order.
#[inline]
pub(crate) fn push_canonical<'a>(out: &mut Vec<ValueEntry<'a>>, map: &'a Map<String, Value>) {
    let start = out.len();
    out.reserve(map.len());
    for (key, value) in map {
        if key != "__proto__" {
            out.push(Entry::new(key.as_str(), value));
        }
    }
    if let Some(pushed) = out.get_mut(start..) {
        // Short slices (nearly all objects of a workflow) get an insertion sort.
        pushed.sort_unstable_by(canonical_order);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 22] = [
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

    #[test]
    fn entry_order_matches_rank_then_utf16_order() {
        let value = Value::Null;
        for a in KEYS {
            for b in KEYS {
                let (ea, eb) = (Entry::new(a, &value), Entry::new(b, &value));
                let expected = key_order((key_rank(a), a), (key_rank(b), b));
                assert_eq!(canonical_order(&ea, &eb), expected, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn short_and_long_objects_sort_like_the_reference_order() {
        let value = Value::Null;
        for len in [0, 1, 2, 7, 20, 21, 60] {
            for rotate in 0..5 {
                let keys: Vec<String> = (0..len)
                    .map(|i| {
                        let base = KEYS[(i * 7 + rotate) % KEYS.len()];
                        format!("{base}{}", i / KEYS.len())
                    })
                    .collect();
                let map: Map<String, Value> =
                    keys.iter().map(|k| (k.clone(), value.clone())).collect();
                let mut entries = Vec::new();
                push_canonical(&mut entries, &map);
                let got: Vec<&str> = entries.iter().map(|e| e.key).collect();
                let mut expected: Vec<&str> = map.keys().map(String::as_str).collect();
                expected.sort_by(|a, b| key_order((key_rank(a), a), (key_rank(b), b)));
                assert_eq!(got, expected, "len {len} rotate {rotate}");
            }
        }
    }
}
