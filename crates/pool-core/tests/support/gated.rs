//! A store whose updates of one kind wait for permits: to see what waits for durability,
//! and to hold a write unanswered while something else happens.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pool_core::{
    Blob, JobPage, JobQuery, JobRecord, JobStore, MemoryStore, ServerId, StoreError, StoredBlock,
    Timestamp, Transition, WorkflowHash,
};
use tokio::sync::Semaphore;

/// An update as a store saw it: the job's id, the transition's name, when.
pub type Seen = (String, &'static str, tokio::time::Instant);

/// A store whose updates of one kind wait for permits (to see what waits for durability).
#[derive(Debug)]
pub struct Gated {
    /// The store the writes reach once let through.
    pub inner: MemoryStore,
    /// Which transitions wait: "dispatched" or "finished".
    pub gated: &'static str,
    /// One permit lets one gated update through.
    pub gate: Semaphore,
    /// Each update as it reached the store: its job, its transition's name and when.
    pub seen: std::sync::Mutex<Vec<Seen>>,
}

impl Gated {
    /// A gated store over a new `MemoryStore`; `gated` is "dispatched" or "finished".
    pub fn new(gated: &'static str) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::default(),
            gated,
            gate: Semaphore::new(0),
            seen: std::sync::Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl JobStore for Gated {
    async fn insert(&self, record: &JobRecord) -> Result<Option<JobRecord>, StoreError> {
        self.inner.insert(record).await
    }
    async fn update_chain(
        &self,
        record: &JobRecord,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        let mut gated = false;
        for transition in transitions {
            let name = match transition {
                Transition::Dispatched { .. } => "dispatched",
                Transition::PromptSubmitted { .. } => "submitted",
                Transition::ExecutionStarted { .. } => "executing",
                Transition::AttemptEnded { .. } => "ended",
                Transition::Finished { .. } => "finished",
                _ => "other",
            };
            self.seen.lock().unwrap().push((
                record.id.to_string(),
                name,
                tokio::time::Instant::now(),
            ));
            gated |= name == self.gated;
        }
        if gated {
            self.gate.acquire().await.unwrap().forget();
        }
        self.inner.update_chain(record, transitions).await
    }
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.unfinished().await
    }
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        self.inner.list(query).await
    }
    async fn put_blob(&self, blob: &Blob) -> Result<(), StoreError> {
        self.inner.put_blob(blob).await
    }
    async fn get_blob(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get_blob(key).await
    }
    async fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        self.inner.put_block(block).await
    }
    async fn remove_block(&self, server: &ServerId, hash: &WorkflowHash) -> Result<(), StoreError> {
        self.inner.remove_block(server, hash).await
    }
    async fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError> {
        self.inner.blocks().await
    }
    async fn purge(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError> {
        self.inner.purge(before, keep).await
    }
}
