//! [`Config`]: what `comfy-pool serve` reads from its TOML file (`--config comfy-pool.toml`),
//! with environment overrides, validated at start with errors that name the key.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! store = "sqlite:comfy-pool.db"        # or "postgres://…", or "memory:" (nothing kept)
//! admin_key_sha256 = "…64 hex digits…"  # or admin_key = "…" (better: COMFY_POOL__ADMIN_KEY)
//!
//! [fleet]                               # replicas on one postgres:// store
//! lease_ttl = "10s"
//!
//! [shutdown]
//! mode = "detach"                       # or "drain"
//! drain_timeout = "60s"
//!
//! [strategy]
//! preset = "production"                 # development | production | high_availability
//! cooldown = "90s"                      # any SmartConfig setting overrides the preset
//!
//! [[servers]]
//! id = "gpu-1"
//! url = "http://10.0.0.5:8188"
//! auth = { bearer = "…" }               # or { basic = { user = "…", password = "…" } }
//! max_concurrent = 2
//! tags = ["sdxl"]
//!
//! [[tenants]]
//! name = "team-a"
//! keys = ["…sha256 of a key, hex…"]     # keys may also live in the store (comfy-pool keys new)
//!
//! [limits]
//! body_bytes = 8388608
//! queued_per_tenant = 1000
//! submissions_per_second = 10.0
//!
//! [webhooks]
//! secret = "…"                          # better: COMFY_POOL__WEBHOOKS__SECRET
//! allowed_hosts = ["hooks.example.com", "*.internal.example.com"]
//!
//! [outputs]
//! mode = "proxy"                        # or "copy" (with dir = "…")
//! ```
//!
//! Every key can be overridden from the environment: `COMFY_POOL__` then the key's path in
//! upper case with `__` between levels and array indices as numbers, e.g.
//! `COMFY_POOL__LIMITS__BODY_BYTES=1048576` or `COMFY_POOL__SERVERS__0__AUTH__BEARER=…`.

mod check;
pub(crate) mod duration;
mod env;

pub(crate) use check::is_name;

/// Whether `name` may name a tenant (or a server): 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn is_tenant_name(name: &str) -> bool {
    is_name(name)
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pool_failover::{AllBlockedPolicy, SmartConfig};
use serde::Deserialize;

use crate::Secret;

/// The prefix of environment overrides (`COMFY_POOL__LISTEN`, `COMFY_POOL__LIMITS__…`).
pub const ENV_PREFIX: &str = "COMFY_POOL__";

/// The default store: a SQLite file in the working directory.
pub const DEFAULT_STORE: &str = "sqlite:comfy-pool.db";

/// Why a configuration was refused. Names the file or variable and the key; never quotes a
/// credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file (or `configuration`).
        origin: String,
        /// The parser's message, with the line.
        message: String,
    },
    /// A key has a wrong type or an invalid value.
    #[error("{origin}: {key}: {reason}")]
    Invalid {
        /// The file (or `configuration`).
        origin: String,
        /// The key's path (`servers[1].url`, `limits.body_bytes`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An environment override names no key or cannot be applied.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The service's configuration. Built with [`Config::load`] or [`Config::from_toml`];
/// every field has a default except the admin key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The store: `sqlite:PATH` (`?synchronous=normal`: commits that survive the process
    /// dying but not a power loss, without waiting for the disk), `postgres://…` or `memory:`
    /// (default `sqlite:comfy-pool.db`).
    #[serde(default = "default_store")]
    pub store: Secret,
    /// The admin key in clear (prefer [`admin_key_sha256`](Self::admin_key_sha256) or the
    /// environment).
    #[serde(default)]
    pub admin_key: Option<Secret>,
    /// The SHA-256 of the admin key, hex.
    #[serde(default)]
    pub admin_key_sha256: Option<String>,
    /// What SIGTERM does.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// How often online servers are health-checked (default 15 s).
    #[serde(default = "default_health", with = "duration")]
    pub health_check_interval: Duration,
    /// How long one health check may take before the server counts as offline (default
    /// 10 s).
    #[serde(default = "default_health_timeout", with = "duration")]
    pub health_check_timeout: Duration,
    /// Prompts each busy server is given beyond its `max_concurrent`, waiting in its own
    /// queue (zero-gap dispatch; default 0: off). See `PoolBuilder::queue_ahead`.
    #[serde(default)]
    pub queue_ahead: usize,
    /// The failover strategy.
    #[serde(default)]
    pub strategy: StrategyConfig,
    /// Several replicas on one PostgreSQL store (ignored by other stores).
    #[serde(default)]
    pub fleet: FleetConfig,
    /// The ComfyUI servers.
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    /// The tenants.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Request and submission limits.
    #[serde(default)]
    pub limits: Limits,
    /// Webhook delivery.
    #[serde(default)]
    pub webhooks: WebhookConfig,
    /// How outputs are kept.
    #[serde(default)]
    pub outputs: OutputsConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_store() -> Secret {
    Secret::new(DEFAULT_STORE)
}

fn default_health() -> Duration {
    Duration::from_secs(15)
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(10)
}

/// What `SIGTERM` does to accepted jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ShutdownAction {
    /// Leave them: running prompts continue on their servers and the next start on the same
    /// store re-attaches to them (the default).
    #[default]
    Detach,
    /// Run them to their end, up to `drain_timeout`, then detach from the rest.
    Drain,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ShutdownConfig {
    /// Detach or drain.
    #[serde(default)]
    pub mode: ShutdownAction,
    /// The longest drain (default 60 s).
    #[serde(default = "default_drain", with = "duration")]
    pub drain_timeout: Duration,
}

fn default_drain() -> Duration {
    Duration::from_secs(60)
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            mode: ShutdownAction::Detach,
            drain_timeout: default_drain(),
        }
    }
}

