//! The crate's [`Error`] type.

use std::fmt;

use workflow_hash::WorkflowHash;

use crate::ServerBlock;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid failover configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field of [`SmartConfig`](crate::SmartConfig).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The workflow is blocked on every candidate server and the policy is to fail fast.
    #[error(
        "workflow {hash} is blocked on every candidate server: {}",
        BlockList(servers)
    )]
    AllServersBlocked {
        /// The workflow's structural hash.
        hash: WorkflowHash,
        /// Why, per server, and until when.
        servers: Vec<ServerBlock>,
    },
    /// The workflow had no candidate server to choose from.
    #[error("workflow {hash} has no candidate server")]
    NoCandidates {
        /// The workflow's structural hash.
        hash: WorkflowHash,
    },
}

impl Error {
    /// Whether this is a configuration error.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::InvalidConfig { .. })
    }

    /// Whether the workflow could not be placed because every candidate is blocked.
    pub fn is_all_blocked(&self) -> bool {
        matches!(self, Self::AllServersBlocked { .. })
    }

    /// Per-server reasons when every candidate is blocked; empty otherwise.
    pub fn blocked_servers(&self) -> &[ServerBlock] {
        match self {
            Self::AllServersBlocked { servers, .. } => servers,
            _ => &[],
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

struct BlockList<'a>(&'a [ServerBlock]);

impl fmt::Display for BlockList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, block) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{block}")?;
        }
        Ok(())
    }
}
