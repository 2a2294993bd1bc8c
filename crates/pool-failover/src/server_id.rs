//! [`ServerId`]: the cheap-clone name of one ComfyUI server in a pool.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHasher;

/// The identifier of one server in a pool, e.g. `"gpu-1"`.
///
/// Cloning is cheap (an `Arc<str>` inside). It hashes, compares and orders exactly like the
/// string it holds, so maps keyed by `ServerId` can be looked up by `&str` without allocating.
/// It serializes as a plain string. A 64-bit digest of the name is computed once when the id
/// is created, so strategies can index by server without rehashing the name on every check.
///
/// ```
/// use pool_failover::ServerId;
///
/// let id = ServerId::from("gpu-1");
/// assert_eq!(id.as_str(), "gpu-1");
/// assert_eq!(id.to_string(), "gpu-1");
/// assert_eq!(id, ServerId::from(String::from("gpu-1")));
/// ```
#[derive(Clone)]
pub struct ServerId {
    name: Arc<str>,
    /// Digest of `name`, fixed for the life of the process (not part of the public identity).
    key: u64,
}

impl ServerId {
    /// Creates an identifier from anything string-like.
    pub fn new(id: impl AsRef<str>) -> Self {
        Self::from(id.as_ref())
    }

    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// A 64-bit digest of the name, for internal hash tables (equal names, equal keys).
    #[inline]
    pub(crate) fn key(&self) -> u64 {
        self.key
    }
}

impl PartialEq for ServerId {
    /// Equal names: different digests rule equality out, clones of one id share their name,
    /// and only ids built separately compare bytes.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && (Arc::ptr_eq(&self.name, &other.name) || self.same_name(other))
    }
}

impl ServerId {
    /// Byte comparison, kept out of line so the common pointer-equal case stays small.
    #[cold]
    #[inline(never)]
    fn same_name(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ServerId {}

impl Hash for ServerId {
    /// Hashes exactly like the name, so `&str` lookups in maps keyed by `ServerId` work.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl PartialOrd for ServerId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServerId {
    /// Orders by name.
    fn cmp(&self, other: &Self) -> Ordering {
        self.name.cmp(&other.name)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.name, f)
    }
}

impl From<&str> for ServerId {
    fn from(id: &str) -> Self {
        Self::from(Arc::<str>::from(id))
    }
}

impl From<String> for ServerId {
    fn from(id: String) -> Self {
        Self::from(Arc::<str>::from(id))
    }
}

impl From<Arc<str>> for ServerId {
    fn from(name: Arc<str>) -> Self {
        let mut hasher = FxHasher::default();
        hasher.write(name.as_bytes());
        Self {
            key: hasher.finish(),
            name,
        }
    }
}

impl From<&ServerId> for ServerId {
    fn from(id: &ServerId) -> Self {
        id.clone()
    }
}

impl AsRef<str> for ServerId {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl Borrow<str> for ServerId {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl PartialEq<str> for ServerId {
    fn eq(&self, other: &str) -> bool {
        &*self.name == other
    }
}

impl PartialEq<&str> for ServerId {
    fn eq(&self, other: &&str) -> bool {
        &*self.name == *other
    }
}

impl serde::Serialize for ServerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for ServerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    #[test]
    fn ids_with_equal_names_are_one_id_however_built() {
        let a = ServerId::from("gpu-1");
        let b = ServerId::new(String::from("gpu-1"));
        assert!(!Arc::ptr_eq(&a.name, &b.name));
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        assert_ne!(a, ServerId::from("gpu-2"));
        assert_ne!(a, ServerId::from("gpu-10"));
    }

    #[test]
    fn maps_keyed_by_id_are_found_by_str() {
        let map: HashMap<ServerId, u32> = [(ServerId::from("gpu-1"), 1)].into();
        assert_eq!(map.get("gpu-1"), Some(&1));
        assert_eq!(map.get(&ServerId::new("gpu-1")), Some(&1));
        assert_eq!(map.get("gpu-2"), None);
    }

    #[test]
    fn ids_order_by_name() {
        let set: BTreeSet<ServerId> = ["b", "a", "c"].into_iter().map(ServerId::from).collect();
        let names: Vec<&str> = set.iter().map(ServerId::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn serializes_as_a_plain_string() {
        let id = ServerId::from("gpu-1");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""gpu-1""#);
        let back: ServerId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert_eq!(back.key(), id.key());
    }
}
