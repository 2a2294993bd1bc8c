//! [`ServiceStore`]: what `comfy-pool serve` keeps beside the jobs — tenants' API keys (only
//! their hashes) and the webhook outbox (so a restart resumes delivery).

use async_trait::async_trait;
use pool_core::{JobId, JobStore, StoreError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tenant's API key as stored: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKey {
    /// A short public id of the key (for listing and revoking; not secret).
    pub id: String,
    /// The tenant the key belongs to.
    pub tenant: String,
    /// The SHA-256 of the secret, lower-case hex.
    pub hash: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl ApiKey {
    /// A key record.
    pub fn new(
        id: impl Into<String>,
        tenant: impl Into<String>,
        hash: impl Into<String>,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            tenant: tenant.into(),
            hash: hash.into(),
            created_at,
            revoked: false,
        }
    }
}

/// Where a webhook delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookState {
    /// Not delivered yet; the next try is due at the delivery's `next_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered {
        /// When.
        at: Timestamp,
    },
    /// Given up after its tries.
    Failed {
        /// The last error.
        error: String,
    },
}

/// One webhook to deliver: a finished job's summary for its webhook URL (at least once, the
/// job id as the receiver's idempotency key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// The job (one delivery per job).
    pub job: JobId,
    /// Where to POST.
    pub url: String,
    /// The JSON body.
    pub payload: Value,
    /// Tries made so far.
    pub attempts: u32,
    /// When the next try is due.
    pub next_at: Timestamp,
    /// Where it stands.
    pub state: WebhookState,
    /// The last error, if a try failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
}

impl WebhookDelivery {
    /// A new pending delivery, due now.
    pub fn new(job: JobId, url: impl Into<String>, payload: Value, now: Timestamp) -> Self {
        Self {
            job,
            url: url.into(),
            payload,
            attempts: 0,
            next_at: now,
            state: WebhookState::Pending,
            last_error: None,
            created_at: now,
        }
    }
}

/// The service's durable state beside the jobs, in the same database. Every method is durable
/// when it returns.
#[async_trait]
pub trait ServiceStore: JobStore {
    /// Stores a new API key.
    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError>;

    /// The key whose secret has this SHA-256 (revoked ones included: callers check).
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Every key, oldest first.
    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a key by its public id; returns whether it existed.
    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError>;

    /// Queues a delivery (once per job: a second one for the same job changes nothing).
    async fn enqueue_webhook(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;

    /// Pending deliveries due at `now` (`next_at <= now`), the longest due first (by
    /// `next_at`, then by when they were queued), at most `limit`.
    async fn due_webhooks(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;

    /// Records a try of the delivery of `job`'s webhook: its new state, tries, next due time
    /// and last error (the delivery as it stands after the try).
    async fn update_webhook(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;

    /// The delivery of a job's webhook, if it has one.
    async fn webhook(&self, job: &str) -> Result<Option<WebhookDelivery>, StoreError>;
}
