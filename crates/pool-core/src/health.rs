//! The health-check task of one server: periodic checks while online, checks with backoff
//! while offline, and an immediate check when the engine saw the server fail or the
//! backend hinted that the server went away or came back.

use std::sync::Arc;

use pool_failover::ServerId;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::command::Command;
use crate::engine::Settings;
use crate::{AttemptFailure, FailureClass, ServerBackend};

pub(crate) fn spawn(
    id: ServerId,
    backend: Arc<dyn ServerBackend>,
    settings: &Settings,
    commands: mpsc::WeakUnboundedSender<Command>,
    nudge: Arc<Notify>,
) -> JoinHandle<()> {
    let (min, max) = settings.offline_backoff;
    let interval = settings.health_interval;
    let timeout = settings.health_timeout;
    tokio::spawn(async move {
        let mut backoff = min;
        let mut hinted = false;
        loop {
            let result = match tokio::time::timeout(timeout, backend.health()).await {
                Ok(result) => result,
                Err(_) => Err(AttemptFailure::new(
                    FailureClass::ServerDown,
                    format!("no answer to the health check within {timeout:?}"),
                )),
            };
            let ok = result.is_ok();
            let Some(tx) = commands.upgrade() else { return };
            if tx
                .send(Command::Health {
                    server: id.clone(),
                    result,
                    hinted,
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
                hinted = tokio::select! {
                    () = periodic => false,
                    () = nudge.notified() => false,
                    () = backend.health_hint() => true,
                };
            } else {
                hinted = tokio::select! {
                    () = tokio::time::sleep(backoff) => false,
                    () = backend.health_hint() => true,
                };
                backoff = (backoff * 2).min(max);
            }
        }
    })
}
