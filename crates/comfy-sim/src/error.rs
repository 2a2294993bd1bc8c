//! The crate's error type.

use std::net::SocketAddr;

/// What can go wrong when starting, restarting or configuring a simulated server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The node catalog given to the configuration is not a JSON object of node definitions.
    #[error("invalid node catalog: {0}")]
    Catalog(String),
    /// The server was asked to restart while it is already listening.
    #[error("the server is already running")]
    AlreadyRunning,
}

impl Error {
    /// True when the error comes from binding the listening socket (port taken, no permission).
    pub fn is_bind(&self) -> bool {
        matches!(self, Self::Bind { .. })
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
