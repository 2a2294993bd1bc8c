//! Shared by the store tests: records to store, and the conformance checks every store passes.

#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

#[macro_use]
pub mod conformance;
pub mod records;

/// A store under test and what must live as long as it (its directory).
pub struct Fixture<S: ?Sized> {
    /// The store.
    pub store: Arc<S>,
    /// Its temporary directory, if it has one.
    pub dir: Option<tempfile::TempDir>,
}

impl<S> Fixture<S> {
    /// A store that needs nothing else.
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
            dir: None,
        }
    }
}
