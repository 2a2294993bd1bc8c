//! Alerting hooks: [`Alert`]s derived from the pool's events, delivered to [`AlertHook`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use comfy_pool::{FailureClass, Pool, PoolEvent, ServerState, WorkflowEvent, WorkflowHash};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// Something an operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alert {
    /// A workflow was blocked on a server.
    WorkflowBlocked {
        /// The server.
        server: String,
        /// The workflow.
        hash: WorkflowHash,
        /// Why.
        class: FailureClass,
    },
    /// A workflow is blocked on several servers at once: probably the workflow (or a model it
    /// needs) is at fault, not one server.
    WorkflowBlockedOnMany {
        /// The workflow.
        hash: WorkflowHash,
        /// Where it is blocked now.
        servers: Vec<String>,
    },
    /// A server went offline.
    ServerOffline {
        /// The server.
        server: String,
        /// Its last error.
        error: Option<String>,
    },
}

/// Receives alerts: implement it to page someone, post to a chat, or count.
pub trait AlertHook: Send + Sync {
    /// Called once per alert, in order.
    fn alert(&self, alert: &Alert);
}

/// An [`AlertHook`] that keeps every alert (for the demo's checks and report).
#[derive(Debug, Clone, Default)]
pub struct AlertLog {
    alerts: Arc<Mutex<Vec<Alert>>>,
}

impl AlertLog {
    /// Every alert so far.
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().clone()
    }
}

impl AlertHook for AlertLog {
    fn alert(&self, alert: &Alert) {
        self.alerts.lock().push(alert.clone());
    }
}

/// Watches a pool's events and raises alerts on the hooks; `many` is how many servers make
/// "blocked on many". Stops when dropped.
pub struct Alerter {
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter").finish_non_exhaustive()
    }
}

impl Drop for Alerter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Alerter {
    /// Starts watching.
    pub fn start(pool: &Pool, many: usize, hooks: Vec<Arc<dyn AlertHook>>) -> Self {
        let mut events = pool.subscribe();
        let task = tokio::spawn(async move {
            let mut blocked: BTreeMap<WorkflowHash, BTreeSet<String>> = BTreeMap::new();
            let mut reported: BTreeSet<WorkflowHash> = BTreeSet::new();
            while let Some(event) = events.recv().await {
                for alert in alerts_for(&event, &mut blocked, &mut reported, many) {
                    for hook in &hooks {
                        hook.alert(&alert);
                    }
                }
            }
        });
        Self { task }
    }
}

/// The alerts one event raises, keeping the per-workflow set of blocked servers.
fn alerts_for(
    event: &PoolEvent,
    blocked: &mut BTreeMap<WorkflowHash, BTreeSet<String>>,
    reported: &mut BTreeSet<WorkflowHash>,
    many: usize,
) -> Vec<Alert> {
    match event {
        PoolEvent::Workflow(WorkflowEvent::Blocked {
            server,
            hash,
            class,
            ..
        }) => {
            let servers = blocked.entry(*hash).or_default();
            servers.insert(server.to_string());
            let mut alerts = vec![Alert::WorkflowBlocked {
                server: server.to_string(),
                hash: *hash,
                class: *class,
            }];
            if servers.len() >= many.max(2) && reported.insert(*hash) {
                alerts.push(Alert::WorkflowBlockedOnMany {
                    hash: *hash,
                    servers: servers.iter().cloned().collect(),
                });
            }
            alerts
        }
        PoolEvent::Workflow(WorkflowEvent::Unblocked { server, hash, .. }) => {
            if let Some(servers) = blocked.get_mut(hash) {
                servers.remove(server.as_str());
                if servers.len() < many.max(2) {
                    reported.remove(hash);
                }
            }
            Vec::new()
        }
        PoolEvent::Server {
            server,
            state: ServerState::Offline,
            last_error,
            ..
        } => vec![Alert::ServerOffline {
            server: server.to_string(),
            error: last_error.clone(),
        }],
        _ => Vec::new(),
    }
}
