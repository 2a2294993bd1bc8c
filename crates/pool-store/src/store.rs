//! [`SqlStore`]: the [`JobStore`] and [`ServiceStore`] over SQL, one implementation for both
//! databases ([`SqliteStore`], [`PostgresStore`]): writes go to the group-commit writer task,
//! reads to the read pool.

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use bytes::Bytes;
use pool_core::{
    Blob, JobPage, JobQuery, JobRecord, JobStore, ServerId, StoreError, StoredBlock, Timestamp,
    Transition, WorkflowHash,
};

use crate::blocks::BlockRow;
use crate::codec::{int, millis};
use crate::jobs::{JobChange, NewJob};
use crate::service_sql::{KeyRow, WebhookRow};
use crate::sql::ReadPool;
use crate::writer::{Done, Work, WriteStats, Writer};
use crate::{ApiKey, ServiceStore, WebhookDelivery, blocks, jobs, service_sql};

/// Marker of a store on SQLite: [`SqliteStore`].
#[derive(Debug)]
pub enum Sqlite {}

/// Marker of a store on PostgreSQL: [`PostgresStore`].
#[derive(Debug)]
pub enum Postgres {}

/// A job store on SQLite: one file (WAL, `synchronous = FULL`), or memory for tests. Open it
/// with [`SqliteStore::open`].
pub type SqliteStore = SqlStore<Sqlite>;

/// A job store on PostgreSQL, shareable by several pool processes. Connect with
/// [`PostgresStore::connect`].
pub type PostgresStore = SqlStore<Postgres>;

/// A [`JobStore`] and [`ServiceStore`] on an SQL database (`D`: [`Sqlite`] or [`Postgres`]).
///
/// Every write is durable when it returns. Concurrent writes share one transaction and one
/// commit (group commit): one task owns the write connection and takes everything queued at
/// once, in the order it was sent. Reads run beside it on a pool of connections.
pub struct SqlStore<D> {
    pub(crate) writer: Writer,
    pub(crate) reads: ReadPool,
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) what: String,
    pub(crate) _db: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &self.what)
            .field("writes", &self.writer.stats())
            .finish_non_exhaustive()
    }
}

impl<D> SqlStore<D> {
    /// How many transactions and writes the writer has committed (writes per commit shows
    /// how well concurrent writes are grouped).
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// Finishes the writes already sent, then closes every connection (SQLite folds its
    /// write-ahead log back into the database file). Dropping the store does the same in the
    /// background.
    pub async fn close(self) {
        let Self {
            writer,
            reads,
            task,
            ..
        } = self;
        drop(writer);
        if let Err(e) = task.await {
            tracing::warn!("the store's writer ended abnormally: {e}");
        }
        reads.close().await;
    }

    async fn write(&self, work: Work) -> Result<Done, StoreError> {
        self.writer.submit(work).await
    }
}

/// A writer's answer of the wrong kind: a bug, reported rather than panicked on.
fn unexpected(done: &Done) -> StoreError {
    StoreError::Unavailable(format!("internal error: unexpected write result {done:?}"))
}

fn nothing(done: &Done) -> Result<(), StoreError> {
    match done {
        Done::Nothing => Ok(()),
        other => Err(unexpected(other)),
    }
}

#[async_trait]
impl<D: 'static> JobStore for SqlStore<D> {
    async fn insert(&self, record: &JobRecord) -> Result<Option<JobRecord>, StoreError> {
        match self.write(Work::Insert(NewJob::of(record)?)).await? {
            Done::Existing(existing) => Ok(existing.map(|r| *r)),
            other => Err(unexpected(&other)),
        }
    }

    async fn update_chain(
        &self,
        record: &JobRecord,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        let steps = pool_core::chain_steps(record, transitions)?;
        nothing(
            &self
                .write(Work::Update(JobChange::of(record, steps)?))
                .await?,
        )
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        jobs::get(&self.reads, id).await
    }

    async fn get_many(&self, ids: &[pool_core::JobId]) -> Result<Vec<JobRecord>, StoreError> {
        jobs::get_many(&self.reads, ids).await
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        jobs::unfinished(&self.reads).await
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        jobs::list(&self.reads, query).await
    }

    async fn put_blob(&self, blob: &Blob) -> Result<(), StoreError> {
        let Some(bytes) = blob.bytes() else {
            return Err(StoreError::Corrupt(format!(
                "blob {} has no bytes to store",
                blob.key()
            )));
        };
        let work = Work::PutBlob {
            key: blob.key(),
            bytes: bytes.to_vec(),
        };
        nothing(&self.write(work).await?)
    }

    async fn get_blob(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(jobs::get_blob(&self.reads, key).await?.map(Bytes::from))
    }

    async fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        nothing(&self.write(Work::PutBlock(BlockRow::of(block)?)).await?)
    }

    async fn remove_block(&self, server: &ServerId, hash: &WorkflowHash) -> Result<(), StoreError> {
        let work = Work::RemoveBlock {
            server: server.to_string(),
            hash: hash.to_string(),
        };
        nothing(&self.write(work).await?)
    }

    async fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError> {
        blocks::all(&self.reads).await
    }

    async fn purge(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError> {
        let work = Work::Purge {
            before: millis(before),
            keep: int(keep),
        };
        match self.write(work).await? {
            Done::Count(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }
}

#[async_trait]
impl<D: 'static> ServiceStore for SqlStore<D> {
    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        nothing(&self.write(Work::PutKey(KeyRow::of(key))).await?)
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        service_sql::key_by_hash(&self.reads, hash).await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        service_sql::keys(&self.reads).await
    }

    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        match self.write(Work::RevokeKey(id.to_owned())).await? {
            Done::Flag(existed) => Ok(existed),
            other => Err(unexpected(&other)),
        }
    }

    async fn enqueue_webhook(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        nothing(
            &self
                .write(Work::EnqueueWebhook(WebhookRow::of(delivery)?))
                .await?,
        )
    }

    async fn due_webhooks(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        service_sql::due_webhooks(&self.reads, now, limit).await
    }

    async fn update_webhook(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        nothing(
            &self
                .write(Work::UpdateWebhook(WebhookRow::of(delivery)?))
                .await?,
        )
    }

    async fn webhook(&self, job: &str) -> Result<Option<WebhookDelivery>, StoreError> {
        service_sql::webhook(&self.reads, job).await
    }
}
