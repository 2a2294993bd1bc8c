//! [`MemoryServiceStore`]: the service's store in this process's memory (`store = "memory:"`):
//! for tests, demos and embedding; nothing survives a restart.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use pool_core::{
    Blob, JobPage, JobQuery, JobRecord, JobStore, MemoryStore, ServerId, StoreError, StoredBlock,
    Timestamp, Transition, WorkflowHash,
};
use pool_store::{ApiKey, ServiceStore, WebhookDelivery, WebhookState};

/// A [`ServiceStore`] (and so a [`JobStore`]) kept in memory: `pool-core`'s [`MemoryStore`]
/// for the jobs, maps for the keys and the webhook outbox.
#[derive(Debug, Default)]
pub struct MemoryServiceStore {
    jobs: MemoryStore,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Keys by hash, and their order of creation.
    keys: HashMap<String, ApiKey>,
    key_order: Vec<String>,
    /// Deliveries by job id; (created_at, job) for the oldest-first order.
    hooks: HashMap<String, WebhookDelivery>,
    hook_order: BTreeMap<(Timestamp, String), ()>,
}

#[async_trait]
impl JobStore for MemoryServiceStore {
    async fn insert(&self, record: &JobRecord) -> Result<Option<JobRecord>, StoreError> {
        self.jobs.insert(record).await
    }
    async fn update_chain(
        &self,
        record: &JobRecord,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        self.jobs.update_chain(record, transitions).await
    }
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.jobs.get(id).await
    }
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.jobs.unfinished().await
    }
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        self.jobs.list(query).await
    }
    async fn put_blob(&self, blob: &Blob) -> Result<(), StoreError> {
        self.jobs.put_blob(blob).await
    }
    async fn get_blob(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.jobs.get_blob(key).await
    }
    async fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        self.jobs.put_block(block).await
    }
    async fn remove_block(&self, server: &ServerId, hash: &WorkflowHash) -> Result<(), StoreError> {
        self.jobs.remove_block(server, hash).await
    }
    async fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError> {
        self.jobs.blocks().await
    }
    async fn purge(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError> {
        self.jobs.purge(before, keep).await
    }
}

#[async_trait]
impl ServiceStore for MemoryServiceStore {
    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        if inner.keys.insert(key.hash.clone(), key.clone()).is_none() {
            inner.key_order.push(key.hash.clone());
        }
        Ok(())
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.inner.lock().keys.get(hash).cloned())
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .key_order
            .iter()
            .filter_map(|hash| inner.keys.get(hash).cloned())
            .collect())
    }

    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock();
        let mut found = false;
        for key in inner.keys.values_mut().filter(|k| k.id == id) {
            key.revoked = true;
            found = true;
        }
        Ok(found)
    }

    async fn enqueue_webhook(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let job = delivery.job.to_string();
        if inner.hooks.contains_key(&job) {
            return Ok(());
        }
        inner
            .hook_order
            .insert((delivery.created_at, job.clone()), ());
        inner.hooks.insert(job, delivery.clone());
        Ok(())
    }

    async fn due_webhooks(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .hook_order
            .keys()
            .filter_map(|(_, job)| inner.hooks.get(job))
            .filter(|d| d.state == WebhookState::Pending && d.next_at <= now)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn update_webhook(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let Some(stored) = inner.hooks.get_mut(delivery.job.as_str()) else {
            return Err(StoreError::NotFound(delivery.job.to_string()));
        };
        *stored = delivery.clone();
        Ok(())
    }

    async fn webhook(&self, job: &str) -> Result<Option<WebhookDelivery>, StoreError> {
        Ok(self.inner.lock().hooks.get(job).cloned())
    }
}
