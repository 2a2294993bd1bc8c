//! [`Service`]: the pool behind its HTTP API — built from a [`Config`], served on a listener,
//! stopped on a signal (detach or drain, as configured).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use pool_core::JobQuery;
use pool_core::{JobState, JobStore, Pool, PoolBuilder, ShutdownMode};
use pool_failover::SmartStrategy;
use pool_store::{PgFleet, ServiceStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Keyring;
use crate::config::ShutdownAction;
use crate::feed::Feed;
use crate::fleet::{Fleet, server_config};
use crate::limits::TenantLimits;
use crate::metrics::Metrics;
use crate::outputs::Outputs;
use crate::state::AppState;
use crate::tracker::Tracker;
use crate::webhook::Webhooks;
use crate::{Config, ServiceError, StoreOpenError, open_store, watch};

/// How many finished jobs the start-up sweep looks at for webhooks never queued.
const SWEEP: u32 = 500;

/// The comfy-pool HTTP service: a [`Pool`] built from the configuration, its store, and the
/// `/v1` API over them.
///
/// ```no_run
/// use pool_server::{Config, Service};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::load("comfy-pool.toml".as_ref())?;
/// let service = Service::start(config).await?;
/// let listener = tokio::net::TcpListener::bind(service.config().listen).await?;
/// service.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Service {
    state: Arc<AppState>,
    tasks: Vec<JoinHandle<()>>,
}

impl Service {
    /// Opens the configured store, builds the pool over the configured servers and starts
    /// the service's background work (webhook delivery, the event feed).
    ///
    /// # Errors
    ///
    /// [`ServiceError`] when the store, the strategy or the pool refuse.
    ///
    /// With a `postgres://` store the service joins the fleet of the replicas on that
    /// database ([`PgFleet`], under a [process id](fleet_process_id) of its own, with the
    /// configured `fleet.lease_ttl`): they share the queue and the servers (see
    /// `docs/fleet.md`). Other stores serve this process alone.
    pub async fn start(config: Config) -> Result<Self, ServiceError> {
        let url = config.store.expose();
        let store = open_store(url).await?;
        if !is_postgres(url) {
            return Self::with_store(config, store).await;
        }
        let fleet = PgFleet::connect(url, fleet_process_id())
            .await
            .map_err(StoreOpenError::from)?;
        let pool = pool_builder(&config, Arc::clone(&store))?
            .fleet(Arc::new(fleet))
            .lease_ttl(config.fleet.lease_ttl)
            .build()?;
        Self::with_parts(config, pool, store).await
    }

