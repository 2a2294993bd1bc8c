//! Opening the service's store from its URL.

use std::sync::Arc;

use pool_store::ServiceStore;

use crate::MemoryServiceStore;

/// Why a store could not be opened. Never quotes the URL's password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreOpenError {
    /// The store refused to open (an unknown kind of URL included).
    #[error(transparent)]
    Store(#[from] pool_store::StoreError),
}

/// Opens the store named by `url`: `memory:` (this process's memory, nothing kept),
/// `sqlite:PATH` (created if missing), `sqlite::memory:` or `postgres://…` (`pool-store`).
///
/// # Errors
///
/// [`StoreOpenError`].
pub async fn open_store(url: &str) -> Result<Arc<dyn ServiceStore>, StoreOpenError> {
    if url == "memory:" {
        return Ok(Arc::new(MemoryServiceStore::default()));
    }
    Ok(pool_store::open(url).await?)
}
