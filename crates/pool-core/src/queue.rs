//! [`JobQueue`]: where accepted jobs wait, and how the scheduler finds one for a free server.

use std::sync::Arc;

use pool_failover::ServerId;
use workflow_hash::WorkflowHash;

use crate::JobKey;

/// The hard server filters of a queued job: its constraint class. Jobs with equal
/// constraints share one bucket of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Constraint {
    /// When not empty, only these servers (sorted, deduplicated).
    pub required: Vec<ServerId>,
    /// Never these servers (sorted, deduplicated): the job's exclusions plus servers a retry
    /// moves away from.
    pub excluded: Vec<ServerId>,
    /// Tags the server must carry (sorted, deduplicated).
    pub tags: Vec<String>,
}

impl Constraint {
    /// A constraint from unsorted lists.
    pub fn new(
        mut required: Vec<ServerId>,
        mut excluded: Vec<ServerId>,
        mut tags: Vec<String>,
    ) -> Self {
        for list in [&mut required, &mut excluded] {
            list.sort();
            list.dedup();
        }
        tags.sort();
        tags.dedup();
        Self {
            required,
            excluded,
            tags,
        }
    }

    /// Whether the constraint filters nothing.
    pub fn is_unconstrained(&self) -> bool {
        self.required.is_empty() && self.excluded.is_empty() && self.tags.is_empty()
    }

    /// Whether `server` satisfies the constraint.
    pub fn admits(&self, server: &ServerView<'_>) -> bool {
        (self.required.is_empty() || self.required.binary_search(server.id).is_ok())
            && self.excluded.binary_search(server.id).is_err()
            && self
                .tags
                .iter()
                .all(|tag| server.tags.iter().any(|t| t == tag))
    }
}

/// What the queue needs to know about a server.
#[derive(Debug, Clone, Copy)]
pub struct ServerView<'a> {
    /// Its id.
    pub id: &'a ServerId,
    /// Its tags.
    pub tags: &'a [String],
}

/// The scheduling facts of one queued job (the workflow itself stays with the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueEntry {
    /// The job; also its FIFO position (smaller is older).
    pub key: JobKey,
    /// Higher runs first.
    pub priority: i32,
    /// Tenants of one priority are served round-robin.
    pub tenant: Option<Arc<str>>,
    /// The job's routing key: its workflow's structural hash (blocks are per server and
    /// hash), or for a job of several workflow variants a key standing for their set (the
    /// pool's `allowed` test in [`JobQueue::pop_for`] accepts it if it accepts any of them).
    pub hash: WorkflowHash,
    /// The hard server filters.
    pub constraint: Arc<Constraint>,
}

impl QueueEntry {
    /// An entry.
    pub fn new(
        key: JobKey,
        priority: i32,
        tenant: Option<Arc<str>>,
        hash: WorkflowHash,
        constraint: Arc<Constraint>,
    ) -> Self {
        Self {
            key,
            priority,
            tenant,
            hash,
            constraint,
        }
    }
}

/// The queue of jobs waiting for a server. The pool's single scheduler task owns it, so
/// implementations need no locking. [`InMemoryQueue`](crate::InMemoryQueue) is the default.
///
/// The contract of [`pop_for`](Self::pop_for) is the scheduling policy: highest priority
/// first; within a priority, tenants in turn; within a tenant, the most constrained job
/// (fewest admitting servers), then the oldest; a job whose hash `allowed` refuses is skipped,
/// never blocking the jobs behind it.
pub trait JobQueue: Send + 'static {
    /// Adds a job.
    fn push(&mut self, entry: QueueEntry);

    /// Removes a job, if it is queued.
    fn remove(&mut self, key: JobKey) -> Option<QueueEntry>;

    /// Takes the job that `server` should run next, among those it admits and whose hash
    /// `allowed` accepts for it.
    fn pop_for(
        &mut self,
        server: ServerView<'_>,
        allowed: &mut dyn FnMut(&WorkflowHash) -> bool,
    ) -> Option<QueueEntry>;

    /// How many jobs wait.
    fn len(&self) -> usize;

    /// Whether no job waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many jobs wait per priority, highest first.
    fn depth_by_priority(&self) -> Vec<(i32, usize)>;

    /// The queued jobs of one workflow hash.
    fn keys_with_hash(&self, hash: &WorkflowHash) -> Vec<JobKey>;

    /// Removes and returns every job.
    fn drain(&mut self) -> Vec<QueueEntry>;

    /// Tells the queue which servers the pool has (to rank constraints by how many servers
    /// they admit).
    fn set_servers(&mut self, servers: &[ServerView<'_>]);
}
