//! [`Error`]: why a command could not do its work.

use std::io;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a command could not do its work. Every variant about a file names it; none carries a
/// server credential (server URLs are shown without their `user:password@` part).
///
/// `Display` says what failed; the cause is the error's
/// [`source`](std::error::Error::source). [`Error::chain`] joins both on one line, the way
/// the binary prints them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read.
    #[error("{file}")]
    Read {
        /// The file, as given (`-` for standard input).
        file: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A file is not JSON, or not an API-format workflow.
    #[error("{file}")]
    Workflow {
        /// The file, as given (`-` for standard input).
        file: String,
        /// What is wrong with it.
        source: comfy_pool::hash::Error,
    },
    /// The pool refused the job of a workflow file.
    #[error("{file}: refused by the pool")]
    Refused {
        /// The file.
        file: String,
        /// The pool's reason.
        source: comfy_pool::Error,
    },
    /// A command-line argument or environment variable is wrong.
    #[error("{0}")]
    Usage(String),
    /// Simulated servers could not start.
    #[error("simulated servers")]
    Sim(#[from] comfy_pool::sim::Error),
    /// The pool refused its configuration, or stopped.
    #[error("pool")]
    Pool(#[from] comfy_pool::Error),
    /// The failover strategy refused its configuration.
    #[error("failover strategy")]
    Strategy(#[from] comfy_pool::failover::Error),
    /// The service's configuration was refused (names the file and key).
    #[error("configuration")]
    Config(#[from] pool_server::ConfigError),
    /// The service could not start or serve.
    #[error("service")]
    Service(#[from] pool_server::ServiceError),
    /// The job store (`--store`) could not be opened, read or written.
    #[error("--store")]
    Store(#[source] pool_store::StoreError),
    /// A job id of the command line is stored with another workflow (the file changed since
    /// the run that stored it, seeds included).
    #[error(
        "{file}: job id {id} is stored with a different workflow (another --store, or rename the file)"
    )]
    JobIdConflict {
        /// The job id.
        id: String,
        /// The workflow file that gives the id now.
        file: String,
    },
    /// No server of the pool came online.
    #[error("no server online ({0})")]
    NoServerOnline(String),
    /// Writing the output, starting the runtime or listening for signals failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] for writing the output.
    pub(crate) fn output(source: io::Error) -> Self {
        Self::Io {
            what: "cannot write the output",
            source,
        }
    }

    /// The error and its causes on one line, separated by `: `.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }

    /// Whether the input is at fault (a file, an argument, a workflow the pool refused)
    /// rather than the environment (servers, ports, the terminal).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Read { .. }
                | Self::Workflow { .. }
                | Self::Refused { .. }
                | Self::Usage(_)
                | Self::Config(_)
                | Self::JobIdConflict { .. }
        )
    }
}
