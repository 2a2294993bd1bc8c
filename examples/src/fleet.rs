//! [`Fleet`]: the servers a demo runs on, simulated in-process or real.

use comfy_pool::ServerConfig;
use comfy_pool::sim::{SimConfig, SimServer};

use crate::Result;
use crate::server_name;

/// One server of a fleet.
#[derive(Debug)]
pub struct FleetServer {
    /// The id the pool knows it by.
    pub id: String,
    /// Its base URL.
    pub url: String,
    /// The simulated server, when the fleet is simulated.
    pub sim: Option<SimServer>,
}

/// The servers a demo uses: simulated ComfyUI servers started in this process (no GPU, no
/// setup), or real ones given with `--hosts`. Dropping a simulated fleet stops its servers.
#[derive(Debug)]
pub struct Fleet {
    servers: Vec<FleetServer>,
}

impl Fleet {
    /// Starts one simulated server per `(id, config)`, each on an ephemeral loopback port.
    ///
    /// # Errors
    ///
    /// When a server cannot bind its port.
    pub async fn simulated(specs: impl IntoIterator<Item = (String, SimConfig)>) -> Result<Self> {
        let mut servers = Vec::new();
        for (id, config) in specs {
            let sim = SimServer::start(config).await?;
            servers.push(FleetServer {
                id,
                url: sim.url(),
                sim: Some(sim),
            });
        }
        Ok(Self { servers })
    }

    /// Real servers at these URLs, named by their `host:port`.
    pub fn real(urls: impl IntoIterator<Item = String>) -> Self {
        let servers = urls
            .into_iter()
            .map(|url| FleetServer {
                id: server_name(&url),
                url,
                sim: None,
            })
            .collect();
        Self { servers }
    }

    /// Whether the servers are simulated (so the demo can inject faults and read their
    /// counters).
    pub fn is_simulated(&self) -> bool {
        self.servers.iter().all(|s| s.sim.is_some())
    }

    /// The servers, in order.
    pub fn servers(&self) -> &[FleetServer] {
        &self.servers
    }

    /// The server ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.id.clone()).collect()
    }

    /// The simulated server with this id.
    pub fn sim(&self, id: &str) -> Option<&SimServer> {
        self.servers
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.sim.as_ref())
    }

    /// A pool configuration for every server (`max_concurrent` prompts each).
    pub fn server_configs(&self, max_concurrent: usize) -> Vec<ServerConfig> {
        self.servers
            .iter()
            .map(|s| {
                ServerConfig::new(s.url.as_str())
                    .id(s.id.as_str())
                    .max_concurrent(max_concurrent)
            })
            .collect()
    }

    /// A line describing the fleet.
    pub fn describe(&self) -> String {
        let kind = if self.is_simulated() {
            "simulated ComfyUI servers (in this process)"
        } else {
            "ComfyUI servers"
        };
        let list: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{} ({})", s.id, s.url))
            .collect();
        format!("{} {kind}: {}", self.servers.len(), list.join(", "))
    }
}
