//! [`ServerId`]: the cheap-clone name of one ComfyUI server in a pool.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The identifier of one server in a pool, e.g. `"gpu-1"`.
///
/// Cloning is cheap (an `Arc<str>` inside). It hashes, compares and orders exactly like the
/// string it holds, so maps keyed by `ServerId` can be looked up by `&str` without allocating.
/// It serializes as a plain string.
///
/// ```
/// use pool_failover::ServerId;
///
/// let id = ServerId::from("gpu-1");
/// assert_eq!(id.as_str(), "gpu-1");
/// assert_eq!(id.to_string(), "gpu-1");
/// assert_eq!(id, ServerId::from(String::from("gpu-1")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(Arc<str>);

impl ServerId {
    /// Creates an identifier from anything string-like.
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for ServerId {
    fn from(id: &str) -> Self {
        Self(Arc::from(id))
    }
}

impl From<String> for ServerId {
    fn from(id: String) -> Self {
        Self(Arc::from(id))
    }
}

impl From<Arc<str>> for ServerId {
    fn from(id: Arc<str>) -> Self {
        Self(id)
    }
}

impl From<&ServerId> for ServerId {
    fn from(id: &ServerId) -> Self {
        id.clone()
    }
}

impl AsRef<str> for ServerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ServerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ServerId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ServerId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl serde::Serialize for ServerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ServerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}
