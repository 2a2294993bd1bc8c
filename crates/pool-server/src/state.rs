//! [`AppState`]: everything a request handler reaches.

use std::sync::Arc;

use pool_core::Pool;
use pool_store::ServiceStore;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::auth::Keyring;
use crate::feed::Feed;
use crate::fleet::Fleet;
use crate::limits::TenantLimits;
use crate::metrics::Metrics;
use crate::outputs::Outputs;
use crate::tracker::Tracker;
use crate::webhook::Webhooks;

/// The service's shared state.
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) pool: Pool,
    pub(crate) store: Arc<dyn ServiceStore>,
    pub(crate) keyring: Keyring,
    pub(crate) limits: TenantLimits,
    pub(crate) tracker: Tracker,
    pub(crate) feed: Arc<Feed>,
    pub(crate) metrics: Metrics,
    pub(crate) fleet: Fleet,
    pub(crate) outputs: Outputs,
    /// Set once every configured server answered its first health check.
    pub(crate) ready: std::sync::atomic::AtomicBool,
    pub(crate) webhooks: Arc<Webhooks>,
    /// Cancelled when the service stops: open streams end.
    pub(crate) stopping: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("pool", &self.pool)
            .field("fleet", &self.fleet)
            .finish_non_exhaustive()
    }
}
