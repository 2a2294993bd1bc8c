//! [`JobStore`]: where accepted jobs live beyond one process — their records, the blobs they
//! refer to, and the failover state of each (server, workflow) pair. The engine persists
//! every transition of a job through it, so that a restarted pool (or another process on the
//! same store) knows every unfinished job and which prompt to ask each server about.
//!
//! Without a store the pool keeps everything in memory (the library's default).
//! `pool-store` implements it on SQLite and PostgreSQL.

use async_trait::async_trait;
use bytes::Bytes;
use pool_failover::{FailureClass, ServerId};
use serde::{Deserialize, Serialize};
use workflow_hash::WorkflowHash;

use crate::{Blob, JobRecord, JobState, Timestamp, Transition};

/// A store's failure. Carries no credential (connection strings are never quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, or a statement failed.
    #[error("job store unavailable: {0}")]
    Unavailable(String),
    /// The stored record changed meanwhile (its version is not the one the change follows):
    /// another process changed the job.
    #[error("job {id} changed meanwhile (stored version {stored}, expected {expected})")]
    Conflict {
        /// The job.
        id: String,
        /// The version in the store.
        stored: u64,
        /// The version the change was made on.
        expected: u64,
    },
    /// The job is not in the store.
    #[error("job {0} is not in the store")]
    NotFound(String),
    /// Something stored could not be read back (a record written by a newer version, a
    /// damaged row).
    #[error("unreadable store content: {0}")]
    Corrupt(String),
    /// A setting of the store is invalid (an unusable path or URL).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The store refused a write for its content (a duplicate, a value it cannot hold).
    #[error("the job store refused the write: {0}")]
    Rejected(String),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Which jobs [`JobStore::list`] returns: newest first, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobQuery {
    /// Only this tenant's jobs (`None`: every tenant, for administrators).
    pub tenant: Option<String>,
    /// Only jobs in these states (empty: any state).
    pub states: Vec<JobState>,
    /// At most this many jobs (the store may cap it).
    pub limit: u32,
    /// The page after the one that returned this cursor.
    pub cursor: Option<String>,
}

impl JobQuery {
    /// The first page of every job, `limit` at a time.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Only this tenant's jobs.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Only jobs in these states.
    #[must_use]
    pub fn states(mut self, states: impl IntoIterator<Item = JobState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// The page after the one that returned `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// One page of [`JobStore::list`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

impl JobPage {
    /// A page.
    pub fn new(jobs: Vec<JobRecord>, next: Option<String>) -> Self {
        Self { jobs, next }
    }
}

/// The failover state of one (server, workflow) pair as stored, with wall-clock times, so a
/// restarted pool (or the next holder of the server's lease) honours the blocks it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredBlock {
    /// The server.
    pub server: ServerId,
    /// The workflow's structural hash.
    pub hash: WorkflowHash,
    /// Consecutive failures of the pair.
    pub failures: u32,
    /// How many times it was blocked in a row.
    pub blocked_count: u32,
    /// The class of its last failure.
    pub class: FailureClass,
    /// When the current block ends (`None`: not blocked now, on probation or watched).
    pub until: Option<Timestamp>,
    /// When this state was written.
    pub updated_at: Timestamp,
}

impl StoredBlock {
    /// A pair's state as stored.
    pub fn new(
        server: ServerId,
        hash: WorkflowHash,
        class: FailureClass,
        failures: u32,
        blocked_count: u32,
        until: Option<Timestamp>,
        updated_at: Timestamp,
    ) -> Self {
        Self {
            server,
            hash,
            failures,
            blocked_count,
            class,
            until,
            updated_at,
        }
    }
}

/// A durable home for jobs. Every method is durable when it returns (a crash afterwards
/// loses nothing it wrote). Implementations must be safe to share between tasks and should
/// group concurrent writes into one commit; their `Debug` must not show credentials.
///
/// ```
/// use std::sync::Arc;
/// use pool_core::{JobStore, MemoryStore};
///
/// let store: Arc<dyn JobStore> = Arc::new(MemoryStore::default());
/// # let _ = store;
/// ```
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a newly accepted job (its record at version 1). If a job with its id is
    /// stored already, nothing is written and the stored record is returned instead.
    async fn insert(&self, record: &JobRecord) -> Result<Option<JobRecord>, StoreError>;

    /// Persists one transition of a stored job: `record` is the job's record after it,
    /// whose version is one more than the stored one ([`StoreError::Conflict`] otherwise).
    /// The same as [`update_chain`](Self::update_chain) with one transition.
    async fn update(&self, record: &JobRecord, transition: &Transition) -> Result<(), StoreError> {
        self.update_chain(record, std::slice::from_ref(transition))
            .await
    }

    /// Persists consecutive transitions of a stored job as one write, all of them or none:
    /// `record` is the job's record after the last of `transitions`, whose version is the
    /// stored one plus their number ([`StoreError::Conflict`] otherwise, and nothing is
    /// written). The pool writes a job's held progress this way with its next write: one
    /// row write, and a refusal that cannot leave the first transitions stored without the
    /// others. An empty `transitions` is refused ([`StoreError::Rejected`]).
    async fn update_chain(
        &self,
        record: &JobRecord,
        transitions: &[Transition],
    ) -> Result<(), StoreError>;

    /// The stored record of a job.
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// The stored records of `ids` (those the store has, in no particular order): what a
    /// process of a fleet reads for the jobs other processes told it about. A store may read
    /// them at once; the default reads them one by one.
    async fn get_many(&self, ids: &[crate::JobId]) -> Result<Vec<JobRecord>, StoreError> {
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.get(id.as_str()).await? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Every unfinished job (not completed, failed or cancelled), in acceptance order (the
    /// order of their inserts).
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError>;

    /// Jobs matching `query`, newest first, one page at a time.
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError>;

    /// Keeps the bytes of a blob (idempotent: a blob is stored once per content).
    async fn put_blob(&self, blob: &Blob) -> Result<(), StoreError>;

    /// The bytes of a blob, by its key ([`Blob::key`]).
    async fn get_blob(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Writes the failover state of one pair (replacing the stored one).
    async fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError>;

    /// Forgets the failover state of one pair (it is clear again).
    async fn remove_block(&self, server: &ServerId, hash: &WorkflowHash) -> Result<(), StoreError>;

    /// Every stored pair state.
    async fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError>;

    /// Deletes finished jobs that ended before `before`, and the oldest finished ones beyond
    /// the newest `keep`; also the blobs no record refers to any more. Returns how many jobs
    /// were deleted.
    async fn purge(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError>;
}

/// How many versions a [`JobStore::update_chain`] of `transitions` moves `record`'s job on
/// (for implementations): their number, [`StoreError::Rejected`] when there are none.
///
/// # Errors
///
/// [`StoreError::Rejected`] for an empty chain.
pub fn chain_steps(record: &JobRecord, transitions: &[Transition]) -> Result<u64, StoreError> {
    match transitions.len() {
        0 => Err(StoreError::Rejected(format!(
            "an update of job {} without a transition",
            record.id
        ))),
        n => Ok(n as u64),
    }
}
