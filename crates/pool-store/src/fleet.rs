//! [`PgFleet`]: the [`Fleet`] of several pool processes on one PostgreSQL database — server
//! leases with fencing epochs, and notices over `LISTEN/NOTIFY`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pool_core::{Fleet, FleetNotice, Lease, ServerId, StoreError};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::mpsc;

use crate::held::Connections;
use crate::locator::{Location, redacted, scrub};
use crate::{fleet_listen, fleet_sql, migrations};

/// Connections a fleet opened by [`PgFleet::connect`] keeps for heartbeats and notices.
const CONNECTIONS: u32 = 2;

/// How long a call of a fleet opened by [`PgFleet::connect`] waits for a connection before
/// failing (well under any sensible lease ttl, so a heartbeat against an unreachable database
/// fails rather than hangs).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest process id (PostgreSQL names connections after it, in 63 bytes).
const MAX_PROCESS_ID: usize = 40;

/// One pool process's membership of a fleet on PostgreSQL (see [`Fleet`]).
///
/// - [`lease`](Fleet::lease) is one statement (one transaction, one round trip): it renews
///   this process's presence and leases, counts the live processes, gives up leases beyond
///   its fair share (the last ones by name) and takes free or expired ones up to it (the
///   first ones by name, skipping rows another heartbeat has locked), all with expiries in
///   the database's clock. The share is `servers / live`, rounded up for the first
///   `servers % live` live processes in id order and down for the rest. Each take of a
///   server raises its epoch.
/// - [`leave`](Fleet::leave) frees this process's leases at once.
/// - [`notify_all`](Fleet::notify_all) is one statement of `pg_notify` on one channel: the
///   notices as JSON arrays in envelopes with the sender's id, as many to an envelope as fit
///   under 8,000 bytes (PostgreSQL's limit). A notice that alone would reach it is refused
///   with [`StoreError::Rejected`] and not sent (the others are).
/// - [`notices`](Fleet::notices) listens on its own connection (`application_name`
///   `comfy-pool fleet PROCESS`) and listens again, with a log line, after losing it.
///
/// Cheap to clone (a pool of connections inside).
#[derive(Debug, Clone)]
pub struct PgFleet {
    pool: PgPool,
    /// The connection notices go out on, kept between notices (see `held`): one process
    /// sends its notices one statement at a time.
    notifier: Arc<Connections>,
    process: Arc<str>,
}

impl PgFleet {
    /// Joins the fleet on the database of `pool` as `process`, unique per run of a process
    /// (say `host:pid:start`), bringing the schema up to date. The process counts as live
    /// from its first [`lease`](Fleet::lease).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for an empty process id or one over 40 bytes;
    /// [`StoreError::Unavailable`] when the schema cannot be prepared.
    pub async fn join(pool: PgPool, process: impl Into<String>) -> Result<Self, StoreError> {
        let process = process.into();
        if process.is_empty() || process.len() > MAX_PROCESS_ID {
            return Err(StoreError::Config(format!(
                "a fleet process id has 1 to {MAX_PROCESS_ID} bytes, not {}",
                process.len()
            )));
        }
        migrations::POSTGRES
            .run(&pool)
            .await
            .map_err(migrations::error)?;
        let notifier = Arc::new(Connections::new(pool.connect_options().as_ref().clone(), 1));
        Ok(Self {
            pool,
            notifier,
            process: process.into(),
        })
    }

    /// [`join`](Self::join) on a pool of its own for `url`
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`): two connections, a call waiting at most
    /// 5 s for one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a URL that is not one; otherwise those of `join`. No error
    /// quotes the password.
    pub async fn connect(url: &str, process: impl Into<String>) -> Result<Self, StoreError> {
        if !matches!(Location::parse(url)?, Location::Postgres(_)) {
            return Err(StoreError::Config(format!(
                "a fleet needs PostgreSQL, not {}",
                redacted(url)
            )));
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Config(format!(
                "not a PostgreSQL URL ({}): {}",
                redacted(url),
                scrub(&e.to_string(), url)
            ))
        })?;
        // No test round trip before each statement: one that finds its connection lost runs
        // again on another.
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .min_connections(0)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Self::join(pool, process).await.map_err(|e| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(scrub(&m, url)),
            other => other,
        })
    }

    /// The pool of connections it runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Fleet for PgFleet {
    fn process(&self) -> &str {
        &self.process
    }

    async fn lease(&self, servers: &[ServerId], ttl: Duration) -> Result<Vec<Lease>, StoreError> {
        fleet_sql::lease(&self.pool, &self.process, servers, ttl).await
    }

    async fn leave(&self) -> Result<(), StoreError> {
        fleet_sql::leave(&self.pool, &self.process).await
    }

    async fn notify(&self, notice: &FleetNotice) -> Result<(), StoreError> {
        self.notify_all(std::slice::from_ref(notice)).await
    }

    async fn notify_all(&self, notices: &[FleetNotice]) -> Result<(), StoreError> {
        let (payloads, refused) = fleet_sql::payloads(&self.process, notices)?;
        fleet_sql::notify(&self.notifier, &payloads).await?;
        refused.map_or(Ok(()), Err)
    }

    async fn notices(&self) -> Result<mpsc::Receiver<FleetNotice>, StoreError> {
        fleet_listen::start(&self.pool.connect_options(), self.process.clone()).await
    }
}
