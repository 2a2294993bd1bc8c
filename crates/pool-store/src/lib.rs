//! `pool-store`: durable homes for comfy-pool's jobs — the [`JobStore`] of `pool-core` on
//! SQLite (embedded, one file) and PostgreSQL (shared by several pool processes) — and what
//! the HTTP service keeps beside them ([`ServiceStore`]: tenants' API keys, stored hashed,
//! and the webhook outbox).
//!
//! ```
//! use pool_store::{ApiKey, ServiceStore};
//!
//! fn takes(_: &dyn ServiceStore) {}
//! # let _ = takes;
//! # let _ = std::mem::size_of::<ApiKey>();
//! ```

pub use pool_core::{JobStore, StoreError};
pub use service::{ApiKey, ServiceStore, WebhookDelivery, WebhookState};

mod service;
