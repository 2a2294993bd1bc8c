//! The conformance checks against `SqliteStore`: a file in a temporary directory and an
//! in-memory database; and what only a file shows (reopening, a newer schema, a killed
//! process).

#[macro_use]
mod support;

use pool_store::SqliteStore;
use support::Fixture;

/// A store in a new file.
async fn file_store() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pool.db")).await.unwrap();
    Fixture {
        store: std::sync::Arc::new(store),
        dir: Some(dir),
    }
}

mod file {
    use super::*;

    job_store_conformance!(file_store().await);
    service_store_conformance!(file_store().await);
}

mod memory {
    use super::*;

    job_store_conformance!(Fixture::new(SqliteStore::open(":memory:").await.unwrap()));
    service_store_conformance!(Fixture::new(SqliteStore::open(":memory:").await.unwrap()));
}
