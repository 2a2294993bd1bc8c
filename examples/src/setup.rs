//! Pool setup shared by the demos: the builder settings, waiting for readiness, and the
//! block table.

use std::time::Duration;

use comfy_pool::prelude::Arc;
use comfy_pool::sim::SimConfig;
use comfy_pool::{FailoverStrategy, PairState, PairStatus, Pool, PoolEvent, ServerState};
use tokio::time::Instant;

use crate::{DemoError, EventLog, Fleet, Result, Table, describe};

/// A simulated server that takes `node_time` per node (so jobs overlap and spread) and has
/// the `sd15` and `sdxl` checkpoints installed.
pub fn sim_config(node_time: Duration) -> SimConfig {
    SimConfig::default()
        .exec_time(node_time)
        .model("checkpoints", "sdxl.safetensors")
}

/// Simulated servers named `names`, each from [`sim_config`].
///
/// # Errors
///
/// When a server cannot start.
pub async fn sim_fleet(names: &[&str], node_time: Duration) -> Result<Fleet> {
    Fleet::simulated(
        names
            .iter()
            .map(|n| ((*n).to_owned(), sim_config(node_time))),
    )
    .await
}

/// A pool over `fleet` with `strategy`: `max_concurrent` prompts per server, health checks
/// every second, offline servers re-checked from 50 ms.
///
/// # Errors
///
/// The pool's refusal of the configuration.
pub fn pool(
    fleet: &Fleet,
    strategy: Arc<dyn FailoverStrategy>,
    max_concurrent: usize,
) -> Result<Pool> {
    Ok(Pool::builder()
        .servers(fleet.server_configs(max_concurrent))
        .strategy(strategy)
        .health_check_interval(Some(Duration::from_secs(1)))
        .offline_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .build()?)
}

/// Waits for the pool's `Ready` event (or, if it came before the log started, for a
/// snapshot with a server online) and returns how many servers are online.
///
/// # Errors
///
/// [`DemoError::Timeout`] when no server comes online within 10 s.
pub async fn wait_ready(pool: &Pool, log: &EventLog) -> Result<usize> {
    let ready = log
        .wait_for(0, Duration::from_secs(10), "the pool to be ready", |e| {
            matches!(e, PoolEvent::Ready { .. })
        })
        .await;
    if let Ok(logged) = ready
        && let PoolEvent::Ready { online, .. } = logged.event
        && online > 0
    {
        return Ok(online);
    }
    let stats = pool.stats().await?;
    let online = stats
        .servers
        .iter()
        .filter(|s| s.state == ServerState::Online)
        .count();
    if online == 0 {
        return Err(DemoError::Timeout("a server to come online".into()));
    }
    Ok(online)
}

/// The strategy's tracked pairs as a table: server, workflow, state, failures, blocks.
pub fn block_table(
    pairs: &[PairStatus],
    label: impl Fn(&comfy_pool::WorkflowHash) -> String,
) -> Table {
    let now = Instant::now();
    let mut table = Table::new([
        "server",
        "workflow",
        "hash",
        "state",
        "failures",
        "blocks in a row",
    ]);
    for pair in pairs {
        let state = match pair.state {
            PairState::Blocked { until } => format!(
                "blocked, {:.1} s left",
                until.saturating_duration_since(now).as_secs_f64()
            ),
            PairState::Probation => "probation (next job probes)".to_owned(),
            PairState::Probing { .. } => "probe running".to_owned(),
            PairState::Watching => "watching".to_owned(),
            _ => "?".to_owned(),
        };
        table.row([
            pair.server.to_string(),
            label(&pair.hash),
            describe::short(&pair.hash),
            state,
            pair.consecutive_failures.to_string(),
            pair.blocked_count.to_string(),
        ]);
    }
    table
}
