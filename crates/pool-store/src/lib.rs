//! `pool-store`: durable homes for comfy-pool's jobs — the [`JobStore`] of `pool-core` on
//! SQLite ([`SqliteStore`]: embedded, one file) and PostgreSQL ([`PostgresStore`]: shared by
//! several pool processes) — and what the HTTP service keeps beside them ([`ServiceStore`]:
//! tenants' API keys, stored hashed, and the webhook outbox).
//!
//! ```
//! use std::sync::Arc;
//! use pool_core::{JobOptions, JobRecord, JobSpec, JobStore, Timestamp, WorkflowHash};
//! use pool_store::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pool_core::StoreError> {
//! let store = SqliteStore::open(":memory:").await?;
//! let workflow = serde_json::json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 64}}});
//! let spec = JobSpec::new(
//!     Arc::new(workflow.clone()),
//!     WorkflowHash::of(&workflow).expect("a workflow"),
//!     JobOptions::new().tenant("acme"),
//! );
//! let record = JobRecord::new("job-1".into(), Arc::new(spec), Timestamp::now());
//! assert_eq!(store.insert(&record).await?, None); // durable once this returns
//! assert_eq!(store.get("job-1").await?, Some(record));
//! # Ok(())
//! # }
//! ```
//!
//! [`open`] takes a URL instead (`sqlite:PATH`, `sqlite::memory:`, `postgres://…`) and gives
//! one `Arc<dyn ServiceStore>`, which is also an `Arc<dyn JobStore>` (trait upcasting).
//!
//! # How it stores
//!
//! - A job is a row of queryable columns (id, tenant, state, priority, hash, times, `version`,
//!   `last_seq`) and the record as JSON without its spec, rewritten by each update; the spec
//!   (up to 100 KB) is written once at insert into a table of its own, so an update never
//!   rewrites it. An update is a compare-and-set on `version`.
//! - Writes go through one writer task that commits everything queued in one transaction
//!   (group commit): concurrent enqueues share one fsync. Reads run beside it.
//! - Several pool processes on one PostgreSQL database coordinate through [`PgFleet`] (the
//!   `Fleet` of `pool-core`): server leases with fencing epochs, notices over
//!   `LISTEN/NOTIFY`.
//! - Schema migrations are embedded and applied at open (`migrations/sqlite`,
//!   `migrations/postgres`).

use std::sync::Arc;

pub use fleet::PgFleet;
pub use pool_core::{Fleet, FleetNotice, JobStore, Lease, StoreError};
pub use service::{ApiKey, ServiceStore, WebhookDelivery, WebhookState};
pub use sqlite::Synchronous;
pub use store::{Postgres, PostgresStore, SqlStore, Sqlite, SqliteStore};
pub use writer::WriteStats;

mod blocks;
mod codec;
mod fleet;
mod fleet_listen;
mod fleet_sql;
mod held;
mod insert_batch;
mod jobs;
mod lite;
mod locator;
mod migrations;
mod postgres;
mod service;
mod service_sql;
mod sql;
mod sqlite;
mod store;
mod update_batch;
mod writer;

use locator::Location;

/// Opens the store a URL names: `sqlite:PATH` (created if missing; `?synchronous=normal`
/// for commits that do not wait for the disk, see [`Synchronous`]), `sqlite::memory:` (or
/// `:memory:`, private to this store) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. The
/// store serves as both `Arc<dyn ServiceStore>` and, upcast, `Arc<dyn JobStore>`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), pool_store::StoreError> {
/// use std::sync::Arc;
/// use pool_store::{JobStore, ServiceStore};
///
/// let service: Arc<dyn ServiceStore> = pool_store::open("sqlite::memory:").await?;
/// let jobs: Arc<dyn JobStore> = service.clone();
/// assert!(jobs.unfinished().await?.is_empty());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StoreError::Config`] for an unsupported URL; otherwise those of [`SqliteStore::open`]
/// and [`PostgresStore::connect`]. No error quotes the URL's password.
pub async fn open(url: &str) -> Result<Arc<dyn ServiceStore>, StoreError> {
    Ok(match Location::parse(url)? {
        Location::SqliteMemory => Arc::new(SqliteStore::open(":memory:").await?),
        Location::SqliteFile(path, synchronous) => {
            Arc::new(SqliteStore::open_with(path, synchronous).await?)
        }
        Location::Postgres(url) => Arc::new(PostgresStore::connect(&url).await?),
    })
}
