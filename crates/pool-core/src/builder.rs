//! [`PoolBuilder`]: servers, strategy and settings of a pool.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pool_failover::{FailoverStrategy, SmartConfig, SmartStrategy};
use tokio::sync::{broadcast, mpsc};

use crate::cleanup::CleanupSettings;
use crate::command::{Command, EngineLink};
use crate::engine::{Engine, Settings, Shared};
use crate::registry::Registry;
use crate::{
    Error, InMemoryQueue, JobOptions, JobQueue, JobStore, OutlierEjection, Pool, Result,
    ServerConfig,
};

/// Builds a [`Pool`].
///
/// ```no_run
/// use std::time::Duration;
/// use pool_core::{Pool, ServerConfig};
///
/// # async fn demo() -> pool_core::Result<()> {
/// let pool = Pool::builder()
///     .server(ServerConfig::new("http://10.0.0.5:8188").id("gpu-1"))
///     .server(ServerConfig::new("http://10.0.0.6:8188").id("gpu-2").max_concurrent(2))
///     .health_check_interval(Some(Duration::from_secs(10)))
///     .build()?;
/// # let _ = pool;
/// # Ok(())
/// # }
/// ```
pub struct PoolBuilder {
    servers: Vec<ServerConfig>,
    strategy: Option<Arc<dyn FailoverStrategy>>,
    health_interval: Option<Duration>,
    health_timeout: Duration,
    offline_backoff: (Duration, Duration),
    default_options: JobOptions,
    queue: Option<Box<dyn JobQueue>>,
    event_capacity: usize,
    retain_finished: usize,
    ejection: OutlierEjection,
    cleanup: CleanupSettings,
    store: Option<Arc<dyn JobStore>>,
    fleet: Option<Arc<dyn crate::Fleet>>,
    lease_ttl: Duration,
    recovery_wait: Duration,
    retain_for: Duration,
    capabilities_refresh: Option<Duration>,
    capability_routing: bool,
    queue_ahead: usize,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("servers", &self.servers)
            .field("strategy", &self.strategy)
            .field("health_interval", &self.health_interval)
            .field("health_timeout", &self.health_timeout)
            .field("event_capacity", &self.event_capacity)
            .field("retain_finished", &self.retain_finished)
            .finish_non_exhaustive()
    }
}

impl Default for PoolBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PoolBuilder {
    /// No servers; smart strategy (production preset); health checks every 15 s, each
    /// given 10 s to answer; offline servers re-checked from 100 ms up to 5 s apart; in-memory queue; 4096 buffered events
    /// per subscriber; 10 000 finished jobs retained.
    pub fn new() -> Self {
        Self {
            servers: Vec::new(),
            strategy: None,
            health_interval: Some(Duration::from_secs(15)),
            health_timeout: Duration::from_secs(10),
            offline_backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            default_options: JobOptions::default(),
            queue: None,
            event_capacity: 4096,
            retain_finished: 10_000,
            ejection: OutlierEjection::default(),
            cleanup: CleanupSettings::default(),
            store: None,
            fleet: None,
            lease_ttl: Duration::from_secs(10),
            recovery_wait: Duration::from_secs(60),
            retain_for: Duration::from_secs(7 * 86_400),
            capabilities_refresh: Some(Duration::from_secs(600)),
            capability_routing: true,
            queue_ahead: 0,
        }
    }

    /// Adds a server.
    #[must_use]
    pub fn server(mut self, server: ServerConfig) -> Self {
        self.servers.push(server);
        self
    }

    /// Adds several servers.
    #[must_use]
    pub fn servers(mut self, servers: impl IntoIterator<Item = ServerConfig>) -> Self {
        self.servers.extend(servers);
        self
    }

    /// The failover strategy (default: `SmartStrategy` with `SmartConfig::production()`).
    #[must_use]
    pub fn strategy(mut self, strategy: Arc<dyn FailoverStrategy>) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// How often online servers are checked; `None` or zero disables periodic checks (a
    /// server still gets its first check, and an offline one is still re-checked with
    /// backoff so that it rejoins by itself). Whatever the interval, a server is also
    /// checked at once when its backend hints at a change
    /// ([`ServerBackend::health_hint`](crate::ServerBackend::health_hint): for ComfyUI
    /// servers, the websocket dropping or reopening), so a crash is noticed in
    /// milliseconds even with no job running there.
    #[must_use]
    pub fn health_check_interval(mut self, interval: Option<Duration>) -> Self {
        self.health_interval = interval.filter(|d| !d.is_zero());
        self
    }

