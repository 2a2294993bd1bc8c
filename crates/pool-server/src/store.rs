//! Opening the service's store from its URL.

use std::sync::Arc;

use pool_store::ServiceStore;

use crate::MemoryServiceStore;

/// Why a store could not be opened. Never quotes the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreOpenError {
    /// The URL's scheme is not one the service knows.
    #[error("unknown store kind (use sqlite:PATH, postgres://… or memory:)")]
    Unknown,
    /// The store kind is not built into this version.
    #[error(
        "{kind} stores are not available in this build: pool-store does not provide them yet \
         (use store = \"memory:\" meanwhile)"
    )]
    Unavailable {
        /// `SQLite` or `PostgreSQL`.
        kind: &'static str,
    },
    /// The store refused to open.
    #[error(transparent)]
    Store(#[from] pool_store::StoreError),
}

/// Opens the store named by `url`: `memory:` (nothing kept), `sqlite:PATH` or
/// `postgres://…`.
///
/// # Errors
///
/// [`StoreOpenError`].
pub async fn open_store(url: &str) -> Result<Arc<dyn ServiceStore>, StoreOpenError> {
    if url == "memory:" || url.starts_with("memory:") {
        return Ok(Arc::new(MemoryServiceStore::default()));
    }
    if url.starts_with("sqlite:") {
        return Err(StoreOpenError::Unavailable { kind: "SQLite" });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreOpenError::Unavailable { kind: "PostgreSQL" });
    }
    Err(StoreOpenError::Unknown)
}
