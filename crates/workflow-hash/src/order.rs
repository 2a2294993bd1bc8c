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
        // Keys of a parsed object are distinct.
        sort_canonical(pushed, |_, _| Ordering::Equal);
    }
}

/// Sorts `entries` into canonical order; entries with the same key (found only in text) are
/// ordered by `tie` on their values.
#[inline]
pub(crate) fn sort_canonical<K: AsRef<str> + Clone, V: Clone>(
    entries: &mut [Entry<K, V>],
    tie: impl Fn(&V, &V) -> Ordering,
) {
    // Short slices (nearly all objects of a workflow) get an insertion sort.
    if entries.len() < PLACE_FROM || !place_by_index(entries) {
        entries
            .sort_unstable_by(|a, b| canonical_order(a, b).then_with(|| tie(&a.value, &b.value)));
    }
}

/// The least number of entries worth placing by index rather than sorting.
const PLACE_FROM: usize = 32;

/// Puts `entries` in order when all keys are distinct array indices below a small bound (the
/// node ids of a ComfyUI workflow: "1", "2" … in any order): each goes to its index's place,
/// with no comparisons. Returns `false`, leaving the order alone, when they are not.
fn place_by_index<K: Clone, V: Clone>(entries: &mut [Entry<K, V>]) -> bool {
    /// Marks a free place.
    const FREE: u32 = u32::MAX;
    let count = entries.len();
    let bound = count.saturating_mul(4).saturating_add(64);
    if count >= FREE as usize
        || !entries
            .iter()
            .all(|e| e.order < LEAST_NAME && (e.order as usize) < bound)
    {
        return false;
    }
    let highest = entries.iter().map(|e| e.order as usize).max().unwrap_or(0);
    let mut places = vec![FREE; highest + 1];
    for (i, entry) in entries.iter().enumerate() {
        match places.get_mut(entry.order as usize) {
            Some(place) if *place == FREE => *place = i as u32,
            // A repeated key (text only): leave it to the sort.
            _ => return false,
        }
    }
    let sorted: Vec<Entry<K, V>> = places
        .into_iter()
        .filter_map(|place| entries.get(place as usize).cloned())
        .collect();
    for (entry, sorted) in entries.iter_mut().zip(sorted) {
        *entry = sorted;
    }
    true
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
    fn node_ids_placed_by_index_sort_like_the_reference_order() {
        let value = Value::Null;
        let sorted = |keys: &[String]| {
            let mut entries: Vec<ValueEntry<'_>> = keys
                .iter()
                .map(|k| Entry::new(k.as_str(), &value))
                .collect();
            sort_canonical(&mut entries, |_, _| Ordering::Equal);
            entries.iter().map(|e| e.key.to_owned()).collect::<Vec<_>>()
        };
        let reference = |keys: &[String]| {
            let mut keys = keys.to_vec();
            keys.sort_by(|a, b| key_order((key_rank(a), a), (key_rank(b), b)));
            keys
        };
        for len in [31, 32, 33, 100, 500] {
            // Dense, sparse up to the bound, one id past it, one id that is not an index.
            for (stride, extra) in [(1, None), (4, None), (1, Some("9999999")), (3, Some("x"))] {
                let mut keys: Vec<String> = (0..len)
                    .map(|i| ((i * 7919) % len * stride).to_string())
                    .collect();
                keys.extend(extra.map(str::to_owned));
                assert_eq!(sorted(&keys), reference(&keys), "len {len} stride {stride}");
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
