//! `pool-server`: comfy-pool as an HTTP service — the `/v1` JSON API over a [`Pool`](pool_core::Pool)
//! and its store, Server-Sent Events, signed webhooks, Prometheus metrics, an OpenAPI
//! document and a live dashboard. A library, so the service can be embedded; the
//! `comfy-pool serve` command runs it.
//!
//! - [`Config`]: the TOML configuration (with `COMFY_POOL__…` overrides), validated with
//!   errors that name the key.
//! - [`Service`]: built from a configuration ([`Service::start`]), or over a pool and store
//!   of the caller's ([`Service::with_parts`]); [`Service::router`] for embedding,
//!   [`Service::serve`] to serve until a signal and then detach or drain.
//! - Keys: tenants authenticate with `Authorization: Bearer KEY`; only SHA-256 hashes are
//!   kept ([`issue_key`], [`key_hash`]); the admin key guards fleet operations.
//! - Webhooks are signed with HMAC-SHA256 over `"{timestamp}.{body}"`
//!   ([`webhook::sign::verify`] checks one).
//!
//! The routes, their errors and codes are documented in `docs/service-guide.md` and served
//! as OpenAPI 3 at `/openapi.json`.

pub use api_error::{ApiError, ErrorBody, ErrorDetail};
pub use auth::Caller;
pub use config::{Config, ConfigError};
pub use error::ServiceError;
pub use keys::{KEY_PREFIX, NewKey, issue_key, key_hash};
pub use memory::MemoryServiceStore;
/// The store traits and records the service uses (from `pool-store`).
pub use pool_store::{ApiKey, ServiceStore, WebhookDelivery, WebhookState};
pub use routes::openapi::ApiDoc;
pub use secret::Secret;
pub use service::{Service, build_pool, fleet_process_id};
pub use store::{StoreOpenError, open_store};

mod api_error;
mod auth;
pub mod config;
mod error;
mod feed;
mod fleet;
mod keys;
mod limits;
mod memory;
mod metrics;
mod outputs;
mod routes;
mod secret;
mod service;
mod state;
mod store;
mod tracker;
pub mod views;
mod watch;
pub mod webhook;