    /// As [`start`](Self::start), on a store the caller opened.
    ///
    /// # Errors
    ///
    /// [`ServiceError`] when the strategy or the pool refuse.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn ServiceStore>,
    ) -> Result<Self, ServiceError> {
        let pool = build_pool(&config, Arc::clone(&store))?;
        Self::with_parts(config, pool, store).await
    }

    /// The service over a pool and a store the caller built. The pool should keep its jobs
    /// in the same store ([`PoolBuilder::store`](pool_core::PoolBuilder::store)): listings
    /// read them there, and a restart takes them up from there.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Config`] when the keys of the configuration are invalid.
    pub async fn with_parts(
        config: Config,
        pool: Pool,
        store: Arc<dyn ServiceStore>,
    ) -> Result<Self, ServiceError> {
        config.validate()?;
        let keyring = Keyring::new(&config, Arc::clone(&store))?;
        let stopping = CancellationToken::new();
        let state = Arc::new(AppState {
            limits: TenantLimits::new(&config),
            fleet: Fleet::new(&config.servers),
            outputs: Outputs::new(&config.outputs),
            webhooks: Arc::new(Webhooks::new(&config.webhooks, Arc::clone(&store))),
            feed: Arc::new(Feed::new()),
            metrics: Metrics::new(),
            tracker: Tracker::default(),
            ready: false.into(),
            keyring,
            config,
            pool,
            store,
            stopping,
        });
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(
            Arc::clone(&state.feed).forward(state.pool.clone(), state.stopping.clone()),
        ));
        tasks.push(tokio::spawn(
            Arc::clone(&state.webhooks).run(state.stopping.clone()),
        ));
        let ready = Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            // Ready: the servers answered and the pool took up the store's unfinished jobs.
            ready.pool.ready().await;
            take_over(&ready).await;
            ready.ready.store(true, Ordering::SeqCst);
        }));
        Ok(Self { state, tasks })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.state.pool
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ServiceStore> {
        &self.state.store
    }

    /// The HTTP routes (to serve, or to nest in another axum application).
    pub fn router(&self) -> Router {
        crate::routes::router(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `signal` completes, then stops accepting, ends open event
    /// streams and shuts the pool down as configured (see [`shutdown`](Self::shutdown)).
    ///
    /// # Errors
    ///
    /// [`ServiceError::Io`] when serving fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let stopping = self.state.stopping.clone();
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                signal.await;
                // Streams end so that graceful shutdown does not wait on them.
                stopping.cancel();
            })
            .await;
        self.shutdown().await;
        served.map_err(|source| ServiceError::Io {
            what: "serving HTTP",
            source,
        })
    }

    /// Stops: open event streams end, webhook delivery pauses (pending deliveries stay in
    /// the store), and the pool detaches from its jobs or drains them for up to
    /// `shutdown.drain_timeout` and then detaches, per `shutdown.mode`.
    pub async fn shutdown(&self) {
        self.state.stopping.cancel();
        let pool = &self.state.pool;
        match self.state.config.shutdown.mode {
            ShutdownAction::Detach => pool.shutdown(ShutdownMode::Detach).await,
            ShutdownAction::Drain => {
                let limit = self.state.config.shutdown.drain_timeout;
                if tokio::time::timeout(limit, pool.shutdown(ShutdownMode::Drain))
                    .await
                    .is_err()
                {
                    tracing::warn!(?limit, "drain timed out; detaching from the rest");
                    pool.shutdown(ShutdownMode::Detach).await;
                }
            }
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The pool of a configuration, keeping its jobs in `store`: its servers, strategy and
/// health checks. Unfinished jobs in the store are taken up again.
///
/// # Errors
///
/// The strategy's or the pool's refusal.
pub fn build_pool(config: &Config, store: Arc<dyn ServiceStore>) -> Result<Pool, ServiceError> {
    Ok(pool_builder(config, store)?.build()?)
}

/// The builder of [`build_pool`], for adding a fleet.
fn pool_builder(
    config: &Config,
    store: Arc<dyn ServiceStore>,
) -> Result<PoolBuilder, ServiceError> {
    let strategy = SmartStrategy::new(config.strategy.smart_config())?;
    let store: Arc<dyn JobStore> = store;
    Ok(Pool::builder()
        .servers(config.servers.iter().map(server_config))
        .strategy(Arc::new(strategy))
        .health_check_interval(Some(config.health_check_interval))
        .health_check_timeout(config.health_check_timeout)
        .queue_ahead(config.queue_ahead)
        .store(store))
}

/// Whether a store URL names PostgreSQL (the only store with a fleet).
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A fleet process id unique to this run of this process: `HOST-PID-RANDOM`, the host name
/// cut to 20 bytes of letters, digits, `-` and `.` (`host` when unknown), at most 38 bytes in
/// all (a fleet allows 40).
pub fn fleet_process_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let mut host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(20)
        .collect();
    if host.is_empty() {
        host = "host".into();
    }
    let random: u32 = rand::random();
    format!("{host}-{}-{random:08x}", std::process::id())
}

/// At start: watch the unfinished jobs the pool took over from the store, and queue the
/// webhooks of finished jobs that ended before theirs was queued (a crash in between).
async fn take_over(state: &Arc<AppState>) {
    match state.store.unfinished().await {
        Ok(records) => {
            for record in records {
                if state.tracker.is_tracked(record.id.as_str()) {
                    continue;
                }
                if let Some(handle) = state.pool.job(record.id.as_str()) {
                    let tenant = record.tenant().unwrap_or_default();
                    state
                        .tracker
                        .track(record.id.as_str(), tenant, record.priority(), false);
                    tokio::spawn(watch::watch(Arc::clone(state), handle, None));
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read unfinished jobs"),
    }
    let query =
        JobQuery::new(SWEEP).states([JobState::Completed, JobState::Failed, JobState::Cancelled]);
    let Ok(page) = state.store.list(&query).await else {
        return;
    };
    for record in page.jobs {
        if crate::webhook::webhook_of(&record).is_some()
            && matches!(state.store.webhook(record.id.as_str()).await, Ok(None))
            && let Err(error) = state.webhooks.job_ended(&record).await
        {
            tracing::warn!(job = %record.id, %error, "cannot queue a webhook");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_process_ids_fit_a_fleet_and_differ_per_run() {
        let (a, b) = (fleet_process_id(), fleet_process_id());
        assert!((1..=40).contains(&a.len()), "{a}");
        assert_ne!(a, b, "each run has its own id");
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }

    #[test]
    fn only_postgres_stores_have_a_fleet() {
        assert!(is_postgres("postgres://u@h/db"));
        assert!(is_postgres("postgresql://u@h/db"));
        assert!(!is_postgres("sqlite:pool.db"));
        assert!(!is_postgres("memory:"));
    }
}