/// `[fleet]`: how the replicas of the service on one PostgreSQL store share the servers
/// (see `docs/fleet.md`). Stores other than PostgreSQL have no fleet and ignore it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FleetConfig {
    /// How long a server lease lasts unless renewed (default 10 s, at least 30 ms; renewed
    /// every third of it). A dead replica's servers are taken over after it.
    #[serde(default = "default_lease_ttl", with = "duration")]
    pub lease_ttl: Duration,
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(10)
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            lease_ttl: default_lease_ttl(),
        }
    }
}

/// A preset of the smart failover strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StrategyPreset {
    /// 30 s after 3 failures.
    Development,
    /// 60 s after 1 failure (the default).
    #[default]
    Production,
    /// 120 s after 1 failure.
    HighAvailability,
}

/// `[strategy]`: a preset and the settings that override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StrategyConfig {
    /// The preset.
    #[serde(default)]
    pub preset: StrategyPreset,
    /// The first cooldown.
    #[serde(default, with = "duration::option")]
    pub cooldown: Option<Duration>,
    /// Failures that block a pair.
    #[serde(default)]
    pub max_failures_before_block: Option<u32>,
    /// How long failures are remembered.
    #[serde(default, with = "duration::option")]
    pub failure_window: Option<Duration>,
    /// Escalation factor of repeated blocks.
    #[serde(default)]
    pub cooldown_multiplier: Option<f64>,
    /// The longest block.
    #[serde(default, with = "duration::option")]
    pub max_cooldown: Option<Duration>,
    /// Random lengthening of blocks, 0 to 1.
    #[serde(default)]
    pub jitter: Option<f64>,
    /// The first cooldown when a server lacks a resource.
    #[serde(default, with = "duration::option")]
    pub resource_cooldown: Option<Duration>,
    /// How long a probe may hold its slot.
    #[serde(default, with = "duration::option")]
    pub probe_timeout: Option<Duration>,
    /// What a job does when its workflow is blocked everywhere.
    #[serde(default)]
    pub all_blocked: Option<AllBlockedPolicy>,
    /// The jitter seed.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl StrategyConfig {
    /// The preset with the overrides applied (not validated).
    pub fn smart_config(&self) -> SmartConfig {
        let mut config = match self.preset {
            StrategyPreset::Development => SmartConfig::development(),
            StrategyPreset::Production => SmartConfig::production(),
            StrategyPreset::HighAvailability => SmartConfig::high_availability(),
        };
        if let Some(v) = self.cooldown {
            config.cooldown = v;
        }
        if let Some(v) = self.max_failures_before_block {
            config.max_failures_before_block = v;
        }
        if let Some(v) = self.failure_window {
            config.failure_window = v;
        }
        if let Some(v) = self.cooldown_multiplier {
            config.cooldown_multiplier = v;
        }
        if let Some(v) = self.max_cooldown {
            config.max_cooldown = v;
        }
        if let Some(v) = self.jitter {
            config.jitter = v;
        }
        if let Some(v) = self.resource_cooldown {
            config.resource_cooldown = v;
        }
        if let Some(v) = self.probe_timeout {
            config.probe_timeout = v;
        }
        if let Some(v) = self.all_blocked {
            config.all_blocked = v;
        }
        if let Some(v) = self.seed {
            config.seed = v;
        }
        config
    }
}

/// How the pool authenticates to one ComfyUI server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ServerAuth {
    /// `Authorization: Bearer TOKEN`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
}

/// One `[[servers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerEntry {
    /// Its id (in events, metrics and the API).
    pub id: String,
    /// Its URL (`http://host:port`, optionally with a path prefix).
    pub url: String,
    /// Credentials, if it needs them.
    #[serde(default)]
    pub auth: Option<ServerAuth>,
    /// Prompts the pool keeps on it at once (default 1).
    #[serde(default = "one")]
    pub max_concurrent: usize,
    /// Relative capacity for ties (default 1).
    #[serde(default = "one_u32")]
    pub weight: u32,
    /// Tags jobs can require.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn one() -> usize {
    1
}

fn one_u32() -> u32 {
    1
}

impl ServerEntry {
    /// A server with default settings.
    pub fn new(id: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            auth: None,
            max_concurrent: 1,
            weight: 1,
            tags: Vec::new(),
        }
    }
}

