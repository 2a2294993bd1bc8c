//! [`Fleet`]: the servers of a run, and [`build_pool`]: the pool over them.

use comfy_pool::prelude::Arc;
use comfy_pool::sim::{SimCluster, SimConfig};
use comfy_pool::{AllBlockedPolicy, Pool, ServerConfig, SmartStrategy};

use crate::error::Result;
use crate::hosts::server_name;
use crate::run::RunStore;

/// How many simulated servers a run starts when no host is given.
pub const SIMULATED_SERVERS: usize = 2;

/// The servers of a run: real ComfyUI servers, or simulated ones started in this process
/// (dropping the fleet stops them).
#[derive(Debug)]
pub struct Fleet {
    /// `(id, url)` of each server, in order.
    servers: Vec<(String, String)>,
    sims: Option<SimCluster>,
}

impl Fleet {
    /// Real servers at these URLs, named by their `host:port`.
    pub fn real(urls: impl IntoIterator<Item = String>) -> Self {
        let servers = urls
            .into_iter()
            .map(|url| (server_name(&url), url))
            .collect();
        Self {
            servers,
            sims: None,
        }
    }

    /// `count` simulated servers named `sim-1`, `sim-2`, ... on ephemeral loopback ports,
    /// with `checkpoints/sdxl.safetensors` installed besides the default `sd15`.
    ///
    /// # Errors
    ///
    /// [`Error::Sim`](crate::Error::Sim) when a server cannot start.
    pub async fn simulated(count: usize) -> Result<Self> {
        let config = SimConfig::default().model("checkpoints", "sdxl.safetensors");
        let cluster = SimCluster::start(count, config).await?;
        let servers = cluster
            .urls()
            .into_iter()
            .enumerate()
            .map(|(i, url)| (format!("sim-{}", i + 1), url))
            .collect();
        Ok(Self {
            servers,
            sims: Some(cluster),
        })
    }

    /// The real servers at `urls`, or [`SIMULATED_SERVERS`] simulated ones for `None`.
    ///
    /// # Errors
    ///
    /// As [`simulated`](Self::simulated).
    pub async fn from_hosts(urls: Option<Vec<String>>) -> Result<Self> {
        match urls {
            Some(urls) => Ok(Self::real(urls)),
            None => Self::simulated(SIMULATED_SERVERS).await,
        }
    }

    /// Whether the servers run in this process.
    pub fn is_simulated(&self) -> bool {
        self.sims.is_some()
    }

    /// The server ids, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.servers.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// A pool configuration for every server, `max_concurrent` prompts each.
    pub fn server_configs(&self, max_concurrent: usize) -> Vec<ServerConfig> {
        self.servers
            .iter()
            .map(|(id, url)| {
                ServerConfig::new(url.as_str())
                    .id(id.as_str())
                    .max_concurrent(max_concurrent)
            })
            .collect()
    }

    /// A line naming the servers (never their credentials).
    pub fn describe(&self) -> String {
        let count = self.servers.len();
        let servers = if count == 1 { "server" } else { "servers" };
        if self.is_simulated() {
            let list: Vec<String> = self
                .servers
                .iter()
                .map(|(id, url)| format!("{id} ({url})"))
                .collect();
            format!(
                "{count} simulated ComfyUI {servers} (in this process): {}",
                list.join(", ")
            )
        } else {
            format!("{count} ComfyUI {servers}: {}", self.ids().join(", "))
        }
    }
}

/// How the pool of a run is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Prompts each server runs at once.
    pub max_concurrent: usize,
    /// Prompts each busy server holds beyond them, waiting in its queue (zero-gap dispatch).
    pub queue_ahead: usize,
    /// What a job does when its workflow is blocked on every server.
    pub all_blocked: AllBlockedPolicy,
    /// How many finished jobs the pool keeps known, in memory and in its store (at least
    /// every job of a run, so that a re-run finds each one finished rather than runs it
    /// again).
    pub retain_finished: usize,
}

/// The pool's own default of [`PoolSettings::retain_finished`].
pub const RETAIN_FINISHED: usize = 10_000;

/// Builds the pool of a run over `fleet`: the smart strategy (production preset, the given
/// all-blocked policy), the pool's default health checks and in-memory queue, and the jobs
/// kept in `store` when it is durable (its unfinished jobs taken up again).
///
/// This is the one place a command builds a pool.
///
/// # Errors
///
/// [`Error::Strategy`](crate::Error::Strategy) or [`Error::Pool`](crate::Error::Pool) when
/// the configuration is refused (say, two hosts with the same `host:port`).
pub fn build_pool(fleet: &Fleet, settings: &PoolSettings, store: &RunStore) -> Result<Pool> {
    let strategy = SmartStrategy::builder()
        .all_blocked(settings.all_blocked)
        .build()?;
    let mut builder = Pool::builder()
        .servers(fleet.server_configs(settings.max_concurrent))
        .strategy(Arc::new(strategy))
        .queue_ahead(settings.queue_ahead)
        .retain_finished(settings.retain_finished);
    if let Some(store) = store.durable() {
        builder = builder.store(Arc::clone(store));
    }
    Ok(builder.build()?)
}
