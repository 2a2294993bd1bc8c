//! The health-check task of one server: periodic checks while online, checks with backoff
//! while offline, and an immediate check when the engine saw the server fail or the
//! backend hinted that the server went away or came back.

use std::sync::Arc;

use pool_failover::ServerId;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::ServerBackend;
use crate::command::Command;
use crate::engine::Settings;

pub(crate) fn spawn(
    id: ServerId,
    backend: Arc<dyn ServerBackend>,
    settings: &Settings,
    commands: mpsc::WeakUnboundedSender<Command>,
    nudge: Arc<Notify>,
) -> JoinHandle<()> {
    let (min, max) = settings.offline_backoff;
    let interval = settings.health_interval;
    tokio::spawn(async move {
        let mut backoff = min;
        loop {
            let result = backend.health().await;
            let ok = result.is_ok();
            let Some(tx) = commands.upgrade() else { return };
            if tx
                .send(Command::Health {
                    server: id.clone(),
                    result,
                })
                .is_err()
            {
                return;
            }
            drop(tx);
            if ok {
                backoff = min;
                let periodic = async {
                    match interval {
                        Some(interval) => tokio::time::sleep(interval).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = periodic => {}
                    () = nudge.notified() => {}
                    () = backend.health_hint() => {}
                }
            } else {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = backend.health_hint() => {}
                }
                backoff = (backoff * 2).min(max);
            }
        }
    })
}
