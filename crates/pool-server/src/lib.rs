//! `pool-server`: comfy-pool as an HTTP service.

pub use config::{Config, ConfigError};
pub use secret::Secret;

pub mod config;
mod secret;
