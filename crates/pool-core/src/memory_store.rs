//! [`MemoryStore`]: a [`JobStore`] in this process's memory — the reference behaviour of the
//! trait, for tests and for embedding a pool that needs store semantics without a file.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use pool_failover::ServerId;
use workflow_hash::WorkflowHash;

use crate::{
    Blob, JobPage, JobQuery, JobRecord, JobStore, StoreError, StoredBlock, Timestamp, Transition,
};

/// A [`JobStore`] kept in memory: durable only as long as the process (use `pool-store`'s
/// SQLite or PostgreSQL stores to survive restarts). Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: HashMap<String, JobRecord>,
    /// (created_at, id) → id, for ordered listing.
    order: BTreeMap<(Timestamp, String), ()>,
    /// Insert number → id: acceptance order.
    accepted: BTreeMap<u64, String>,
    inserts: u64,
    /// Updates taken (each writes a job's record once, whatever its transitions).
    updates: u64,
    blobs: HashMap<String, Bytes>,
    blocks: HashMap<(ServerId, WorkflowHash), StoredBlock>,
}

impl MemoryStore {
    /// How many updates it took: each [`JobStore::update`] or [`JobStore::update_chain`]
    /// that wrote a job's record (a chain of transitions counts once, as it is one write).
    pub fn updates(&self) -> u64 {
        self.inner.lock().updates
    }
}

/// The cursor of a listing: the (created_at, id) of the last job of the page.
pub(crate) fn cursor_of(record: &JobRecord) -> String {
    format!("{}:{}", record.created_at.as_millis(), record.id)
}

/// The (created_at, id) a cursor stands for.
pub(crate) fn parse_cursor(cursor: &str) -> Result<(Timestamp, String), StoreError> {
    let (millis, id) = cursor
        .split_once(':')
        .ok_or_else(|| StoreError::Config(format!("not a listing cursor: {cursor:?}")))?;
    let millis = millis
        .parse()
        .map_err(|_| StoreError::Config(format!("not a listing cursor: {cursor:?}")))?;
    Ok((Timestamp::from_millis(millis), id.to_owned()))
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn insert(&self, record: &JobRecord) -> Result<Option<JobRecord>, StoreError> {
        let mut inner = self.inner.lock();
        if let Some(existing) = inner.jobs.get(record.id.as_str()) {
            return Ok(Some(existing.clone()));
        }
        inner
            .order
            .insert((record.created_at, record.id.to_string()), ());
        inner.inserts += 1;
        let n = inner.inserts;
        inner.accepted.insert(n, record.id.to_string());
        inner.jobs.insert(record.id.to_string(), record.clone());
        Ok(None)
    }

    async fn update_chain(
        &self,
        record: &JobRecord,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        let steps = crate::chain_steps(record, transitions)?;
        let mut inner = self.inner.lock();
        let Some(stored) = inner.jobs.get_mut(record.id.as_str()) else {
            return Err(StoreError::NotFound(record.id.to_string()));
        };
        if stored.version.checked_add(steps) != Some(record.version) {
            return Err(StoreError::Conflict {
                id: record.id.to_string(),
                stored: stored.version,
                expected: record.version.saturating_sub(steps),
            });
        }
        *stored = record.clone();
        inner.updates += 1;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.inner.lock().jobs.get(id).cloned())
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .accepted
            .values()
            .filter_map(|id| inner.jobs.get(id))
            .filter(|r| !r.state.is_terminal())
            .cloned()
            .collect())
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
        let inner = self.inner.lock();
        let limit = query.limit.clamp(1, 1000) as usize;
        let mut jobs = Vec::with_capacity(limit);
        let mut more = false;
        for (key, ()) in inner.order.iter().rev() {
            if after.as_ref().is_some_and(|after| key >= after) {
                continue;
            }
            let Some(record) = inner.jobs.get(&key.1) else {
                continue;
            };
            if query
                .tenant
                .as_deref()
                .is_some_and(|t| record.tenant() != Some(t))
            {
                continue;
            }
            if !query.states.is_empty() && !query.states.contains(&record.state) {
                continue;
            }
            if jobs.len() == limit {
                more = true;
                break;
            }
            jobs.push(record.clone());
        }
        let next = if more {
            jobs.last().map(cursor_of)
        } else {
            None
        };
        Ok(JobPage::new(jobs, next))
    }

    async fn put_blob(&self, blob: &Blob) -> Result<(), StoreError> {
        let Some(bytes) = blob.bytes() else {
            return Err(StoreError::Corrupt(format!(
                "blob {} has no bytes to store",
                blob.key()
            )));
        };
        self.inner
            .lock()
            .blobs
            .entry(blob.key())
            .or_insert_with(|| bytes.clone());
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.inner.lock().blobs.get(key).cloned())
    }

    async fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        self.inner
            .lock()
            .blocks
            .insert((block.server.clone(), block.hash), block.clone());
        Ok(())
    }

    async fn remove_block(&self, server: &ServerId, hash: &WorkflowHash) -> Result<(), StoreError> {
        self.inner.lock().blocks.remove(&(server.clone(), *hash));
        Ok(())
    }

    async fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError> {
        Ok(self.inner.lock().blocks.values().cloned().collect())
    }

    async fn purge(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock();
        let finished: Vec<(Timestamp, String)> = inner
            .order
            .keys()
            .rev()
            .filter(|(_, id)| inner.jobs.get(id).is_some_and(|r| r.state.is_terminal()))
            .cloned()
            .collect();
        let mut deleted = 0;
        for (i, key) in finished.iter().enumerate() {
            let old = inner
                .jobs
                .get(&key.1)
                .is_some_and(|r| r.updated_at < before);
            if old || i as u64 >= keep {
                inner.jobs.remove(&key.1);
                inner.order.remove(key);
                deleted += 1;
            }
        }
        if deleted > 0 {
            let Inner { accepted, jobs, .. } = &mut *inner;
            accepted.retain(|_, id| jobs.contains_key(id));
        }
        let referenced: std::collections::HashSet<String> =
            inner.jobs.values().flat_map(referenced_blobs).collect();
        inner.blobs.retain(|key, _| referenced.contains(key));
        Ok(deleted)
    }
}

/// The blobs a record refers to (its input files and websocket-only images).
pub fn referenced_blobs(record: &JobRecord) -> Vec<String> {
    let inputs = record
        .spec
        .options
        .inputs
        .iter()
        .flat_map(|files| files.iter())
        .map(|file| file.content.key());
    let images = record
        .result
        .iter()
        .flat_map(|output| output.ws_images.iter())
        .map(|image| image.image.key());
    inputs.chain(images).collect()
}
