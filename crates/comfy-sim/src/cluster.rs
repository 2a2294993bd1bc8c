//! Several simulated servers at once.

use std::net::SocketAddr;

use crate::config::SimConfig;
use crate::error::Result;
use crate::server::SimServer;

/// `n` independent [`SimServer`]s started from one configuration.
///
/// With the default `127.0.0.1:0` each server gets its own ephemeral port; with a fixed port
/// `P` they listen on `P`, `P+1`, ... Dropping the cluster shuts every server down.
#[derive(Debug)]
pub struct SimCluster {
    servers: Vec<SimServer>,
}

impl SimCluster {
    /// Starts `n` servers. Each gets seed `config.seed + index`, so their random choices differ
    /// but stay repeatable.
    pub async fn start(n: usize, config: SimConfig) -> Result<Self> {
        let mut servers = Vec::with_capacity(n);
        for index in 0..n {
            let mut one = config.clone();
            one.seed = config.seed.wrapping_add(index as u64);
            if config.listen.port() != 0 {
                let port = config
                    .listen
                    .port()
                    .saturating_add(u16::try_from(index).unwrap_or(u16::MAX));
                one.listen = SocketAddr::new(config.listen.ip(), port);
            }
            servers.push(SimServer::start(one).await?);
        }
        Ok(Self { servers })
    }

    /// The servers, in start order.
    pub fn servers(&self) -> &[SimServer] {
        &self.servers
    }

    /// One server by index.
    pub fn server(&self, index: usize) -> Option<&SimServer> {
        self.servers.get(index)
    }

    /// Base URLs, in start order.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(SimServer::url).collect()
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// True when the cluster has no server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}
