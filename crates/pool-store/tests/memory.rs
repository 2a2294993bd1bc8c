//! The conformance checks against pool-core's `MemoryStore`, the reference behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use pool_core::MemoryStore;
use support::Fixture;

job_store_conformance!(Fixture::new(MemoryStore::default()));