/// One `[[tenants]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantConfig {
    /// The tenant's name (jobs carry it).
    pub name: String,
    /// SHA-256 hashes (hex) of keys of this tenant, besides those in the store.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Overrides `limits.queued_per_tenant`.
    #[serde(default)]
    pub queued: Option<u32>,
    /// Overrides `limits.submissions_per_second`.
    #[serde(default)]
    pub submissions_per_second: Option<f64>,
}

impl TenantConfig {
    /// A tenant with no configured keys.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            keys: Vec::new(),
            queued: None,
            submissions_per_second: None,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// The largest request body, bytes (default 8 MiB); larger ones get 413 unread.
    #[serde(default = "default_body")]
    pub body_bytes: usize,
    /// Unfinished jobs one tenant may have (default 1000); more get 429.
    #[serde(default = "default_queued")]
    pub queued_per_tenant: u32,
    /// Sustained submissions per second per tenant (default 10); faster get 429.
    #[serde(default = "default_rate")]
    pub submissions_per_second: f64,
    /// Submissions a tenant may make at once above the rate (default 20).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// The longest `?wait=` a submission may ask for (default 300 s).
    #[serde(default = "default_max_wait", with = "duration")]
    pub max_wait: Duration,
}

fn default_body() -> usize {
    8 << 20
}
fn default_queued() -> u32 {
    1000
}
fn default_rate() -> f64 {
    10.0
}
fn default_burst() -> u32 {
    20
}
fn default_max_wait() -> Duration {
    Duration::from_secs(300)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: default_body(),
            queued_per_tenant: default_queued(),
            submissions_per_second: default_rate(),
            burst: default_burst(),
            max_wait: default_max_wait(),
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The HMAC-SHA256 signing secret (required when any host is allowed).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Hosts webhooks may go to: exact names or IPs, or `*.domain` for its subdomains.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Tries per delivery before it is given up (default 8).
    #[serde(default = "default_tries")]
    pub max_attempts: u32,
    /// The wait after the first failed try, doubling after each (default 2 s).
    #[serde(default = "default_backoff", with = "duration")]
    pub backoff: Duration,
    /// The longest wait between tries (default 10 min).
    #[serde(default = "default_max_backoff", with = "duration")]
    pub max_backoff: Duration,
    /// The deadline of one try (default 10 s).
    #[serde(default = "default_hook_timeout", with = "duration")]
    pub timeout: Duration,
    /// How often the outbox is checked for due retries (default 1 s).
    #[serde(default = "default_poll", with = "duration")]
    pub poll_interval: Duration,
}

fn default_tries() -> u32 {
    8
}
fn default_backoff() -> Duration {
    Duration::from_secs(2)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(600)
}
fn default_hook_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_poll() -> Duration {
    Duration::from_secs(1)
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            secret: None,
            allowed_hosts: Vec::new(),
            max_attempts: default_tries(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            timeout: default_hook_timeout(),
            poll_interval: default_poll(),
        }
    }
}

/// How the outputs of finished jobs are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputMode {
    /// Proxied from the producing server's `/view` on each download (the default).
    #[default]
    Proxy,
    /// Copied to `outputs.dir` when the job completes, and served from there.
    Copy,
}

/// `[outputs]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OutputsConfig {
    /// Proxy or copy.
    #[serde(default)]
    pub mode: OutputMode,
    /// Where copies go (required with `mode = "copy"`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl Config {
    /// Reads `path`, applies the `COMFY_POOL__…` variables of this process's environment and
    /// validates the result.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file, the variable or the key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), std::env::vars())
    }

    /// Parses TOML `text` (from `origin`, for messages), applies the `COMFY_POOL__…` entries
    /// of `env` and validates the result.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable or the key.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    origin: origin.to_owned(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
        env::apply(&mut table, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Invalid {
                    origin: origin.to_owned(),
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    reason: e.into_inner().message().to_owned(),
                }
            })?;
        config
            .check()
            .map_err(|(key, reason)| ConfigError::Invalid {
                origin: origin.to_owned(),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// A minimal valid configuration for embedding and tests: an in-memory store, this admin
    /// key, no servers, no tenants, default limits.
    pub fn for_embedding(admin_key: &str) -> Self {
        Self {
            listen: default_listen(),
            store: Secret::new("memory:"),
            admin_key: Some(Secret::new(admin_key)),
            admin_key_sha256: None,
            shutdown: ShutdownConfig::default(),
            health_check_interval: default_health(),
            health_check_timeout: default_health_timeout(),
            queue_ahead: 0,
            strategy: StrategyConfig::default(),
            fleet: FleetConfig::default(),
            servers: Vec::new(),
            tenants: Vec::new(),
            limits: Limits::default(),
            webhooks: WebhookConfig::default(),
            outputs: OutputsConfig::default(),
        }
    }

    /// Checks the cross-field rules.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|(key, reason)| ConfigError::Invalid {
            origin: "configuration".into(),
            key,
            reason,
        })
    }

    /// The tenant named `name`.
    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests;
