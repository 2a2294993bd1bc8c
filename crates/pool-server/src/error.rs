//! [`ServiceError`]: why the service could not start or serve.

use crate::ConfigError;
use crate::store::StoreOpenError;

/// Why the service could not start or serve. Carries no credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The configuration was refused.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreOpenError),
    /// The pool refused its configuration.
    #[error("pool: {0}")]
    Pool(#[from] pool_core::Error),
    /// The failover strategy refused its settings.
    #[error("strategy: {0}")]
    Strategy(#[from] pool_failover::Error),
    /// Listening or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
}
