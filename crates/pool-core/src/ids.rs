//! [`JobId`]: the name of one job.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The identifier of one job: the caller's (see
/// [`JobOptions::job_id`](crate::JobOptions::job_id)) or a fresh UUID chosen by the pool.
///
/// Cheap to clone (an `Arc<str>` inside); compares and hashes like its string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Arc<str>);

impl JobId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(Arc::from(uuid::Uuid::new_v4().simple().to_string()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        Self(Arc::from(id))
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        Self(Arc::from(id))
    }
}

impl From<&JobId> for JobId {
    fn from(id: &JobId) -> Self {
        id.clone()
    }
}

impl Borrow<str> for JobId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self(Arc::from(id.as_ref())))
    }
}

/// The pool's internal number of an accepted job: increasing in order of acceptance, so it
/// doubles as the FIFO position inside a [`JobQueue`](crate::JobQueue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey(pub u64);