    /// How long one health check may take before the server counts as offline (default
    /// 10 s; zero is taken as 1 ms). A server whose HTTP freezes while its socket lives is
    /// taken offline after this time, and the jobs on it move on, instead of each waiting
    /// for its own request's deadline.
    #[must_use]
    pub fn health_check_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How an offline server is re-checked: first after `min`, doubling up to `max`.
    #[must_use]
    pub fn offline_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.offline_backoff = (min, max.max(min));
        self
    }

    /// The options [`Pool::default_options`] returns.
    #[must_use]
    pub fn default_options(mut self, options: JobOptions) -> Self {
        self.default_options = options;
        self
    }

    /// The queue (default: [`InMemoryQueue`]).
    #[must_use]
    pub fn queue(mut self, queue: Box<dyn JobQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// How many events a subscriber may fall behind before it lags (default 4096).
    #[must_use]
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// How many finished jobs stay known in memory for lookups and idempotent ids, and at
    /// most in the store (default 10 000).
    #[must_use]
    pub fn retain_finished(mut self, jobs: usize) -> Self {
        self.retain_finished = jobs;
        self
    }

    /// When a server that fails prompt after prompt is taken out of rotation although its
    /// health check passes (default: [`OutlierEjection::default`]; turn it off with
    /// [`OutlierEjection::disabled`]).
    #[must_use]
    pub fn outlier_ejection(mut self, ejection: OutlierEjection) -> Self {
        self.ejection = ejection;
        self
    }

    /// How the server-side clean-up of an abandoned prompt (cancelled, timed out, stalled,
    /// withdrawn, or left on an unreachable server) is bounded: each try, the delete and
    /// the interrupt together, within `try_limit` (default 5 s), the server's slot held
    /// until the first try ends; failed tries repeated with backoff for `window` (default
    /// 60 s). No job ever waits for a clean-up; each one ends with a
    /// [`PoolEvent::Cleanup`](crate::PoolEvent::Cleanup).
    #[must_use]
    pub fn cleanup_limits(mut self, try_limit: Duration, window: Duration) -> Self {
        self.cleanup = CleanupSettings {
            first_try: try_limit,
            window,
        };
        self
    }

    /// Keeps every job in `store` (default: none, everything in memory): acceptance returns
    /// once the job is stored, every transition is persisted (an attempt's prompt id before
    /// the prompt is submitted, a job's end before its terminal event; a prompt's progress —
    /// submitted, executing, its attempt's end — within 20 ms, or with the job's next write
    /// if that comes first), and a pool started on
    /// the same store takes up its unfinished jobs (re-attaching to prompts still on their
    /// servers), its remembered blocks, and its job ids (idempotent enqueue across restarts).
    /// Finished jobs are purged from the store by age ([`retain_finished_for`]) and count
    /// ([`retain_finished`]).
    ///
    /// [`retain_finished_for`]: Self::retain_finished_for
    /// [`retain_finished`]: Self::retain_finished
    #[must_use]
    pub fn store(mut self, store: Arc<dyn JobStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How long a recovered job waits for its server to answer before its prompt counts as
    /// lost and the job runs again elsewhere (default 60 s).
    #[must_use]
    pub fn recovery_wait(mut self, wait: Duration) -> Self {
        self.recovery_wait = wait;
        self
    }

    /// How long finished jobs stay in the store (default 7 days).
    #[must_use]
    pub fn retain_finished_for(mut self, age: Duration) -> Self {
        self.retain_for = age;
        self
    }

    /// Whether servers' capabilities are read and consulted at dispatch (default on): a
    /// server known to lack a node class or a model file never receives the workflow. Off,
    /// lacks are learnt from rejections (and blocked) only.
    #[must_use]
    pub fn capability_routing(mut self, enabled: bool) -> Self {
        self.capability_routing = enabled;
        self
    }

    /// Zero-gap dispatch: how many prompts each busy server is given beyond its
    /// `max_concurrent`, to wait in its own queue (default 0: off; 1 is enough to close the
    /// gap). A server then starts its next prompt the moment its current one ends, instead
    /// of idling for the round trip of noticing the end, the pool's turn and the next
    /// `POST /prompt` (and, with a store, that prompt's write-ahead).
    ///
    /// Binding stays late: a job goes ahead on a busy server only when no server is free,
    /// and when a server frees while the queue has nothing for it, a prompt still waiting on
    /// a busy server is taken back from there (deleted from its queue, once the server
    /// confirms it never started) and runs on the free server. No prompt runs twice; no more
    /// than `max_concurrent` prompts *execute* on a server (ComfyUI executes one at a time),
    /// but its queue holds up to `max_concurrent + n` of this pool's prompts.
    #[must_use]
    pub fn queue_ahead(mut self, n: usize) -> Self {
        self.queue_ahead = n;
        self
    }

    /// How often each server's capabilities (node classes, model files) are read again
    /// besides when it comes online, after a sign of a restart and after it failed a job for
    /// lack of a resource (default 10 min; `None` turns the periodic reads off).
    #[must_use]
    pub fn capabilities_refresh(mut self, every: Option<Duration>) -> Self {
        self.capabilities_refresh = every.filter(|d| !d.is_zero());
        self
    }

    /// Makes this pool one process of a fleet sharing its store (PostgreSQL's `PgFleet` in
    /// `pool-store`; requires [`store`](Self::store)): it dispatches only to the servers whose
    /// lease it holds, mirrors the store's queued jobs and claims each before running it, and
    /// takes over the jobs of a server whose lease it gains. See `docs/fleet.md`.
    #[must_use]
    pub fn fleet(mut self, fleet: Arc<dyn crate::Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// How long a server lease lasts unless renewed (default 10 s; renewed every third of
    /// it). A process that could not renew its leases for this long stops dispatching; a
    /// dead process's servers are taken over after it.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Starts the pool's engine.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a zero event capacity, a server with zero slots or a server URL
    /// the client refuses, or when called outside a tokio runtime;
    /// [`Error::DuplicateServer`] for two servers with one id; [`Error::Config`] too for a
    /// fleet without a store, or a lease ttl under 30 ms.
    pub fn build(self) -> Result<Pool> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "a pool must be built inside a tokio runtime".into(),
            ));
        }
        if self.event_capacity == 0 {
            return Err(Error::Config("event capacity must be at least 1".into()));
        }
        if let Some(server) = self.servers.iter().find(|s| s.max_concurrent == 0) {
            return Err(Error::Config(format!(
                "server {} has max_concurrent 0",
                server.id
            )));
        }
        if self.fleet.is_some() && self.store.is_none() {
            return Err(Error::Config("a fleet needs a store".into()));
        }
        if self.fleet.is_some() && self.lease_ttl < Duration::from_millis(30) {
            return Err(Error::Config("the lease ttl must be at least 30 ms".into()));
        }
        let fleet = self
            .fleet
            .map(|fleet| Arc::new(crate::fleet_link::FleetLink::spawn(fleet, self.lease_ttl)));
        let strategy = match self.strategy {
            Some(strategy) => strategy,
            None => Arc::new(
                SmartStrategy::new(SmartConfig::production())
                    .map_err(|e| Error::Config(e.to_string()))?,
            ),
        };
        let (events, _) = broadcast::channel(self.event_capacity);
        let recovered = tokio::sync::watch::channel(false).0;
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::new(self.retain_finished)),
            events,
            strategy,
            ready: tokio::sync::watch::channel(false).0,
            store: self.store,
            fleet: fleet.clone(),
            recovered,
        });
        let (tx, rx) = mpsc::unbounded_channel::<Command>();
        let settings = Settings {
            health_interval: self.health_interval,
            health_timeout: self.health_timeout,
            offline_backoff: self.offline_backoff,
            cleanup: self.cleanup,
            ejection: self.ejection,
            recovery_wait: self.recovery_wait,
            retain_for: self.retain_for,
            retain_count: self.retain_finished as u64,
            capabilities_refresh: self.capabilities_refresh,
            capability_routing: self.capability_routing,
            queue_ahead: self.queue_ahead,
        };
        let queue = self.queue.unwrap_or_else(|| Box::new(InMemoryQueue::new()));
        let mut engine = Engine::new(Arc::clone(&shared), tx.downgrade(), settings, queue);
        engine.fleet = fleet.map(crate::takeover::FleetState::new);
        for server in self.servers {
            engine.add_server(server)?;
        }
        tokio::spawn(engine.run(rx));
        Ok(Pool::from_parts(
            EngineLink::new(tx),
            shared,
            self.default_options,
        ))
    }
}
