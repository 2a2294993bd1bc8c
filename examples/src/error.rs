//! [`DemoError`]: why a demo stopped.

/// `Result` with [`DemoError`] as the default error type.
pub type Result<T, E = DemoError> = std::result::Result<T, E>;

/// Why a demo or example program stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A command-line argument or environment variable is wrong.
    #[error("bad argument: {0}")]
    Usage(String),
    /// A `comfy-pool` command (the host list, or `batch`, which is `comfy-pool run`) failed.
    #[error(transparent)]
    Cli(#[from] comfy_pool_cli::Error),
    /// A simulated server could not start.
    #[error("simulated server")]
    Sim(#[from] comfy_sim::Error),
    /// The pool refused a workflow or its configuration.
    #[error("pool")]
    Pool(#[from] comfy_pool::Error),
    /// The failover strategy refused its configuration.
    #[error("failover strategy")]
    Strategy(#[from] comfy_pool::failover::Error),
    /// A workflow could not be hashed.
    #[error("workflow hash")]
    Hash(#[from] comfy_pool::hash::Error),
    /// A workflow file could not be read or parsed.
    #[error("workflow file {path}")]
    WorkflowFile {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Something the demo waited for did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Some of the demo's checks failed.
    #[error("{failed} of {total} checks failed")]
    ChecksFailed {
        /// Checks that failed.
        failed: usize,
        /// Checks made.
        total: usize,
    },
}

impl DemoError {
    /// Whether the demo ran but some of its claims did not hold.
    pub fn is_check_failure(&self) -> bool {
        matches!(self, Self::ChecksFailed { .. })
    }
}

/// Prints an error with its causes, one per line, the way the example mains report failures.
pub fn report(error: &DemoError) -> String {
    let mut text = format!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}
